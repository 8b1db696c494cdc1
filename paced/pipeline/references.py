"""Stage ``references``: the responses teacher-forced stages train on (teacher samples, or gold solutions)."""

from __future__ import annotations

from typing import Any

from paced.pipeline.common import device, models_slice, sampling_job_kwargs, task_for, vllm_slice


def params(suite: Any) -> dict[str, Any]:
    """What determines the references: the teacher, the pool, the references section, sampling and seed."""
    return {"teacher": suite.teacher, "task": suite.train_task, "data": suite.train_path,
            "models": models_slice(suite.models), "references": dict(suite.references.values),
            "sampling": dict(suite.sampling.values), "seed": int(suite.world.seed),
            "device": device(suite.resources.gpus_sample), "vllm": vllm_slice(suite)}


def run(p: dict[str, Any], refs: str, summary: str, *, workers: int = 1, gpus: int = 0) -> None:
    """Write ``refs`` and ``summary``; teacher samples are drawn in resumable parts beside ``refs`` on one replica
    per GPU of the job's ``gpus`` (per ``vllm.tensor_parallel_size`` GPUs) and checked on ``workers`` processes
    (the job's threads, shared among the replicas)."""
    from paced.references import generate_references, gold_references

    task = task_for(p["task"], p["teacher"], p["models"])
    r = p["references"]
    if r["source"] == "gold":
        gold_references(task, p["data"], refs, summary_path=summary)
        return
    generate_references(p["teacher"], task, p["data"], refs, summary_path=summary, attempts=r["attempts"],
                        only_correct=r["verified_only"], **sampling_job_kwargs(p, workers=workers, gpus=gpus))
