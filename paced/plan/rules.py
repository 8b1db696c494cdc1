"""Per-rule estimates of the DAG: GPU memory per GPU by component, disk, and rough time.

One function per rule kind, registered in :data:`RULES`; each takes a :class:`Job` (the resolved config, the
models' facts and the planner's assumptions) and returns an :class:`Estimate`, or None when the rule does not
run under this config. What a rule holds mirrors the code that runs it: vLLM for sampling and evaluation (the
weights, then as much KV cache as fits), the SNR stage in one process on one device, the trainer under FSDP2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paced.fused import DEFAULT_FUSED_CHUNK_SIZE
from paced.gradients import DEFAULT_CACHE_BYTES as SKETCH_CACHE_BYTES
from paced.gradients import DEFAULT_CHUNK as SKETCH_CHUNK
from paced.plan.arch import ArchFacts, arch_for
from paced.plan.memory import (
    FP32,
    activation_bytes,
    forward_flops,
    fused_working_bytes,
    kv_cache_bytes_per_token,
    param_count,
)
from paced.plan.settings import KNOWN_SIZES, PlanSettings
from paced.registry import Registry
from paced.teacher_cache.build import DEFAULT_TOKEN_CHUNK as CACHE_TOKEN_CHUNK
from paced.trainer.config import FUSED_AUTO_MIN_VOCAB as FUSED_MIN_VOCAB

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
MULTIPLE_CHOICE = ("mmlu", "toy_probe")
SAMPLER_ACTIVATION_TOKENS = 8192  # vLLM's default prefill budget a step: activations alive while sampling


@dataclass(frozen=True)
class Estimate:
    """One rule: ``memory`` (component -> bytes on one GPU), ``disk`` (what it writes -> bytes), ``hours``
    (wall-clock, rough), ``gpus`` it uses, ``fix`` (what to change when it does not fit) and ``notes``."""

    rule: str
    gpus: int
    memory: Mapping[str, float]
    disk: Mapping[str, float] = field(default_factory=dict)
    hours: float = 0.0
    fix: str = ""
    notes: str = ""

    @property
    def gpu_bytes(self) -> float:
        return float(sum(self.memory.values()))


@dataclass(frozen=True)
class Job:
    """The resolved config + the models' facts + the planner's assumptions."""

    config: Mapping[str, Any]
    student: ArchFacts
    teacher: ArchFacts
    settings: PlanSettings

    @property
    def train(self) -> Mapping[str, Any]:
        return self.config["train"]

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.config["models"]["dtype"]]

    @property
    def train_gpus(self) -> int:
        return self.settings.gpus or max(1, int(self.config["resources"]["gpus_train"]))

    def gpus_for(self, key: str) -> int:
        return max(1, int(self.config["resources"][key]))

    @property
    def pool(self) -> int:
        if self.settings.pool_problems:
            return self.settings.pool_problems
        return KNOWN_SIZES.get(self.config["data"]["train_task"], 768)

    def seq_tokens(self, max_new: int) -> int:
        return self.settings.prompt_tokens + max_new

    def mean_tokens(self, max_new: int) -> float:
        return self.settings.prompt_tokens + self.settings.mean_response_fraction * max_new


RULES: Registry[Callable[[Job], Estimate | list[Estimate] | None]] = Registry("rule")


def _hours(flops: float, gpus: int, tflops: float) -> float:
    return flops / (gpus * tflops * 1e12) / 3600


def mean_context(job: Job, max_new: int) -> float:
    """Tokens a sequence holds on average while it decodes: its prompt and half of its mean response."""
    return job.settings.prompt_tokens + job.settings.mean_response_fraction * max_new / 2


def decode_hours(job: Job, model: ArchFacts, sequences: float, max_new: int, in_flight: float, gpus: int) -> float:
    """Memory-bound decoding: each step reads the weights once for the ``in_flight`` sequences and the KV cache
    of each (its prompt and, on average, half of its mean response), at the assumed sustained bandwidth."""
    b, s = job.dtype_bytes, job.settings
    response = s.mean_response_fraction * max_new
    kv = mean_context(job, max_new) * kv_cache_bytes_per_token(model, b)
    per_token = b * param_count(model) / max(1.0, in_flight) + kv
    return sequences * response * per_token / (gpus * s.gpu_bandwidth_tbs * 1e12) / 3600


def _sampling(job: Job, rule: str, model: ArchFacts, sequences: float, max_new: int, gpus_key: str,
              batch_key: str, generated: float | None = None) -> Estimate:
    """A vLLM (or HF) sampling job: weights, prefill activations, KV cache of at least one full sequence.

    Time: the larger of the FLOPs of ``sequences`` (what is computed, at the sampling throughput) and the decode
    of ``generated`` sequences (default ``sequences``) at the memory bandwidth (:func:`decode_hours`); vLLM keeps
    as many sequences in flight as its KV cache holds at the mean context, HF generate one batch."""
    b, seq, gpus = job.dtype_bytes, job.seq_tokens(max_new), job.gpus_for(gpus_key)
    kv_tok = kv_cache_bytes_per_token(model, b)
    weights = b * param_count(model)
    prefill = SAMPLER_ACTIVATION_TOKENS * (model.hidden_size + model.intermediate_size) * b * 2
    fit = max(0, int((job.settings.usable_bytes - weights - prefill) // (seq * kv_tok)))
    if job.config["sampling"]["backend"] == "hf":  # HF generate: the whole batch's KV cache at once
        in_flight = float(job.config["sampling"]["batch_size"])
        kv, note = in_flight * seq * kv_tok, "HF generate: one batch's KV cache"
        fix = f"set {batch_key} <= {fit}, or a shorter generation budget (max_new_tokens)"
    else:  # vLLM schedules as many sequences as its KV cache holds: one full-length sequence must fit
        in_flight = (job.settings.usable_bytes - weights - prefill) / (mean_context(job, max_new) * kv_tok)
        kv, note = seq * kv_tok, f"vLLM: {fit} full-length sequences fit at once"
        fix = "a GPU with more memory (--gpu-mem-gb), or a shorter generation budget (max_new_tokens)"
    flops = sequences * forward_flops(model, int(job.mean_tokens(max_new)), int(job.mean_tokens(max_new)))
    compute = _hours(flops, gpus, job.settings.sample_tflops)
    decode = decode_hours(job, model, sequences if generated is None else generated, max_new, in_flight, gpus)
    bound = "memory-bandwidth-bound" if decode > compute else "compute-bound"
    return Estimate(rule, gpus, {"weights": weights, "activations": prefill, "kv_cache": kv},
                    hours=max(compute, decode), fix=fix, notes=f"{note}; {bound}")


@RULES.register("passrates_base")
def passrates_base(job: Job) -> Estimate:
    s = job.config["sampling"]
    return _sampling(job, "passrates_base", job.student, job.pool * job.config["passrate"]["k"], s["max_new_tokens"],
                     "gpus_sample", "sampling.batch_size")


@RULES.register("references")
def references(job: Job) -> Estimate | None:
    if job.config["references"]["source"] != "teacher":
        return None
    s = job.config["sampling"]
    return _sampling(job, "references", job.teacher, job.pool * job.config["references"]["attempts"],
                     s["max_new_tokens"], "gpus_sample", "sampling.batch_size")


@RULES.register("passrates_after")
def passrates_after(job: Job) -> Estimate:
    est = passrates_base(job)
    return Estimate("passrates_after", est.gpus, est.memory, hours=est.hours, fix=est.fix, notes=est.notes)


def cache_bytes_per_token(vocab: int, top_k: int | None) -> int:
    """Disk of one cached token: top-k fp32 log-probs + int32 ids + the fp32 tail log-mass, or all V log-probs."""
    return vocab * FP32 if top_k is None or top_k >= vocab else top_k * (FP32 + 4) + FP32


@RULES.register("teacher_cache")
def teacher_cache(job: Job) -> Estimate:
    """Teacher forwards over every reference, in token chunks from hidden states (no [T, V] logits per problem)."""
    b, t = job.dtype_bytes, job.teacher
    seq, top_k = job.seq_tokens(job.config["sampling"]["max_new_tokens"]), job.train["teacher_cache_top_k"]
    chunk = CACHE_TOKEN_CHUNK
    memory = {"weights": b * param_count(t),
              "activations": seq * (2 * t.hidden_size + 2 * t.intermediate_size) * b,  # no grad: one layer alive
              "hidden_states": seq * t.hidden_size * b, "logits_chunk": 3 * chunk * t.vocab_size * FP32}
    tokens = job.pool * job.config["sampling"]["max_new_tokens"] * job.settings.mean_response_fraction
    disk = {"teacher_cache": tokens * cache_bytes_per_token(t.vocab_size, top_k)}
    flops = job.pool * forward_flops(t, int(job.mean_tokens(job.config["sampling"]["max_new_tokens"])),
                                     int(job.mean_tokens(job.config["sampling"]["max_new_tokens"])))
    return Estimate("teacher_cache", job.gpus_for("gpus_sample"), memory, disk,
                    _hours(flops, job.gpus_for("gpus_sample"), job.settings.train_tflops),
                    fix="train.teacher_cache_top_k, or a model with fewer layers/hidden units")


@RULES.register("snr")
def snr(job: Job) -> Estimate | None:
    """One process, one device: the student (trainable, in the model dtype), the teacher, one problem's
    activations, its divergence (fused at large V) and the count sketch's per-chunk buffers."""
    cfg = job.config["snr"]
    if not cfg["enabled"]:
        return None
    b, s, t = job.dtype_bytes, job.student, job.teacher
    seq = job.seq_tokens(job.config["sampling"]["max_new_tokens"])
    ckpt = bool(job.train.get("gradient_checkpointing", False))  # the SNR stage follows the trainer's switch
    logits = fused_working_bytes(s, DEFAULT_FUSED_CHUNK_SIZE, seq, b) if s.vocab_size >= FUSED_MIN_VOCAB \
        else 4 * seq * s.vocab_size * FP32
    memory = {"weights": b * (param_count(s) + param_count(t)), "grads": b * param_count(s),
              "activations": activation_bytes(s, seq, b, checkpointing=ckpt), "logits_chunk": logits,
              # the m-vector, one chunk's hash temporaries (3 int64 + int32 bucket + fp32 sign), the kept hashes
              "sketch": cfg["sketch_dim"] * FP32 + SKETCH_CHUNK * (3 * 8 + 4 + FP32) + SKETCH_CACHE_BYTES}
    n = cfg["max_problems"] + cfg["heldout_problems"]
    mean = int(job.mean_tokens(job.config["sampling"]["max_new_tokens"]))
    flops = n * (3 * forward_flops(s, mean, mean) + forward_flops(t, mean, mean))
    return Estimate("snr", 1, memory, hours=_hours(flops, 1, job.settings.train_tflops),
                    fix="train.gradient_checkpointing: true (the SNR stage follows it), or sampling.max_new_tokens "
                    "(the reference length), or a GPU with more memory",
                    notes="one process on one GPU")


