"""Content fingerprints: what a result or checkpoint was made from, as a short stable digest.

- :func:`canonical_digest` hashes a JSON-able object in a canonical form (sorted keys, no whitespace),
  so two equal configs give the same digest whatever their key order.
- :func:`path_digest` hashes a file's bytes, or every file under a directory (relative path + bytes,
  in sorted order; hidden temporary entries skipped). A string that is not a local path (a hub id) is
  hashed as its name. Large files are read in 8 MiB blocks.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

_BLOCK = 8 << 20


def canonical_digest(obj: Any) -> str:
    """sha256 (hex, 16 chars) of ``obj`` as canonical JSON."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _update_file(h: Any, path: Path) -> None:
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)


def path_digest(path: str | os.PathLike[str] | None) -> str | None:
    """sha256 (hex, 16 chars) of a file or a directory tree; a non-local name hashes as ``name:<it>``;
    ``None`` stays ``None``."""
    if path is None:
        return None
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        _update_file(h, p)
    elif p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            rel = f.relative_to(p)
            if any(part.startswith(".") for part in rel.parts):
                continue  # a partial write (.step<N>.tmp, .name.tmp) is not part of the content
            h.update(str(rel).encode() + b"\0")
            _update_file(h, f)
    else:
        h.update(f"name:{path}".encode())
    return h.hexdigest()[:16]
