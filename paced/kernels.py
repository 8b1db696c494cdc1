"""Pass-rate weight kernels w(p), a floor, and batch normalisation of weights.

PACED weights problem x by a Beta kernel of the student's pass rate p = p(x):

    w(p) = p^α (1 − p)^β,    mode α/(α+β),    w(0) = w(1) = 0 for α, β > 0 ("hard zero").

Every function here accepts numpy arrays and torch tensors (and returns the same type);
python scalars give a python float.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from paced._checks import check_finite_scalar, check_unit_interval, check_unknown_params, is_tensor
from paced._lazy import LazyModule
from paced.normalisation import NORMALISATIONS
from paced.registry import Registry

if TYPE_CHECKING:
    import torch
else:  # imported when a tensor arrives: the method specs that report jobs read name kernels only
    torch = LazyModule("torch", globals())

ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor", float)


def _as_array(p: Any) -> tuple[Any, bool]:
    """(array or tensor, was_scalar). Lists/scalars become float64 numpy arrays."""
    if is_tensor(p):
        return p, False
    arr = np.asarray(p, dtype=np.float64)
    return arr, arr.ndim == 0 and not isinstance(p, np.ndarray)


def _out(w: Any, was_scalar: bool) -> Any:
    if was_scalar:
        return float(w)
    return w if is_tensor(w) else np.asarray(w)


def beta_kernel(p: ArrayT, alpha: float = 1.0, beta: float = 1.0) -> ArrayT:
    """Beta kernel w(p) = p^α (1 − p)^β, elementwise.

    ``p``: any shape, values in [0, 1]; returns the same shape and type. Uses 0^0 = 1, so α = 0
    gives (1 − p)^β (w(0) = 1) and β = 0 gives p^α. α = β = 1 is the paper's default p(1 − p),
    maximal (0.25) at p = 0.5. Raises ``ValueError`` for p outside [0, 1] or negative α, β.
    """
    alpha = check_finite_scalar("alpha", alpha, low=0.0)
    beta = check_finite_scalar("beta", beta, low=0.0)
    check_unit_interval("p", p)
    arr, scalar = _as_array(p)
    if is_tensor(arr):
        arr = arr if arr.is_floating_point() else arr.to(torch.get_default_dtype())
        return torch.pow(arr, alpha) * torch.pow(1.0 - arr, beta)  # torch.pow(0, 0) == 1
    return _out(np.power(arr, alpha) * np.power(1.0 - arr, beta), scalar)  # np.power(0., 0.) == 1


def kernel_mode(alpha: float, beta: float) -> float:
    """Mode of the Beta kernel on [0, 1]: α / (α + β) (for α + β > 0)."""
    alpha = check_finite_scalar("alpha", alpha, low=0.0)
    beta = check_finite_scalar("beta", beta, low=0.0)
    if alpha + beta == 0:
        raise ValueError("alpha + beta must be > 0 for the kernel to have a mode; got alpha=0, beta=0")
    return alpha / (alpha + beta)


def _uniform(p: Any) -> Any:
    """w(p) = 1 (plain, unweighted distillation)."""
    return torch.ones_like(p, dtype=torch.get_default_dtype()) if is_tensor(p) else np.ones_like(p)


def _hard_filter(p: Any) -> Any:
    """w(p) = 1 if 0 < p < 1 else 0 (keep only problems the student sometimes solves)."""
    keep = (p > 0) & (p < 1)
    return keep.to(torch.get_default_dtype()) if is_tensor(p) else keep.astype(np.float64)


def _inverse(p: Any) -> Any:
    """w(p) = 1 − p (hard problems first)."""
    return 1.0 - p


def _learnability(p: Any) -> Any:
    """w(p) = p (1 − p), the Beta kernel with α = β = 1."""
    return beta_kernel(p, 1.0, 1.0)


@dataclass(frozen=True)
class KernelSpec:
    """A registered kernel family: ``fn(p, **params)`` and its parameters' defaults."""

    fn: Callable[..., Any]
    defaults: dict[str, float] = field(default_factory=dict)
    doc: str = ""


