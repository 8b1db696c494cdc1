"""vLLM sampling of a model that is being trained: the p̂ refresh and the on-policy samples at the paper's scale.

HF ``generate`` on a sharded student is slow and memory-hungry at Qwen3's scale (a KV cache for thousands of
rows of 8k tokens, every rank's weights all-gathered per decoding step). :class:`LiveVLLMSampler` runs a vLLM
engine in each training process instead, beside the student on the same device, and reloads the student's
current weights into it before it samples whenever an optimizer step has changed them:

- one process: an in-process engine (``uni`` executor, ``VLLM_ENABLE_V1_MULTIPROCESSING=0``);
- ``torchrun`` (FSDP2, DDP; N >= 1 processes): one engine per process over the process group torchrun made
  (vLLM's ``external_launcher``); each process samples its own shard of prompts, as the HF path does, and the
  sharded parameters are gathered one tensor at a time (every process in the same order) into every engine.

The engine takes ``gpu_memory_utilization`` of the device (the trainer's share: ``vllm.train_gpu_memory_utilization``,
0.3 by default) for its weights and KV cache; the student, its optimizer state and the teacher need the rest.
Seeds: each engine is seeded once (seed + process index), so a resumed run's samples are a fresh draw from the
same distribution, not the uninterrupted run's (the ``hf`` sampler's are reproducible per call).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from paced.rollouts.base import Rollout, Sampler, SamplingParams

log = logging.getLogger(__name__)


def full_named_tensors(model: Any, dtype: Any = None) -> Iterator[tuple[str, Any]]:
    """``(name, tensor)`` of ``model``'s state dict, whole: a sharded (FSDP2, ``DTensor``) entry is all-gathered
    (a collective: every process must iterate, in the same order), cast to ``dtype`` when given. One tensor at a
    time, so at most one unsharded parameter beyond the engine's copy is alive."""
    from torch.distributed.tensor import DTensor

    for name, tensor in model.state_dict().items():
        t = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
        yield name, (t.detach().to(dtype) if dtype is not None else t.detach())


def distributed_world() -> tuple[int, int] | None:
    """(this process's rank, number of processes) of the default process group, or None without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def check_engine_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The in-training engine's settings, checked (before any weights load): valid ``vllm:`` keys, and one whole
    engine per training process (tensor and data parallel size 1). Returns them as a dict."""
    from paced.rollouts.vllm_config import VLLMConfig

    cfg = dict(config or {})
    VLLMConfig.from_mapping(cfg)  # unknown keys, bad values: one line naming the key
    split = {k: cfg[k] for k in ("tensor_parallel_size", "data_parallel_size") if cfg.get(k, 1) != 1}
    if split:
        raise ValueError(f"the in-training vLLM engine is one whole engine per training process; got "
                         f"{', '.join(f'vllm.{k}={v}' for k, v in split.items())} (leave them at 1 for training, or "
                         "sample in training with sampling.backend: hf)")
    return cfg


class LiveVLLMSampler(Sampler):
    """Samples the current weights of ``model`` (a torch module being trained; DDP-unwrapped or FSDP2-sharded)
    with a vLLM engine started from ``init_path`` (a checkpoint of the same architecture and tokenizer: its
    weights are replaced before the first sample).

    :meth:`mark_stale` says the weights changed (the trainer hooks it to the optimizer's step); the next
    :meth:`generate` reloads them first. ``config``: the engine's ``vllm:`` settings (a
    :class:`~paced.rollouts.vllm_config.VLLMConfig` mapping); the executor is chosen here (see the module
    docstring) and ``tensor_parallel_size`` must be 1 (each process holds a whole engine).
    """

    def __init__(self, model: Any, init_path: str, *, config: Mapping[str, Any] | None = None, seed: int = 0,
                 dtype: str = "auto", trust_remote_code: bool = False, progress: bool = False) -> None:
        from paced.rollouts.vllm import VLLMSampler

        cfg = check_engine_config(config)
        cfg.pop("data_parallel_size", None)
        group = distributed_world()
        rank = group[0] if group else 0
        if group is not None:  # torchrun's process group (even of one process): vLLM joins it and leaves it alive
            cfg["distributed_executor_backend"] = "external_launcher"
        else:
            cfg["distributed_executor_backend"] = "uni"
            if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "0") != "0":
                log.warning("VLLM_ENABLE_V1_MULTIPROCESSING=%s: turned off for the in-training engine (its weights "
                            "are replaced in place, so its model must live in this process)",
                            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"])
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        self.model = model
        self.engine = VLLMSampler(str(init_path), seed=seed + rank, config=cfg, dtype=dtype,
                                  trust_remote_code=trust_remote_code, progress=progress)
        self.eos_id = self.engine.eos_id
        self.stale = True
        self.syncs = 0  # weight reloads so far (the tests read it)

    def mark_stale(self, *_: Any) -> None:
        """The model's weights changed; reload them before the next sample. Takes (and ignores) the arguments
        of an optimizer step hook."""
        self.stale = True

    def sync(self) -> None:
        """Load the model's current weights into the engine (a collective when the model is sharded)."""
        dtype = self.engine.llm.llm_engine.model_config.dtype  # the engine's weights' torch dtype
        self.engine.load_weights(full_named_tensors(self.model, dtype))
        self.stale = False
        self.syncs += 1
        log.info("in-training vLLM engine: the student's current weights loaded (reload %d)", self.syncs)

    # the trainer may hand it a step's whole on-policy batch in one call (vLLM schedules it itself; the hf sampler
    # is called per micro-batch, so that sharded processes pair their generate calls)
    whole_batch = True

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Rollout]]:
        """Samples ``prompts`` (after a reload when stale). Under torchrun every process must call it at the same
        points, even with no prompts: the reload gathers the sharded weights collectively."""
        if self.stale:
            self.sync()
        if not prompts:
            return []
        return self.engine.generate(prompts, params)

    def close(self) -> None:
        """Shut the engine down (the training process group, when there is one, is left to the trainer)."""
        self.engine.close()
