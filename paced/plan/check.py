"""The refusal: a config whose jobs cannot fit, or whose generation budget exceeds a model's context, is
refused in one line naming what to change. The table ``paced plan`` prints."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from paced.plan.arch import ArchFacts
from paced.plan.memory import GB
from paced.plan.rules import Estimate, Job, estimate_rules, make_job
from paced.plan.settings import PlanSettings

log = logging.getLogger(__name__)


def context_problems(job: Job) -> list[str]:
    """Generation budgets (assumed prompt + max_new_tokens) longer than a model's ``max_position_embeddings``."""
    cfg, prompt = job.config, job.settings.prompt_tokens
    models: list[tuple[str, ArchFacts, str]] = [("models.student", job.student, "sampling.max_new_tokens"),
                                                ("models.student", job.student, "eval.max_new_tokens")]
    if cfg["references"]["source"] == "teacher":
        models.append(("models.teacher", job.teacher, "sampling.max_new_tokens"))
    out = []
    for key, arch, budget_key in models:
        section, name = budget_key.split(".")
        budget = int(cfg[section][name])
        if prompt + budget > arch.max_position_embeddings:
            msg = (f"{key} {arch.name!r} has {arch.max_position_embeddings} positions, but a {prompt}-token prompt "
                   f"+ {budget_key}={budget} needs {prompt + budget}: set {budget_key} <= "
                   f"{arch.max_position_embeddings - prompt}")
            if msg not in out:
                out.append(msg)
    return out


def memory_problems(estimates: Sequence[Estimate], settings: PlanSettings) -> list[str]:
    """One line per rule that needs more than the usable memory of one GPU."""
    usable = settings.usable_bytes
    return [f"rule {e.rule} needs {e.gpu_bytes / GB:.1f} GB per GPU > {usable / GB:.1f} GB usable of "
            f"{settings.gpu_mem_gb:g} GB: {e.fix}" for e in estimates if e.gpu_bytes > usable]


def plan(config: Mapping[str, Any], settings: PlanSettings) -> tuple[list[Estimate], list[str]]:
    """(every rule's estimate, the problems that refuse the config)."""
    job = make_job(config, settings)
    estimates = estimate_rules(job)
    return estimates, context_problems(job) + memory_problems(estimates, settings)


def check_config(config: Mapping[str, Any], gpu_mem_gb: float = 80.0) -> None:
    """Raise ``ValueError`` (one line per problem) when the validated ``config`` cannot run.

    For the workflow at parse time: the toy world's models do not exist before it is built and are tiny, so a
    world config is not sized; a config without training GPUs (CPU) is checked for context lengths only.
    """
    if config["world"]["preset"] != "none":
        return
    settings = PlanSettings(gpu_mem_gb=gpu_mem_gb)
    try:
        job = make_job(config, settings)
    except ValueError as err:  # a hub model not downloaded yet: nothing to size it from; `paced plan` says so
        log.warning("paced plan: config not checked: %s", err)
        return
    problems = context_problems(job) + memory_problems(estimate_rules(job), settings)
    if int(config["resources"]["gpus_train"]) == 0:
        problems = [p for p in problems if not p.startswith("rule ")]
    if problems:
        raise ValueError("paced plan refuses this config: " + "; ".join(problems))


def format_table(estimates: Sequence[Estimate], settings: PlanSettings) -> str:
    """A Markdown table: per rule its GPUs, memory per GPU by component, disk, hours and whether it fits."""
    lines = [f"GPU: {settings.gpu_mem_gb:g} GB, {settings.usable_fraction:.0%} usable; "
             f"{settings.train_tflops:g} TFLOP/s per GPU training, {settings.sample_tflops:g} sampling, "
             f"{settings.gpu_bandwidth_tbs:g} TB/s decoding (assumed); "
             f"prompts of {settings.prompt_tokens} tokens, responses of {settings.mean_response_fraction:.0%} of "
             "the budget on average (assumed)", "",
             "| rule | GPUs | GB per GPU | of which | disk GB | hours | fits |", "|---|---:|---:|---|---:|---:|---|"]
    for e in estimates:
        parts = ", ".join(f"{k} {v / GB:.1f}" for k, v in e.memory.items() if v)
        disk = sum(e.disk.values()) / GB
        fits = "yes" if e.gpu_bytes <= settings.usable_bytes else "**no**"
        lines.append(f"| {e.rule} | {e.gpus} | {e.gpu_bytes / GB:.1f} | {parts} | {disk:.1f} | {e.hours:.2f} | "
                     f"{fits} |")
    notes = [f"- {e.rule}: {e.notes}" for e in estimates if e.notes]
    return "\n".join(lines + (["", *notes] if notes else []))
