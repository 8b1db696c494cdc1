"""K student rollouts per training problem -> p̂ per problem (the base student, or a distilled one)."""
from pathlib import Path

from paced.io import atomic_write_text
from paced.runlog import run_cell, setup_logging
from paced.stages import estimate_pass_rates
from paced.suite_runs import sampler_kwargs, suite_task
from paced.trainer.checkpoint import checkpoint_dir

setup_logging(snakemake.log[0])  # noqa: F821
suite, wc = snakemake.params.suite, snakemake.wildcards  # noqa: F821
model = suite["student"]
if "method" in wc.keys():  # after distillation: the run's final checkpoint
    run_dir = Path(suite["results_dir"]) / "runs" / wc.method / f"seed{wc.seed}"
    model = str(checkpoint_dir(run_dir, suite["train"]["steps"]))
samp, pr, out = suite["sampling"], suite["passrate"], snakemake.output  # noqa: F821


def estimate() -> None:
    estimate_pass_rates(
        model, suite_task(suite, suite["train_task"], model), suite["train_path"], out.rates,
        summary_path=out.summary, k=pr["k"],
        smoothing=pr["smoothing"], max_new_tokens=samp["max_new_tokens"], temperature=samp["temperature"],
        seed=suite["world"]["seed"], sampler=samp["backend"], sampler_kwargs=sampler_kwargs(suite))


if "method" in wc.keys():  # a failed run must not stop the grid: record it (the figures skip it)
    run_cell(estimate, [out.summary], on_error=suite["config"]["on_error"], context={"method": wc.method})
    if not Path(out.rates).exists():
        atomic_write_text(out.rates, "")
else:
    estimate()
