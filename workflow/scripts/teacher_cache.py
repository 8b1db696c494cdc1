"""Teacher log-probs on every fixed reference, computed once and shared by every method and seed."""
from paced.runlog import setup_logging
from paced.trainer.cache_stage import build_teacher_cache

setup_logging(snakemake.log[0])  # noqa: F821
suite = snakemake.params.suite  # noqa: F821
build_teacher_cache(
    suite["teacher"], suite["train_task"], suite["train_path"], snakemake.input.refs,  # noqa: F821
    snakemake.output.cache, top_k=suite["train"]["teacher_cache_top_k"], dtype=suite["models"]["dtype"],  # noqa: F821
    device="cuda" if suite["resources"]["gpus_sample"] > 0 else "cpu",
    chat_tokenizer=suite["teacher"] if suite["models"]["chat_template"] else None)
