"""Shared argument validation: every check raises a ``ValueError`` naming the argument and its value."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np


def is_tensor(x: Any) -> bool:
    # a tensor exists only once torch is imported; not importing it here keeps torch (seconds) out of the
    # jobs that only read results (reports), which reach these checks through the method specs
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy64(x: Any, name: str) -> np.ndarray:
    """Any array-like (list, numpy, torch) -> float64 numpy array (a copy for tensors)."""
    if is_tensor(x):
        return x.detach().double().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like, got {type(x).__name__}: {x!r}") from exc


def check_finite_scalar(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                        low_open: bool = False) -> float:
    """Return ``float(value)``; raise if it is not a finite number in the allowed range."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    bad = not math.isfinite(v)
    if low is not None:
        bad = bad or (v <= low if low_open else v < low)
    if high is not None:
        bad = bad or v > high
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        bracket = "(" if low_open or low is None else "["
        close = ")" if high is None else "]"
        raise ValueError(f"{name}={value!r} is out of range; allowed: {bracket}{lo}, {hi}{close}")
    return v


def check_positive_int(name: str, value: Any) -> int:
    """Return ``int(value)``; raise unless it is an integer ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def first_offending(values: np.ndarray, bad: np.ndarray) -> Any:
    """The first element of ``values`` where ``bad`` holds (for error messages)."""
    return values[bad].reshape(-1)[0].item()


def check_unit_interval(name: str, x: Any) -> None:
    """Raise if any element of ``x`` (numpy or torch) is outside [0, 1] or NaN."""
    if is_tensor(x):
        bad = ~((x >= 0) & (x <= 1))
        if bool(bad.any()):
            raise ValueError(f"{name} must lie in [0, 1]; got {x[bad].reshape(-1)[0].item()!r}")
        return
    arr = np.asarray(x, dtype=np.float64)
    bad = ~((arr >= 0) & (arr <= 1))
    if bad.any():
        raise ValueError(f"{name} must lie in [0, 1]; got {first_offending(arr, bad)!r}")


def check_unknown_params(where: str, given: dict[str, Any], allowed: set[str]) -> None:
    """Raise naming unexpected keyword parameters and the allowed ones."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for {where}; "
                         f"allowed: {', '.join(sorted(allowed)) or '(none)'}")
