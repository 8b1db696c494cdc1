"""Wiring of the pass-rate state into the training loop (the policies live in :mod:`paced.passrate.refresh`).

- initial: from ``DistillConfig.passrates`` if given, else K rollouts of the student before step 1;
- a full re-estimate whenever the method's refresh policy says it is due;
- ``online`` policies: each on-policy sample's verified outcome enters its problem's window after the
  step, and problems of the batch at weight zero get one probe rollout each (otherwise a problem at
  p̂ ∈ {0, 1} under a hard-zero kernel would never be sampled again and the trainable set could only shrink).
Rollouts sample like the base pass rates: the configured decoding settings (``DistillConfig.sampling_params``,
from ``sampling.*``: temperature, top_p, top_k, min_p, presence penalty). Estimation is sharded over
processes and gathered, so every process holds the same state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from paced.methods import MethodSpec
from paced.passrate.estimate import rollout_outcomes
from paced.passrate.files import read_passrates
from paced.passrate.refresh import REFRESH_POLICIES, refresh_due
from paced.passrate.state import histogram
from paced.tasks.base import Doc
from paced.trainer.config import DistillConfig
from paced.trainer.step import StepContext, derive_seed

log = logging.getLogger(__name__)


def initial_state(ctx: StepContext, config: DistillConfig, method: MethodSpec, docs: Sequence[Doc]) -> None:
    """Load p̂ from ``config.passrates`` when the method uses pass rates and a file is given."""
    if not (method.uses_pass_rates and config.passrates):
        return
    rows = read_passrates(config.passrates)
    missing = [d.id for d in docs if d.id not in rows]
    if missing:
        raise ValueError(f"{config.passrates}: no pass rate for {len(missing)} training problem(s), "
                         f"e.g. {missing[:5]}; re-run estimate_pass_rates on {config.data}")
    for d in docs:
        ctx.state.set_counts(d.id, *rows[d.id])


def _gather(acc: Any, outcomes: dict[str, list[int]]) -> dict[str, list[int]]:
    if acc.num_processes == 1:
        return outcomes
    from accelerate.utils import gather_object

    merged: dict[str, list[int]] = {}
    for part in gather_object([outcomes]):
        merged.update(part)
    return merged


def sample_outcomes(ctx: StepContext, acc: Any, docs: Sequence[Doc], *, k: int, step: int,
                    purpose: int) -> dict[str, list[int]]:
    """``k`` verified rollouts of this process's shard of ``docs``, gathered from every process."""
    assert ctx.sampler is not None, "pass-rate sampling needs a sampler (validate_run checks this)"
    shard = even_shard(docs, acc.process_index, acc.num_processes)
    params = ctx.config.sampling_params(n=k, seed=derive_seed(ctx.config.seed, step, purpose, acc.process_index))
    outcomes = rollout_outcomes(ctx.sampler, ctx.task, shard, params) if shard else {}
    return _gather(acc, outcomes)


def even_shard(docs: Sequence[Doc], rank: int, world: int) -> list[Doc]:
    """``docs[rank::world]``, padded to the same length on every rank by repeating the shard's last problem, so
    every rank calls ``generate`` equally often (a sharded student all-gathers its weights in each call; an
    uneven split would hang). A repeated problem's outcomes overwrite its own (same id), nothing else."""
    shard = list(docs[rank::world])
    per = -(-len(docs) // world)
    if shard and len(shard) < per:
        shard += [shard[-1]] * (per - len(shard))
    elif not shard and per:
        shard = [docs[0]] * per  # fewer problems than ranks: this rank samples a copy and its outcome is redundant
    return shard


def maybe_refresh(ctx: StepContext, acc: Any, docs: Sequence[Doc], step: int, stage_idx: int,
                  stage_steps: list[int], runlog: Any) -> None:
    """Re-estimate p̂ on every training problem if the refresh policy says so before 0-based ``step``."""
    method = ctx.method
    if not method.uses_pass_rates:
        return
    reason = refresh_due(method.refresh, step, stage_idx, stage_steps, method.refresh_every,
                         have_state=ctx.state.has([d.id for d in docs]))
    if reason is None:
        return
    ctx.state.set_outcomes(sample_outcomes(ctx, acc, docs, k=method.k, step=step, purpose=2))
    p = ctx.state.p_hat([d.id for d in docs])
    runlog.write({"event": "refresh", "step": step, "stage": stage_idx, "reason": reason,
                  "mean_p_hat": float(np.mean(p)), "histogram": histogram(ctx.state, docs)})
    log.info("pass rates refreshed before step %d (%s): mean p̂ %.3f", step + 1, reason, float(np.mean(p)))


def apply_online(ctx: StepContext, acc: Any, docs: Sequence[Doc], weights: np.ndarray, step: int) -> None:
    """Online policies: push this step's on-policy outcomes, and one probe rollout of every zero-weight
    problem of the batch, into the pass-rate windows (the same on every process)."""
    if not REFRESH_POLICIES.get(ctx.method.refresh).online:
        return
    pairs = list(ctx.online_outcomes)
    ctx.online_outcomes.clear()
    if acc.num_processes > 1:
        from accelerate.utils import gather_object

        pairs = [p for part in gather_object([pairs]) for p in part]
    zero = [d for d, w in zip(docs, weights, strict=True) if w == 0]
    if zero:
        probes = sample_outcomes(ctx, acc, zero, k=1, step=step, purpose=3)
        pairs += [(pid, outs[0]) for pid, outs in probes.items()]
    for pid, correct in pairs:
        ctx.state.push(pid, bool(correct))
