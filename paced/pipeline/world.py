"""Stage ``build_world``: the embedded toy world (data, tokenizer, teacher, student), built offline."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def params(suite: Any) -> dict[str, Any]:
    """What determines the world: its preset and seed (nothing else in the config)."""
    return {"preset": suite.world.preset, "seed": int(suite.world.seed)}


def run(p: dict[str, Any], world_json: str, *, threads: int = 1) -> None:
    """Build the world into ``world_json``'s directory. The rule's output (world.json) is missing whenever
    this runs, so a leftover directory is stale and is rebuilt."""
    from paced.world import WORLD_PRESETS, build_world

    cfg = dataclasses.replace(WORLD_PRESETS.get(p["preset"])(), seed=p["seed"])
    build_world(cfg, Path(world_json).parent, overwrite=True, workers=min(2, int(threads)))
