"""A distillation run's identity: the fingerprint of everything that determines its weights.

The fingerprint covers the resolved training config (:class:`DistillConfig`, less the fields that
cannot change the weights), the resolved method spec, and the content of every input file: pass
rates, references, teacher cache, student and teacher. It is stored in each checkpoint's trainer
state and in ``run.json``; a run resumes only from a checkpoint with the same digest (see
:func:`paced.trainer.checkpoint.resumable_checkpoint`).
"""

from __future__ import annotations

from typing import Any

from paced.fingerprint import canonical_digest, path_digest
from paced.methods import MethodSpec
from paced.trainer.config import DistillConfig
from paced.vllm_keys import TRAINING_IDENTITY_KEYS

# Fields that say where to write, how to show progress, or how a step is split into micro-batches and recomputed
# (the same sums in another order, equal up to float rounding): never what is learned. So a run killed for memory
# resumes with a smaller micro-batch or with gradient checkpointing on.
NOT_IDENTITY = ("out_dir", "progress", "teacher_cache_max_gb", "micro_batch_size", "micro_batch_tokens",
                "gradient_checkpointing")
INPUT_FILES = ("student", "teacher", "data", "references", "passrates", "teacher_cache_path")


def run_identity(config: DistillConfig, method: MethodSpec, processes: int = 1) -> dict[str, Any]:
    """``{"config", "method", "inputs", "digest"}``: the run's identity and its digest. ``processes`` (the world
    size) is part of it: each rank samples with its own seed, so another process count is another run."""
    cfg = {**{k: v for k, v in config.to_dict().items() if k not in NOT_IDENTITY}, "processes": int(processes)}
    if cfg.get("vllm") is None:
        cfg.pop("vllm", None)  # no in-training engine: the key stays out, as before there was one
    else:  # of the in-training engine only its dtype: its memory share, context size and executor say how it runs
        cfg["vllm"] = {k: v for k, v in cfg["vllm"].items() if k in TRAINING_IDENTITY_KEYS}
    inputs = {k: path_digest(getattr(config, k)) for k in INPUT_FILES}
    body = {"config": cfg, "method": method.to_dict(), "inputs": inputs}
    return {**body, "digest": canonical_digest(body)}


def identity_diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two identities (``["(none recorded)"]`` if ``old`` is missing)."""
    if not old:
        return ["(none recorded)"]
    out = []
    for section in ("config", "method", "inputs"):
        a, b = old.get(section) or {}, new.get(section) or {}
        out += [f"{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return out or ["digest"]
