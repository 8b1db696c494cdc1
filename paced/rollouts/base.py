"""One sampling interface for pass rates, teacher references, on-policy RKL and evaluation.

Backends (HF ``generate``, vLLM) register in :data:`SAMPLERS`; :func:`get_sampler` builds one by
name. A backend that needs an optional package imports it only when chosen.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paced.registry import Registry


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy (then ``n`` identical samples are pointless).

    The filters apply to the temperature-scaled distribution, in vLLM's order: ``top_k`` keeps the k most
    likely tokens (0 = all), ``top_p`` the smallest set with that much mass (1 = all), ``min_p`` drops tokens
    below ``min_p`` times the top token's probability (0 = none). ``presence_penalty`` subtracts that much
    from the logit of every token already generated (vLLM's semantics; the ``vllm`` backend only).
    Qwen3's model card recommends T 0.6, top_p 0.95, top_k 20 in thinking mode.
    """

    n: int = 1
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    presence_penalty: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, bool, str], ...] = (
            ("n", self.n >= 1, ">= 1"),
            ("max_new_tokens", self.max_new_tokens >= 1, ">= 1"),
            ("temperature", math.isfinite(self.temperature) and self.temperature >= 0,
             "a finite number >= 0 (0 means greedy)"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", isinstance(self.top_k, int) and self.top_k >= 0, "an int >= 0 (0 = no top-k filter)"),
            ("min_p", 0 <= self.min_p < 1, "in [0, 1) (0 = no min-p filter)"),
            ("presence_penalty", -2 <= self.presence_penalty <= 2, "in [-2, 2] (0 = none)"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"SamplingParams.{name} must be {allowed}, got {getattr(self, name)!r}")

    @classmethod
    def from_section(cls, section: Mapping[str, Any], *, n: int, seed: int, **overrides: Any) -> SamplingParams:
        """From a config's ``sampling:`` section (its decoding keys; backend, batch size and the like are
        ignored), with ``n``, ``seed`` and any field in ``overrides`` set explicitly."""
        fields = {f for f in cls.__dataclass_fields__ if f not in ("n", "seed")}
        kwargs = {k: v for k, v in section.items() if k in fields}
        return cls(n=n, seed=seed, **{**kwargs, **overrides})


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

    def part_seed(self, seed: int, start: int) -> int:
        """The seed of a call whose first prompt is the ``start``-th of a job seeded ``seed`` that is sampled in
        several calls (:mod:`paced.rollouts.in_parts`): ``seed + start``, distinct for every call of the job.
        A backend that seeds sub-batches of a call itself overrides this so its calls do not share seeds."""
        return seed + start


SAMPLERS: Registry[type[Sampler]] = Registry("sampler backend")


def get_sampler(name: str, **kwargs: Any) -> Sampler:
    """Build a registered sampler backend (``"hf"``, ``"vllm"``) by name."""
    import paced.rollouts  # noqa: F401  -- registers the built-in backends

    return SAMPLERS.get(name)(**kwargs)
