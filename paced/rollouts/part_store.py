"""A sampling job's finished parts on disk, so that a killed job resumes where it stopped.

The parts of the job writing ``<out>`` live in ``<out>.parts/``: ``manifest.json`` holds the job's identity (every
input that determines the parts' content) and its digest; ``part-00003.jsonl`` holds one finished part, a header line
(``{"digest", "part", "ids"}``: the digest of the identity and of the part's problem ids) then one JSON record per
problem. Every file is written atomically (:mod:`paced.io`), so a part is either whole or absent.

:meth:`PartStore.open` reuses a directory made under the same identity; one made under another is discarded (the log
names the keys that differ) only when this job saves its first part (:meth:`PartStore.claim`), so a job that fails
before it samples anything (a bad argument, a missing package) leaves the finished parts of the last one alone, and
creates nothing. A part whose header does not match is sampled again. The job removes the directory
(:meth:`PartStore.remove`) once its output is written.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paced.fingerprint import canonical_digest
from paced.io import atomic_write_text, read_json, write_json

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def parts_dir(out_path: str | Path) -> Path:
    """Where the parts of the job writing ``out_path`` live: ``<out_path>.parts``."""
    return Path(f"{out_path}.parts")


def _plain(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, other values their ``str``)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def differing_keys(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON-like mappings (``path`` itself when they are not both
    mappings and differ)."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return [] if old == new else [path or "(the whole identity)"]
    out: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        name = f"{path}.{key}" if path else str(key)
        out += differing_keys(old[key], new[key], name) if key in old and key in new else [name]
    return out


@dataclass
class PartStore:
    """The parts directory of one job (see the module docstring); build it with :meth:`open`. ``identity``: the
    job's (written to the manifest when it claims the directory); ``replaces``: why the parts there now are
    another job's (discarded on :meth:`claim`), or None."""

    root: Path
    digest: str
    identity: Any = None
    replaces: str | None = None

    @classmethod
    def open(cls, out_path: str | Path, identity: Mapping[str, Any]) -> PartStore:
        """The parts directory of ``out_path`` for a job of this ``identity`` (JSON-able): its parts are reused when
        its manifest carries the same digest; otherwise they stay until :meth:`claim` (nothing is written here)."""
        root, plain = parts_dir(out_path), _plain(dict(identity))
        digest = canonical_digest(plain)
        why = _mismatch(root / MANIFEST, plain, digest) if root.exists() else None
        return cls(root, digest, plain, why)

    def claim(self) -> None:
        """Make the directory this job's: discard another job's parts (logged with the reason) and write the
        manifest. Called before the first part is saved (and before replica processes start)."""
        if self.replaces is not None and self.root.exists():
            n = len(list(self.root.glob("part-*.jsonl")))
            log.warning("discarding %d finished part(s) in %s: %s", n, self.root, self.replaces)
            shutil.rmtree(self.root)
        self.replaces = None
        if not (self.root / MANIFEST).is_file():
            write_json(self.root / MANIFEST, {"digest": self.digest, "identity": self.identity})

    def path(self, index: int) -> Path:
        return self.root / f"part-{index:05d}.jsonl"

    def _header(self, index: int, ids: Sequence[str]) -> dict[str, Any]:
        return {"digest": self.digest, "part": index, "ids": canonical_digest(list(ids))}

    def load(self, index: int, ids: Sequence[str]) -> list[dict[str, Any]] | None:
        """Part ``index``'s records (one per id of ``ids``, in order), or ``None`` when it is absent or was made
        for another job or other problems (then it is sampled again)."""
        path = self.path(index)
        if self.replaces is not None or not path.is_file():  # another job's parts are never reused
            return None
        try:
            header, *records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        except (ValueError, UnicodeDecodeError) as err:
            log.warning("%s is unreadable (%s); sampling that part again", path, err)
            return None
        if (header != self._header(index, ids) or not all(isinstance(r, dict) for r in records)
                or [r.get("id") for r in records] != list(ids)):
            log.warning("%s belongs to another job or other problems; sampling that part again", path)
            return None
        return records

    def save(self, index: int, ids: Sequence[str], records: Sequence[Mapping[str, Any]]) -> None:
        """Write part ``index`` atomically: its header, then ``records`` (one per id, in order)."""
        if [r.get("id") for r in records] != list(ids):
            raise ValueError(f"part {index}: the records' ids are not the part's problem ids, in order")
        self.claim()
        lines = [self._header(index, ids), *map(dict, records)]
        atomic_write_text(self.path(index), "".join(json.dumps(x, sort_keys=True, allow_nan=False) + "\n"
                                                    for x in lines))

    def remove(self) -> None:
        """Delete the parts directory (the job's output is written)."""
        shutil.rmtree(self.root, ignore_errors=True)


def _mismatch(manifest: Path, identity: Any, digest: str) -> str | None:
    """Why the parts under ``manifest`` cannot be reused by a job of ``identity``; ``None`` when they can."""
    try:
        old = read_json(manifest)
    except (OSError, ValueError) as err:
        return f"its manifest is missing or unreadable ({type(err).__name__})"
    if not isinstance(old, Mapping):
        return "its manifest is not a JSON object"
    if old.get("digest") == digest:
        return None
    keys = differing_keys(old.get("identity"), identity)
    return "made by a job with other " + (", ".join(keys[:6]) + (" ..." if len(keys) > 6 else "") if keys
                                          else "inputs")
