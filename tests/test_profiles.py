"""The execution profiles against the workflow: rule names, local report rules, no silent overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("slurm", "gpu-node")
REPORT_RULES = {"summary", "tables", "figures", "calibration", "ablation_summary"}


def _rules() -> set[str]:
    names = set()
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))]:
        names |= set(re.findall(r"^rule (\w+):", smk.read_text(), flags=re.M))
    return names


def _localrules() -> set[str]:
    names = set()
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))]:
        for block in re.findall(r"^localrules:((?:\n[ \t]+\w+,?)+|[ \t]*[\w, ]+)", smk.read_text(), flags=re.M):
            names |= set(re.findall(r"\w+", block))
    return names


def _profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


def test_rule_names_parsed() -> None:
    rules = _rules()
    assert {"distill", "evaluate_base", "evaluate_run", "passrates_base", "references"} <= rules
    assert REPORT_RULES <= rules


@pytest.mark.parametrize("name", PROFILES)
def test_every_set_resources_key_is_a_rule(name: str) -> None:
    keys = set(_profile(name).get("set-resources", {}))
    unknown = keys - _rules()
    assert not unknown, f"profiles/{name}: set-resources names no rule: {sorted(unknown)}"


def test_report_rules_are_local_and_multi_gpu_jobs_stay_on_one_node() -> None:
    assert REPORT_RULES <= _localrules()
    slurm = _profile("slurm")
    assert slurm["set-resources"]["distill"]["nodes"] == 1
    assert slurm["default-resources"]["nodes"] == 1
    for rule in ("passrates_base", "passrates_after", "references", "evaluate_run"):
        assert slurm["set-resources"][rule]["runtime"] >= 12 * 60, rule  # sampling at the paper's scale: hours


def test_slurm_runtimes_are_paced_plans_for_the_paper_config() -> None:
    """The shipped runtimes are `paced plan`'s for config/paper.yaml (regenerate them when the plan changes)."""
    from paced.plan import PlanSettings, load_config, plan
    from paced.plan.slurm import profile_config, rule_resources

    estimates, problems = plan(load_config([str(ROOT / "config" / "paper.yaml")]), PlanSettings())
    assert problems == []
    shipped = _profile("slurm")
    planned = profile_config(shipped, rule_resources(estimates))["set-resources"]
    drift = {rule: (shipped["set-resources"].get(rule), entry) for rule, entry in planned.items()
             if shipped["set-resources"].get(rule) != entry}
    assert not drift, f"profiles/slurm: set-resources differ from paced plan's (shipped, plan): {drift}"


@pytest.mark.parametrize("name", PROFILES)
def test_default_profile_overrides_nothing(name: str) -> None:
    """profiles/default is also applied (as the workflow profile) and wins per key: it must not change a key
    the cluster or node profile sets (SLURM's latency-wait of 60 s used to become 5)."""
    default, other = _profile("default"), _profile(name)
    clashes = {k: (default[k], other[k]) for k in default.keys() & other.keys() if default[k] != other[k]}
    assert not clashes, f"profiles/default overrides profiles/{name}: {clashes}"


def test_gpu_node_profile_bounds_gpus() -> None:
    node = _profile("gpu-node")
    assert node["resources"]["gpu"] >= 1 and node["default-resources"]["gpu"] == 0
