"""Report stages: ``summary`` (every evaluation into one tidy CSV), ``tables``, ``figures``, ``calibration``
and ``ablation_summary``. They read results files only and import no model code (no torch, transformers or
lm-eval), so a report job starts in about a second."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def summary(eval_files: Iterable[str], out: str) -> None:
    from paced.report import add_forgetting, collect_eval_results, write_summary

    write_summary(add_forgetting(collect_eval_results(list(eval_files))), out)


def tables_params(suite: Any) -> dict[str, Any]:
    """What the tables depend on besides summary.csv: the verdict settings and the methods' resolved specs
    (stage schedules decide which budgets a claim can be judged at)."""
    report = dict(suite.report.values) if "report" in suite.sections else {}
    return {"report": report, "methods": dict(suite.method_specs), "train_steps": int(suite.train.steps)}


def tables(p: Mapping[str, Any], summary_csv: str, snr: Sequence[str], out_dir: str, flag: str) -> None:
    from paced.io import atomic_write_text
    from paced.report import read_summary, write_tables

    paths = write_tables(read_summary(summary_csv), Path(out_dir), snr=list(snr), methods=p["methods"],
                         **{k: v for k, v in p["report"].items() if k in ("alpha", "noninferiority_margin_pts")})
    atomic_write_text(flag, "\n".join(str(x) for x in paths) + "\n")


def figures_params(suite: Any) -> dict[str, Any]:
    """The methods' resolved specs (kernels for the w(p) overlays, schedules for the curves)."""
    return {"methods": dict(suite.method_specs)}


def figures(p: Mapping[str, Any], summary_csv: str, snr: Sequence[str], base_rates: str, after_rates: Sequence[str],
            runs: Sequence[str], out_dir: str, flag: str) -> None:
    from paced.io import atomic_write_text
    from paced.report import make_all_figures, read_summary

    logs = [str(Path(r).with_name("log.jsonl")) for r in runs if Path(r).with_name("log.jsonl").exists()]
    after = [r for r in after_rates if Path(r).stat().st_size > 0]  # empty = that run failed
    paths = make_all_figures(read_summary(summary_csv), Path(out_dir), snr=list(snr),
                             passrates=(base_rates, after[0]) if after else None, logs=logs)
    atomic_write_text(flag, "\n".join(str(x) for x in paths) + "\n")


def calibration(world: str, base_rates: str, summary_csv: str, record: str, figure: str, *, method: str) -> None:
    from paced.io import read_json, read_jsonl, write_json
    from paced.report import read_summary
    from paced.report.calibration import plot_world_calibration, world_calibration

    rec = world_calibration(read_json(world), read_jsonl(base_rates), read_summary(summary_csv), method=method)
    plot_world_calibration(rec, Path(figure).with_suffix(""))
    write_json(record, rec)


def ablation_params(suite: Any) -> dict[str, Any]:
    """The config keys an ablation's knob columns are read from."""
    raw = suite.raw
    return {"methods": list(raw["methods"]), "passrate": dict(raw["passrate"]),
            "method_overrides": dict(raw.get("method_overrides") or {})}


def ablation_summary(p: Mapping[str, Any], summary_csv: str, out: str) -> None:
    from paced.report.ablations import write_ablation_summary

    write_ablation_summary(Path(summary_csv).parent, dict(p), out=out)
