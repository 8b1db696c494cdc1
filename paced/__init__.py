"""paced: pass-rate weighted LLM distillation (PACED, arXiv 2603.11178) as a library.

The top level exports only the pure math (kernels, pass rates, divergences, weighting, SNR);
models, tasks, samplers and the trainer live in subpackages and are imported explicitly.
"""

from paced.divergences import DIVERGENCES, adaptive_kl, forward_kl, get_divergence, jsd, reverse_kl
from paced.kernels import KERNELS, beta_kernel, get_kernel, kernel_mode, normalize_weights
from paced.passrate import avg_at_k, estimate_pass_rate, pass_at_k
from paced.snr import binned_gradient_snr, cosine_alignment, gradient_snr
from paced.weighting import weighted_loss

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
    "weighted_loss",
]
