"""SLURM resources from the plan: per rule a runtime in minutes from the plan's hours, its GPUs, and ``nodes: 1``
for a multi-GPU job; and the Snakemake profile that carries them (the shipped ``profiles/slurm/config.yaml``
with its ``set-resources`` taken from the plan).

A runtime is ``ceil(hours × safety + start-up margin)`` minutes, at least a floor: the plan's hours are
order-of-magnitude figures, a job killed at its limit loses all its work, and one asking too much only waits
longer in the queue. Runtimes over the cap (48 h, a common partition limit) are written as computed and flagged:
cutting them would only kill the job later.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import paced.plan.train  # noqa: F401  (registers ``distill``)
from paced.io import atomic_write_text
from paced.plan.rules import RULES, Estimate

SHIPPED_PROFILE = Path("profiles/slurm/config.yaml")
MARKER = "# Written by `paced plan --slurm-profile`"
# Rules whose runtime the workflow takes from the config (with their GPUs and host memory): the profile leaves
# them to it, and the plan only warns when the configured runtime is shorter than its own.
CONFIG_RUNTIMES = {"distill": "resources.runtime_train"}


@dataclass(frozen=True)
class RuntimePolicy:
    """``minutes = max(floor_minutes, ceil(hours × 60 × safety + margin_minutes))``.

    ``safety``: the plan's hours are rough (assumed throughput, bandwidth and response lengths). ``margin_minutes``:
    per-job start-up the plan does not count (interpreter and imports, loading the model from the hub cache, the
    vLLM engine's start and CUDA graph capture, writing the outputs). ``floor_minutes``: the least a job asks.
    ``cap_minutes``: a common partition limit (``MaxTime``); longer runtimes are flagged, not cut.
    """

    safety: float = 1.5
    margin_minutes: int = 30
    floor_minutes: int = 60
    cap_minutes: int = 48 * 60

    def __post_init__(self) -> None:
        checks = (("safety", self.safety >= 1, ">= 1"), ("margin_minutes", self.margin_minutes >= 0, ">= 0"),
                  ("floor_minutes", self.floor_minutes >= 1, ">= 1"),
                  ("cap_minutes", self.cap_minutes >= self.floor_minutes, ">= floor_minutes"))
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"RuntimePolicy.{name}={getattr(self, name)!r} is out of range; allowed: {allowed}")

    def minutes(self, hours: float) -> int:
        # rounded first, so that 2 h × 1.5 is 180 minutes, not 181 from a float's last bit
        return max(self.floor_minutes, math.ceil(round(hours * 60 * self.safety + self.margin_minutes, 6)))

    def describe(self) -> str:
        return (f"ceil(plan hours x {self.safety:g} + {self.margin_minutes} min start-up), at least "
                f"{self.floor_minutes} min; over {self.cap_minutes // 60} h flagged")


@dataclass(frozen=True)
class RuleResources:
    """One rule's SLURM request: ``phases`` (name, hours of the rule's longest job in that phase; the main phase
    is named ""), ``minutes`` of runtime, ``gpus``, and the config key that sets its runtime instead (if any)."""

    rule: str
    phases: tuple[tuple[str, float], ...]
    minutes: int
    gpus: int
    config_key: str | None = None

    @property
    def hours(self) -> float:
        """One job's hours: its phases added."""
        return sum(h for _, h in self.phases)

    def describe_hours(self) -> str:
        if len(self.phases) == 1:
            return f"{self.hours:.2f}"
        parts = " + ".join(f"{h:.2f}" + (f" ({name})" if name else "") for name, h in self.phases)
        return f"{parts} = {self.hours:.2f}"

    @property
    def resources(self) -> dict[str, int]:
        """What the profile sets for the rule: runtime and GPUs unless the config sets them; one node for a
        multi-GPU job (its ranks talk over NVLink/shared memory, not the network)."""
        out = {} if self.config_key else {"runtime": self.minutes, "gpu": self.gpus}
        return out | ({"nodes": 1} if self.gpus > 1 else {})


