"""Rows for the real tasks, from a hub data set or a local file, through the ``datasets`` library.

A local path (``.jsonl``/``.json``/``.parquet``/``.csv`` file, or a ``save_to_disk`` directory) is
loaded with the matching ``datasets`` builder, so local fixtures take the same path as hub data.
A hub name is loaded with ``datasets.load_dataset``; when the hub is unreachable (no network, or
``HF_HUB_OFFLINE=1``) only the local HF cache is tried, and a miss fails at once with a
:class:`~paced.tasks.base.DataError` naming the data set and how to provide it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from paced.tasks.base import DataError

log = logging.getLogger(__name__)

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_TRUE = {"1", "true", "yes", "on"}


def is_local(source: str | os.PathLike[str]) -> bool:
    """A source is local if it exists on disk or is written like a path (``./x``, ``/x``, ``x.jsonl``)."""
    s = str(source)
    return Path(s).exists() or s.startswith((".", "/", "~")) or Path(s).suffix in _BUILDERS


def hub_offline() -> bool:
    """True if offline mode is set, or the hub endpoint does not answer a TCP connect within 3 s."""
    if any(os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=3):
            return False
    except OSError:
        return True


@contextmanager
def _forced_offline() -> Iterator[None]:
    """Make ``datasets``/``huggingface_hub`` read only the local cache (their flags are read at import,
    so setting the environment variable now would be too late)."""
    import datasets.config
    import huggingface_hub.constants as hub_constants

    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _how_to_provide(name: str, config: str | None, split: str) -> str:
    cfg = f", {config!r}" if config else ""
    return (f"Provide it as a local file (pass the path of a .jsonl/.parquet file in the same schema as the "
            f"source), or pre-fill the HF cache on a machine with network access: "
            f"python -c \"import datasets; datasets.load_dataset({name!r}{cfg}, split={split!r})\" "
            f"and copy ~/.cache/huggingface over (then HF_HUB_OFFLINE=1 is fine)")


def load_local(path: str | os.PathLike[str], split: str = "train") -> list[dict[str, Any]]:
    """Rows of a local data file or ``save_to_disk`` directory."""
    import datasets

    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data file {str(p)!r} does not exist")
    if p.is_file() and p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty (it holds no rows)")
    try:
        if p.is_dir():
            ds: Any = datasets.load_from_disk(str(p))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
        elif p.suffix in _BUILDERS:
            ds = datasets.load_dataset(_BUILDERS[p.suffix], data_files=str(p), split="train")
        else:
            raise DataError(f"{p}: unknown data file type {p.suffix!r}; use one of {sorted(_BUILDERS)}")
        return [dict(r) for r in ds]  # inside the try: text columns are decoded lazily
    except DataError:
        raise
    except UnicodeDecodeError as err:
        raise DataError(f"{p}: not valid UTF-8 ({err.reason} at byte {err.start}); re-encode the file as "
                        "UTF-8") from err
    except Exception as err:  # datasets raises many types for a malformed file
        raise DataError(f"{p}: could not be read as a data set ({type(err).__name__}: {err})") from err


def load_rows(source: str | os.PathLike[str], *, split: str, config: str | None = None) -> list[dict[str, Any]]:
    """Rows from a local path, or from hub data set ``source`` (``config``, ``split``)."""
    if is_local(source):
        return load_local(source, split)
    import datasets

    name = str(source)
    offline = hub_offline()
    try:
        if offline:
            with _forced_offline():
                ds = datasets.load_dataset(name, config, split=split)
        else:
            ds = datasets.load_dataset(name, config, split=split)
    except Exception as err:  # ConnectionError, DatasetNotFoundError, FileNotFoundError, ValueError ...
        where = "the hub is unreachable and it is not in the local HF cache" if offline else str(err)
        raise DataError(f"could not load data set {name!r} (config={config!r}, split={split!r}): {where}. "
                        + _how_to_provide(name, config, split)) from err
    return [dict(r) for r in ds]
