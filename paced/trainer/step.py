"""One training step's loss: sequences (references or fresh student samples), logits, weighted divergence.

FKL / AKL / JSD stages are teacher-forced on the fixed references; reverse-KL stages sample one
completion per problem from the *current* student (temperature ``DistillConfig.temperature``), then
score it with the teacher and the student. The loss is ``weighted_loss(ℓ, w, normalisation)`` over
the step's whole batch, with ℓᵢ the token-mean divergence on problem i's response tokens; a
micro-batch contributes its share (:func:`batch_loss`). Problems with
weight 0 are not forwarded at all (their ℓ is a constant 0): exact, because a zero weight drops the
term from every normalisation.

Fused path (``DistillConfig.fused``; ``auto`` = vocabularies of ≥ 32,768): the student's final hidden
states on the response positions go through :func:`paced.fused.fused_divergence` with its
``lm_head``, chunk by chunk, so no [B, R, V] logits exist; the teacher enters as hidden states +
its ``lm_head`` (or as cached log-probs). ``grad_weights`` = the normalised weights, which makes the
fused backward a rescale of gradients formed in the forward pass. Same loss and gradients as the
logits path (tests/test_trainer_fused.py).

Teacher: a shared cache file (``teacher_cache_path``) for teacher-forced stages of a separate
teacher; otherwise live (the logits path may use the in-memory cache). Never cached: the
self-teacher (it is the moving student) and on-policy samples (they change every step).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from paced.fused import causal_lm_hidden, fused_divergence, is_ddp
from paced.methods import MethodSpec, StageSpec
from paced.passrate.refresh import REFRESH_POLICIES
from paced.passrate.state import PassRateState
from paced.rollouts.base import Sampler
from paced.tasks.base import Doc, Task
from paced.teacher_cache import CacheEntry, forward_kl_from_cache
from paced.trainer.batches import Batch, collate, response_logits
from paced.trainer.config import FUSED_AUTO_MIN_VOCAB, DistillConfig
from paced.trainer.distributed import is_sharded
from paced.trainer.microbatch import cap_response, plan_micro_batches
from paced.trainer.teacher import TeacherScorer
from paced.weighting import weighted_loss

log = logging.getLogger(__name__)


def derive_seed(seed: int, step: int, purpose: int, rank: int = 0) -> int:
    """A sampling seed that depends only on (run seed, step, purpose, rank), never on global RNG state."""
    return (seed * 1_000_003 + step * 1009 + purpose * 101 + rank * 7) % (2**31 - 1)


class NonFiniteLossError(FloatingPointError):
    """A NaN/inf loss; the message names the step and the batch's problem ids."""


@dataclass
class StepContext:
    """Everything a step needs that does not change from step to step (plus the pass-rate state)."""

    config: DistillConfig
    method: MethodSpec
    task: Task
    tokenizer: Any
    model: torch.nn.Module  # the prepared (possibly wrapped) student
    student_ids: dict[str, list[int]]  # prompt token ids per problem
    teacher_ids: dict[str, list[int]]
    references: dict[str, list[int]]  # response token ids (EOS appended) per problem
    teacher: TeacherScorer
    sampler: Sampler | None
    state: PassRateState
    device: torch.device
    rank: int = 0
    online_outcomes: list[tuple[str, int]] = field(default_factory=list)
    # this step's on-policy responses by batch index, sampled in one call before its micro-batches (samplers that
    # take a whole batch at once, e.g. vLLM's); None: each micro-batch samples its own
    presampled: dict[int, list[int]] | None = None
    identity: dict[str, Any] = field(default_factory=dict)  # trainer.identity.run_identity, saved with checkpoints

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


def sample_responses(ctx: StepContext, docs: Sequence[Doc], step: int) -> list[list[int]]:
    """One on-policy completion per problem from the current student; EOS is kept when it stopped."""
    assert ctx.sampler is not None, "an on-policy stage needs a sampler (validate_run checks this)"
    params = ctx.config.sampling_params(n=1, seed=derive_seed(ctx.config.seed, step, 1, ctx.rank))
    rollouts = ctx.sampler.generate([ctx.task.format_prompt(d) for d in docs], params)
    eos = ctx.tokenizer.eos_token_id
    out = []
    for doc, (r,) in zip(docs, rollouts, strict=True):
        ids = list(r.token_ids)
        if eos is not None and len(ids) < ctx.config.max_new_tokens:
            ids.append(int(eos))  # it stopped by emitting EOS (the sampler strips it)
        out.append(ids)
        if REFRESH_POLICIES.get(ctx.method.refresh).online:
            ctx.online_outcomes.append((doc.id, int(ctx.task.check(doc, r.text))))
    return out


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


