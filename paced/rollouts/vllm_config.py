"""vLLM engine arguments, one frozen config shared by the sampler and lm-eval's ``vllm`` model.

Importing this module does not import vLLM. The workflow's ``vllm:`` config section maps onto these
fields one to one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

VLLM_DTYPES = ("auto", "float32", "bfloat16", "float16")
# external_launcher: one engine per torchrun process, in that process, over the process group it already has
# (the trainer's in-training engines, :mod:`paced.rollouts.live_vllm`)
_EXECUTORS = (None, "uni", "mp", "ray", "external_launcher")



@dataclass(frozen=True)
class VLLMConfig:
    """How to build a vLLM engine.

    ``gpu_memory_utilization`` is the share of a GPU's memory the engine may take (weights, activations
    and KV cache); on vLLM's CPU backend it is read as a share of RAM, so the CPU lane uses ~0.3.
    ``max_model_len`` caps prompt + completion tokens (``None``: the model's own context). ``dtype``
    ``None`` means the caller's (the suite's ``models.dtype``), ``"auto"`` the checkpoint's.
    ``data_parallel_size`` replicates the engine (lm-eval runs the replicas through Ray);
    ``tensor_parallel_size`` shards one engine over that many GPUs. ``enforce_eager`` skips CUDA-graph
    capture (needed on CPU; on GPUs it trades speed for a faster start). ``max_num_seqs`` bounds the
    sequences scheduled at once (``None``: vLLM's default). ``distributed_executor_backend``: ``"uni"`` runs
    the model in the engine's process (one device; the CPU lane uses it with ``VLLM_ENABLE_V1_MULTIPROCESSING=0``
    to start an engine in ~30 s instead of ~100 s), ``"mp"``/``"ray"`` one process per device, ``None`` vLLM's
    choice.
    """

    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    dtype: str | None = None
    enforce_eager: bool = False
    max_num_seqs: int | None = None
    distributed_executor_backend: str | None = None

    def __post_init__(self) -> None:
        def positive_int(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        checks: tuple[tuple[str, bool, str], ...] = (
            ("tensor_parallel_size", positive_int(self.tensor_parallel_size), "an int >= 1"),
            ("data_parallel_size", positive_int(self.data_parallel_size), "an int >= 1"),
            ("gpu_memory_utilization", isinstance(self.gpu_memory_utilization, (int, float))
             and 0 < self.gpu_memory_utilization <= 1, "a number in (0, 1]"),
            ("max_model_len", self.max_model_len is None or positive_int(self.max_model_len),
             "null or an int >= 1"),
            ("dtype", self.dtype is None or self.dtype in VLLM_DTYPES, f"null or one of {VLLM_DTYPES}"),
            ("enforce_eager", isinstance(self.enforce_eager, bool), "true or false"),
            ("max_num_seqs", self.max_num_seqs is None or positive_int(self.max_num_seqs), "null or an int >= 1"),
            ("distributed_executor_backend", self.distributed_executor_backend in _EXECUTORS,
             f"one of {_EXECUTORS}"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"vllm.{name} must be {allowed}, got {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, cfg: dict[str, Any] | None) -> VLLMConfig:
        """From the ``vllm:`` config section (``None`` or ``{}``: the defaults); unknown keys are errors."""
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"vllm: unknown key(s) {unknown}; allowed: {', '.join(cls.__dataclass_fields__)}")
        return cls(**cfg)

    def engine_kwargs(self, dtype: str = "auto") -> dict[str, Any]:
        """Keyword arguments of ``vllm.LLM``; ``dtype`` is used when the config leaves it ``None``. Unset
        optional fields are left out, so vLLM's defaults apply."""
        kwargs = {k: v for k, v in asdict(self).items() if v is not None}
        kwargs["dtype"] = self.dtype or dtype
        if self.data_parallel_size == 1:
            kwargs.pop("data_parallel_size")
        return kwargs

    def lm_eval_args(self, dtype: str = "auto") -> dict[str, Any]:
        """``model_args`` of lm-eval's ``vllm`` model: the same names (it passes what it does not know to
        ``vllm.LLM``; ``data_parallel_size`` is its own, through Ray)."""
        return {**{k: v for k, v in asdict(self).items() if v is not None}, "dtype": self.dtype or dtype}
