"""How to evaluate a model: one frozen, validated config shared by every backend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_DTYPES = ("float32", "float16", "bfloat16", "auto")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation knobs.

    ``k`` samples per generation problem give avg@k (mean correctness over the k samples) and
    pass@k (any of the k correct); ``temperature == 0`` is greedy. Multiple-choice tasks ignore
    ``k``/``temperature`` and report log-likelihood accuracy (``mc_acc``) plus, when ``em`` is set,
    greedy exact match of a generated answer. ``model_args`` are passed through to the lm-eval
    backend as they are. ``vllm`` holds the vLLM engine arguments (the config's ``vllm:`` section, see
    :class:`paced.rollouts.VLLMConfig`), used by the ``vllm`` backend. ``batch_size`` may be ``"auto"``:
    lm-eval's vLLM model then hands every request to the engine at once (a number makes it wait for the
    longest sample of each chunk), and its HF model searches for the largest batch that fits.
    ``overlong``: what to do with a problem whose prompt + ``max_new_tokens`` exceeds the model's context
    (``refuse``: stop naming the file, row and id; ``skip``: leave it out, with a count in the log).
    """

    k: int = 8
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    backend: str = "hf"
    batch_size: int | str = 32
    device: str = "cpu"
    dtype: str = "float32"  # lm-eval's HF default would be the checkpoint dtype; fp32 on CPU
    limit: int | None = None
    em: bool = True
    model_args: Mapping[str, Any] = field(default_factory=dict)
    vllm: Mapping[str, Any] = field(default_factory=dict)
    overlong: str = "refuse"

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, bool, str], ...] = (
            ("k", isinstance(self.k, int) and self.k >= 1, "an int >= 1"),
            ("max_new_tokens", isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1,
             "an int >= 1"),
            ("temperature", self.temperature >= 0, ">= 0 (0 means greedy)"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("seed", isinstance(self.seed, int) and self.seed >= 0, "an int >= 0"),
            ("batch_size", self.batch_size == "auto" or (isinstance(self.batch_size, int)
                                                         and self.batch_size >= 1), "an int >= 1 or 'auto'"),
            ("dtype", self.dtype in _DTYPES, f"one of {_DTYPES}"),
            ("overlong", self.overlong in ("refuse", "skip"), "'refuse' or 'skip'"),
            ("limit", self.limit is None or (isinstance(self.limit, int) and self.limit >= 1),
             "None or an int >= 1"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"EvalConfig.{name} must be {allowed}, got {getattr(self, name)!r}")
        from paced.evaluation.backends import BACKENDS
        from paced.rollouts.vllm_config import VLLMConfig

        VLLMConfig.from_mapping(dict(self.vllm))  # a bad engine argument fails here, naming the key

        if self.backend not in BACKENDS:
            raise ValueError(f"EvalConfig.backend: {BACKENDS.unknown_message(self.backend)}")
