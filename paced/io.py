"""Atomic file writes and provenance records.

Every result file in the suite is written through :func:`atomic_write_text` (temp file in
the same directory + ``os.replace``), so a killed job never leaves a half-written result.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

_TRACKED_PACKAGES = ("paced", "torch", "transformers", "accelerate", "lm_eval", "tokenizers",
                     "snakemake", "math-verify", "vllm", "numpy", "pandas")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def job_log() -> Iterator[Any]:
    """The file this process logs to (the root logger's file handler: a workflow job's log), open for appending;
    None when it logs to no file (then the launched processes write to this one's stdout and stderr)."""
    path = next((h.baseFilename for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)), None)
    if path is None:
        yield None
        return
    for h in logging.getLogger().handlers:
        h.flush()
    with open(path, "a", encoding="utf-8") as fh:
        yield fh


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically. NaN/inf are refused (``allow_nan=False``)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows as JSON lines, atomically."""
    text = "".join(json.dumps(dict(r), sort_keys=True, allow_nan=False) + "\n" for r in rows)
    atomic_write_text(path, text)


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    """JSON lines as a list; a malformed line raises ``ValueError`` naming the file and line."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
    return rows


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (absent ones omitted)."""
    out = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_hash(cwd: str | os.PathLike[str] | None = None) -> str:
    """The current git commit (with ``-dirty`` if the tree has changes), or ``unknown``."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def provenance(config: Mapping[str, Any] | None = None, seed: int | None = None) -> dict[str, Any]:
    """The provenance block stored in every result file: config (and its fingerprint, a digest of its canonical
    form), seed, versions, git hash, host."""
    from paced.fingerprint import canonical_digest

    return {
        "config": dict(config) if config is not None else None,
        "fingerprint": canonical_digest(dict(config)) if config is not None else None,
        "seed": seed,
        "versions": package_versions(),
        "git": git_hash(),
        "host": platform.node(),
        "platform": platform.platform(),
    }
