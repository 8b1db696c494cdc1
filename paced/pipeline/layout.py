"""Every path under ``results/``, in one place.

The workflow's rules, the stage functions and the report read paths from a :class:`Layout`; nothing else
spells out ``runs/<method>/seed<seed>``. Arguments may be Snakemake wildcards (``"{method}"``), so the rules
build their patterns from the same methods that build concrete paths::

    results/
      world/world.json, train.jsonl, eval_arith.jsonl, probe.jsonl, teacher/, student/
      passrates/base/{passrates.jsonl, summary.json}
      passrates/<method>/seed<seed>/{passrates.jsonl, summary.json}
      references/{references.jsonl, summary.json, teacher_cache.npz}
      snr/snr.json
      runs/<method>/seed<seed>/{run.json, log.jsonl, checkpoints/step<N>/}
      eval/<method>/seed<seed>/step<N>/{<eval name>.json, samples/<eval name>.jsonl}   (base: step0)
      summary.csv, tables/, figures/, calibration/, ablation_summary.csv, benchmarks/
    logs/<results_dir>/...   (relative results_dir; <results_dir>/logs for an absolute one)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

Part = str | int


@dataclass(frozen=True)
class Layout:
    """Paths of one results directory; ``logs`` is where rule logs go (see the module docstring)."""

    results: str
    logs: str

    @classmethod
    def for_results(cls, results: str) -> Layout:
        logs = f"{results}/logs" if Path(results).is_absolute() else str(Path("logs") / results)
        return cls(results=results, logs=logs)

    def _r(self, *parts: Part) -> str:
        return "/".join([self.results, *map(str, parts)])

    # the world
    @property
    def world_dir(self) -> str:
        return self._r("world")

    @property
    def world_json(self) -> str:
        return self._r("world", "world.json")

    # pass rates and references
    def passrates(self, method: Part = "base", seed: Part | None = None) -> str:
        """``passrates.jsonl`` of the base student (``method="base"``) or of run (method, seed)'s final checkpoint."""
        return self._r("passrates", "base", "passrates.jsonl") if method == "base" else \
            self._r("passrates", method, f"seed{seed}", "passrates.jsonl")

    def passrates_summary(self, method: Part = "base", seed: Part | None = None) -> str:
        return str(Path(self.passrates(method, seed)).with_name("summary.json"))

    @property
    def references(self) -> str:
        return self._r("references", "references.jsonl")

    @property
    def references_summary(self) -> str:
        return self._r("references", "summary.json")

    @property
    def teacher_cache(self) -> str:
        return self._r("references", "teacher_cache.npz")

    @property
    def snr(self) -> str:
        return self._r("snr", "snr.json")

    # training runs
    def run_dir(self, method: Part, seed: Part) -> str:
        return self._r("runs", method, f"seed{seed}")

    def run_json(self, method: Part, seed: Part) -> str:
        return f"{self.run_dir(method, seed)}/run.json"

    def run_log(self, method: Part, seed: Part) -> str:
        return f"{self.run_dir(method, seed)}/log.jsonl"

    def checkpoint(self, method: Part, seed: Part, step: Part) -> str:
        return f"{self.run_dir(method, seed)}/checkpoints/step{step}"

    # evaluation
    def eval_dir(self, method: Part, seed: Part, step: Part) -> str:
        return self._r("eval", method, f"seed{seed}", f"step{step}")

    def eval_json(self, method: Part, seed: Part, step: Part, name: str) -> str:
        return f"{self.eval_dir(method, seed, step)}/{name}.json"

    def eval_samples(self, method: Part, seed: Part, step: Part, name: str) -> str:
        return f"{self.eval_dir(method, seed, step)}/samples/{name}.jsonl"

    # report
    @property
    def summary(self) -> str:
        return self._r("summary.csv")

    @property
    def tables_dir(self) -> str:
        return self._r("tables", "all")

    @property
    def tables_flag(self) -> str:
        return self._r("tables", "done.flag")

    @property
    def figures_dir(self) -> str:
        return self._r("figures", "png")

    @property
    def figures_flag(self) -> str:
        return self._r("figures", "done.flag")

    @property
    def calibration_json(self) -> str:
        return self._r("calibration", "calibration.json")

    @property
    def calibration_png(self) -> str:
        return self._r("calibration", "calibration.png")

    @property
    def ablation_summary(self) -> str:
        return self._r("ablation_summary.csv")

    @property
    def is_ablation(self) -> bool:
        """``config/ablations/*.yaml`` write under ``results/ablations/<name>``."""
        return Path(self.results).parent.name == "ablations"

    def log(self, *parts: Part) -> str:
        return "/".join([self.logs, *map(str, parts)])

    def bench(self, *parts: Part) -> str:
        return self._r("benchmarks", *parts)

    @property
    def lock(self) -> str:
        """The lock file that keeps two workflows (any working directory) out of one results directory."""
        return self._r(".paced.lock")
