"""Weight normalisation, one registry for both of its uses.

A normalisation name (``sum``, ``mean_one``, ``none``) says how a micro-batch's raw weights w [B]
enter the loss. Each entry carries
- ``weights(w)``: the normalised weights (numpy or torch, same type out), for reporting and plots;
- ``reduce(wl, w)``: the scalar loss from wℓ [B] (zero-weight terms already dropped) and w [B].

``sum``:      w / Σw,        loss Σ wᵢ ℓᵢ / Σ wᵢ (the authors' choice)
``mean_one``: w / mean(w),   loss mean_i (wᵢ / mean w) ℓᵢ (equal to ``sum`` within one batch)
``none``:     w,             loss mean_i wᵢ ℓᵢ (raw weights: the loss scale moves with the weights)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paced.registry import Registry


@dataclass(frozen=True)
class Normalisation:
    weights: Callable[[Any], Any]
    reduce: Callable[[Any, Any], Any]
    doc: str = ""


NORMALISATIONS: Registry[Normalisation] = Registry("normalisation")
NORMALISATIONS.add("sum", Normalisation(lambda w: w / w.sum(), lambda wl, w: wl.sum() / w.sum(), "w / Σw"))
NORMALISATIONS.add("mean_one", Normalisation(lambda w: w / w.mean(), lambda wl, w: (wl / w.mean()).mean(),
                                             "w / mean(w)"))
NORMALISATIONS.add("none", Normalisation(lambda w: w, lambda wl, w: wl.mean(), "w"))
