"""The ``distill`` rule's estimate: FSDP2-sharded student state, the teacher, one micro-batch, the fused
divergence, and the in-training sampler (pass-rate refresh, on-policy stages)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from paced.plan.memory import (
    FP32,
    activation_bytes,
    activation_bytes_per_token_layer,
    checkpointed_bytes_per_token_layer,
    forward_flops,
    fused_working_bytes,
    gathered_bytes,
    kv_cache_bytes_per_token,
    param_count,
    training_state_bytes,
)
from paced.plan.rules import FUSED_MIN_VOCAB, RULES, Estimate, Job, decode_hours, mean_context
from paced.registry import Registry
from paced.teacher_cache import cache_serves_every_stage
from paced.trainer.config import DistillConfig
from paced.vllm_keys import DEFAULT_TRAIN_GPU_MEMORY_UTILIZATION

# train.* keys the schema may not carry yet: the trainer's own defaults (the sampler's batch: sampling.batch_size)
DISTILL_DEFAULTS = {**{f.name: f.default for f in dataclasses.fields(DistillConfig)}, "sampler_batch_size": None}


def train_key(job: Job, key: str) -> Any:
    """A ``train.*`` key, or the trainer's default when the config (schema) does not set it."""
    return job.train.get(key, DISTILL_DEFAULTS[key])


def micro_batch_tokens(job: Job) -> tuple[int, int]:
    """(padded tokens of one micro-batch on one GPU, the sequence cap): the smallest of the token budget,
    micro-batch size × cap, and the GPU's whole share of the batch × cap."""
    cap = job.seq_tokens(job.config["sampling"]["max_new_tokens"])
    if train_key(job, "max_seq_len"):
        cap = min(cap, int(train_key(job, "max_seq_len")))
    share = math.ceil(job.train["batch_size"] / job.train_gpus)
    size = min(share, int(train_key(job, "micro_batch_size") or share))
    tokens = size * cap
    if train_key(job, "micro_batch_tokens"):
        tokens = min(tokens, max(cap, int(train_key(job, "micro_batch_tokens"))))
    return tokens, cap


def method_needs(spec: Any, top_k: int | None) -> tuple[bool, bool]:
    """(a separate teacher model is loaded, the student samples during training) for one method spec.

    The shared cache serves teacher-forced stages on the fixed references with a separate teacher (a top-k
    cache: forward KL only); every other stage scores with the live teacher. A self-teacher is the student.
    """
    separate = spec.teacher == "separate" and not cache_serves_every_stage(spec, top_k)
    return separate, bool(spec.needs_sampler)


def _methods(config: Mapping[str, Any]) -> dict[str, Any]:
    from paced.methods import get_method, load_method

    overrides = config.get("method_overrides") or {}
    return {m: load_method(dict(overrides[m])) if m in overrides else get_method(m) for m in config["methods"]}


def per_token_bytes(job: Job) -> float:
    """Bytes one more token of a micro-batch costs: saved activations + the fused path's [N, H] buffers."""
    s, b = job.student, job.dtype_bytes
    ckpt = bool(train_key(job, "gradient_checkpointing"))
    act = s.num_hidden_layers * (checkpointed_bytes_per_token_layer(s, b) if ckpt
                                 else activation_bytes_per_token_layer(s, b))
    return act + (ckpt * activation_bytes_per_token_layer(s, b)) + FP32 * s.hidden_size + b * s.hidden_size


def _sampled_sequences(job: Job, spec: Any) -> float:
    """Sequences the in-training sampler generates in one run: on-policy stages sample each step's batch;
    pass-rate refreshes after the first draw K rollouts of the whole pool per stage (``per_stage``) or every
    ``refresh_every`` steps (``every_n``, ``online``)."""
    steps, batch = job.train["steps"], job.train["batch_size"]
    on_policy = sum(n for st, n in zip(spec.stages, spec.stage_steps(steps), strict=True) if st.on_policy)
    refreshes = {"per_stage": len(spec.stages) - 1, "every_n": steps // max(1, spec.refresh_every or steps),
                 "online": 0}.get(spec.refresh, 0) if spec.uses_pass_rates else 0
    return on_policy * batch + refreshes * job.pool * spec.k


