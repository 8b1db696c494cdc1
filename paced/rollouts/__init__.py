"""Samplers behind one interface: ``get_sampler("hf", model=..., tokenizer=...)``.

Importing this package registers the built-in backends. ``hf`` is always available; a
``paced.rollouts.vllm`` module, where present, registers ``vllm`` (it imports vLLM only when used).
"""

from __future__ import annotations

import importlib
import importlib.util

from paced.rollouts import hf  # noqa: F401  -- registers "hf"
from paced.rollouts.base import SAMPLERS, Rollout, Sampler, SamplingParams, get_sampler
from paced.rollouts.hf import HFSampler, load_model_and_tokenizer
from paced.rollouts.vllm_config import VLLMConfig

if importlib.util.find_spec("paced.rollouts.vllm") is not None:
    importlib.import_module("paced.rollouts.vllm")

__all__ = ["SAMPLERS", "HFSampler", "Rollout", "Sampler", "SamplingParams", "VLLMConfig", "get_sampler",
           "load_model_and_tokenizer"]
