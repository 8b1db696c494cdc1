"""paced: pass-rate weighted LLM distillation (PACED, arXiv 2603.11178) as a library.

The top level exports only the pure math (kernels, pass rates, divergences, weighting, SNR);
models, tasks, samplers and the trainer live in subpackages and are imported explicitly.
"""

from __future__ import annotations

import importlib
from typing import Any

# loaded on first use: importing paced (as every workflow job does, e.g. for paced.report) must not import
# torch, which divergences, weighting and SNR need and a report job does not (seconds per job)
_LAZY = {
    **dict.fromkeys(["DIVERGENCES", "adaptive_kl", "forward_kl", "get_divergence", "jsd", "reverse_kl"],
                    "paced.divergences"),
    **dict.fromkeys(["KERNELS", "beta_kernel", "get_kernel", "kernel_mode", "normalize_weights"], "paced.kernels"),
    **dict.fromkeys(["avg_at_k", "estimate_pass_rate", "pass_at_k"], "paced.passrate"),
    **dict.fromkeys(["binned_gradient_snr", "cosine_alignment", "gradient_snr"], "paced.snr"),
    **dict.fromkeys(["weighted_divergence", "weighted_loss"], "paced.weighting"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'paced' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "DIVERGENCES",
    "KERNELS",
    "__version__",
    "adaptive_kl",
    "avg_at_k",
    "beta_kernel",
    "binned_gradient_snr",
    "cosine_alignment",
    "estimate_pass_rate",
    "forward_kl",
    "get_divergence",
    "get_kernel",
    "gradient_snr",
    "jsd",
    "kernel_mode",
    "normalize_weights",
    "pass_at_k",
    "reverse_kl",
    "weighted_divergence",
    "weighted_loss",
]
