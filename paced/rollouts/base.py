"""One sampling interface for pass rates, teacher references, on-policy RKL and evaluation.

Backends (HF ``generate``, vLLM) register in :data:`SAMPLERS`; :func:`get_sampler` builds one by
name. A backend that needs an optional package imports it only when chosen.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paced.registry import Registry


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy (then ``n`` identical samples are pointless)."""

    n: int = 1
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class Rollout:
    """One sampled completion: its text and token ids (prompt ids excluded, EOS/padding stripped)."""

    text: str
    token_ids: tuple[int, ...]


class Sampler(ABC):
    """Generates ``params.n`` completions for each prompt."""

    @abstractmethod
    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Rollout]]:
        """Returns ``out[i][j]``: the j-th of ``params.n`` rollouts for ``prompts[i]``."""


SAMPLERS: Registry[type[Sampler]] = Registry("sampler backend")


def get_sampler(name: str, **kwargs: Any) -> Sampler:
    """Build a registered sampler backend (``"hf"``, ``"vllm"``) by name."""
    import paced.rollouts  # noqa: F401  -- registers the built-in backends

    return SAMPLERS.get(name)(**kwargs)
