"""Reference responses for teacher-forced training: sampled from the teacher and verified, or the data's own.

- :func:`generate_references` → ``references.jsonl`` rows ``{id, reference, correct, tier}``: the
  first verified-correct of ``attempts`` teacher samples, else the first sample (or no row at all
  with ``only_correct=True``), and a summary JSON; sampled in resumable parts (:mod:`paced.rollouts.sampling_job`).
- :func:`gold_references`: the data's worked solutions, same format.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paced.io import provenance, write_json, write_jsonl
from paced.rollouts.base import Sampler, SamplingParams
from paced.rollouts.sampling_job import run_sampling_job
from paced.tasks.base import Doc, Task, get_task

log = logging.getLogger(__name__)


def generate_references(teacher: str | Sampler, task: str | Task, data: str | Path | Sequence[Doc],
                        out_path: str | Path, *, attempts: int = 1, only_correct: bool = False,
                        max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0,
                        sampler: str = "hf", sampler_kwargs: Mapping[str, Any] | None = None,
                        summary_path: str | Path | None = None, decoding: Mapping[str, Any] | None = None,
                        part_size: int = 512, workers: int = 1, overlong: str = "refuse",
                        resume_key: Mapping[str, Any] | None = None, replicas: int = 1,
                        replica_devices: Sequence[str] | None = None) -> Path:
    """Teacher responses per problem → ``out_path`` (jsonl) + a summary (default:
    ``references_summary.json`` beside it). See the module docstring for which sample is kept.

    Sampled in resumable parts of ``part_size`` problems on ``replicas`` processes (``replica_devices``: their
    devices), checked on ``workers`` processes each, after the over-long check (``overlong``: refuse or skip), as
    :func:`paced.rollouts.sampling_job.run_sampling_job` says (with ``resume_key``). A skipped problem gets no row
    (the trainer leaves a problem without a reference out of teacher-forced training); the summary counts them
    (``n_overlong``)."""
    params = SamplingParams.from_section({**dict(decoding or {}), "max_new_tokens": max_new_tokens,
                                          "temperature": temperature}, n=attempts, seed=seed)
    job = run_sampling_job("references", teacher, task, data, out_path, params, record="first_correct",
                           sampler=sampler, sampler_kwargs=sampler_kwargs, part_size=part_size, workers=workers,
                           overlong=overlong, resume_key=resume_key, replicas=replicas,
                           replica_devices=replica_devices)
    bad = [r["id"] for r in job.records if not isinstance(r.get("reference"), str) or "correct" not in r]
    if bad:  # a part file edited by hand: its header matched, its records did not come from this job
        raise ValueError(f"the saved parts of {out_path} hold no reference text for problem {bad[0]!r}; delete "
                         f"{job.store.root} and rerun")
    rows = [{"id": d.id, "reference": r["reference"], "correct": bool(r["correct"]), "tier": d.tier}
            for d, r in zip(job.docs, job.records, strict=True) if r["correct"] or not only_correct]
    out_path = Path(out_path)
    write_jsonl(out_path, rows)
    n_correct = sum(r["correct"] for r in rows)
    config = {"teacher": str(teacher) if not isinstance(teacher, Sampler) else type(teacher).__name__,
              "task": job.task.name, "data": str(data) if isinstance(data, (str, Path)) else None,
              "attempts": attempts, "only_correct": only_correct, "max_new_tokens": max_new_tokens,
              "temperature": temperature, "sampler": sampler, "part_size": part_size, "overlong": overlong}
    write_json(summary_path or out_path.parent / "references_summary.json",
               {"n_problems": len(job.problems), "n_references": len(rows), "n_correct": n_correct,
                "n_overlong": len(job.skipped), "overlong_ids": [d.id for d in job.skipped],
                "provenance": provenance(config, seed)})
    job.done()
    log.info("%d references (%d verified correct) of %d problems written to %s%s", len(rows), n_correct,
             len(job.problems), out_path, f"; {len(job.skipped)} over-long problems skipped" if job.skipped else "")
    return out_path


def gold_references(task: str | Task, data: str | Path | Sequence[Doc], out_path: str | Path, *,
                    summary_path: str | Path | None = None) -> Path:
    """The data's own worked solutions as references (``references.source: gold``), same format as
    :func:`generate_references`; problems without a solution get no row."""
    task_obj = get_task(task) if isinstance(task, str) else task
    docs = task_obj.load(data) if isinstance(data, (str, Path)) else list(data)
    rows = [{"id": d.id, "reference": ref, "correct": True, "tier": d.tier}
            for d in docs if (ref := task_obj.reference(d)) is not None]
    if not rows:
        raise ValueError(f"references.source=gold, but no problem of {task_obj.name} carries a solution; "
                         f"use references.source: teacher")
    out_path = Path(out_path)
    write_jsonl(out_path, rows)
    write_json(summary_path or out_path.parent / "references_summary.json",
               {"n_problems": len(docs), "n_references": len(rows), "n_correct": len(rows),
                "provenance": provenance({"task": task_obj.name, "source": "gold"})})
    return out_path
