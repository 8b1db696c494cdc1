"""The distillation run's configuration: what to train on, for how long, and where to write.

The *method* (divergence schedule, kernel, refresh, teacher kind, K) lives in
:class:`paced.methods.MethodSpec`; this config holds the run: paths, budget, optimiser, sampling.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("cpu", "cuda", "auto")  # cuda: fail before any work if no GPU is visible (validate_run)
TEACHER_CACHES = ("none", "memory")
FUSED_MODES = ("auto", "on", "off")
SHARDINGS = ("none", "fsdp")  # fsdp: FSDP2 fully_shard of the decoder layers + root, under torchrun
TEACHER_SHARDINGS = ("replicate", "shard")
FUSED_AUTO_MIN_VOCAB = 32768  # "auto" fuses from here: one fp32 [T, V] logits tensor is ≥ 128 kB a token


def _require(ok: bool, field_name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"DistillConfig.{field_name}={value!r} is out of range; allowed: {allowed}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run.

    ``references``: a ``references.jsonl`` from :func:`paced.references.generate_references` (rows
    ``{id, reference}``); ``None`` uses ``task.reference(doc)`` (the gold ``solution``).
    ``passrates``: a ``passrates.jsonl`` from :func:`paced.passrate.estimate.estimate_pass_rates`; ``None``
    estimates p̂ with the in-training student before step 1 (only when the method needs it).
    ``steps`` counts batches drawn: a skipped all-zero-weight batch is a step without an update.
    ``save_steps``: checkpoints besides the final one. ``teacher_cache``: ``memory`` computes the
    teacher's logits on each fixed reference once (exact: one unpadded forward per problem) and
    keeps them in RAM up to ``teacher_cache_max_gb``; ``none`` recomputes them every step.
    ``fused``: compute divergences from hidden states and ``lm_head`` chunk by chunk
    (:mod:`paced.fused`; the full [T, V] logits never exist); ``auto`` fuses when the vocabulary
    has ≥ 32,768 entries. Same loss and gradients as the logits path. With ``fused`` on, the
    in-memory teacher cache is not used (it holds dense [T, V] log-probs); use a shared cache file.
    ``teacher_cache_path``: a :class:`paced.teacher_cache.TeacherCache` ``.npz`` written once by
    :func:`paced.teacher_cache.build_teacher_cache` from this teacher on these references and
    read by every method and seed (teacher-forced stages with a separate teacher only; it takes
    precedence over ``teacher_cache``). ``teacher_cache_top_k``: the top-k it was built with
    (None = exact); checked when the file loads. A top-k cache serves ``forward_kl`` stages only;
    other teacher-forced stages compute the teacher live.

    Scale. ``sharding``: ``none`` (one process, or DDP under ``accelerate launch``) or ``fsdp``
    (FSDP2: decoder layers and root sharded, under ``torchrun``; gloo on CPU, NCCL on GPU);
    ``teacher_sharding``: ``replicate`` (every process loads the whole teacher from its files) or
    ``shard`` (FSDP2 too; ``sharding='fsdp'`` only). ``master_dtype``: the student's parameters and
    optimizer state; the forward runs in ``dtype`` (FSDP2 mixed precision with fp32 gradient
    reduction, or autocast when unsharded); checkpoints are written in ``dtype``. Each step's batch
    is split across processes and then into micro-batches of at most ``micro_batch_size`` problems and
    ``micro_batch_tokens`` padded tokens (sorted by length), gradients accumulated; the weight
    normalisation spans the whole batch, so the loss and gradient do not depend on the split.
    ``max_seq_len`` cuts responses so prompt + response fits; ``gradient_checkpointing`` recomputes
    the student's activations in backward.
    """

    student: str
    task: str
    data: str
    out_dir: str
    teacher: str | None = None
    references: str | None = None
    passrates: str | None = None
    steps: int = 100
    batch_size: int = 8
    lr: float = 1e-4
    warmup_steps: int = 0  # linear warmup, then constant (the authors' lr schedule is not reported)
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    save_steps: tuple[int, ...] = ()
    seed: int = 0
    sampler: str | None = "hf"
    sampler_batch_size: int = 64  # prompts per generate call of the hf sampler
    # engine settings of the in-training vLLM sampler (sampler='vllm'; paced.rollouts.live_vllm): the vllm: section's
    # keys (paced.rollouts.vllm_config.VLLMConfig), gpu_memory_utilization being the engine's share beside the student
    vllm: dict[str, Any] | None = None
    max_new_tokens: int = 64
    temperature: float = 1.0  # on-policy samples are drawn from the student's own distribution
    # the other decoding settings of every in-training sample (p̂ refresh, on-policy), as sampling.* sets them for
    # the base pass rates: top_p, top_k, min_p, presence_penalty (paced.rollouts.base.SamplingParams)
    decoding: dict[str, float] = dataclasses.field(default_factory=dict)
    chunk_size: int = 1024
    device: str = "cpu"
    dtype: str = "float32"
    teacher_cache: str = "memory"
    teacher_cache_max_gb: float = 2.0
    fused: str = "auto"
    fused_chunk_size: int = 256  # tokens per [n, V] chunk on the fused path (~0.16 GB fp32 at V = 151,936)
    teacher_cache_path: str | None = None
    teacher_cache_top_k: int | None = None
    progress: bool = True
    chat_tokenizer: str | None = None  # wrap the task's prompts in this tokenizer's chat template
    enable_thinking: bool | None = None  # passed to that chat template (None: its default), as every stage does
    trust_remote_code: bool = False  # run code shipped with a model repository (only if the config says so)
    # Scale (paced.trainer.distributed, paced.trainer.microbatch): see the class docstring.
    sharding: str = "none"
    teacher_sharding: str = "replicate"
    master_dtype: str = "float32"  # the student's parameters and optimizer state; compute runs in ``dtype``
    micro_batch_size: int | None = None  # problems per forward/backward on one process (None: its whole share)
    micro_batch_tokens: int | None = None  # padded tokens per micro-batch (length-bucketed); None: no budget
    max_seq_len: int | None = None  # prompt + response tokens; longer responses are cut (None: no cap)
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "save_steps", tuple(sorted(set(self.save_steps))))
        for name in ("student", "task", "data", "out_dir"):
            _require(isinstance(getattr(self, name), str) and bool(getattr(self, name)), name,
                     getattr(self, name), "a non-empty string")
        _require(_is_int(self.steps) and self.steps >= 1, "steps", self.steps, "integers >= 1")
        _require(_is_int(self.batch_size) and self.batch_size >= 1, "batch_size", self.batch_size,
                 "integers >= 1")
        _require(self.lr > 0, "lr", self.lr, "(0, inf)")
        _require(_is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps", self.warmup_steps,
                 "integers >= 0")
        _require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "[0, inf)")
        _require(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", self.max_grad_norm,
                 "None or (0, inf)")
        bad = [s for s in self.save_steps if not _is_int(s) or not 1 <= s <= self.steps]
        _require(not bad, "save_steps", self.save_steps, f"integers in [1, steps={self.steps}]")
        _require(_is_int(self.seed), "seed", self.seed, "integers")
        _require(self.sampler is None or isinstance(self.sampler, str), "sampler", self.sampler,
                 "None or a backend name")
        _require(_is_int(self.sampler_batch_size) and self.sampler_batch_size >= 1, "sampler_batch_size",
                 self.sampler_batch_size, "integers >= 1")
        if self.vllm is not None:
            from paced.rollouts.vllm_config import VLLMConfig

            _require(isinstance(self.vllm, Mapping), "vllm", self.vllm, "None or a mapping of vllm: settings")
            VLLMConfig.from_mapping(dict(self.vllm))  # unknown keys and bad values: one line naming the key
        _require(_is_int(self.max_new_tokens) and self.max_new_tokens >= 1, "max_new_tokens",
                 self.max_new_tokens, "integers >= 1")
        _require(self.temperature > 0, "temperature", self.temperature, "(0, inf)")
        _require(_is_int(self.chunk_size) and self.chunk_size >= 1, "chunk_size", self.chunk_size,
                 "integers >= 1")
        _require(self.device in DEVICES, "device", self.device, ", ".join(DEVICES))
        _require(self.dtype in DTYPES, "dtype", self.dtype, ", ".join(DTYPES))
        _require(self.teacher_cache in TEACHER_CACHES, "teacher_cache", self.teacher_cache,
                 ", ".join(TEACHER_CACHES))
        _require(self.teacher_cache_max_gb >= 0, "teacher_cache_max_gb", self.teacher_cache_max_gb,
                 "[0, inf)")
        _require(self.fused in FUSED_MODES, "fused", self.fused, ", ".join(FUSED_MODES))
        _require(_is_int(self.fused_chunk_size) and self.fused_chunk_size >= 1, "fused_chunk_size",
                 self.fused_chunk_size, "integers >= 1")
        _require(self.teacher_cache_path is None or (isinstance(self.teacher_cache_path, str)
                                                     and bool(self.teacher_cache_path)),
                 "teacher_cache_path", self.teacher_cache_path, "None or a non-empty path")
        _require(self.teacher_cache_top_k is None or (_is_int(self.teacher_cache_top_k)
                                                      and self.teacher_cache_top_k >= 1),
                 "teacher_cache_top_k", self.teacher_cache_top_k, "None (exact) or integers >= 1")
        self._check_scale_fields()
        unknown = sorted(set(self.decoding) - {"top_p", "top_k", "min_p", "presence_penalty"})
        _require(not unknown, "decoding", dict(self.decoding), "keys top_p, top_k, min_p, presence_penalty")
        self.sampling_params(n=1, seed=0)  # out-of-range decoding values fail here, naming the field

    def _check_scale_fields(self) -> None:
        _require(self.sharding in SHARDINGS, "sharding", self.sharding, ", ".join(SHARDINGS))
        _require(self.teacher_sharding in TEACHER_SHARDINGS, "teacher_sharding", self.teacher_sharding,
                 ", ".join(TEACHER_SHARDINGS))
        _require(self.teacher_sharding == "replicate" or self.sharding == "fsdp", "teacher_sharding",
                 self.teacher_sharding, "'replicate' unless sharding='fsdp'")
        _require(self.master_dtype in DTYPES, "master_dtype", self.master_dtype, ", ".join(DTYPES))
        for name in ("micro_batch_size", "micro_batch_tokens", "max_seq_len"):
            value = getattr(self, name)
            _require(value is None or (_is_int(value) and value >= 1), name, value, "None or integers >= 1")
        _require(self.micro_batch_tokens is None or self.max_seq_len is None
                 or self.micro_batch_tokens >= self.max_seq_len, "micro_batch_tokens", self.micro_batch_tokens,
                 f"None or integers >= max_seq_len={self.max_seq_len} (one capped sequence must fit)")
        _require(isinstance(self.gradient_checkpointing, bool), "gradient_checkpointing",
                 self.gradient_checkpointing, "true or false")

    def sampling_params(self, *, n: int, seed: int) -> Any:
        """The :class:`~paced.rollouts.base.SamplingParams` of an in-training sample: ``max_new_tokens``,
        ``temperature`` and ``decoding``, as the base pass rates sample."""
        from paced.rollouts.base import SamplingParams

        return SamplingParams.from_section({**self.decoding, "max_new_tokens": self.max_new_tokens,
                                            "temperature": self.temperature}, n=n, seed=seed)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def torch_master_dtype(self) -> torch.dtype:
        return DTYPES[self.master_dtype]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["save_steps"] = list(self.save_steps)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DistillConfig:
        """From a dict; unknown keys raise ``ValueError`` naming them and the allowed keys."""
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))} in DistillConfig; "
                             f"allowed: {', '.join(sorted(allowed))}")
        d = dict(d)
        if "save_steps" in d:
            d["save_steps"] = tuple(d["save_steps"])
        return cls(**d)
