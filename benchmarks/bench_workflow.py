"""Per-rule wall time of a workflow run, from Snakemake's ``benchmark:`` TSV files, against the time goals.

    python benchmarks/bench_workflow.py                       # results/benchmarks and .test/results/benchmarks
    python benchmarks/bench_workflow.py .test/results/benchmarks --goal-min 5

Every rule writes ``<results>/benchmarks/<rule>[/<wildcards>].tsv`` (columns ``s``, ``h:m:s``,
``max_rss``, ..., ``cpu_time``; one row per repeat, averaged here). A file directly under the
directory is named after its rule; a file in a subdirectory belongs to the rule the subdirectory is
named after (``distill/uniform-fkl_seed0.tsv`` -> ``distill``). Printed per rule: jobs, summed wall
seconds, the longest job, summed CPU seconds and the peak RSS; then the total. The total is the sum
of job wall times, i.e. the run's length with one job at a time (``--cores 1``, or rules that each
take all cores); with jobs in parallel the wall clock is shorter. Goals (issue 7): the default run
≤ 15 min, the CI smoke run (``.test``) ≤ 5 min, on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DIRS = ("results/benchmarks", ".test/results/benchmarks")
GOAL_MIN = {"default": 15.0, "smoke": 5.0}


@dataclass
class RuleTimes:
    jobs: int = 0
    wall_s: float = 0.0
    longest_s: float = 0.0
    longest_job: str = ""
    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    files: list[str] = field(default_factory=list)


def _num(value: str | None) -> float:
    try:
        x = float(value) if value not in (None, "", "-", "NA") else math.nan
    except ValueError:
        return math.nan
    return x


def read_tsv(path: Path) -> dict[str, float]:
    """Mean of each numeric column over a benchmark file's rows (``benchmark: repeat(...)`` writes several)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column)")
    out = {}
    for key in ("s", "cpu_time", "max_rss"):
        vals = [v for v in (_num(r.get(key)) for r in rows) if not math.isnan(v)]
        out[key] = sum(vals) / len(vals) if vals else 0.0
    return out


def rule_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def collect(root: Path) -> dict[str, RuleTimes]:
    rules: dict[str, RuleTimes] = defaultdict(RuleTimes)
    for path in sorted(root.rglob("*.tsv")):
        row = read_tsv(path)
        r = rules[rule_of(path, root)]
        r.jobs += 1
        r.wall_s += row["s"]
        r.cpu_s += row["cpu_time"]
        r.max_rss_mb = max(r.max_rss_mb, row["max_rss"])
        if row["s"] >= r.longest_s:
            r.longest_s, r.longest_job = row["s"], str(path.relative_to(root))
        r.files.append(str(path))
    return dict(rules)


def goal_for(root: Path) -> tuple[str, float]:
    kind = "smoke" if ".test" in root.parts else "default"
    return kind, GOAL_MIN[kind]


def report(root: Path, goal_min: float | None = None) -> float:
    """Print the per-rule table of ``root``; returns the total wall seconds."""
    rules = collect(root)
    kind, goal = goal_for(root)
    goal = goal if goal_min is None else goal_min
    total = sum(r.wall_s for r in rules.values())
    print(f"\n{root}  ({kind} run; {sum(r.jobs for r in rules.values())} jobs)")
    print("| rule | jobs | wall s (sum) | share | longest job s | cpu s (sum) | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in sorted(rules.items(), key=lambda kv: -kv[1].wall_s):
        share = r.wall_s / total if total else 0.0
        print(f"| {name} | {r.jobs} | {r.wall_s:.1f} | {share:.0%} | {r.longest_s:.1f} | {r.cpu_s:.1f} | "
              f"{r.max_rss_mb:.0f} |")
    cpu = sum(r.cpu_s for r in rules.values())
    verdict = "meets" if total <= goal * 60 else "MISSES"
    print(f"| **total** | {sum(r.jobs for r in rules.values())} | **{total:.1f}** ({total / 60:.1f} min) | | | "
          f"{cpu:.1f} | |")
    print(f"goal ≤ {goal:g} min: {verdict} it with the serial sum ({total / 60:.2f} min = {total / (goal * 60):.2f}× "
          f"the goal); parallel jobs make the wall clock shorter")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*", help=f"benchmark directories (default: those of {DEFAULT_DIRS} that exist)")
    ap.add_argument("--goal-min", type=float, default=None, help="override the goal in minutes")
    args = ap.parse_args()
    dirs = [Path(d) for d in args.dirs] or [Path(d) for d in DEFAULT_DIRS if Path(d).is_dir()]
    if not dirs:
        raise SystemExit(f"no benchmark directory found (looked for {', '.join(DEFAULT_DIRS)}); run the workflow first")
    for d in dirs:
        if not d.is_dir():
            raise SystemExit(f"{d} is not a directory")
        report(d, args.goal_min)


if __name__ == "__main__":
    main()
