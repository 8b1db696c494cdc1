"""Gather evaluation result JSONs into the tidy ``results/summary.csv``; add forgetting rows.

The summary has one row per number: ``method, seed, step, task, tier, metric, value, n`` plus
``note`` (empty, except the error message of a failed cell). Tables and figures are made only
from this frame.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from paced.io import atomic_write_text

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ("method", "seed", "step", "task", "tier", "metric", "value", "n", "note")
PROBE_TASKS = ("toy_probe", "mmlu")  # multiple-choice forgetting probes (MMLU and its toy analogue)
PROBE_METRIC = "mc_acc"
# probe metric -> forgetting row prefix: MC accuracy (the paper's MMLU measure) and, where the probe has it,
# greedy exact match (the toy probe's sensitive measure: it falls while MC accuracy is still saturated)
FORGETTING_OF = {"mc_acc": "forgetting", "em": "forgetting_em"}
BASE_METHOD = "base"
_PATH_RE = re.compile(r"(?:^|/)(?P<model>[^/]+)/(?P<task>[^/]+)/seed(?P<seed>\d+)/step(?P<step>\d+)\.json$")


def _from_path(path: Path) -> dict[str, Any]:
    """Fallback identity from ``results/eval/<model>/<task>/seed<seed>/step<N>.json``."""
    m = _PATH_RE.search(path.as_posix())
    if not m:
        return {}
    return {"method": m["model"], "task": m["task"], "seed": int(m["seed"]), "step": int(m["step"])}


def _identity(result: Mapping[str, Any], path: Path | None) -> dict[str, Any]:
    guess = _from_path(path) if path is not None else {}
    ident = {}
    for key in ("method", "seed", "step", "task"):
        value = result.get(key, guess.get(key))
        if key == "method" and value is None:
            value = result.get("model", "unknown")
        ident[key] = value
    return ident


def _error_row(ident: Mapping[str, Any], message: str) -> dict[str, Any]:
    return {**ident, "tier": "all", "metric": "error", "value": math.nan, "n": math.nan, "note": message}


def result_rows(result: Mapping[str, Any], path: Path | None = None) -> list[dict[str, Any]]:
    """Tidy rows of one evaluation result dict (one row per numeric metric per tier).

    ``n`` goes into the ``n`` column, not a row; a result with ``error`` (or without ``metrics``)
    becomes one ``metric = "error"`` row carrying the message in ``note``.
    """
    ident = _identity(result, path)
    metrics = result.get("metrics")
    if "error" in result or not isinstance(metrics, Mapping):
        return [_error_row(ident, str(result.get("error", "result has no 'metrics'")))]
    rows = []
    for tier, values in metrics.items():
        n = values.get("n", math.nan)
        for metric, value in values.items():
            if metric == "n" or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            rows.append({**ident, "tier": tier, "metric": metric, "value": float(value), "n": n, "note": ""})
    return rows


def _read_result(path: Path) -> list[dict[str, Any]]:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [_error_row(_identity({}, path), f"unreadable result {path}: {exc}")]
    if not isinstance(result, Mapping):
        return [_error_row(_identity({}, path), f"result {path} is not a JSON object")]
    return result_rows(result, path)


def empty_summary() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS})


def collect_eval_results(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """The tidy summary of evaluation result JSONs at ``paths``.

    A failed cell (``{"error": ...}`` JSON, unreadable file) becomes an ``error`` row and is logged,
    never raised, so one failed job does not hide the rest of the grid.
    """
    rows: list[dict[str, Any]] = []
    for p in paths:
        rows.extend(_read_result(Path(p)))
    if not rows:
        return empty_summary()
    df = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    for err in df[df["metric"] == "error"].itertuples():
        log.warning("failed cell %s/%s seed %s step %s: %s", err.method, err.task, err.seed, err.step, err.note)
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").astype("Int64")
    df["step"] = pd.to_numeric(df["step"], errors="coerce").astype("Int64")
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    df["n"] = pd.to_numeric(df["n"], errors="coerce").astype(float)
    df["note"] = df["note"].fillna("").astype(str)
    return df.sort_values(["task", "tier", "metric", "method", "step", "seed"], kind="stable", ignore_index=True)


def _base_lookup(base: pd.DataFrame) -> tuple[dict[tuple[str, Any], float], dict[str, float]]:
    """(per (tier, seed) base accuracy, per tier mean over seeds) for one probe task."""
    per_seed = {(r.tier, r.seed): r.value for r in base.itertuples()}
    per_tier = base.groupby("tier")["value"].mean().to_dict()
    return per_seed, per_tier


def add_forgetting(
    summary: pd.DataFrame,
    probe_tasks: Iterable[str] = PROBE_TASKS,
    metrics: Mapping[str, str] | None = None,
    base_method: str = BASE_METHOD,
) -> pd.DataFrame:
    """``summary`` plus ``<prefix>_pts`` and ``<prefix>_pct`` rows for each probe task and probe metric
    (``metrics``: probe metric -> prefix, default :data:`FORGETTING_OF`; ``forgetting_*`` is MC accuracy).

    forgetting_pts = 100 · (acc_base − acc) (percentage points, accuracies in [0, 1]);
    forgetting_pct = 100 · (acc_base − acc) / acc_base (per cent of the base accuracy).
    Per method, seed and step; the base accuracy is the base row of the same seed when it exists,
    else the mean over the base seeds. Existing forgetting rows are replaced.
    """
    df = summary[~summary["metric"].astype(str).str.startswith("forgetting")]
    new: list[dict[str, Any]] = []
    pairs = [(task, mp) for task in probe_tasks for mp in (metrics or FORGETTING_OF).items()]
    for task, (metric, prefix) in pairs:
        acc = df[(df["task"] == task) & (df["metric"] == metric) & df["value"].notna()]
        base = acc[acc["method"] == base_method]
        if base.empty:
            if not acc.empty:
                log.warning("no %r rows for probe task %r (%s): forgetting not computed", base_method, task, metric)
            continue
        per_seed, per_tier = _base_lookup(base)
        for r in acc[acc["method"] != base_method].itertuples():
            b = per_seed.get((r.tier, r.seed), per_tier.get(r.tier, math.nan))
            pts = 100.0 * (b - r.value)
            pct = 100.0 * (b - r.value) / b if b else math.nan
            ident = {
                "method": r.method,
                "seed": r.seed,
                "step": r.step,
                "task": task,
                "tier": r.tier,
                "n": r.n,
                "note": "",
            }
            new += [
                {**ident, "metric": f"{prefix}_pts", "value": pts},
                {**ident, "metric": f"{prefix}_pct", "value": pct},
            ]
    if not new:
        return df.reset_index(drop=True)
    out = pd.concat(
        [df, pd.DataFrame(new, columns=list(SUMMARY_COLUMNS)).astype(df.dtypes.to_dict())], ignore_index=True
    )
    return out


def error_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """The failed cells of a summary (``metric == "error"``)."""
    return summary[summary["metric"] == "error"].reset_index(drop=True)


def write_summary(summary: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the summary CSV atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, summary.to_csv(index=False, float_format="%.10g"))
    return path


def read_summary(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a summary CSV written by :func:`write_summary` back with the right dtypes."""
    df = pd.read_csv(
        path,
        dtype={"method": str, "task": str, "tier": str, "metric": str, "note": str},
        keep_default_na=False,
        na_values=[""],
    )
    for col in ("seed", "step"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("value", "n"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["note"] = df["note"].fillna("").astype(str) if "note" in df else ""
    return df
