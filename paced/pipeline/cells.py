"""Logging for stage scripts, and the "failed cell" record that keeps a grid going.

A cell of the benchmark grid (one training run, one evaluation) that fails for a reason of its own
(:mod:`paced.failures`) writes an error record in place of its result —
``{"error": ..., "error_kind": "cell", "traceback": ...}`` with provenance — so the rest of the grid, the
summary and the report still complete; the summary lists the failed cells. Delete the record (or run
Snakemake with ``--forcerun``) to retry that cell. Infrastructure failures (disk full, out of memory, a
killed subprocess, a timed-out collective, a missing file) are never recorded: they fail the job.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from paced.failures import is_infrastructure
from paced.io import provenance, write_json

T = TypeVar("T")
log = logging.getLogger(__name__)


def setup_logging(log_path: str | Path | None, level: int = logging.INFO) -> None:
    """Send ``logging`` output to ``log_path`` (and stderr), replacing earlier handlers."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text("", encoding="utf-8")  # a fresh log per run
        # append mode: a handler closed by a library's logging.config.dictConfig (vLLM's, at engine start)
        # reopens on the next record; a mode="w" handler would drop every later line
        handlers.append(logging.FileHandler(log_path, mode="a", encoding="utf-8"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def excepthook(etype: type[BaseException], value: BaseException, tb: Any) -> None:
        # an uncaught error lands in the rule's log file, not only on the terminal
        logging.getLogger("paced").error("stage failed", exc_info=(etype, value, tb))

    sys.excepthook = excepthook


def run_cell(fn: Callable[[], T], outputs: Iterable[str | Path], *, on_error: str = "record",
             context: Mapping[str, Any] | None = None,
             per_output: Mapping[str, Mapping[str, Any]] | None = None) -> T | None:
    """Run ``fn``; if it raises and ``on_error == "record"``, write an error record to every output.

    With ``on_error == "fail"``, and for every infrastructure failure, the exception propagates (the job
    fails, Snakemake removes outputs and retries). ``per_output`` adds fields to the record of individual
    outputs (e.g. which task it stood for).
    """
    if on_error not in ("record", "fail"):
        raise ValueError(f"on_error must be 'record' or 'fail', got {on_error!r}")
    try:
        return fn()
    except Exception as err:  # a failed cell must not kill the grid
        if on_error == "fail" or is_infrastructure(err):
            raise
        log.exception("cell failed; recording the error instead of a result")
        record = {"error": f"{type(err).__name__}: {err}", "error_kind": "cell", "traceback": traceback.format_exc(),
                  **dict(context or {}), "provenance": provenance()}
        for out in outputs:
            write_json(out, {**record, **dict((per_output or {}).get(str(out), {}))})
        return None


def gpu_slot(n: int) -> Any:
    """A context holding ``n`` GPUs no other job on this node holds, with ``CUDA_VISIBLE_DEVICES`` set to them
    (:func:`paced.gpu_slots.claim`); ``n = 0`` (a CPU job) does nothing. Snakemake bounds how many GPUs its jobs
    ask for at once but assigns none: this is what keeps two concurrent jobs off one GPU."""
    from paced.gpu_slots import claim

    return claim(int(n or 0))


class RunFailedError(Exception):
    """The run a stage reads (its run.json is an error record) failed: a cell failure, recorded as such."""


def check_run(run_json: str | Path, model: str | Path) -> None:
    """Before a stage reads a run's checkpoint: a failed run is this cell's failure too (recorded); a missing
    checkpoint of a finished run is not the cell's (the job fails, so the next run can retry)."""
    from paced.io import read_json

    record = read_json(run_json)
    if "error" in record:
        raise RunFailedError(f"run {Path(run_json).parent} failed, nothing to read: {record['error']}")
    if not Path(model).is_dir():
        raise FileNotFoundError(f"{model}: the checkpoint of a finished run is missing; rerun its distill job "
                                f"(snakemake --forcerun distill) or restore the directory")
