"""Reference responses for every training problem (teacher-forced FKL trains on these)."""
from paced.runlog import setup_logging
from paced.stages import generate_references, gold_references

setup_logging(snakemake.log[0])  # noqa: F821
suite, out = snakemake.params.suite, snakemake.output  # noqa: F821
samp, refs = suite["sampling"], suite["references"]
if refs["source"] == "gold":
    gold_references(suite["train_task"], suite["train_path"], out.refs, summary_path=out.summary)
else:
    generate_references(
        suite["teacher"], suite["train_task"], suite["train_path"], out.refs, summary_path=out.summary,
        attempts=refs["attempts"], only_correct=refs["verified_only"], max_new_tokens=samp["max_new_tokens"],
        temperature=samp["temperature"], seed=suite["world"]["seed"], sampler=samp["backend"],
        sampler_kwargs={"batch_size": samp["batch_size"]})
