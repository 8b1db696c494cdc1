"""Content fingerprints: what a result or checkpoint was made from, as a short stable digest.

- :func:`canonical_digest` hashes a JSON-able object in a canonical form (sorted keys, no whitespace),
  so two equal configs give the same digest whatever their key order.
- :func:`path_digest` hashes a file's bytes, or every file under a directory (relative path + bytes,
  in sorted order; hidden temporary entries skipped). A string that is not a local path (a hub id) is
  hashed as its name. Large files are read in 8 MiB blocks.
- :func:`stat_digest` hashes the same entries' names, sizes and modification times without reading them: a
  checkpoint of many GB in milliseconds, for a check that may err only towards "changed" (a copied tree differs).
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


def _entries(p: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of the files :func:`path_digest` hashes under ``p``, in sorted order."""
    if p.is_file():
        return [("", p)]
    files = sorted(q for q in p.rglob("*") if q.is_file())
    return [(str(f.relative_to(p)), f) for f in files
            if not any(part.startswith(".") for part in f.relative_to(p).parts)]


def stat_digest(path: str | os.PathLike[str] | None) -> str | None:
    """sha256 (hex, 16 chars) of the names, sizes and modification times of what :func:`path_digest` would read;
    a non-local name hashes as ``name:<it>``; ``None`` stays ``None``. A rewritten file changes it (so does a
    copy of the same bytes: a false "changed", never a false "same" short of a same-size rewrite within the
    file system's time resolution)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        return hashlib.sha256(f"name:{path}".encode()).hexdigest()[:16]
    h = hashlib.sha256()
    for rel, f in _entries(p):
        st = f.stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
