"""The sampler of the in-training student (the p̂ refresh and on-policy samples), one builder per backend.

``hf``: ``generate`` on the student itself (the toy world; see :mod:`paced.rollouts.hf` for its scale settings).
``vllm``: an engine beside the student whose weights are reloaded after each optimizer step, before it next
samples (:mod:`paced.rollouts.live_vllm`; the paper's scale). Adding a backend is one registration here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paced.registry import Registry
from paced.rollouts.base import Sampler
from paced.trainer.config import DistillConfig

# (config, student (unwrapped or sharded), tokenizer, optimizer, longest prompt in tokens) -> sampler
Builder = Callable[[DistillConfig, Any, Any, Any, int], Sampler]
LIVE_SAMPLERS: Registry[Builder] = Registry("in-training sampler")


@LIVE_SAMPLERS.register("hf")
def _hf(config: DistillConfig, student: Any, tokenizer: Any, optimizer: Any, prompt_tokens: int) -> Sampler:
    from paced.rollouts.hf import HFSampler

    return HFSampler(student, tokenizer, batch_size=config.sampler_batch_size)


@LIVE_SAMPLERS.register("vllm")
def _vllm(config: DistillConfig, student: Any, tokenizer: Any, optimizer: Any, prompt_tokens: int) -> Sampler:
    """The engine's context is what training samples, the longest prompt + ``max_new_tokens`` (unless the config
    sets ``max_model_len``): vLLM refuses to start when one sequence of its context does not fit its KV cache, and
    the model's own (40,960 for Qwen3) would not in the trainer's share of a GPU."""
    from paced.rollouts.live_vllm import LiveVLLMSampler

    engine = dict(config.vllm or {})
    engine.setdefault("max_model_len", int(prompt_tokens) + config.max_new_tokens + 1)
    sampler = LiveVLLMSampler(student, config.student, config=engine, seed=config.seed, dtype=config.dtype,
                              trust_remote_code=config.trust_remote_code, progress=config.progress)
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper keeps no hooks of its own
    inner.register_step_post_hook(sampler.mark_stale)  # every update makes the engine's weights stale
    return sampler


def build_live_sampler(config: DistillConfig, student: Any, tokenizer: Any, optimizer: Any,
                       prompt_tokens: int) -> Sampler:
    """The ``config.sampler`` backend's sampler of ``student`` (``prompt_tokens``: the longest prompt it samples)."""
    return LIVE_SAMPLERS.get(str(config.sampler))(config, student, tokenizer, optimizer, prompt_tokens)
