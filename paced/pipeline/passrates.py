"""Stage ``passrates``: K verified rollouts per training problem -> p̂ per problem, for the base student or for
the final checkpoint of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paced.pipeline.common import device, models_slice, sampling_job_kwargs, task_for, vllm_slice


def params(suite: Any, model: str) -> dict[str, Any]:
    """What determines the pass rates of ``model``: the model, the pool, K and smoothing, the sampling
    settings (``part_size`` among them: it sets each part's seed) and seed (the world seed), the device."""
    return {"model": model, "task": suite.train_task, "data": suite.train_path, "models": models_slice(suite.models),
            "sampling": dict(suite.sampling.values), "k": int(suite.passrate.k),
            "smoothing": suite.passrate.smoothing, "seed": int(suite.world.seed),
            "device": device(suite.resources.gpus_sample), "vllm": vllm_slice(suite)}


def run(p: dict[str, Any], rates: str, summary: str, *, workers: int = 1, gpus: int = 0) -> None:
    """Write ``rates`` (passrates.jsonl) and ``summary`` (histogram, provenance), sampling in resumable parts
    beside ``rates`` on one replica per GPU of the job's ``gpus`` (per ``vllm.tensor_parallel_size`` GPUs) and
    checking on ``workers`` processes (the job's threads, shared among the replicas)."""
    from paced.passrate.estimate import estimate_pass_rates

    estimate_pass_rates(p["model"], task_for(p["task"], p["model"], p["models"]), p["data"], rates,
                        summary_path=summary, k=p["k"], smoothing=p["smoothing"],
                        **sampling_job_kwargs(p, workers=workers, gpus=gpus))


def run_after(p: dict[str, Any], rates: str, summary: str, *, on_error: str, context: dict[str, Any],
              workers: int = 1, gpus: int = 0) -> None:
    """Pass rates of a distilled run; a failure that belongs to the cell is recorded (the figures skip it)."""
    from paced.io import atomic_write_text
    from paced.pipeline.cells import check_run, run_cell

    def estimate() -> None:
        check_run(Path(p["model"]).parents[1] / "run.json", p["model"])  # <run>/checkpoints/step<N>
        run(p, rates, summary, workers=workers, gpus=gpus)

    run_cell(estimate, [summary], on_error=on_error, context=context)
    if not Path(rates).exists():
        atomic_write_text(rates, "")
