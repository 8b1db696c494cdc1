"""Reference responses for teacher-forced training: sampled from the teacher and verified, or the data's own.

- :func:`generate_references` → ``references.jsonl`` rows ``{id, reference, correct, tier}``: the
  first verified-correct of ``attempts`` teacher samples, else the first sample (or no row at all
  with ``only_correct=True``), and a summary JSON.
- :func:`gold_references`: the data's worked solutions, same format.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paced.io import provenance, write_json, write_jsonl
from paced.passrate.estimate import resolve_inputs
from paced.rollouts.base import Sampler, SamplingParams
from paced.tasks.base import Doc, Task, get_task

log = logging.getLogger(__name__)


def generate_references(teacher: str | Sampler, task: str | Task, data: str | Path | Sequence[Doc],
                        out_path: str | Path, *, attempts: int = 1, only_correct: bool = False,
                        max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0,
                        sampler: str = "hf", sampler_kwargs: Mapping[str, Any] | None = None,
                        summary_path: str | Path | None = None, decoding: Mapping[str, Any] | None = None) -> Path:
    """Teacher responses per problem → ``out_path`` (jsonl) + a summary (default:
    ``references_summary.json`` beside it). See the module docstring for which sample is kept."""
    params = SamplingParams.from_section({**dict(decoding or {}), "max_new_tokens": max_new_tokens,
                                          "temperature": temperature}, n=attempts, seed=seed)
    samp, task_obj, docs = resolve_inputs(teacher, task, data, sampler, sampler_kwargs)
    rollouts = samp.generate([task_obj.format_prompt(d) for d in docs], params)
    rows = []
    for doc, rs in zip(docs, rollouts, strict=True):
        verdicts = [task_obj.check(doc, r.text) for r in rs]
        pick = verdicts.index(True) if any(verdicts) else (None if only_correct else 0)
        if pick is not None:
            rows.append({"id": doc.id, "reference": rs[pick].text, "correct": bool(verdicts[pick]),
                         "tier": doc.tier})
    out_path = Path(out_path)
    write_jsonl(out_path, rows)
    n_correct = sum(r["correct"] for r in rows)
    config = {"teacher": str(teacher) if not isinstance(teacher, Sampler) else type(teacher).__name__,
              "task": task_obj.name, "data": str(data) if isinstance(data, (str, Path)) else None,
              "attempts": attempts, "only_correct": only_correct, "max_new_tokens": max_new_tokens,
              "temperature": temperature, "sampler": sampler}
    write_json(summary_path or out_path.parent / "references_summary.json",
               {"n_problems": len(docs), "n_references": len(rows), "n_correct": n_correct,
                "provenance": provenance(config, seed)})
    log.info("%d references (%d verified correct) of %d problems written to %s",
             len(rows), n_correct, len(docs), out_path)
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