def use_fused(config: DistillConfig, model: torch.nn.Module) -> bool:
    """Whether this step takes the fused path: ``on``/``off``, or ``auto`` by the student's vocabulary.

    A DDP-wrapped or FSDP2-sharded student fuses through its root forward
    (:func:`paced.fused.causal_lm_hidden`). Other wrappers (FSDP1, DeepSpeed) take the logits path:
    their lm_head weight is sharded outside forward.
    """
    if config.fused == "off":
        return False
    if hasattr(model, "module") and not is_ddp(model):
        _warn_once(f"fused={config.fused!r}: the student is wrapped in {type(model).__name__}, whose lm_head "
                   "weight is sharded outside its forward; using the logits path")
        return False
    model = model.module if is_ddp(model) else model
    if config.fused == "on":
        return True
    head = model.get_output_embeddings()
    return head is not None and int(head.weight.shape[0]) >= FUSED_AUTO_MIN_VOCAB


def _first_tokens(entry: CacheEntry, length: int) -> CacheEntry:
    """A batched cache entry [B, T, ·] cut to its first ``length`` response positions (the sequence cap)."""
    def cut(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[:, :length]

    return CacheEntry(entry.logp[:, :length], cut(entry.ids), cut(entry.tail_logp), entry.vocab_size)


def teacher_inputs(ctx: StepContext, ids: list[str], prompts: list[list[int]], responses: list[list[int]],
                   stage: StageSpec, fused: bool, full_responses: list[list[int]] | None = None) -> dict[str, Any]:
    """The teacher as keyword arguments of a divergence: ``teacher_logits`` [b, R, V] (live, or exact
    cached log-probs), ``teacher_cache`` (a batched top-k entry, forward KL only), or, on the fused path,
    ``teacher_hidden`` [b, R, H'] + ``teacher_weight`` + ``teacher_bias``. ``full_responses``: the
    references before the sequence cap (a shared cache holds them whole); default ``responses``."""
    config = ctx.config
    if config.teacher_cache_path and ctx.method.teacher == "separate" and not stage.on_policy:
        cache = ctx.teacher.load_shared(config.teacher_cache_path, config.teacher_cache_top_k)
        if cache.top_k is None or cache.top_k >= cache.vocab_size or stage.divergence == "forward_kl":
            entry = ctx.teacher.shared_entry(ids, full_responses or responses, ctx.device)
            entry = _first_tokens(entry, max(1, max(len(r) for r in responses)))
            return {"teacher_logits": entry.logp} if entry.exact else {"teacher_cache": entry}
        _warn_once(f"the top-k teacher cache serves forward_kl only; {stage.divergence} stages compute the "
                   "teacher live")
    if fused:
        hidden, weight, bias = ctx.teacher.hidden(prompts, responses, device=ctx.device)
        return {"teacher_hidden": hidden, "teacher_weight": weight, "teacher_bias": bias}
    return {"teacher_logits": ctx.teacher.logits(ids, prompts, responses, cacheable=not stage.on_policy,
                                                 device=ctx.device)}


def per_sequence_divergence(ctx: StepContext, batch: Batch, teacher: dict[str, Any], stage: StageSpec,
                            fused: bool, grad_weights: torch.Tensor) -> torch.Tensor:
    """ℓ [b]: token-mean divergence of each sequence's response, from logits or fused from hidden states."""
    mask = batch.response_mask
    if fused:
        hidden, weight, bias = causal_lm_hidden(ctx.model, batch.input_ids, batch.attention_mask,
                                                batch.position_ids)
        r = batch.response_len
        return fused_divergence(stage.divergence, student_hidden=hidden[:, -r - 1:-1], student_weight=weight,
                                student_bias=bias, mask=mask, chunk_size=ctx.config.fused_chunk_size,
                                grad_weights=grad_weights, **teacher, **dict(stage.params))
    student = response_logits(ctx.model, batch)  # (b, R, V)
    if "teacher_cache" in teacher:
        return forward_kl_from_cache(student, teacher["teacher_cache"], mask, chunk_size=ctx.config.chunk_size)
    return stage.build()(student_logits=student, teacher_logits=teacher["teacher_logits"], mask=mask,
                         chunk_size=ctx.config.chunk_size)


def micro_batch_lengths(ctx: StepContext, docs: Sequence[Doc], rows: Sequence[int],
                        stage: StageSpec) -> list[tuple[int, int]]:
    """(prompt, response) token counts of ``docs[rows]`` as the step will collate them (after the
    sequence cap; an on-policy response is counted at its longest, ``max_new_tokens`` + EOS)."""
    out = []
    for i in rows:
        pid = docs[i].id
        prompt = len(ctx.student_ids[pid])
        resp = ctx.config.max_new_tokens + 1 if stage.on_policy else len(ctx.references[pid])
        if ctx.config.max_seq_len is not None:
            resp = min(resp, max(1, ctx.config.max_seq_len - max(prompt, len(ctx.teacher_ids[pid]))))
        out.append((prompt, resp))
    return out


def rank_micro_batches(ctx: StepContext, docs: Sequence[Doc], weights: np.ndarray, stage: StageSpec,
                       rank: int, nproc: int) -> list[list[int]]:
    """This process's micro-batches as indices into the whole batch ``docs``: its share ``rank::nproc``,
    zero-weight problems dropped, cut by :func:`paced.trainer.microbatch.plan_micro_batches`."""
    mine = [i for i in range(rank, len(docs), nproc) if weights[i] > 0]
    rows = ctx.config.micro_batch_size
    per_micro_batch = not getattr(ctx.sampler, "whole_batch", False)
    if stage.on_policy and is_sharded(ctx.model) and per_micro_batch:  # one generate chunk per micro-batch, so the
        rows = min(rows or ctx.config.sampler_batch_size, ctx.config.sampler_batch_size)  # all-gathers pair up
    plan = plan_micro_batches(micro_batch_lengths(ctx, docs, mine, stage), rows, ctx.config.micro_batch_tokens)
    return [[mine[j] for j in group] for group in plan]


def forwarded_rows(rows: Sequence[int], weights: np.ndarray) -> tuple[list[int], bool]:
    """The rows a micro-batch forwards, and whether it is idle: its non-zero-weight rows; with none, one problem
    (its first row, else problem 0) forwarded with a zero share, so the process still joins the collectives."""
    live = [i for i in rows if weights[i] > 0]
    return (live, False) if live else ([rows[0] if rows else 0], True)


def presample(ctx: StepContext, docs: Sequence[Doc], weights: np.ndarray, groups: Sequence[Sequence[int]],
              step: int) -> None:
    """Sample the on-policy responses of every micro-batch in ``groups`` in one sampler call (into
    ``ctx.presampled``), for samplers that take a whole batch (``whole_batch``): vLLM keeps them all in flight
    instead of a micro-batch's few at a time."""
    rows = sorted({i for g in groups for i in forwarded_rows(g, weights)[0]})
    ctx.presampled = dict(zip(rows, sample_responses(ctx, [docs[i] for i in rows], step), strict=True))


def batch_loss(ctx: StepContext, docs: Sequence[Doc], weights: np.ndarray, stage: StageSpec,
               step: int, rows: Sequence[int] | None = None) -> torch.Tensor:
    """The micro-batch ``rows``' share of the weighted loss of the whole batch ``docs`` (raw weights [B]).

    ``docs``/``weights``: the step's whole batch, over every process; ``rows``: indices of this
    micro-batch (None: all of them). The value is ``weighted_loss(ℓ', w)`` with ℓ' = ℓ on ``rows`` and
    0 elsewhere: each normalisation is linear in wℓ for fixed w, so the shares of all micro-batches
    and processes add up to the whole batch's loss (Σwℓ/Σw over the batch, not per micro-batch).
    Zero-weight rows are not forwarded; a micro-batch with none left (a process with nothing to do
    still joins the collectives of DDP/FSDP) forwards one problem with a zero share.
    """
    rows = list(range(len(docs))) if rows is None else list(rows)
    live, idle = forwarded_rows(rows, weights)
    live_docs = [docs[i] for i in live]
    if stage.on_policy and ctx.presampled is not None:
        full_responses = [ctx.presampled[i] for i in live]
    elif stage.on_policy:
        full_responses = sample_responses(ctx, live_docs, step)
    else:
        full_responses = [ctx.references[d.id] for d in live_docs]
    ids = [d.id for d in live_docs]
    s_prompts = [ctx.student_ids[i] for i in ids]
    t_prompts = [ctx.teacher_ids[i] for i in ids]
    responses = [cap_response(r, max(len(sp), len(tp)), ctx.config.max_seq_len, f"problem {pid!r}")
                 for r, sp, tp, pid in zip(full_responses, s_prompts, t_prompts, ids, strict=True)]
    batch = collate(s_prompts, responses, ctx.pad_id).to(ctx.device)
    fused = use_fused(ctx.config, ctx.model)
    teacher = teacher_inputs(ctx, ids, t_prompts, responses, stage, fused, full_responses)
    w_live = torch.as_tensor(np.asarray(weights, dtype=np.float64)[live], dtype=torch.float32)  # (b,)
    w_live = torch.zeros_like(w_live) if idle else w_live
    grad_weights = w_live / w_live.sum().clamp_min(1e-30)  # ∝ ∂loss/∂ℓ under every normalisation
    per_seq = per_sequence_divergence(ctx, batch, teacher, stage, fused, grad_weights)  # (b,)
    if idle:
        return torch.nan_to_num(per_seq).sum() * 0.0  # a graph for the collectives, no contribution
    full = torch.zeros(len(docs), dtype=per_seq.dtype, device=per_seq.device)
    full = full.index_copy(0, torch.as_tensor(live, device=per_seq.device), per_seq)  # (B,)
    return weighted_loss(full, torch.as_tensor(weights, dtype=full.dtype), ctx.method.kernel.normalisation)
