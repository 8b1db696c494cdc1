"""Model locations: a local directory or a Hugging Face hub id, checked before any work starts.

Nothing here downloads. :func:`check_model_available` only answers "can this be loaded now?" and
raises a ``ValueError`` that names the model and how to provide it when it cannot.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_offline() -> bool:
    """True when the environment forbids hub access (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in
               ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def is_cached(repo_id: str, filename: str = "config.json", repo_type: str = "model") -> bool:
    """Whether ``filename`` of ``repo_id`` is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id, filename, repo_type=repo_type)
    return isinstance(hit, str)


def check_model_available(name: str, *, key: str = "model") -> str:
    """Return ``"local"``, ``"cached"`` or ``"hub"`` for ``name``, or raise a ``ValueError`` naming it.

    A local directory must hold ``config.json``. A hub id is accepted online; offline it must be cached.
    """
    path = Path(name)
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(f"{key}={name!r}: the directory exists but holds no config.json; point it at a "
                             f"save_pretrained() model directory")
        return "local"
    if not _HUB_ID.match(name):
        raise ValueError(f"{key}={name!r}: no such model directory, and it is not a hub id of the form "
                         f"'org/name'; fix the path or build the world first")
    if is_cached(name):
        return "cached"
    if hub_offline():
        raise ValueError(
            f"{key}={name!r} is not in the local Hugging Face cache and the hub is offline (HF_HUB_OFFLINE=1). "
            f"Pre-fetch it on a machine with network (`hf download {name}`, then copy ~/.cache/huggingface "
            f"or set HF_HOME), or set {key} to a local model directory")
    return "hub"


def check_dataset_available(name: str, *, key: str = "data") -> str:
    """``"local"``, ``"cached"`` or ``"hub"`` for a data set path or hub id; offline + uncached: ``ValueError``."""
    if Path(name).exists():
        return "local"
    if not _HUB_ID.match(name):
        raise ValueError(f"{key}={name!r}: no such file, and it is not a hub data set id of the form 'org/name'")
    from huggingface_hub.constants import HF_HUB_CACHE

    if (Path(HF_HUB_CACHE) / f"datasets--{name.replace('/', '--')}").is_dir():
        return "cached"
    if hub_offline():
        raise ValueError(
            f"{key}={name!r}: the data set is not in the local Hugging Face cache and the hub is offline. "
            f"Pre-fetch it on a machine with network (`hf download {name} --repo-type dataset`, then copy the "
            f"cache or set HF_HOME), or set {key} to a local jsonl file in the same schema")
    return "hub"
