"""Shipped worlds: toy worlds built once by :func:`paced.world.build_world` and shipped inside the package.

The world is built by thresholds (the first checkpoint whose accuracy falls in a window), so floating-point
differences between CPUs can select another checkpoint and build a different world. A world built once and
shipped as checksummed files gives every machine the same teacher, student and data sets; what a second
machine can then still change is the distillation and evaluation arithmetic, not the world.

An artifact is a folder ``paced/world/shipped/<preset>-v<version>/`` holding a built world (``world.json``,
the jsonl sets, ``teacher/`` and ``student/`` with their tokenizers) and ``MANIFEST.json``: the sha256 and
size of every other file, the preset, seed and worker count it was built with, and the paced version, git
hash and package versions of the build. Make one with ``python -m paced.world.shipped make default``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paced.registry import Registry

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).with_name("shipped")
MANIFEST = "MANIFEST.json"
FIX = "reinstall paced (pip install --force-reinstall --no-deps paced) or build the world anew (world.build: true)"


class ShippedWorldError(ValueError):
    """A shipped world's files do not match its MANIFEST (missing, altered or unlisted)."""


@dataclass(frozen=True)
class ShippedWorld:
    """One shipped artifact: the world preset and seed it was built from, and its version.

    A new build of a preset (a changed recipe) gets a new version, hence a new folder and a new MANIFEST
    digest, so a workflow whose params carry that digest rebuilds its world on upgrade.
    """

    preset: str
    seed: int
    version: int
    workers: int = 2  # as the build_world rule builds (teacher and student side by side)

    @property
    def name(self) -> str:
        return f"{self.preset}-v{self.version}"

    @property
    def path(self) -> Path:
        return SHIPPED_DIR / self.name


SHIPPED_WORLDS: Registry[ShippedWorld] = Registry("shipped world")
SHIPPED_WORLDS.add("default", ShippedWorld(preset="default", seed=0, version=1))


def shipped_for(preset: str, seed: int) -> ShippedWorld | None:
    """The artifact built from ``preset`` at ``seed``, or ``None`` (such a world must be built)."""
    if preset not in SHIPPED_WORLDS:
        return None
    art = SHIPPED_WORLDS.get(preset)
    return art if art.seed == int(seed) else None


def shipped_world(name: str) -> Path:
    """The folder of the shipped world of preset ``name`` (unverified; see :func:`verify`)."""
    art = SHIPPED_WORLDS.get(name)
    if not (art.path / MANIFEST).is_file():
        raise ShippedWorldError(f"shipped world {art.name}: {art.path / MANIFEST} is missing; {FIX}")
    return art.path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_digest(path: str | Path) -> str:
    """sha256 of a world folder's ``MANIFEST.json``: one string that names every file's content."""
    return sha256_file(Path(path) / MANIFEST)


def _world_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def verify(path: str | Path) -> dict[str, Any]:
    """Check every file of the world at ``path`` against its MANIFEST; returns the manifest.

    Raises :class:`ShippedWorldError` with one line naming the first file that is missing, altered or not
    listed, and the fix.
    """
    root = Path(path)
    if not (root / MANIFEST).is_file():
        raise ShippedWorldError(f"world {root}: {MANIFEST} is missing; {FIX}")
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    listed: dict[str, dict[str, Any]] = manifest["files"]
    for rel, entry in sorted(listed.items()):
        f = root / rel
        if not f.is_file():
            raise ShippedWorldError(f"world {root}: {rel} is missing; {FIX}")
        digest = sha256_file(f)
        if digest != entry["sha256"]:
            raise ShippedWorldError(f"world {root}: {rel} has sha256 {digest[:16]}…, its MANIFEST says "
                                    f"{entry['sha256'][:16]}… (a corrupted or edited copy); {FIX}")
    extra = sorted(set(_world_files(root)) - set(listed))
    if extra:
        raise ShippedWorldError(f"world {root}: {extra[0]} is not in its {MANIFEST} ({len(extra)} unlisted "
                                f"file(s)); {FIX}")
    return manifest


