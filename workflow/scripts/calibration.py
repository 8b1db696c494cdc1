"""The toy world's regime evidence: pool p̂ by tier, and the uniform run's tiers and probe vs step."""
from pathlib import Path

from paced.io import read_json, read_jsonl, write_json
from paced.report import read_summary
from paced.report.calibration import plot_world_calibration, world_calibration
from paced.runlog import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
inp, out = snakemake.input, snakemake.output  # noqa: F821
record = world_calibration(read_json(inp.world), read_jsonl(inp.base_rates), read_summary(inp.summary),
                           method=snakemake.params.method)  # noqa: F821
plot_world_calibration(record, Path(out.figure).with_suffix(""))
write_json(out.record, record)
