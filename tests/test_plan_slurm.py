"""paced.plan.slurm and ``paced plan --slurm-profile``: runtimes from the plan's hours (rounding, floor, phases
added, the largest job of a rule, one node for a multi-GPU job), the written profile, and the decode-bound time
the sampling rules' hours now include."""

from __future__ import annotations

import copy
import math
import shlex
from pathlib import Path

import pytest
import yaml
from test_profiles import _profile, _rules

from paced.plan import PlanSettings, load_config, main, plan
from paced.plan.memory import kv_cache_bytes_per_token, param_count
from paced.plan.rules import Estimate, make_job, passrates_base
from paced.plan.slurm import (
    MARKER,
    RuntimePolicy,
    format_runtimes,
    profile_config,
    rule_resources,
    runtime_warnings,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER = str(ROOT / "config" / "paper.yaml")


def _est(rule: str, hours: float, gpus: int = 1) -> Estimate:
    return Estimate(rule, gpus, {"weights": 1.0}, hours=hours)


def test_minutes_are_hours_times_safety_plus_margin_rounded_up_with_a_floor():
    p = RuntimePolicy(safety=1.5, margin_minutes=30, floor_minutes=60)
    assert p.minutes(2.0) == 2 * 60 * 1.5 + 30 == 210
    assert p.minutes(1.001) == 121  # 120.09 rounds up
    assert p.minutes(8.3) == 777  # 8.3 x 90 + 30 is 777.0000000000001 in floats: not 778
    assert p.minutes(0.0) == p.minutes(0.1) == 60  # 39 minutes: the floor
    assert RuntimePolicy(safety=2, margin_minutes=0, floor_minutes=1).minutes(0.5) == 60
    with pytest.raises(ValueError, match=r"RuntimePolicy.safety=0.5 is out of range; allowed: >= 1"):
        RuntimePolicy(safety=0.5)


def test_phases_of_one_job_add_up_and_jobs_of_one_rule_take_the_largest():
    rows = [_est("evaluate", 1.0), _est("evaluate", 3.0), _est("evaluate", 2.0),
            _est("distill", 1.0, gpus=8), _est("distill (sampler)", 0.5, gpus=8), _est("distill (sampler)", 0.25, 8),
            _est("snr", 0.01)]
    p = RuntimePolicy()
    by = {r.rule: r for r in rule_resources(rows, p)}
    assert list(by) == ["evaluate", "distill", "snr"]  # the plan's order
    assert by["evaluate"].hours == 3.0 and by["evaluate"].minutes == p.minutes(3.0)
    assert by["distill"].phases == (("", 1.0), ("sampler", 0.5)) and by["distill"].hours == 1.5
    assert by["distill"].minutes == p.minutes(1.5) and by["distill"].describe_hours() == "1.00 + 0.50 (sampler) = 1.50"
    assert by["snr"].minutes == p.floor_minutes


def test_multi_gpu_jobs_ask_one_node_and_config_owned_runtimes_are_left_to_the_config():
    by = {r.rule: r for r in rule_resources([_est("passrates_base", 2.0), _est("references", 2.0, gpus=4),
                                             _est("distill", 1.0, gpus=8)])}
    assert by["passrates_base"].resources == {"runtime": by["passrates_base"].minutes, "gpu": 1}
    assert by["references"].resources == {"runtime": by["references"].minutes, "gpu": 4, "nodes": 1}
    assert by["distill"].config_key == "resources.runtime_train"
    assert by["distill"].resources == {"nodes": 1}  # gpu, mem_mb and runtime: the config's resources.*


def test_profile_keeps_the_base_and_replaces_planned_rules():
    base = _profile("slurm")
    planned = rule_resources([_est("passrates_base", 10.0), _est("distill", 1.0, gpus=8), _est("snr", 0.0)])
    out = profile_config(base, planned)
    assert {k: v for k, v in out.items() if k != "set-resources"} == {k: v for k, v in base.items()
                                                                     if k != "set-resources"}
    sr = out["set-resources"]
    assert sr["passrates_base"] == {"runtime": RuntimePolicy().minutes(10.0), "gpu": 1}
    assert sr["distill"] == base["set-resources"]["distill"]  # nodes 1, cpus_per_task kept; no runtime
    assert sr["build_world"] == base["set-resources"]["build_world"]  # not a planned rule: kept as it is
    assert "references" not in sr and "evaluate_run" not in sr  # planned rules that do not run: dropped
    assert base == _profile("slurm")  # the base is not changed


def test_warnings_name_a_short_configured_runtime_and_runtimes_over_the_cap():
    config = {"resources": {"runtime_train": 100}}
    planned = rule_resources([_est("distill", 2.0, gpus=8), _est("evaluate_run", 30.0)])
    policy = RuntimePolicy(cap_minutes=24 * 60)
    warnings = runtime_warnings(planned, config, policy)
    assert warnings[0].startswith("distill: resources.runtime_train=100 min is below the plan's 210 min")
    assert warnings[1].startswith(f"evaluate_run: {policy.minutes(30.0)} min is over 24 h")
    assert runtime_warnings(planned, {"resources": {"runtime_train": 210}}, RuntimePolicy()) == []
    assert "| distill | 8 | 2.00 | 210 | the config: resources.runtime_train=100 |" in format_runtimes(
        planned, config, policy)


def test_cli_writes_a_loadable_profile_and_refuses_a_file_it_did_not_write(tmp_path, capsys):
    target = tmp_path / "my-slurm"
    assert main(["--configfile", PAPER, "--slurm-profile", str(target), "--slurm-safety", "2"]) == 0
    out = capsys.readouterr().out
    assert "SLURM runtimes: ceil(plan hours x 2 + 30 min start-up)" in out and f"wrote {target}/config.yaml" in out
    text = (target / "config.yaml").read_text()
    profile = yaml.safe_load(text)
    assert text.startswith(MARKER)
    assert set(profile["set-resources"]) <= _rules()
    estimates, _ = plan(load_config([PAPER]), PlanSettings())
    for r in rule_resources(estimates, RuntimePolicy(safety=2)):
        entry = profile["set-resources"][r.rule]
        assert entry.get("runtime") == (None if r.config_key else max(60, math.ceil(r.hours * 120 + 30))), r.rule
        assert entry.get("nodes") == (1 if r.gpus > 1 else None), r.rule
    assert profile["latency-wait"] == _profile("slurm")["latency-wait"] and profile["executor"] == "slurm"
    # the command it names rewrites it (its own file: no --force needed) with the same figures
    command = shlex.split(text.splitlines()[1].lstrip("# "))
    assert command[:2] == ["paced", "plan"] and "--slurm-safety" in command
    assert main(command[2:]) == 0
    assert yaml.safe_load((target / "config.yaml").read_text()) == profile


def test_cli_keeps_a_foreign_file_unless_forced_and_refuses_the_toy_world(tmp_path, capsys):
    target = tmp_path / "p"
    target.mkdir()
    (target / "config.yaml").write_text("executor: slurm\n")
    assert main(["--configfile", PAPER, "--slurm-profile", str(target)]) == 2
    err = capsys.readouterr().err
    assert "was not written by `paced plan`: pass --force" in err and len(err.strip().splitlines()) == 1
    assert (target / "config.yaml").read_text() == "executor: slurm\n"
    assert main(["--configfile", PAPER, "--slurm-profile", str(target), "--force"]) == 0
    assert (target / "config.yaml").read_text().startswith(MARKER)
    capsys.readouterr()
    assert main(["--configfile", str(ROOT / "config" / "config.yaml"), "--slurm-profile", str(tmp_path / "w")]) == 2
    assert "--slurm-profile: the toy world has nothing to plan" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def _paper_job(**settings: object):
    return make_job(copy.deepcopy(load_config([PAPER])), PlanSettings(**settings))


def test_long_generations_are_bound_by_memory_bandwidth_not_flops():
    job = _paper_job()
    est = passrates_base(job)
    # by hand: every generated token reads the KV cache of its context (prompt + half the mean response) and its
    # share of the weights (vLLM keeps as many sequences in flight as the KV cache holds at that context)
    a, s = job.student, job.settings
    response = 0.5 * job.config["sampling"]["max_new_tokens"]
    context = s.prompt_tokens + response / 2
    kv = kv_cache_bytes_per_token(a, 2)
    in_flight = (s.usable_bytes - 2 * param_count(a) - est.memory["activations"]) / (context * kv)
    tokens = job.pool * job.config["passrate"]["k"] * response
    expected = tokens * (2 * param_count(a) / in_flight + context * kv) / (s.gpu_bandwidth_tbs * 1e12) / 3600
    assert est.hours == pytest.approx(expected) and "memory-bandwidth-bound" in est.notes
    assert passrates_base(_paper_job(gpu_bandwidth_tbs=4.0)).hours == pytest.approx(expected / 2)
    # with bandwidth to spare the FLOPs bound it, and more bandwidth changes nothing
    fast = passrates_base(_paper_job(gpu_bandwidth_tbs=1000.0))
    assert "compute-bound" in fast.notes and fast.hours < expected / 3
    assert passrates_base(_paper_job(gpu_bandwidth_tbs=2000.0)).hours == fast.hours


def test_multiple_choice_evaluation_decodes_nothing():
    job = _paper_job()
    job.config["data"]["eval"] = [{"name": "mmlu", "task": "mmlu", "k": 1}]
    est = next(e for e in plan(job.config, PlanSettings())[0] if e.rule == "evaluate_base")
    assert "compute-bound" in est.notes
    job.config["data"]["eval"] = [{"name": "aime24", "task": "aime24", "k": 8}]
    assert "memory-bandwidth-bound" in next(e for e in plan(job.config, PlanSettings())[0]
                                            if e.rule == "evaluate_base").notes
