"""Pass rates of a model on a task: K sampled rollouts per problem, each checked by the task's verifier.

:func:`rollout_outcomes` samples and verifies (``{id: [0/1] * K}``); :func:`estimate_pass_rates`
writes ``passrates.jsonl`` (:mod:`paced.passrate.files`) and a summary JSON (histogram of
``num_correct/k`` overall and per tier, mean p̂, provenance), atomically.
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
from paced.rollouts.base import Sampler, SamplingParams, get_sampler
from paced.tasks.base import Doc, Task, get_task

log = logging.getLogger(__name__)


def rollout_outcomes(sampler: Sampler, task: Task, docs: Sequence[Doc],
                     params: SamplingParams) -> dict[str, list[int]]:
    """``params.n`` sampled completions per problem, each verified with ``task.check``: ``{id: [0/1] * n}``."""
    rollouts = sampler.generate([task.format_prompt(d) for d in docs], params)
    if len(rollouts) != len(docs):
        raise RuntimeError(f"sampler returned {len(rollouts)} rollout lists for {len(docs)} prompts")
    return {d.id: [int(task.check(d, r.text)) for r in rs] for d, rs in zip(docs, rollouts, strict=True)}


def resolve_inputs(model: str | Sampler, task: str | Task, data: str | Path | Sequence[Doc], sampler: str,
             sampler_kwargs: Mapping[str, Any] | None) -> tuple[Sampler, Task, list[Doc]]:
    task_obj = get_task(task) if isinstance(task, str) else task
    docs = task_obj.load(data) if isinstance(data, (str, Path)) else list(data)
    if isinstance(model, Sampler):
        return model, task_obj, docs
    return get_sampler(sampler, model=str(model), **dict(sampler_kwargs or {})), task_obj, docs


def estimate_pass_rates(model: str | Sampler, task: str | Task, data: str | Path | Sequence[Doc],
                        out_path: str | Path, *, k: int = 8, smoothing: str = "none",
                        max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0,
                        sampler: str = "hf", sampler_kwargs: Mapping[str, Any] | None = None,
                        summary_path: str | Path | None = None, decoding: Mapping[str, Any] | None = None) -> Path:
    """K rollouts per problem → ``out_path`` (jsonl) + ``summary_path`` (default: ``summary.json``
    beside it). ``model`` is a checkpoint path (a ``sampler`` backend loads it) or a Sampler. ``decoding``:
    further :class:`~paced.rollouts.base.SamplingParams` fields (top_p, top_k, min_p, presence_penalty)."""
    estimate_pass_rate(0, k, smoothing)  # validates k and the smoothing name before any sampling
    samp, task_obj, docs = resolve_inputs(model, task, data, sampler, sampler_kwargs)
    params = SamplingParams.from_section({**dict(decoding or {}), "max_new_tokens": max_new_tokens,
                                          "temperature": temperature}, n=k, seed=seed)
    outcomes = rollout_outcomes(samp, task_obj, docs, params)
    state = PassRateState(smoothing)
    state.set_outcomes(outcomes)
    p = state.p_hat([d.id for d in docs])
    rows = [{"id": d.id, "num_correct": int(sum(outcomes[d.id])), "k": k, "p_hat": float(pi), "tier": d.tier}
            for d, pi in zip(docs, p, strict=True)]
    out_path = Path(out_path)
    write_passrates(out_path, rows)
    config = {"model": str(model) if not isinstance(model, Sampler) else type(model).__name__,
              "task": task_obj.name, "data": str(data) if isinstance(data, (str, Path)) else None, "k": k,
              "smoothing": smoothing, "max_new_tokens": max_new_tokens, "temperature": temperature,
              "decoding": dict(decoding or {}),
              "sampler": sampler}
    write_json(summary_path or out_path.parent / "summary.json",
               {"n": len(docs), "mean_p_hat": float(np.mean(p)), "histogram": histogram(state, docs),
                "provenance": provenance(config, seed)})
    log.info("pass rates of %d problems written to %s (mean p̂ %.3f)", len(docs), out_path, float(np.mean(p)))
    return out_path
