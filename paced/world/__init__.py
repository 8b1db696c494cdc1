"""The embedded toy world: tokenizer, data, a tiny teacher and student, calibration.

``build_world(WorldConfig.preset("default"), "world/")`` builds it offline in a few minutes.
"""

from __future__ import annotations

from typing import Any

from paced.world.config import WORLD_PRESETS, ModelSpec, TrainSpec, WorldConfig


def __getattr__(name: str) -> Any:
    # build_world on first use: importing the package (for its config, or to run ``python -m
    # paced.world.worker``) must not import the worker module early, nor torch and transformers
    if name == "build_world":
        from paced.world.build import build_world

        return build_world
    raise AttributeError(f"module 'paced.world' has no attribute {name!r}")


__all__ = ["WORLD_PRESETS", "ModelSpec", "TrainSpec", "WorldConfig", "build_world"]
