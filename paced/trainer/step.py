"""One training step's loss: sequences (references or fresh student samples), logits, weighted divergence.

FKL / AKL / JSD stages are teacher-forced on the fixed references; reverse-KL stages sample one
completion per problem from the *current* student (temperature ``DistillConfig.temperature``), then
score it with the teacher and the student. The loss is ``weighted_loss(ℓ, w, normalisation)`` over
the micro-batch, with ℓᵢ the token-mean divergence on problem i's response tokens. Problems with
weight 0 are not forwarded at all (their ℓ is a constant 0): exact, because a zero weight drops the
term from every normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from paced.methods import MethodSpec, StageSpec
from paced.rollouts.base import Sampler, SamplingParams
from paced.tasks.base import Doc, Task
from paced.trainer.batches import collate, response_logits
from paced.trainer.config import DistillConfig
from paced.trainer.teacher import TeacherScorer
from paced.trainer.weights import PassRateState
from paced.weighting import weighted_loss


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

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


def sample_responses(ctx: StepContext, docs: Sequence[Doc], step: int) -> list[list[int]]:
    """One on-policy completion per problem from the current student; EOS is kept when it stopped."""
    assert ctx.sampler is not None, "an on-policy stage needs a sampler (validate_run checks this)"
    params = SamplingParams(n=1, max_new_tokens=ctx.config.max_new_tokens,
                            temperature=ctx.config.temperature,
                            seed=derive_seed(ctx.config.seed, step, 1, ctx.rank))
    rollouts = ctx.sampler.generate([ctx.task.format_prompt(d) for d in docs], params)
    eos = ctx.tokenizer.eos_token_id
    out = []
    for doc, (r,) in zip(docs, rollouts, strict=True):
        ids = list(r.token_ids)
        if eos is not None and len(ids) < ctx.config.max_new_tokens:
            ids.append(int(eos))  # it stopped by emitting EOS (the sampler strips it)
        out.append(ids)
        if ctx.method.refresh == "online":
            ctx.online_outcomes.append((doc.id, int(ctx.task.check(doc, r.text))))
    return out


def batch_loss(ctx: StepContext, docs: Sequence[Doc], weights: np.ndarray, stage: StageSpec,
               step: int) -> torch.Tensor:
    """Scalar weighted loss of the micro-batch ``docs`` with raw weights ``weights`` [B]."""
    live = [i for i, w in enumerate(weights) if w > 0] or [0]  # keep a graph for DDP even if all zero
    live_docs = [docs[i] for i in live]
    if stage.on_policy:
        responses = sample_responses(ctx, live_docs, step)
    else:
        responses = [ctx.references[d.id] for d in live_docs]
    s_prompts = [ctx.student_ids[d.id] for d in live_docs]
    t_prompts = [ctx.teacher_ids[d.id] for d in live_docs]
    batch = collate(s_prompts, responses, ctx.pad_id).to(ctx.device)
    student = response_logits(ctx.model, batch)  # (b, R, V)
    teacher = ctx.teacher.logits([d.id for d in live_docs], t_prompts, responses,
                                 cacheable=not stage.on_policy, device=ctx.device)  # (b, R, V)
    per_seq = stage.build()(student_logits=student, teacher_logits=teacher, mask=batch.response_mask,
                            chunk_size=ctx.config.chunk_size)  # (b,)
    full = torch.zeros(len(docs), dtype=per_seq.dtype, device=per_seq.device)
    full = full.index_copy(0, torch.as_tensor(live, device=per_seq.device), per_seq)  # (B,)
    return weighted_loss(full, torch.as_tensor(weights, dtype=full.dtype), ctx.method.kernel.normalisation)
