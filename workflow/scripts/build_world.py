"""Build the embedded toy world (data, tokenizer, teacher, student) offline; its calibration evidence is
the report rule `calibration`, from the base pass rates and the uniform run."""
import dataclasses

from paced.runlog import setup_logging
from paced.world import WORLD_PRESETS, build_world

setup_logging(snakemake.log[0])  # noqa: F821
world = snakemake.params.suite["world"]  # noqa: F821
cfg = dataclasses.replace(WORLD_PRESETS.get(world["preset"])(), seed=world["seed"])
# the rule's output (world.json) is missing whenever this runs, so a leftover directory is stale
build_world(cfg, snakemake.params.out_dir, overwrite=True, workers=min(2, snakemake.threads))  # noqa: F821
