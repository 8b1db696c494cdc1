"""Per-job fixed cost: the imports each workflow script pays before it does any work (goal: <= 3 s for the
report jobs on 2 cores).

    GOMP_SPINCOUNT=1000 python benchmarks/bench_jobs.py [--repeat 3] [--scripts summary tables] [--with-torch]

A job's imports are its script's own (``from paced.pipeline import report``) plus those inside the pipeline
function it calls (``report.tables`` imports ``paced.report`` on entry), found by reading the code, not by
running the job. Each script's imports run in a fresh interpreter ``--repeat`` times, one after the other;
the table gives the median wall time, the spread, and which heavy libraries were loaded. ``python -c pass``
is the floor every job pays; Snakemake's own script preamble is printed beside it (every job pays it too,
and it is not counted in the rows). The load average is printed: on a shared machine the figures scale with it.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
REPORT_JOBS = ("summary", "tables", "figures", "calibration", "ablation_summary")
HEAVY = ("torch", "transformers", "lm_eval", "datasets", "vllm", "accelerate", "matplotlib", "pandas", "scipy")
GOAL_S = 3.0
# what Snakemake's ``script:`` preamble imports to unpickle the ``snakemake`` object (paid by every job, on top)
SNAKEMAKE_PREAMBLE = ["from snakemake.logging import logger", "from snakemake.iocontainers import Snakemake"]


def _imports(nodes: list[ast.AST]) -> list[str]:
    """The import statements among ``nodes`` and everything under them, as source lines."""
    return [ast.unparse(n) for node in nodes for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _module_source(name: str) -> ast.Module | None:
    spec = importlib.util.find_spec(name)  # finds the file without running the module
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))


def _function_imports(module: ast.Module, name: str, seen: set[str]) -> list[str]:
    """Imports inside function ``name`` of ``module`` and the same-module functions it calls."""
    funcs = {n.name: n for n in module.body if isinstance(n, ast.FunctionDef)}
    if name in seen or name not in funcs:
        return []
    seen.add(name)
    out = _imports([funcs[name]])
    for call in ast.walk(funcs[name]):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
            out += _function_imports(module, call.func.id, seen)
    return out


def job_imports(script: Path) -> list[str]:
    """The script's top-level imports, then those of the ``paced`` functions it calls as ``alias.fn(...)``."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    aliases: dict[str, str] = {}
    for node in top:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("paced"):
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            aliases.update({a.asname or a.name: a.name for a in node.names if a.name.startswith("paced")})
    lines = [ast.unparse(n) for n in top]
    for call in ast.walk(tree):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name) and call.func.value.id in aliases):
            module = _module_source(aliases[call.func.value.id])
            if module is not None:
                lines += _function_imports(module, call.func.attr, set())
    return list(dict.fromkeys(lines))


def time_imports(lines: list[str], repeat: int) -> tuple[list[float], list[str]]:
    """Wall seconds of ``repeat`` fresh interpreters running ``lines``, and the heavy libraries loaded."""
    code = "\n".join([*lines, "import sys", f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"])
    env = {**os.environ, "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT", "1000")}
    times, loaded = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0:
            raise RuntimeError(f"importing\n{code}\nfailed:\n{out.stderr}")
        loaded = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return times, [m for m in loaded.split(",") if m]


def _print_with_torch(name: str, lines: list[str], repeat: int) -> float:
    """The job's imports, and the same plus ``import torch``, alternated run by run (a fair pair under load)."""
    plain: list[float] = []
    torch: list[float] = []
    for _ in range(repeat):
        plain += time_imports(lines, 1)[0]
        torch += time_imports([*lines, "import torch"], 1)[0]
    a, b = statistics.median(plain), statistics.median(torch)
    print(f"{name:<18} {'report':<8} {a:9.2f} {min(plain):5.2f}..{max(plain):5.2f}  "
          f"with torch: {b:.2f} s ({b / a:.1f}x)")
    return a


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="fresh interpreters per script (median reported)")
    ap.add_argument("--scripts", nargs="*", help="script names without .py (default: every workflow script)")
    ap.add_argument("--with-torch", action="store_true",
                    help="also time each report job's imports plus `import torch` (what they paid before torch "
                         "was kept out of them), alternating the two in fresh interpreters")
    args = ap.parse_args()
    names = args.scripts or sorted(p.stem for p in SCRIPTS.glob("*.py"))
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; cores: {os.cpu_count()}; "
          f"{args.repeat} run(s) each, median")
    floor = statistics.median(time_imports(["pass"], args.repeat)[0])
    preamble = statistics.median(time_imports(SNAKEMAKE_PREAMBLE, args.repeat)[0])
    print(f"{'job':<18} {'kind':<8} {'median s':>9} {'min..max s':>12}  heavy libraries imported")
    print(f"{'(python -c pass)':<18} {'':<8} {floor:9.2f}")
    print(f"{'(snakemake part)':<18} {'':<8} {preamble:9.2f}  what Snakemake's script preamble imports, per job")
    worst_report = 0.0
    for name in names:
        kind = "report" if name in REPORT_JOBS else "compute"
        lines = job_imports(SCRIPTS / f"{name}.py")
        if args.with_torch and kind == "report":
            worst_report = max(worst_report, _print_with_torch(name, lines, args.repeat))
            continue
        times, loaded = time_imports(lines, args.repeat)
        med = statistics.median(times)
        if kind == "report":
            worst_report = max(worst_report, med)
        print(f"{name:<18} {kind:<8} {med:9.2f} {min(times):5.2f}..{max(times):5.2f}  {', '.join(loaded) or '-'}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if worst_report:
        verdict = "met" if worst_report <= GOAL_S else "missed"
        print(f"slowest report job: {worst_report:.2f} s (goal <= {GOAL_S:.0f} s: {verdict})")


if __name__ == "__main__":
    main()