@RULES.register("distill")
def distill(job: Job) -> list[Estimate]:
    """Per GPU of a training job, for the costliest method of the config: a training micro-batch and, when a
    method samples during training, the sampler's batch (the two alternate; each must fit beside the state)."""
    s, t, b, n = job.student, job.teacher, job.dtype_bytes, job.train_gpus
    top_k = job.train["teacher_cache_top_k"]
    specs = _methods(job.config)
    needs = [method_needs(spec, top_k) for spec in specs.values()]
    live_teacher, sampler = any(x[0] for x in needs), any(x[1] for x in needs)
    tokens, cap = micro_batch_tokens(job)
    ckpt = bool(train_key(job, "gradient_checkpointing"))
    shard_teacher = train_key(job, "teacher_sharding") == "shard" and n > 1
    chunk = int(train_key(job, "fused_chunk_size"))
    state = {
        "student_state": training_state_bytes(param_count(s), shards=n)
        + (b * param_count(s) if n == 1 and b != FP32 else 0),
        "gathered_params": gathered_bytes(s, b, n),
        "teacher": 0.0 if not live_teacher else (b * param_count(t) / n + gathered_bytes(t, b, n) if shard_teacher
                                                 else b * param_count(t)),
    }
    step = {**state, "activations": activation_bytes(s, tokens, b, ckpt),
            "logits_chunk": fused_working_bytes(s, chunk, tokens, b) if s.vocab_size >= FUSED_MIN_VOCAB
            else 4 * tokens * s.vocab_size * FP32}
    runs = len(job.config["methods"]) * len(job.config["seeds"])
    saves = len(set(job.train["save_steps"]) | {job.train["steps"]})
    ckpt_bytes = b * param_count(s) + training_state_bytes(param_count(s), grad_bytes=0)
    mean = int(job.mean_tokens(job.config["sampling"]["max_new_tokens"]))
    seqs = job.train["steps"] * job.train["batch_size"]
    flops = seqs * ((4 if ckpt else 3) * forward_flops(s, mean, mean) + live_teacher * forward_flops(t, mean, mean))
    out = [Estimate("distill", n, step, {"checkpoints (all runs)": runs * saves * ckpt_bytes},
                    flops / (n * job.settings.train_tflops * 1e12) / 3600,
                    fix=fix_message(job, state, tokens, cap),
                    notes=(f"micro-batch {tokens} tokens (cap {cap}), checkpointing {'on' if ckpt else 'off'}, "
                           f"teacher {'live' if live_teacher else 'not loaded (the cache serves every stage)'}; "
                           "hours per run, training only"))]
    if sampler:
        sampled = max(_sampled_sequences(job, spec) for spec in specs.values())
        live = LIVE_SAMPLER_ESTIMATES.get(job.config["sampling"]["backend"])
        out.append(live(job, state, step, cap, sampled))
    return out