def rule_resources(estimates: Sequence[Estimate], policy: RuntimePolicy = RuntimePolicy()) -> list[RuleResources]:
    """Per rule, in the plan's order. A row ``"rule (phase)"`` is a phase of the rule's job (distill's sampler runs
    between its training steps): phases add up. Rows of the same name are different jobs of one rule (sizes
    differ): the largest counts."""
    phases: dict[str, dict[str, float]] = {}
    gpus: dict[str, int] = {}
    for e in estimates:
        rule, _, phase = e.rule.removesuffix(")").partition(" (")
        job = phases.setdefault(rule, {})
        job[phase] = max(job.get(phase, 0.0), e.hours)
        gpus[rule] = max(gpus.get(rule, 0), e.gpus)
    return [RuleResources(rule, tuple(job.items()), policy.minutes(sum(job.values())), gpus[rule],
                          CONFIG_RUNTIMES.get(rule)) for rule, job in phases.items()]


def _config_value(config: Mapping[str, Any], dotted: str) -> Any:
    section, key = dotted.split(".")
    return config[section][key]


def runtime_warnings(resources: Sequence[RuleResources], config: Mapping[str, Any],
                     policy: RuntimePolicy = RuntimePolicy()) -> list[str]:
    """A configured runtime shorter than the plan's, and runtimes over the cap."""
    out = []
    for r in resources:
        if r.config_key and int(_config_value(config, r.config_key)) < r.minutes:
            out.append(f"{r.rule}: {r.config_key}={_config_value(config, r.config_key)} min is below the plan's "
                       f"{r.minutes} min: raise it in the config")
        if not r.config_key and r.minutes > policy.cap_minutes:
            out.append(f"{r.rule}: {r.minutes} min is over {policy.cap_minutes // 60} h (--slurm-max-hours): check "
                       "your partition's time limit (sinfo -o '%P %l')")
    return out


def format_runtimes(resources: Sequence[RuleResources], config: Mapping[str, Any],
                    policy: RuntimePolicy = RuntimePolicy()) -> str:
    """A Markdown table of the SLURM request per rule, then the warnings."""
    lines = [f"SLURM runtimes: {policy.describe()}", "",
             "| rule | GPUs | hours (plan) | runtime min | set by |", "|---|---:|---:|---:|---|"]
    for r in resources:
        by = (f"the config: {r.config_key}={_config_value(config, r.config_key)}" if r.config_key
              else "the profile")
        lines.append(f"| {r.rule} | {r.gpus} | {r.describe_hours()} | {r.minutes} | {by} |")
    warnings = [f"- {w}" for w in runtime_warnings(resources, config, policy)]
    return "\n".join(lines + (["", *warnings] if warnings else []))


def profile_config(base: Mapping[str, Any], resources: Sequence[RuleResources]) -> dict[str, Any]:
    """``base`` (a Snakemake profile) with each planned rule's ``set-resources`` from ``resources``; the other
    keys of a rule's entry (cpus_per_task, mem_mb) and the other rules' entries are kept, and the entries of
    planned rules that do not run under this config are dropped."""
    out = copy.deepcopy(dict(base))
    entries = dict(out.get("set-resources") or {})
    planned = {r.rule: r for r in resources}
    for rule in set(RULES.names()) - set(planned):
        entries.pop(rule, None)
    for rule, r in planned.items():
        entry = {k: v for k, v in (entries.get(rule) or {}).items() if r.config_key or k not in ("runtime", "gpu")}
        entries[rule] = entry | r.resources
    out["set-resources"] = entries
    return out


def profile_text(base: Mapping[str, Any], resources: Sequence[RuleResources], command: str,
                 policy: RuntimePolicy = RuntimePolicy()) -> str:
    """The written profile: the marker with the command that wrote it, each rule's runtime, then the YAML."""
    header = [f"{MARKER}; regenerate with:", f"#   {command}", f"# Runtimes (minutes): {policy.describe()}.",
              *[f"#   {r.rule}: {r.describe_hours()} h -> {r.minutes} min"
                + (f" (runtime set by the config's {r.config_key})" if r.config_key else "") for r in resources],
              f"# Everything else is {SHIPPED_PROFILE}'s."]
    body = yaml.safe_dump(profile_config(base, resources), sort_keys=False, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def write_profile(directory: str | Path, text: str, force: bool = False) -> Path:
    """Write ``directory/config.yaml`` atomically; a file there that ``paced plan`` did not write is kept unless
    ``force``."""
    path = Path(directory) / "config.yaml"
    if path.exists() and not force and not path.read_text(encoding="utf-8").startswith(MARKER):
        raise FileExistsError(f"{path} exists and was not written by `paced plan`: pass --force to overwrite it, "
                              "or another --slurm-profile DIR")
    atomic_write_text(path, text)
    return path
