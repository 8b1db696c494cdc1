"""Per-problem pass-rate state: windows of verified outcomes, p̂ from them, and their histogram.

The state keeps, per problem, a window of its last K verified outcomes (0/1); p̂ is
``estimate_pass_rate(sum(window), len(window), smoothing)``. A full refresh replaces every window
with K fresh rollouts; ``online`` refresh pushes each on-policy sample's outcome into its
problem's window (the oldest outcome drops out), so p̂ tracks the current student on the same
grid {0, 1/K, …, 1}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from paced.passrate.estimators import estimate_pass_rate
from paced.tasks.base import Doc


@dataclass
class PassRateState:
    """Windows of verified outcomes per problem id (see the module docstring)."""

    smoothing: str = "none"
    outcomes: dict[str, list[int]] = field(default_factory=dict)

    def set_outcomes(self, outcomes: Mapping[str, Sequence[int]]) -> None:
        for pid, outs in outcomes.items():
            if not outs:
                raise ValueError(f"problem {pid!r}: an empty outcome window")
            self.outcomes[pid] = [int(o) for o in outs]

    def set_counts(self, pid: str, num_correct: int, k: int) -> None:
        """A window with ``num_correct`` successes out of ``k`` (order within it is arbitrary)."""
        if not 0 <= num_correct <= k or k < 1:
            raise ValueError(f"problem {pid!r}: num_correct={num_correct} must lie in [0, k={k}], k >= 1")
        self.outcomes[pid] = [1] * num_correct + [0] * (k - num_correct)

    def push(self, pid: str, correct: bool) -> None:
        """Online update: the newest outcome enters, the oldest leaves."""
        window = self.outcomes[pid]
        window.pop(0)
        window.append(int(correct))

    def has(self, ids: Sequence[str]) -> bool:
        return all(i in self.outcomes for i in ids)

    def counts(self, pid: str) -> tuple[int, int]:
        window = self.outcomes[pid]
        return sum(window), len(window)

    def p_hat(self, ids: Sequence[str]) -> np.ndarray:
        """p̂ for each id, float64 [len(ids)]."""
        missing = [i for i in ids if i not in self.outcomes]
        if missing:
            raise KeyError(f"no pass-rate estimate for problem(s) {missing[:5]}")
        c = np.array([self.counts(i)[0] for i in ids], dtype=np.int64)
        k = np.array([self.counts(i)[1] for i in ids], dtype=np.int64)
        return np.asarray(estimate_pass_rate(c, k, self.smoothing), dtype=np.float64).reshape(-1)

    def state_dict(self) -> dict[str, Any]:
        return {"smoothing": self.smoothing, "outcomes": {k: list(v) for k, v in self.outcomes.items()}}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.smoothing = d["smoothing"]
        self.outcomes = {k: list(v) for k, v in d["outcomes"].items()}


def histogram(state: PassRateState, docs: Sequence[Doc]) -> dict[str, dict[str, int]]:
    """Counts of problems by ``"c/k"`` (correct of K), overall (``all``) and per tier."""
    out: dict[str, dict[str, int]] = {"all": {}}
    for d in docs:
        if d.id not in state.outcomes:
            continue
        c, k = state.counts(d.id)
        key = f"{c}/{k}"
        for group in ("all", *([f"tier:{d.tier}"] if d.tier is not None else [])):
            bucket = out.setdefault(group, {})
            bucket[key] = bucket.get(key, 0) + 1
    return {g: dict(sorted(b.items(), key=lambda kv: tuple(map(int, kv[0].split("/")))))
            for g, b in out.items()}