def _hf_sampler(job: Job, state: Mapping[str, float], step: Mapping[str, float], cap: int,
                sampled: float) -> Estimate:
    """HF ``generate`` on the student: one batch's KV cache at once, in place of a training micro-batch."""
    s, b, n = job.student, job.dtype_bytes, job.train_gpus
    mean = int(job.mean_tokens(job.config["sampling"]["max_new_tokens"]))
    batch = int(train_key(job, "sampler_batch_size") or job.config["sampling"]["batch_size"])
    kv = {**state, "kv_cache": batch * cap * kv_cache_bytes_per_token(s, b)}
    hours = sampled * forward_flops(s, mean, mean) / (n * job.settings.sample_tflops * 1e12) / 3600
    per_seq = cap * kv_cache_bytes_per_token(s, b)
    fit = max(0, int((job.settings.usable_bytes - sum(state.values())) // per_seq))
    return Estimate("distill (sampler)", n, kv, hours=hours,
                    fix=f"set train.sampler_batch_size <= {fit} (now {batch}), or train.max_seq_len, or "
                        "more GPUs (--gpus / resources.gpus_train)",
                    notes=f"HF generate, {batch} sequences at once; {sampled:.0f} sequences a run "
                          "(an underestimate: HF generate is slower than the assumed throughput)")


def _vllm_sampler(job: Job, state: Mapping[str, float], step: Mapping[str, float], cap: int,
                  sampled: float) -> Estimate:
    """A vLLM engine beside the student on every training GPU (paced.rollouts.live_vllm): it reserves
    ``vllm.train_gpu_memory_utilization`` of the GPU for the whole run (its weights + KV cache), so a training step
    must fit in the rest; it decodes as many sequences at once as that KV cache holds (memory-bound time)."""
    s, b, n = job.student, job.dtype_bytes, job.train_gpus
    share = float((job.config.get("vllm") or {}).get("train_gpu_memory_utilization",
                                                       DEFAULT_TRAIN_GPU_MEMORY_UTILIZATION))
    engine = share * job.settings.gpu_mem_gb * 1e9
    weights = b * param_count(s)
    kv_tok = kv_cache_bytes_per_token(s, b)
    max_new = int(job.config["sampling"]["max_new_tokens"])
    in_flight = max(0.0, (engine - weights) / (mean_context(job, max_new) * kv_tok))
    fits_one = engine - weights >= cap * kv_tok
    hours = decode_hours(job, s, sampled / n, max_new, max(1.0, in_flight), 1)
    room = job.settings.usable_bytes - sum(step.values())
    return Estimate("distill (sampler)", n, {**step, "vllm_engine": engine}, hours=hours,
                    fix=(f"lower vllm.train_gpu_memory_utilization (now {share}; the training step leaves "
                         f"{max(0.0, room) / 1e9:.1f} GB) or the micro-batch (train.micro_batch_tokens)"
                         if fits_one else f"raise vllm.train_gpu_memory_utilization (now {share}): its "
                         f"{engine / 1e9:.1f} GB hold the weights ({weights / 1e9:.1f} GB) but not one "
                         f"{cap}-token sequence's KV cache"),
                    notes=f"vLLM beside the student, {share:.0%} of each GPU, ~{in_flight:.0f} sequences in flight; "
                          f"{sampled:.0f} sequences a run")


LIVE_SAMPLER_ESTIMATES: Registry[Callable[..., Estimate]] = Registry("in-training sampler")
LIVE_SAMPLER_ESTIMATES.add("hf", _hf_sampler)
LIVE_SAMPLER_ESTIMATES.add("vllm", _vllm_sampler)


def fix_message(job: Job, state: Mapping[str, float], tokens: int, cap: int) -> str:
    """What to change when a training micro-batch does not fit, with the token budget that would."""
    budget = job.settings.usable_bytes
    chunk_fixed = fused_working_bytes(job.student, int(train_key(job, "fused_chunk_size")), 0, job.dtype_bytes)
    fit = int((budget - sum(state.values()) - chunk_fixed) // per_token_bytes(job))
    parts = [f"set train.micro_batch_tokens <= {max(0, fit)} (now {tokens})" if fit >= cap else
             f"set train.max_seq_len <= {max(0, fit)} (one sequence of {cap} tokens does not fit)"]
    if not train_key(job, "gradient_checkpointing"):
        parts.append("train.gradient_checkpointing: true")
    if state["teacher"] and train_key(job, "teacher_sharding") != "shard":
        parts.append("train.teacher_sharding: shard")
    parts.append("train.teacher_cache_top_k (a cache serves forward-KL stages without the teacher)")
    parts.append("more GPUs (--gpus / resources.gpus_train)")
    return ", or ".join(parts)
