"""Checkpoints: model + tokenizer (``save_pretrained``) + ``trainer_state.pt``, written atomically.

A checkpoint is built in a hidden temporary directory beside its target and renamed onto
``checkpoints/step<N>`` only when complete, so a directory named ``step<N>`` is always whole.
``trainer_state.pt`` holds the optimizer, scheduler and RNG states (python, numpy, torch, CUDA),
the step, the pass-rate state and the data-order position.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step(\d+)$")


def checkpoint_dir(out_dir: str | os.PathLike[str], step: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"step{step}"


def rng_state() -> dict[str, Any]:
    """Every RNG stream as tensors and plain Python values, so the state loads with ``weights_only=True``."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {"python": random.getstate(),
                             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                                       float(gauss)),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out_dir: str | os.PathLike[str], step: int, *, model: Any, tokenizer: Any,
                    state: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``checkpoints/step<step>`` atomically; returns its path. ``state_dict`` overrides the
    model's own (accelerate's ``get_state_dict`` gathers sharded FSDP/DeepSpeed weights)."""
    final = checkpoint_dir(out_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".step{step}.", suffix=".tmp", dir=final.parent))
    try:
        model.save_pretrained(str(tmp), state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        torch.save(state, tmp / STATE_FILE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("checkpoint written: %s", final)
    return final


def latest_checkpoint(out_dir: str | os.PathLike[str]) -> Path | None:
    """The complete checkpoint with the highest step, or ``None``."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_DIR.match(p.name)) and (p / STATE_FILE).is_file()]
    return max(found)[1] if found else None


def remove_partial_checkpoints(out_dir: str | os.PathLike[str]) -> int:
    """Delete the hidden ``.step<N>.*.tmp`` directories a killed save left behind; returns how many."""
    root = Path(out_dir) / "checkpoints"
    partial = [p for p in root.glob(".step*.tmp") if p.is_dir()] if root.is_dir() else []
    for p in partial:
        log.warning("removing a partial checkpoint left by a killed run: %s", p)
        shutil.rmtree(p, ignore_errors=True)
    return len(partial)


def load_state(ckpt: str | os.PathLike[str]) -> dict[str, Any]:
    """The trainer state of a checkpoint, loaded with ``weights_only=True`` (no pickled code runs)."""
    path = Path(ckpt) / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path}: not a trainer state this version of paced can load safely (written by an "
                         f"older version, or not by paced); resume from a fresh run ({err})") from None
