"""The vLLM sampler backend (registered as ``"vllm"``); vLLM is imported only when one is built.

``SamplingParams(n=K)`` draws the K samples of a prompt in one request. The seed is given to the
engine once (``LLM(seed=...)``) and never per request: a per-request seed repeated across
requests (as lm-eval does for repeats) makes identical samples, so ``params.seed`` is not used
per call. Runs are reproducible for the same engine seed and call order.
vLLM samples a model *path* (a fixed checkpoint), so it serves the pass-rate and reference stages and
evaluation, not the on-policy samples of an in-training student (use ``hf`` there).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from paced.rollouts.base import SAMPLERS, Rollout, Sampler, SamplingParams

log = logging.getLogger(__name__)

INSTALL_HINT = "the 'vllm' sampler needs vLLM, which is not installed: pip install 'paced[vllm]'"


def import_vllm() -> Any:
    """``import vllm`` or an ``ImportError`` that says how to install the extra."""
    try:
        import vllm
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return vllm


@SAMPLERS.register("vllm")
class VLLMSampler(Sampler):
    """Samples a checkpoint with ``vllm.LLM``. ``model``: a path or hub name (not a model object)."""

    def __init__(self, model: Any, tokenizer: Any = None, *, seed: int = 0, dtype: str = "auto",
                 gpu_memory_utilization: float = 0.9, enforce_eager: bool = False,
                 max_model_len: int | None = None, **llm_kwargs: Any) -> None:
        if not isinstance(model, str):
            raise TypeError(f"VLLMSampler takes a checkpoint path or hub name, got {type(model).__name__}; "
                            "sample an in-memory model with the 'hf' backend")
        vllm = import_vllm()
        self._vllm = vllm
        kwargs: dict[str, Any] = dict(model=model, seed=seed, dtype=dtype, enforce_eager=enforce_eager,
                                      gpu_memory_utilization=gpu_memory_utilization, **llm_kwargs)
        if isinstance(tokenizer, str):
            kwargs["tokenizer"] = tokenizer
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**kwargs)
        self.eos_id = getattr(self.llm.get_tokenizer(), "eos_token_id", None)

    def _ids(self, token_ids: Sequence[int]) -> tuple[int, ...]:
        ids = [int(t) for t in token_ids]
        if ids and self.eos_id is not None and ids[-1] == self.eos_id:
            ids = ids[:-1]  # Rollout ids exclude EOS, as the hf backend's do
        return tuple(ids)

    def to_vllm_params(self, params: SamplingParams) -> Any:
        """Our params as ``vllm.SamplingParams`` (no per-request seed; see the module docstring)."""
        return self._vllm.SamplingParams(n=params.n, max_tokens=params.max_new_tokens,
                                         temperature=params.temperature, top_p=params.top_p)

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Rollout]]:
        if isinstance(prompts, str):
            raise TypeError("VLLMSampler.generate takes a sequence of prompts, not one string")
        outputs = self.llm.generate(list(prompts), self.to_vllm_params(params), use_tqdm=False)
        result = []
        for out in outputs:  # vLLM returns outputs in prompt order
            result.append([Rollout(text=c.text, token_ids=self._ids(c.token_ids))
                           for c in out.outputs][:params.n])
        if len(result) != len(prompts):
            raise RuntimeError(f"vLLM returned {len(result)} outputs for {len(prompts)} prompts")
        return result