def write_manifest(world_dir: str | Path, art: ShippedWorld) -> dict[str, Any]:
    """Write ``MANIFEST.json`` for the built world in ``world_dir`` (the sha256 and size of every file, and
    what built it); returns it."""
    from paced import __version__
    from paced.io import git_hash, package_versions, write_json

    root = Path(world_dir)
    manifest = {
        "name": art.name, "preset": art.preset, "seed": art.seed, "workers": art.workers,
        "built_with": f"paced.world.build_world(WORLD_PRESETS.get({art.preset!r})() with seed={art.seed}, "
                      f"workers={art.workers})",
        "paced_version": __version__, "git": git_hash(Path(__file__).parent), "versions": package_versions(),
        "files": {rel: {"sha256": sha256_file(root / rel), "bytes": (root / rel).stat().st_size}
                  for rel in _world_files(root)},
    }
    write_json(root / MANIFEST, manifest)
    return manifest


def install_world(name: str, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Copy the shipped world of preset ``name`` into ``out_dir`` after verifying it; returns its manifest.

    The copy is made in a hidden sibling and verified again before it is renamed onto ``out_dir``, so a
    failed or killed install leaves no half-written world.
    """
    src = shipped_world(name)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True to replace it")
    manifest = verify(src)
    tmp = out.parent / f".{out.name}.installing"
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(src, tmp)
        verify(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("installed the shipped world %s (%d files, manifest %s) into %s", manifest["name"],
             len(manifest["files"]), manifest_digest(out)[:16], out)
    return manifest


def make_shipped(name: str, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the world of preset ``name`` as its artifact says (preset, seed, workers) and write its MANIFEST.

    ``out_dir`` defaults to the artifact's folder in the package (this is how it was made); pass another
    folder to rebuild on this machine and compare the two MANIFESTs.
    """
    from paced.world import WORLD_PRESETS, build_world

    art = SHIPPED_WORLDS.get(name)
    out = Path(out_dir) if out_dir is not None else art.path
    cfg = dataclasses.replace(WORLD_PRESETS.get(art.preset)(), seed=art.seed)
    build_world(cfg, out, overwrite=True, workers=art.workers)
    return write_manifest(out, art)


def compare_manifests(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Files whose sha256 differ between two manifests (or that only one lists), sorted."""
    fa, fb = a["files"], b["files"]
    return sorted(rel for rel in set(fa) | set(fb) if fa.get(rel, {}).get("sha256") != fb.get(rel, {}).get("sha256"))


def main(argv: list[str] | None = None) -> int:
    """``python -m paced.world.shipped {make,verify,compare}``."""
    ap = argparse.ArgumentParser(prog="python -m paced.world.shipped", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="build a shipped world and write its MANIFEST")
    mk.add_argument("name", help=f"one of {SHIPPED_WORLDS.names()}")
    mk.add_argument("--out", default=None, help="folder (default: the artifact's folder in the package)")
    vf = sub.add_parser("verify", help="check a world folder against its MANIFEST")
    vf.add_argument("path")
    cp = sub.add_parser("compare", help="list the files whose sha256 differ between two world folders")
    cp.add_argument("a")
    cp.add_argument("b")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        _run_command(args)
    except ShippedWorldError as err:  # one line naming the file and the fix, not a traceback
        log.error("%s", err)
        return 1
    return 0


def _run_command(args: argparse.Namespace) -> None:
    if args.cmd == "make":
        m = make_shipped(args.name, args.out)
        size_mb = sum(f["bytes"] for f in m["files"].values()) / 1e6
        log.info("%s: %d files, %.1f MB", m["name"], len(m["files"]), size_mb)
    elif args.cmd == "verify":
        m = verify(args.path)
        log.info("%s: all %d files match %s (digest %s)", args.path, len(m["files"]), MANIFEST,
                 manifest_digest(args.path)[:16])
    else:
        diff = compare_manifests(*(json.loads((Path(p) / MANIFEST).read_text(encoding="utf-8"))
                                   for p in (args.a, args.b)))
        log.info("%d file(s) differ%s", len(diff), "".join(f"\n  {d}" for d in diff))


if __name__ == "__main__":
    raise SystemExit(main())