def _eval_rows(job: Job) -> list[tuple[str, float]]:
    """(task, problems × k) of one evaluation of one checkpoint."""
    rows = job.config["data"]["eval"] or [{"task": "toy_arith", "k": job.config["eval"]["k"]}]
    return [(row["task"], (row.get("limit") or KNOWN_SIZES.get(row["task"], 500))
             * (1 if row["task"] in MULTIPLE_CHOICE else row.get("k") or 1)) for row in rows]


def _eval_sequences(job: Job) -> float:
    """Sequences of compute of one evaluation of one checkpoint: Σ over tasks of problems × k; a multiple-choice
    task (MMLU) only scores its 4 choices after the prompt, each counted as 1/16 of a generated sequence."""
    return sum(n * 4 / 16 if task in MULTIPLE_CHOICE else n for task, n in _eval_rows(job))


def _eval_generated(job: Job) -> float:
    """Sequences one evaluation of one checkpoint decodes (a multiple-choice task decodes none)."""
    return sum(n for task, n in _eval_rows(job) if task not in MULTIPLE_CHOICE)


def _evaluate(job: Job, rule: str, checkpoints: int) -> Estimate:
    e = job.config["eval"]
    est = _sampling(job, rule, job.student, _eval_sequences(job) * checkpoints, e["max_new_tokens"], "gpus_eval",
                    "eval.batch_size", generated=_eval_generated(job) * checkpoints)
    return Estimate(rule, est.gpus, est.memory, hours=est.hours, fix=est.fix, notes=est.notes + "; hours per job")


@RULES.register("evaluate_base")
def evaluate_base(job: Job) -> Estimate:
    return _evaluate(job, "evaluate_base", 1)


@RULES.register("evaluate_run")
def evaluate_run(job: Job) -> Estimate:
    return _evaluate(job, "evaluate_run", len(job.config["eval"]["budgets"]))


def make_job(config: Mapping[str, Any], settings: PlanSettings) -> Job:
    """The job of a config whose models can be sized (a local config.json or a model kept in paced.plan.arch)."""
    models = config["models"]
    return Job(config, arch_for(models["student"]), arch_for(models["teacher"] or models["student"]), settings)


def estimate_rules(job: Job) -> list[Estimate]:
    """Every rule's estimate, in DAG order (rules that do not run under the config are left out)."""
    import paced.plan.train  # noqa: F401  (registers ``distill``)

    order = ["passrates_base", "references", "teacher_cache", "snr", "distill", "evaluate_base", "evaluate_run",
             "passrates_after"]
    out: list[Estimate] = []
    for name in order:
        est = RULES.get(name)(job)
        out.extend(est if isinstance(est, list) else [] if est is None else [est])
    return out
