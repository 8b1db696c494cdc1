"""When and how the pass-rate state is (re-)estimated during training.

- initial: from ``DistillConfig.passrates`` if given, else K rollouts of the student before step 1;
- ``per_stage``: again at the start of every later stage;
- ``every_n``: again every ``refresh_every`` steps;
- ``online``: each on-policy sample's verified outcome enters its problem's window (after the step).
Estimation is sharded over processes and gathered, so every process holds the same state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paced.methods import MethodSpec
from paced.tasks.base import DataError, Doc
from paced.trainer.config import DistillConfig
from paced.trainer.step import StepContext, derive_seed
from paced.trainer.weights import histogram, rollout_outcomes

log = logging.getLogger(__name__)


def read_passrates(path: str | Path) -> dict[str, tuple[int, int]]:
    """``{id: (num_correct, k)}`` from a ``passrates.jsonl`` written by ``estimate_pass_rates``."""
    out: dict[str, tuple[int, int]] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out[str(row["id"])] = (int(row["num_correct"]), int(row["k"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}:{lineno}: a pass-rate row needs id, num_correct, k ({err})") from err
    return out


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


def _due(method: MethodSpec, step: int, stage_idx: int, stage_steps: list[int], empty: bool) -> str | None:
    if not method.uses_pass_rates:
        return None
    if empty:
        return "initial"
    if method.refresh == "per_stage" and stage_idx > 0 and step == sum(stage_steps[:stage_idx]):
        return "stage_start"
    if method.refresh == "every_n" and step > 0 and step % int(method.refresh_every or 1) == 0:
        return "every_n"
    return None


def maybe_refresh(ctx: StepContext, acc: Any, docs: Sequence[Doc], step: int, stage_idx: int,
                  stage_steps: list[int], runlog: Any) -> None:
    """Re-estimate p̂ on every training problem if the schedule says so before 0-based ``step``."""
    reason = _due(ctx.method, step, stage_idx, stage_steps, not ctx.state.has([d.id for d in docs]))
    if reason is None:
        return
    assert ctx.sampler is not None, "pass-rate refresh needs a sampler (validate_run checks this)"
    shard = list(docs[acc.process_index::acc.num_processes])
    outcomes = rollout_outcomes(ctx.sampler, ctx.task, shard, k=ctx.method.k,
                                max_new_tokens=ctx.config.max_new_tokens, temperature=1.0,
                                seed=derive_seed(ctx.config.seed, step, 2, acc.process_index))
    if acc.num_processes > 1:
        from accelerate.utils import gather_object

        merged: dict[str, list[int]] = {}
        for part in gather_object([outcomes]):
            merged.update(part)
        outcomes = merged
    ctx.state.set_outcomes(outcomes)
    p = ctx.state.p_hat([d.id for d in docs])
    runlog.write({"event": "refresh", "step": step, "stage": stage_idx, "reason": reason,
                  "mean_p_hat": float(np.mean(p)), "histogram": histogram(ctx.state, docs)})
    log.info("pass rates refreshed before step %d (%s): mean p̂ %.3f", step + 1, reason, float(np.mean(p)))


def apply_online(ctx: StepContext, acc: Any) -> None:
    """Push this step's on-policy outcomes (from every process) into the pass-rate windows."""
    if ctx.method.refresh != "online":
        return
    pairs = list(ctx.online_outcomes)
    ctx.online_outcomes.clear()
    if acc.num_processes > 1:
        from accelerate.utils import gather_object

        pairs = [p for part in gather_object([pairs]) for p in part]
    for pid, correct in pairs:
        ctx.state.push(pid, bool(correct))
