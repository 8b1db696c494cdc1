"""Reference responses for every training problem (teacher-forced FKL trains on these)."""
from paced.runlog import setup_logging
from paced.stages import generate_references, gold_references
from paced.suite_runs import sampler_kwargs, suite_task

setup_logging(snakemake.log[0])  # noqa: F821
suite, out = snakemake.params.suite, snakemake.output  # noqa: F821
samp, refs = suite["sampling"], suite["references"]
task = suite_task(suite, suite["train_task"], suite["teacher"])
if refs["source"] == "gold":
    gold_references(task, suite["train_path"], out.refs, summary_path=out.summary)
else:
    generate_references(
        suite["teacher"], task, suite["train_path"], out.refs, summary_path=out.summary,
        attempts=refs["attempts"], only_correct=refs["verified_only"], max_new_tokens=samp["max_new_tokens"],
        temperature=samp["temperature"], seed=suite["world"]["seed"], sampler=samp["backend"],
        sampler_kwargs=sampler_kwargs(suite))
