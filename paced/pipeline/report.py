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


def tables(p: Mapping[str, Any], summary_csv: str, snr: Sequence[str], runs: Sequence[str], out_dir: str,
           flag: str) -> None:
    from paced.io import atomic_write_text
    from paced.report import read_summary, write_tables

    verdict_keys = ("alpha", "noninferiority_margin_pts")
    paths = write_tables(read_summary(summary_csv), Path(out_dir), snr=list(snr), methods=p["methods"],
                         train_steps=p["train_steps"], runs=list(runs),
                         **{k: v for k, v in p["report"].items() if k in verdict_keys})
    atomic_write_text(flag, "\n".join(str(x) for x in paths) + "\n")


def figures_params(suite: Any) -> dict[str, Any]:
    """The methods' resolved specs (schedules for the curves) and the kernel of the w(p) overlay on the SNR
    figure: that of the first pass-rate-weighted Beta-kernel method run, else of the first weighted one."""
    specs = dict(suite.method_specs)
    weighted = [m for m in suite.method_ids if specs[m]["weight_source"] == "pass_rate"]
    beta = [m for m in weighted if specs[m]["kernel"]["name"] == "beta"]
    pick = (beta or weighted or [None])[0]
    return {"methods": specs, "kernel": specs[pick]["kernel"] if pick else None,
            "after_methods": list(suite.after_passrate_methods)}


def figures(p: Mapping[str, Any], summary_csv: str, snr: Sequence[str], base_rates: str, after_rates: Sequence[str],
            runs: Sequence[str], out_dir: str, flag: str) -> None:
    from paced.io import atomic_write_text
    from paced.report import make_all_figures, read_summary

    logs = [str(Path(r).with_name("log.jsonl")) for r in runs if Path(r).with_name("log.jsonl").exists()]
    after = {m: r for m, r in zip(p["after_methods"], after_rates, strict=True)
             if Path(r).stat().st_size > 0}  # empty = that run failed
    first = next(iter(after.values()), None)
    paths = make_all_figures(read_summary(summary_csv), Path(out_dir), snr=list(snr),
                             passrates=(base_rates, first) if first else None, logs=logs, kernel=p["kernel"],
                             after_passrates=after, base_passrates=base_rates)
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
