"""Stage ``build_world``: the embedded toy world (data, tokenizer, teacher, student).

A preset and seed with a shipped artifact (:mod:`paced.world.shipped`; ``default`` at seed 0) is installed from
the package after its checksums are verified, so every machine distils from the same world; ``world.build:
true``, another seed, or a preset without an artifact (``tiny``) builds it offline instead.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def params(suite: Any) -> dict[str, Any]:
    """What determines the world: its preset and seed, and for a shipped world its artifact and MANIFEST digest
    (so that a new artifact version reinstalls the world; a built world's params are unchanged)."""
    from paced.world.shipped import manifest_digest, shipped_for, shipped_world

    preset, seed = suite.world.preset, int(suite.world.seed)
    out: dict[str, Any] = {"preset": preset, "seed": seed}
    art = None if suite.world.values.get("build", False) else shipped_for(preset, seed)
    if art is not None:
        out["shipped"] = {"name": art.name, "manifest_sha256": manifest_digest(shipped_world(art.preset))}
    return out


def run(p: dict[str, Any], world_json: str, *, threads: int = 1) -> None:
    """Install or build the world into ``world_json``'s directory. The rule's output (world.json) is missing
    whenever this runs, so a leftover directory is stale and is replaced."""
    out = Path(world_json).parent
    if "shipped" in p:
        from paced.world.shipped import install_world, manifest_digest, shipped_world

        digest = manifest_digest(shipped_world(p["preset"]))
        if digest != p["shipped"]["manifest_sha256"]:
            raise ValueError(f"the shipped world {p['shipped']['name']} changed since the workflow started (MANIFEST "
                             f"{digest[:16]}…, params {p['shipped']['manifest_sha256'][:16]}…); rerun snakemake")
        install_world(p["preset"], out, overwrite=True)
        return
    from paced.world import WORLD_PRESETS, build_world

    cfg = dataclasses.replace(WORLD_PRESETS.get(p["preset"])(), seed=p["seed"])
    build_world(cfg, out, overwrite=True, workers=min(2, int(threads)))
