"""Train one of the world's models in its own process: ``python -m paced.world.worker ROLE CONFIG OUT``.

The teacher and the student do not depend on each other, so :func:`paced.world.build.build_world`
trains them side by side, one process and one torch thread each (2 cores: ~1.6x faster than one
after the other with 2 threads; small matmuls scale poorly across threads). Run in-process or in a
worker, a role always trains on exactly one thread, so the world is the same either way.

``ROLE`` is ``teacher`` or ``student``; ``CONFIG`` a ``WorldConfig.to_dict()`` JSON file; ``OUT`` the
world directory being built. The worker saves ``OUT/<role>/`` (model + tokenizer) and writes
``OUT/.<role>.json``: the selection record, and for the student the hard set it selected.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from paced.io import read_json, write_json
from paced.world.config import WorldConfig
from paced.world.recipes import make_datasets, model_record, save_model, select_hard, train_student, train_teacher
from paced.world.tokenizer import build_char_tokenizer

log = logging.getLogger("paced.world.worker")  # not __name__: run as ``python -m`` this module is __main__

ROLES = ("teacher", "student")


def result_path(out: str | Path, role: str) -> Path:
    return Path(out) / f".{role}.json"


def run_role(role: str, cfg: WorldConfig, out: str | Path,
             sets: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Train ``role`` on one torch thread, save it under ``out/role``; returns (and writes) its record.
    ``sets``: the world's data sets when the caller has them (``make_datasets(cfg)`` otherwise)."""
    if role not in ROLES:
        raise ValueError(f"unknown world role {role!r}; allowed: {', '.join(ROLES)}")
    threads, t0 = torch.get_num_threads(), time.perf_counter()
    torch.set_num_threads(1)
    try:
        sets, tok = sets if sets is not None else make_datasets(cfg), build_char_tokenizer()
        model, res = (train_teacher if role == "teacher" else train_student)(cfg, sets, tok)
        save_model(model, tok, Path(out) / role)
        record: dict[str, Any] = {"model": model_record(model, res)}
        if role == "student":
            record["hard_rows"], record["hard"] = select_hard(cfg, sets["hard_candidates"], model, tok)
        record["seconds"] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    write_json(result_path(out, role), record)
    return record


def read_result(out: str | Path, role: str) -> dict[str, Any]:
    return read_json(result_path(out, role))


def log_path(out: str | Path, role: str) -> Path:
    return Path(out) / f".{role}.log"


class WorkerLogTail:
    """The lines a worker has appended to its log file since the last call (whole lines only, so a
    line being written is read once it is complete)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def new_lines(self, final: bool = False) -> list[str]:
        """New complete lines; ``final`` also returns a last line without its newline."""
        if not self.path.is_file():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = len(chunk) if final else chunk.rfind(b"\n") + 1
        self.offset += end
        return chunk[:end].decode("utf-8", errors="replace").splitlines()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m paced.world.worker {teacher|student} CONFIG.json OUT_DIR", file=sys.stderr)
        return 2
    role, cfg_path, out = argv
    # only to the file: the parent streams it into its own log (and its stderr), so each line appears once
    # there; two processes appending to the parent's log file directly would interleave partial lines
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        handlers=[logging.FileHandler(log_path(out, role), mode="w", encoding="utf-8")])
    try:
        run_role(role, WorldConfig.from_dict(read_json(cfg_path)), out)
    except Exception:
        log.exception("training the %s failed", role)  # the traceback reaches the parent's log
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
