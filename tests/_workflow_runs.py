"""The .test workflow in a private copy of the repository's workflow files, for slow end-to-end checks.

Each run gets its own working directory (its own ``.snakemake`` lock and metadata, so it never touches the
repository's ``.test/results`` or a run someone else has going) and its own results directory. The
uninterrupted reference run is made once per test session and shared by every test that asks for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "workflow", "config", "profiles", ".test/config")
# The .test config, made to learn enough in 8 steps that seeds change the numbers; no SNR figure (saves ~20 s).
OVERRIDES: dict[str, Any] = {"train": {"lr": 1.0e-2}, "snr": {"enabled": False}}
_CACHE: dict[str, Path] = {}


def workdir(tmp: Path) -> Path:
    """A copy of the workflow files under ``tmp`` (no results, no .snakemake)."""
    tmp.mkdir(parents=True, exist_ok=True)
    for rel in COPIED:
        src, dst = ROOT / rel, tmp / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return tmp


def command(wd: Path, results: Path, seed: int = 0, extra: dict[str, Any] | None = None) -> list[str]:
    override = wd / f"override_{results.name}.yaml"
    override.write_text(yaml.safe_dump({**OVERRIDES, **(extra or {}), "results_dir": str(results),
                                        "seeds": [seed]}))
    return [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", ".test/config/config.yaml",
            str(override)]


def env() -> dict[str, str]:
    return {**os.environ, "GOMP_SPINCOUNT": "1000", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run(wd: Path, results: Path, seed: int = 0, *args: str, timeout: int = 1500,
        check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(command(wd, results, seed) + list(args), cwd=wd, env=env(), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0 or not check, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def reference() -> Path:
    """The results directory of one uninterrupted run with seed 0 (made once per session)."""
    if "ref" not in _CACHE:
        base = Path(tempfile.mkdtemp(prefix="paced-ref-"))
        run(workdir(base / "wd"), base / "results")
        _CACHE["ref"] = base / "results"
    return _CACHE["ref"]
