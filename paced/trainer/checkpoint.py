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
                    state: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None,
                    dtype: torch.dtype | None = None, move_in: dict[str, Path] | None = None) -> Path:
    """Write ``checkpoints/step<step>`` atomically; returns its path. ``state_dict`` overrides the
    model's own (e.g. gathered from shards). ``dtype``: write the weights in it, with a matching
    ``config.json`` ``dtype``. ``move_in``: directories (e.g. the sharded optimizer state every rank
    wrote) moved into the checkpoint under the given names before it becomes visible."""
    final = checkpoint_dir(out_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".step{step}.", suffix=".tmp", dir=final.parent))
    try:
        if dtype is not None:
            state_dict = cast_floats(model.state_dict() if state_dict is None else state_dict, dtype)
        model.save_pretrained(str(tmp), state_dict=state_dict, safe_serialization=True)
        if dtype is not None:
            set_config_dtype(tmp, dtype)
        tokenizer.save_pretrained(str(tmp))
        torch.save(state, tmp / STATE_FILE)
        for name, src in (move_in or {}).items():
            os.replace(src, tmp / name)
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
    found = _checkpoint_steps(out_dir)
    return found[0][1] if found else None


def _checkpoint_steps(out_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(step, path)`` of every complete checkpoint (its trainer state written), newest first."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(((int(m.group(1)), p) for p in root.iterdir()
                   if (m := _STEP_DIR.match(p.name)) and (p / STATE_FILE).is_file()), reverse=True)


def verify_checkpoint(ckpt: str | os.PathLike[str]) -> dict[str, Any]:
    """The trainer state of ``ckpt`` after checking that its files load: the state (safely), ``config.json``
    and every ``*.safetensors`` header. Raises ``ValueError`` naming the file that does not."""
    from safetensors import safe_open

    ckpt = Path(ckpt)
    state = load_state(ckpt)
    if not (ckpt / "config.json").is_file():
        raise ValueError(f"{ckpt}: config.json is missing")
    weights = sorted(ckpt.glob("*.safetensors"))
    if not weights:
        raise ValueError(f"{ckpt}: no *.safetensors weights")
    for f in weights:
        try:
            with safe_open(str(f), framework="pt") as handle:
                list(handle.keys())
        except Exception as err:  # a truncated or corrupt file: any error means "do not resume from it"
            raise ValueError(f"{f}: unreadable weights ({type(err).__name__}: {err})") from None
    return state


def resumable_checkpoint(out_dir: str | os.PathLike[str], identity: dict[str, Any]) -> tuple[Path | None, str]:
    """The newest checkpoint of ``out_dir`` whose run identity (:mod:`paced.trainer.identity`) has the
    digest of ``identity`` and whose files load.

    Returns ``(path, "")``, or ``(None, why)`` when there is none: ``why`` names the changed identity
    (then no older checkpoint can match either) or the unreadable checkpoints that were skipped.
    """
    skipped = []
    for step, path in _checkpoint_steps(out_dir):
        try:
            state = verify_checkpoint(path)
        except (ValueError, OSError, RuntimeError, EOFError) as err:
            log.warning("checkpoint %s does not load (%s); trying the previous one", path, err)
            skipped.append(f"step{step}")
            continue
        old = state.get("identity") or {}
        if old.get("digest") != identity["digest"]:
            from paced.trainer.identity import identity_diff

            return None, (f"{path} was trained under another run identity; changed: "
                          f"{', '.join(identity_diff(old, identity))}")
        return path, ""
    return None, f"unreadable checkpoints skipped: {', '.join(skipped)}" if skipped else "no checkpoint"


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


def cast_floats(state_dict: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Floating-point tensors cast to ``dtype`` (integer buffers unchanged)."""
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}


def set_config_dtype(model_dir: str | os.PathLike[str], dtype: torch.dtype) -> None:
    """Make ``config.json``'s ``dtype`` say what the weights hold (``save_pretrained`` writes the
    live parameters' dtype, fp32 for fp32 master weights saved in bf16)."""
    import json

    path = Path(model_dir) / "config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["dtype"] = str(dtype).removeprefix("torch.")
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


SHARDED_DIR = "sharded"  # inside a checkpoint: torch.distributed.checkpoint files, one per rank + metadata


def sharded_staging_dir(out_dir: str | os.PathLike[str], step: int) -> Path:
    """Where every rank writes its shard before rank 0 moves it into the checkpoint (a ``.step*.tmp``
    name, so :func:`remove_partial_checkpoints` clears what a killed save left)."""
    return Path(out_dir) / "checkpoints" / f".step{step}.sharded.tmp"


def save_sharded_state(path: str | os.PathLike[str], model: torch.nn.Module, optimizer: Any) -> None:
    """Every rank writes its shard of the (master) weights and optimizer state with
    ``torch.distributed.checkpoint`` (a collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
    dcp.save(state, checkpoint_id=str(path))


def load_sharded_state(path: str | os.PathLike[str], model: torch.nn.Module, optimizer: Any) -> None:
    """Every rank reads its shard back into the sharded ``model`` and ``optimizer`` (a collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
    dcp.load(state, checkpoint_id=str(path))
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optimizer"])


def load_training_state(ckpt: str | os.PathLike[str], saved: dict[str, Any], model: torch.nn.Module,
                        optimizer: Any) -> None:
    """The optimizer state (and master weights, when they differ from the saved weights) of ``ckpt``.

    Sharded runs read their own shard from ``<ckpt>/sharded``; unsharded ones load ``saved["optimizer"]``
    and, when the checkpoint's weights were cast (fp32 master, bf16 files), ``saved["master_weights"]``.
    """
    sharded = Path(ckpt) / SHARDED_DIR
    if saved.get("optimizer") is None:
        if not sharded.is_dir():
            raise ValueError(f"cannot resume from {ckpt}: it holds no optimizer state ({SHARDED_DIR}/ is missing)")
        load_sharded_state(sharded, model, optimizer)
        return
    if sharded.is_dir():
        raise ValueError(f"cannot resume from {ckpt} without sharding: it was written by a sharded run "
                         "(set sharding: fsdp and launch with torchrun)")
    if "master_weights" in saved:
        getattr(model, "module", model).load_state_dict(saved["master_weights"])  # DDP: the wrapped model
    optimizer.load_state_dict(saved["optimizer"])
