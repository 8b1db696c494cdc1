"""Pass rates of a model on a task: K sampled rollouts per problem, each checked by the task's verifier.

:func:`rollout_outcomes` samples and verifies (``{id: [0/1] * K}``); :func:`estimate_pass_rates`
writes ``passrates.jsonl`` (:mod:`paced.passrate.files`) and a summary JSON (histogram of
``num_correct/k`` overall and per tier, mean p̂, provenance), atomically, sampling in resumable parts
(:mod:`paced.rollouts.sampling_job`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paced.io import provenance, write_json
from paced.passrate.estimators import estimate_pass_rate
from paced.passrate.files import write_passrates
from paced.passrate.state import PassRateState, histogram
from paced.rollouts.base import Sampler, SamplingParams
from paced.rollouts.sampling_job import run_sampling_job
from paced.tasks.base import Doc, Task

log = logging.getLogger(__name__)


def rollout_outcomes(sampler: Sampler, task: Task, docs: Sequence[Doc],
                     params: SamplingParams) -> dict[str, list[int]]:
    """``params.n`` sampled completions per problem, each verified with ``task.check``: ``{id: [0/1] * n}``."""
    rollouts = sampler.generate([task.format_prompt(d) for d in docs], params)
    if len(rollouts) != len(docs):
        raise RuntimeError(f"sampler returned {len(rollouts)} rollout lists for {len(docs)} prompts")
    return {d.id: [int(task.check(d, r.text)) for r in rs] for d, rs in zip(docs, rollouts, strict=True)}


def estimate_pass_rates(model: str | Sampler, task: str | Task, data: str | Path | Sequence[Doc],
                        out_path: str | Path, *, k: int = 8, smoothing: str = "none",
                        max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0,
                        sampler: str = "hf", sampler_kwargs: Mapping[str, Any] | None = None,
                        summary_path: str | Path | None = None, decoding: Mapping[str, Any] | None = None,
                        part_size: int = 512, workers: int = 1, overlong: str = "refuse",
                        resume_key: Mapping[str, Any] | None = None, replicas: int = 1,
                        replica_devices: Sequence[str] | None = None) -> Path:
    """K rollouts per problem → ``out_path`` (jsonl) + ``summary_path`` (default: ``summary.json``
    beside it). ``model`` is a checkpoint path (a ``sampler`` backend loads it) or a Sampler. ``decoding``:
    further :class:`~paced.rollouts.base.SamplingParams` fields (top_p, top_k, min_p, presence_penalty).

    Sampled in resumable parts of ``part_size`` problems on ``replicas`` processes (``replica_devices``: their
    devices), checked on ``workers`` processes each, after the over-long check (``overlong``: refuse or skip), as
    :func:`paced.rollouts.sampling_job.run_sampling_job` says (with ``resume_key``). A skipped problem keeps a
    row, ``num_correct = 0`` of ``k`` with ``overlong: true``: the student cannot answer within its context and
    budget, and the trainer needs a pass rate for every training problem; the summary's histogram and mean leave
    such rows out and count them (``n_overlong``).
    """
    estimate_pass_rate(0, k, smoothing)  # validates k and the smoothing name before any sampling
    params = SamplingParams.from_section({**dict(decoding or {}), "max_new_tokens": max_new_tokens,
                                          "temperature": temperature}, n=k, seed=seed)
    job = run_sampling_job("passrates", model, task, data, out_path, params, record="outcomes",
                           sampler=sampler, sampler_kwargs=sampler_kwargs, part_size=part_size, workers=workers,
                           overlong=overlong, resume_key=resume_key, replicas=replicas,
                           replica_devices=replica_devices)
    outcomes = {r["id"]: r.get("outcomes") for r in job.records}
    bad = [i for i, o in outcomes.items()
           if not isinstance(o, list) or len(o) != k or any(v not in (0, 1) for v in o)]
    if bad:  # a part file edited by hand: its header matched, its records did not come from this job
        raise ValueError(f"the saved parts of {out_path} hold {outcomes[bad[0]]!r:.60} as the outcomes of problem "
                         f"{bad[0]!r}, not k={k} 0/1 values; delete {job.store.root} and rerun")
    state = PassRateState(smoothing)
    state.set_outcomes(outcomes)
    for d in job.skipped:
        state.set_counts(d.id, 0, k)
    skipped = {d.id for d in job.skipped}
    docs = job.problems
    p = state.p_hat([d.id for d in docs])
    rows = [{"id": d.id, "num_correct": int(state.counts(d.id)[0]), "k": k, "p_hat": float(pi), "tier": d.tier,
             **({"overlong": True} if d.id in skipped else {})} for d, pi in zip(docs, p, strict=True)]
    out_path = Path(out_path)
    write_passrates(out_path, rows)
    sampled = job.docs
    mean = float(np.mean(state.p_hat([d.id for d in sampled]))) if sampled else float("nan")
    config = {"model": str(model) if not isinstance(model, Sampler) else type(model).__name__,
              "task": job.task.name, "data": str(data) if isinstance(data, (str, Path)) else None, "k": k,
              "smoothing": smoothing, "max_new_tokens": max_new_tokens, "temperature": temperature,
              "decoding": dict(decoding or {}), "sampler": sampler, "part_size": part_size, "overlong": overlong}
    write_json(summary_path or out_path.parent / "summary.json",
               {"n": len(sampled), "mean_p_hat": mean if sampled else None, "histogram": histogram(state, sampled),
                "n_overlong": len(skipped), "overlong_ids": [d.id for d in job.skipped],
                "provenance": provenance(config, seed)})
    job.done()
    log.info("pass rates of %d problems written to %s (mean p̂ %.3f%s)", len(sampled), out_path, mean,
             f"; {len(skipped)} over-long problems counted 0/{k}" if skipped else "")
    return out_path
