"""Build the embedded toy world: data sets, tokenizer, teacher and student, all from one seed.

``build_world(cfg, out_dir)`` writes, into a temporary sibling directory renamed onto ``out_dir``
at the end (so a killed build leaves nothing half-written):

- ``train.jsonl``: the distillation pool, learnable + intractable problems (``tier`` labels);
- ``eval_math.jsonl``: held-out mixed-tier problems (the MATH-500 analogue);
- ``eval_hard.jsonl``: held-out learnable problems the base student passes <= ``hard_max_pass`` of
  the time over ``k`` samples (the AIME analogue; rows carry ``hard: true`` and ``base_p_hat``);
- ``probe.jsonl``: the facts probe, 4-way multiple choice (the MMLU analogue);
- ``teacher/``, ``student/``: ``save_pretrained`` checkpoints with the tokenizer beside each;
- ``world.json``: the config, provenance, set sizes, the selected checkpoints and timings.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from paced.io import provenance, write_json, write_jsonl
from paced.world.calibrate import calibrate_world
from paced.world.config import WorldConfig
from paced.world.recipes import make_datasets
from paced.world.tokenizer import build_char_tokenizer
from paced.world.worker import ROLES, WorkerLogTail, log_path, read_result, result_path, run_role

log = logging.getLogger(__name__)


def build_world(cfg: WorldConfig, out_dir: str | Path, *, overwrite: bool = False,
                calibrate: bool = False, workers: int = 1) -> dict[str, Any]:
    """Build the world into ``out_dir``; returns the ``world.json`` record.

    ``workers=2`` trains the teacher and the student in two processes at once (one torch thread
    each, as in-process; the world is the same). ``calibrate`` also measures the base student
    (:func:`paced.world.calibrate.calibrate_world`); the workflow instead derives its evidence from
    the run's own pass rates and uniform run (:mod:`paced.report.calibration`).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; pass overwrite=True to rebuild it")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"build_world: workers={workers!r}; allowed: an integer >= 1")
    tmp = out_dir.parent / f".{out_dir.name}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        record = _build_into(cfg, tmp, calibrate, workers)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


def train_models(cfg: WorldConfig, out: Path, workers: int,
                 sets: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, dict[str, Any]]:
    """Teacher and student records (``paced.world.worker``), side by side when ``workers >= 2``
    (in-process roles reuse ``sets``; a worker process rebuilds them from the config).

    The workers' log lines (training progress, evaluations, a traceback) reach this process's log
    as they are written, so the rule's log shows a build in progress, not only a finished one.
    """
    if workers < 2:
        return {role: run_role(role, cfg, out, sets=sets) for role in ROLES}
    cfg_path = out / ".config.json"
    write_json(cfg_path, cfg.to_dict())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT", "1000")}
    procs = {role: subprocess.Popen([sys.executable, "-m", "paced.world.worker", role, str(cfg_path), str(out)],
                                    env=env) for role in ROLES}
    tails = {role: WorkerLogTail(log_path(out, role)) for role in ROLES}
    try:
        while any(p.poll() is None for p in procs.values()):
            _forward(tails)
            if any(p.poll() not in (None, 0) for p in procs.values()):
                break  # one failed: stop the other at once
            time.sleep(0.5)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        _forward(tails, final=True)
    failed = [f"{role} (exit {p.returncode})" for role, p in procs.items() if p.returncode != 0]
    if failed:
        raise RuntimeError(f"world build: training the {' and '.join(failed)} failed; its log is above")
    return {role: read_result(out, role) for role in ROLES}


def _forward(tails: dict[str, WorkerLogTail], final: bool = False) -> None:
    for role, tail in tails.items():
        for line in tail.new_lines(final=final):
            log.info("%s worker: %s", role, line)


def _build_into(cfg: WorldConfig, out: Path, calibrate: bool, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    sets = make_datasets(cfg)
    models = train_models(cfg, out, workers, sets)
    timings: dict[str, float] = {"teacher_s": models["teacher"]["seconds"],
                                 "student_and_hard_s": models["student"]["seconds"],
                                 "models_wall_s": time.perf_counter() - t0}
    for name in (".config.json", *(f(out, role).name for role in ROLES for f in (result_path, log_path))):
        (out / name).unlink(missing_ok=True)
    hard, hard_info = models["student"]["hard_rows"], models["student"]["hard"]
    pool = sets["pool_learnable"] + sets["pool_intractable"]
    random.Random(f"{cfg.seed}:shuffle").shuffle(pool)
    eval_math = sets["eval_learnable"] + sets["eval_intractable"]
    files = {"train": pool, "eval_math": eval_math, "eval_hard": hard, "probe": sets["facts"],
             # the default evaluation set: MATH-500 analogue + its hardest part (tier "hard", the AIME analogue)
             "eval_arith": eval_math + [{**r, "tier": "hard"} for r in hard]}
    for name, rows in files.items():
        write_jsonl(out / f"{name}.jsonl", rows)
    record = {
        "config": cfg.to_dict(), "provenance": provenance(cfg.to_dict(), cfg.seed),
        "sizes": {name: len(rows) for name, rows in files.items()},
        "tiers": {name: _tier_counts(rows) for name, rows in files.items()},
        "teacher": models["teacher"]["model"], "student": models["student"]["model"],
        "hard": hard_info, "vocab_size": len(build_char_tokenizer()), "workers": workers,
    }
    if calibrate:
        t2 = time.perf_counter()
        calibrate_world(out, cfg)
        timings["calibrate_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    record["timings"] = timings
    write_json(out / "world.json", record)
    log.info("world built in %.1f s: %s", timings["total_s"], record["sizes"])
    return record


def _tier_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r["tier"]] = out.get(r["tier"], 0) + 1
    return out
