"""Pass rates, in one home: estimators (pure math), the per-problem state, the file format, the estimate
stage (rollouts + verifier) and the refresh policies (when p̂ is re-estimated during training).

The package top level exports the pure math only; import the submodules for the rest
(``paced.passrate.state``, ``.files``, ``.estimate``, ``.refresh``).
"""

from paced.passrate.estimators import (
    SMOOTHINGS,
    avg_at_k,
    avg_at_k_std,
    estimate_pass_rate,
    pass_at_k,
    per_sample_accuracy,
)

__all__ = ["SMOOTHINGS", "avg_at_k", "avg_at_k_std", "estimate_pass_rate", "pass_at_k", "per_sample_accuracy"]
