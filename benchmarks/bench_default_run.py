"""Wall time of finished workflow runs, per rule and end to end, side by side (e.g. a run that built its world
beside one that installed the shipped world).

    python benchmarks/bench_default_run.py results                                # one finished run
    python benchmarks/bench_default_run.py /tmp/built/results results             # two runs side by side
    python benchmarks/bench_default_run.py results --log .snakemake/log/<time>.snakemake.log

Per rule and run: jobs and the summed wall seconds of its jobs (Snakemake's ``benchmark:`` files, read by
``bench_workflow.py``). Then per run: the sum over all jobs (the run's length one job at a time), the wall
clock from the first job's start to the last job's end (each benchmark file is written when its job ends, so
its modification time minus its ``s`` column is the job's start; copy a results directory with ``cp -p`` to
keep those times), and, given the run's Snakemake log (``--log``, one per run in the same order), the
``Elapsed time`` Snakemake printed, which also counts building the DAG. The verdict is against the goal of
the default run: ≤ 15 minutes end to end on 2 cores. Each run's world is labelled ``shipped`` when its
``world/`` holds a MANIFEST.json (installed from the package), else ``built``.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from bench_workflow import RuleTimes, collect, read_tsv

GOAL_MIN = 15.0
_ELAPSED = re.compile(r"Elapsed time: (?:(\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)")


@dataclass(frozen=True)
class Run:
    label: str
    rules: dict[str, RuleTimes]
    job_sum_s: float
    span_s: float
    elapsed_s: float | None


def job_span(bench_dir: Path) -> float:
    """Seconds from the earliest job start (file mtime - ``s``) to the latest job end (file mtime)."""
    times = [(p.stat().st_mtime - read_tsv(p)["s"], p.stat().st_mtime) for p in bench_dir.rglob("*.tsv")]
    if not times:
        raise SystemExit(f"{bench_dir}: no benchmark files; is this a finished run's results directory?")
    return max(end for _, end in times) - min(start for start, _ in times)


def snakemake_elapsed(log: Path) -> float | None:
    """The last ``Elapsed time: [D days, ]H:MM:SS.ffffff`` of a Snakemake log, in seconds (``None`` if absent)."""
    found = _ELAPSED.findall(log.read_text(encoding="utf-8", errors="replace"))
    if not found:
        return None
    days, h, m, s = found[-1]
    return int(days or 0) * 86400 + int(h) * 3600 + int(m) * 60 + float(s)


def load_run(results: Path, log: Path | None = None) -> Run:
    bench = results / "benchmarks"
    if not bench.is_dir():
        raise SystemExit(f"{bench} is not a directory; pass a finished run's results directory")
    rules = collect(bench)
    world = "shipped" if (results / "world" / "MANIFEST.json").is_file() else "built"
    return Run(label=f"{results} ({world} world)", rules=rules, job_sum_s=sum(r.wall_s for r in rules.values()),
               span_s=job_span(bench), elapsed_s=snakemake_elapsed(log) if log else None)


def _minutes(s: float | None) -> str:
    return "—" if s is None else f"{s:.0f} s ({s / 60:.1f} min)"


def table(runs: list[Run], goal_min: float = GOAL_MIN) -> str:
    """The side-by-side Markdown table: one row per rule, then the totals and the goal."""
    names = sorted({n for r in runs for n in r.rules}, key=lambda n: -max(r.rules.get(n, RuleTimes()).wall_s
                                                                          for r in runs))
    lines = ["| rule | " + " | ".join(r.label for r in runs) + " |", "|---|" + "---:|" * len(runs)]
    for n in names:
        cells = [f"{r.rules[n].wall_s:.0f} s ({r.rules[n].jobs} jobs)" if n in r.rules else "—" for r in runs]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines.append("| sum of job wall times | " + " | ".join(_minutes(r.job_sum_s) for r in runs) + " |")
    lines.append("| **wall clock, first job start → last job end** | "
                 + " | ".join(f"**{_minutes(r.span_s)}**" for r in runs) + " |")
    if any(r.elapsed_s is not None for r in runs):
        lines.append("| Snakemake's elapsed time (log) | " + " | ".join(_minutes(r.elapsed_s) for r in runs) + " |")
    verdicts = []
    for r in runs:
        end_to_end = r.elapsed_s if r.elapsed_s is not None else r.span_s
        verdicts.append(f"{'meets' if end_to_end <= goal_min * 60 else 'MISSES'} ({end_to_end / (goal_min * 60):.2f}×)")
    lines.append(f"| goal ≤ {goal_min:g} min end to end | " + " | ".join(verdicts) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path, help="finished runs' results directories")
    ap.add_argument("--log", nargs="*", type=Path, default=[], help="their Snakemake logs, in the same order")
    ap.add_argument("--goal-min", type=float, default=GOAL_MIN, help=f"goal in minutes (default {GOAL_MIN:g})")
    args = ap.parse_args()
    if args.log and len(args.log) != len(args.results):
        raise SystemExit(f"--log: {len(args.log)} log(s) for {len(args.results)} run(s); give one per run, in order")
    logs = args.log or [None] * len(args.results)
    print(table([load_run(r, lg) for r, lg in zip(args.results, logs, strict=True)], args.goal_min))


if __name__ == "__main__":
    main()
