"""The embedded toy world: tokenizer, data, a tiny teacher and student, calibration.

``build_world(WorldConfig.preset("default"), "world/")`` builds it offline in a few minutes.
"""

from __future__ import annotations

from paced.world.build import build_world
from paced.world.config import WORLD_PRESETS, ModelSpec, TrainSpec, WorldConfig

__all__ = ["WORLD_PRESETS", "ModelSpec", "TrainSpec", "WorldConfig", "build_world"]
