"""Every figure of the report, from results files only."""
from pathlib import Path

from paced.io import atomic_write_text
from paced.report import make_all_figures, read_summary
from paced.runlog import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
inp = snakemake.input  # noqa: F821
logs = [str(Path(r).with_name("log.jsonl")) for r in inp.runs if Path(r).with_name("log.jsonl").exists()]
after = [p for p in inp.after_rates if Path(p).stat().st_size > 0]  # empty = that run failed
paths = make_all_figures(read_summary(inp.summary), Path(snakemake.output.figures),  # noqa: F821
                         snr=list(inp.snr), passrates=(inp.base_rates, after[0]) if after else None, logs=logs)
atomic_write_text(snakemake.output.flag, "\n".join(str(p) for p in paths) + "\n")  # noqa: F821
