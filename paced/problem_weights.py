"""Per-problem training weights from a weight source: unweighted, a kernel of p̂, or an oracle by tier label.

``WEIGHT_SOURCES`` is the registry a :class:`paced.methods.MethodSpec`'s ``weight_source`` names; each
source maps a batch of problems, the pass-rate state and the run's :class:`~paced.kernels.Kernel` (built
once per run) to raw, unnormalised weights [B].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from paced.kernels import Kernel
from paced.passrate.state import PassRateState
from paced.registry import Registry
from paced.tasks.base import Doc

WeightFn = Callable[[Sequence[Doc], PassRateState, Kernel, tuple[str, ...]], np.ndarray]
WEIGHT_SOURCES: Registry[WeightFn] = Registry("weight source")


@WEIGHT_SOURCES.register("none")
def _weights_none(docs: Sequence[Doc], state: PassRateState, kernel: Kernel,
                  zero_tiers: tuple[str, ...]) -> np.ndarray:
    """w ≡ 1 (unweighted distillation)."""
    return np.ones(len(docs), dtype=np.float64)


@WEIGHT_SOURCES.register("pass_rate")
def _weights_pass_rate(docs: Sequence[Doc], state: PassRateState, kernel: Kernel,
                       zero_tiers: tuple[str, ...]) -> np.ndarray:
    """w = kernel(p̂)."""
    return np.asarray(kernel(state.p_hat([d.id for d in docs])), dtype=np.float64)


@WEIGHT_SOURCES.register("oracle_tier")
def _weights_oracle(docs: Sequence[Doc], state: PassRateState, kernel: Kernel,
                    zero_tiers: tuple[str, ...]) -> np.ndarray:
    """w = 0 on problems whose tier label is in ``zero_tiers`` (the intractable tier), else 1."""
    missing = [d.id for d in docs if d.tier is None]
    if missing:
        raise ValueError(f"weight_source='oracle_tier' needs a 'tier' label on every problem; "
                         f"problem(s) {missing[:5]} have none")
    return np.array([0.0 if d.tier in zero_tiers else 1.0 for d in docs], dtype=np.float64)


def problem_weights(source: str, docs: Sequence[Doc], state: PassRateState, kernel: Kernel,
                    zero_tiers: tuple[str, ...] = ("intractable",)) -> np.ndarray:
    """Raw (unnormalised) weights [len(docs)] from the named weight source."""
    return WEIGHT_SOURCES.get(source)(docs, state, kernel, zero_tiers)


def tier_weight_share(docs: Sequence[Doc], weights: np.ndarray) -> dict[str, float]:
    """Share of the batch's total weight that falls on each tier (empty if no tiers or all zero)."""
    total = float(weights.sum())
    if total <= 0:
        return {}
    out: dict[str, float] = {}
    for d, w in zip(docs, weights, strict=True):
        if d.tier is not None:
            out[str(d.tier)] = out.get(str(d.tier), 0.0) + float(w) / total
    return out