KERNELS: Registry[KernelSpec] = Registry("kernel")
KERNELS.add("beta", KernelSpec(beta_kernel, {"alpha": 1.0, "beta": 1.0}, "p^alpha (1-p)^beta"))
KERNELS.add("uniform", KernelSpec(_uniform, {}, "1"))
KERNELS.add("hard_filter", KernelSpec(_hard_filter, {}, "1 if 0<p<1 else 0"))
KERNELS.add("inverse", KernelSpec(_inverse, {}, "1-p"))
KERNELS.add("learnability", KernelSpec(_learnability, {}, "p(1-p)"))


@dataclass(frozen=True)
class Kernel:
    """A configured kernel p -> w: ``max(fn(p; params), floor)``.

    The floor ε applies everywhere, hard zeros included: that is its purpose (a problem with
    p̂ ∈ {0, 1} still gets weight ε instead of being dropped). ``floor = 0`` disables it.
    """

    name: str
    params: tuple[tuple[str, float], ...] = ()
    floor: float = 0.0

    def __post_init__(self) -> None:
        spec = KERNELS.get(self.name)
        check_unknown_params(f"kernel {self.name!r}", dict(self.params), set(spec.defaults) | {"floor"})
        check_finite_scalar("floor", self.floor, low=0.0, high=1.0)
        if self.name == "beta":
            for key, value in self.params:
                check_finite_scalar(key, value, low=0.0)

    def __call__(self, p: ArrayT) -> ArrayT:
        """w(p) for ``p`` of any shape in [0, 1]; same shape and type as ``p``."""
        check_unit_interval("p", p)
        arr, scalar = _as_array(p)
        w = KERNELS.get(self.name).fn(arr, **dict(self.params))
        if self.floor > 0:
            w = torch.clamp(w, min=self.floor) if is_tensor(w) else np.maximum(w, self.floor)
        return _out(w, scalar)


def get_kernel(name: str, **params: float) -> Kernel:
    """A kernel by name, e.g. ``get_kernel("beta", alpha=2, beta=1, floor=0.02)``.

    Names: ``beta`` (alpha, beta), ``uniform``, ``hard_filter``, ``inverse``, ``learnability``; every
    kernel takes ``floor`` ε ∈ [0, 1] (w = max(w, ε), applied to hard zeros too). Unknown names or
    parameters raise ``ValueError`` listing what is available.
    """
    spec = KERNELS.get(name)
    floor = params.pop("floor", 0.0)
    check_unknown_params(f"kernel {name!r}", params, set(spec.defaults) | {"floor"})
    merged = {**spec.defaults, **params}
    return Kernel(name, tuple(sorted(merged.items())), floor)


def normalize_weights(w: ArrayT, normalisation: str = "sum") -> ArrayT:
    """Normalise a batch of weights ``w`` [B] (numpy or torch; same type out).

    ``sum``: w / Σw; ``mean_one``: w / mean(w); ``none``: w. A batch whose weights are all zero
    is returned as zeros (never NaN). Negative weights raise ``ValueError``.
    """
    fn = NORMALISATIONS.get(normalisation).weights
    arr, scalar = _as_array(w)
    if is_tensor(arr):
        if not arr.is_floating_point():
            arr = arr.to(torch.get_default_dtype())
        if bool((arr < 0).any()) or bool(torch.isnan(arr).any()):
            raise ValueError(f"weights must be >= 0; got {arr[~(arr >= 0)].reshape(-1)[0].item()!r}")
        return torch.zeros_like(arr) if not bool((arr != 0).any()) else fn(arr)
    if (~(arr >= 0)).any():
        raise ValueError(f"weights must be >= 0; got {arr[~(arr >= 0)].reshape(-1)[0].item()!r}")
    return _out(np.zeros_like(arr) if not (arr != 0).any() else fn(arr), scalar)
