"""The paper's numbers (docs/paper.md, arXiv 2603.11178 v1 and v3) as data, and a "paper vs this run" table.

Benchmarks map to this run's (task, tier) by the first candidate present: MATH-500 ↔ ``math500`` or
the toy ``toy_arith`` learnable (else all) tier; AIME 2024/2025 ↔ ``aime24``/``aime25`` or the toy
``hard`` tier; MMLU ↔ ``mmlu`` or ``toy_probe``. The toy world is a different setting from the
paper's Qwen3 models: the table says so on every row; compare directions, not magnitudes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from paced.report.collect import BASE_METHOD
from paced.report.format import MISSING, fmt_mean_std
from paced.report.tables import at_budget, budgets, metric_scale, primary_metric

V3_DISTILL = "v3 distillation: Qwen3-8B-GRPO → Qwen3-1.7B, forward KL"
V3_SELF = "v3 self-distillation: Qwen2.5-Math-7B-Instruct, reverse KL"
V1_DISTILL = "v1 distillation: Qwen3-14B → Qwen3-8B, forward KL"
V1_SELF = "v1 self-distillation"


@dataclass(frozen=True)
class PaperNumber:
    """One number of the paper. ``quantity``: ``accuracy`` (avg@8, %), ``forgetting`` (MMLU accuracy
    drop, read as percentage points, compared with our ``forgetting_pts``), or ``gain`` (points of
    ``method`` over ``reference``)."""

    setting: str
    method: str
    benchmark: str
    quantity: str
    mean: float
    std: float = math.nan
    reference: str = ""


def _rows(setting: str, table: dict[str, tuple[tuple[float, float], ...]]) -> tuple[PaperNumber, ...]:
    marks = ("MATH-500", "AIME 2024", "AIME 2025")
    return tuple(
        PaperNumber(setting, method, b, "accuracy", m, s)
        for method, cells in table.items()
        for b, (m, s) in zip(marks, cells, strict=True)
    )


PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    *_rows(
        V3_DISTILL,
        {
            "Base": ((69.4, 0.4), (11.5, 0.9), (7.6, 0.7)),
            "Forward KL (unweighted)": ((76.8, 0.3), (21.2, 1.3), (17.0, 0.9)),
            "Hard Filter Forward KL": ((78.5, 0.6), (23.7, 0.9), (18.8, 0.6)),
            "AKL": ((77.6, 0.4), (23.9, 1.2), (19.1, 0.8)),
            "PACED Forward KL": ((79.4, 0.5), (25.1, 1.0), (20.6, 0.7)),
        },
    ),
    *_rows(
        V3_SELF,
        {
            "Base": ((83.9, 0.6), (19.6, 1.0), (11.5, 0.7)),
            "Reverse KL (unweighted)": ((88.9, 0.5), (25.3, 1.2), (16.9, 1.1)),
            "Hard Filter Reverse KL": ((92.0, 0.5), (28.9, 1.3), (22.0, 0.9)),
            "AKL": ((91.4, 0.5), (28.2, 0.8), (21.5, 0.6)),
            "PACED Reverse KL": ((93.7, 0.6), (31.6, 1.1), (25.1, 0.7)),
        },
    ),
    PaperNumber(V3_DISTILL, "PACED Forward KL", "MMLU", "forgetting", 1.4),
    PaperNumber(V3_SELF, "PACED Reverse KL", "MMLU", "forgetting", 0.6),
    PaperNumber(V3_DISTILL, "Two-stage FKL→RKL", "AIME 2025", "gain", 5.8, reference="Forward KL (unweighted)"),
    PaperNumber(V1_DISTILL, "PACED Forward KL", "MMLU", "forgetting", 0.2),
    PaperNumber(V1_DISTILL, "PACED Forward KL", "MATH-500", "gain", 7.5, reference="Base"),
    PaperNumber(V1_DISTILL, "PACED Forward KL", "AIME 2025", "gain", 14.8, reference="Base"),
    PaperNumber(V1_SELF, "PACED Reverse KL", "MATH-500", "gain", 9.8, reference="Base"),
    PaperNumber(V1_SELF, "PACED Reverse KL", "AIME 2025", "gain", 13.6, reference="Base"),
)

# Paper row -> our method ids, first present wins. The paper's reverse-KL rows are self-distillation;
# our RKL track falls back to the teacher-distilled RKL methods (the "settings" column says which).
_SELF = {
    "Base": (BASE_METHOD,),
    "Reverse KL (unweighted)": ("self-uniform-rkl", "uniform-rkl"),
    "Hard Filter Reverse KL": ("self-hardfilter-rkl", "hardfilter-rkl"),
    "AKL": ("self-akl", "akl-rkl"),
    "PACED Reverse KL": ("self-paced-rkl", "paced-rkl"),
}
_DISTILL = {
    "Base": (BASE_METHOD,),
    "Forward KL (unweighted)": ("uniform-fkl",),
    "Hard Filter Forward KL": ("hardfilter-fkl",),
    "AKL": ("akl",),
    "PACED Forward KL": ("paced-fkl",),
    "Two-stage FKL→RKL": ("paced-fkl-then-rkl",),
}
METHOD_MAP: dict[str, dict[str, tuple[str, ...]]] = {
    V3_DISTILL: _DISTILL,
    V1_DISTILL: _DISTILL,
    V3_SELF: _SELF,
    V1_SELF: _SELF,
}
BENCHMARK_MAP: dict[str, tuple[tuple[str, str], ...]] = {
    "MATH-500": (("math500", "all"), ("toy_arith", "learnable"), ("toy_arith", "all")),
    "AIME 2024": (("aime24", "all"), ("toy_arith", "hard")),
    "AIME 2025": (("aime25", "all"), ("toy_arith", "hard")),
    "MMLU": (("mmlu", "all"), ("toy_probe", "all")),
}
PAPER_TASKS = frozenset({"math500", "aime24", "aime25", "mmlu"})


def paper_table(setting: str | None = None) -> pd.DataFrame:
    """The paper's numbers as a frame (optionally one setting), columns as :class:`PaperNumber`'s fields."""
    rows = [n.__dict__ for n in PAPER_NUMBERS if setting is None or n.setting == setting]
    return pd.DataFrame(rows)


def _first(candidates: Sequence, present: set) -> object | None:
    return next((c for c in candidates if c in present), None)


def _values(rows: pd.DataFrame, method: str, task: str, tier: str, metric: str) -> pd.Series:
    sel = rows[
        (rows["method"] == method) & (rows["task"] == task) & (rows["tier"] == tier) & (rows["metric"] == metric)
    ]
    return sel.dropna(subset=["value"]).groupby("seed")["value"].mean() * metric_scale(metric)


def _ours(rows: pd.DataFrame, num: PaperNumber, method: str, task: str, tier: str, metric: str) -> str:
    vals = _values(rows, method, task, tier, metric)
    if vals.empty:
        return MISSING
    if num.quantity != "gain":
        return fmt_mean_std(vals.mean(), vals.std())
    ref = _first(METHOD_MAP[num.setting].get(num.reference, ()), set(rows["method"]))
    ref_vals = _values(rows, ref, task, tier, metric) if ref else pd.Series(dtype=float)
    return fmt_mean_std(vals.mean() - ref_vals.mean(), vals.std()) if len(ref_vals) else MISSING


def _settings_note(num: PaperNumber, task: str) -> str:
    if task in PAPER_TASKS:
        return f"same benchmark; paper: {num.setting}; this run: models per its config/provenance"
    return f"different settings: paper {num.setting} vs this run's toy world"


def paper_vs_run(summary: pd.DataFrame, steps: Sequence[int] | None = None) -> pd.DataFrame:
    """Each paper number beside this run's counterpart at each budget (accuracies in %, gains in points).

    ``ours`` is ``mean ± std`` over seeds (for gains: mean difference of means, std of the method),
    ``—`` when the counterpart was not run. Column ``settings`` labels the comparison.
    """
    present_methods = set(summary["method"].dropna())
    present_cells = set(zip(summary["task"], summary["tier"], strict=True))
    out = []
    for step in steps if steps is not None else budgets(summary):
        rows = at_budget(summary, step)
        for num in PAPER_NUMBERS:
            method = _first(METHOD_MAP[num.setting].get(num.method, ()), present_methods)
            cell = _first(BENCHMARK_MAP[num.benchmark], present_cells)
            task, tier = cell if cell else ("", "")
            metrics = list(summary.loc[(summary["task"] == task) & (summary["tier"] == tier), "metric"].unique())
            metric = "forgetting_pts" if num.quantity == "forgetting" else primary_metric(metrics) or ""
            ours = _ours(rows, num, method, task, tier, metric) if method and cell else MISSING
            quantity = num.quantity + (f" over {num.reference}" if num.reference else "")
            out.append(
                {
                    "paper_setting": num.setting,
                    "paper_method": num.method,
                    "benchmark": num.benchmark,
                    "quantity": quantity,
                    "paper": fmt_mean_std(num.mean, num.std),
                    "our_method": method or MISSING,
                    "our_cell": f"{task}/{tier} {metric}" if cell else MISSING,
                    "step": step,
                    "ours": ours,
                    "settings": _settings_note(num, task),
                }
            )
    return pd.DataFrame(out)
