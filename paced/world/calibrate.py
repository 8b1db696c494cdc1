"""Calibration evidence for a built world: is it in the paper's regime?

:func:`calibrate_world` measures, on the base student, the pass-rate histogram over the pool by tier
(``k`` samples each through the HF sampler), greedy accuracy by tier on the held-out sets, probe MC
and EM, and the teacher's greedy accuracy; writes ``calibration.json`` and ``calibration.png``.
The regime wants: learnable pool mass at p = 0, in (0, 1) and at p = 1; intractable problems near
chance (1/24 a sample); the probe at >= 0.9 (room to forget); the teacher near 1 on both tiers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paced.io import provenance, read_json, write_json
from paced.rollouts.base import SamplingParams
from paced.rollouts.hf import HFSampler, load_model_and_tokenizer
from paced.tasks.base import Doc, load_jsonl
from paced.tasks.toy import ToyArith, ToyProbe
from paced.world.config import WorldConfig
from paced.world.evals import correct_counts, greedy_accuracy, mc_accuracy
from paced.world.recipes import arith_max_new_tokens

log = logging.getLogger(__name__)

TIERS = ("learnable", "intractable")


def pass_rate_histograms(counts: Sequence[int], docs: Sequence[Doc], k: int) -> dict[str, list[int]]:
    """``{tier: [#problems with j of k correct for j = 0..k]}``."""
    hist = {t: [0] * (k + 1) for t in TIERS}
    for c, d in zip(counts, docs, strict=True):
        hist.setdefault(str(d.tier), [0] * (k + 1))[c] += 1
    return hist


def _by_tier(docs: Sequence[Doc], tier: str) -> list[Doc]:
    return [d for d in docs if d.tier == tier]


def _budget(cfg: WorldConfig) -> int:
    return arith_max_new_tokens(cfg.max_len)


def measure_student(student: Any, tok: Any, docs: Mapping[str, list[Doc]], cfg: WorldConfig) -> dict[str, Any]:
    """Pass-rate histograms on the pool, greedy/sampled accuracy by tier, probe MC/EM."""
    sampler = HFSampler(student, tok, batch_size=cfg.sampler_batch_size)
    task, budget = ToyArith(), _budget(cfg)
    params = SamplingParams(n=cfg.k, max_new_tokens=budget, temperature=cfg.temperature, seed=cfg.seed + 11)
    pool_counts = correct_counts(sampler, task, docs["train"], params)
    eval_counts = correct_counts(sampler, task, docs["eval_math"], params)
    out: dict[str, Any] = {
        "k": cfg.k, "temperature": cfg.temperature,
        "pool_histogram": pass_rate_histograms(pool_counts, docs["train"], cfg.k),
        "eval_histogram": pass_rate_histograms(eval_counts, docs["eval_math"], cfg.k),
        "greedy": {}, "avg_at_k": {},
    }
    for tier in TIERS:
        tier_docs = _by_tier(docs["eval_math"], tier)
        out["greedy"][tier] = greedy_accuracy(sampler, task, tier_docs, budget)
        counts = [c for c, d in zip(eval_counts, docs["eval_math"], strict=True) if d.tier == tier]
        out["avg_at_k"][tier] = sum(counts) / (cfg.k * len(counts)) if counts else float("nan")
    out["greedy"]["hard"] = greedy_accuracy(sampler, task, docs["eval_hard"], budget)
    out["probe"] = {"mc": mc_accuracy(student, tok, docs["probe"]),
                    "em": greedy_accuracy(sampler, ToyProbe(), docs["probe"], 2)}
    return out


def regime_checks(student: Mapping[str, Any], teacher: Mapping[str, float]) -> dict[str, bool]:
    """The qualitative properties the paper's regime needs, as booleans."""
    hist = student["pool_histogram"]["learnable"]
    k = len(hist) - 1
    return {
        "learnable_mass_at_0": hist[0] > 0,
        "learnable_mass_interior": sum(hist[1:k]) > 0,
        "learnable_mass_at_1": hist[k] > 0,
        "intractable_near_chance": student["avg_at_k"]["intractable"] <= 0.1,
        "probe_mc_at_least_0.9": student["probe"]["mc"] >= 0.9,
        "teacher_at_least_0.95": min(teacher.values()) >= 0.95,
    }


def calibrate_world(world_dir: str | Path, cfg: WorldConfig | None = None, *,
                    models: Mapping[str, Any] | None = None, tokenizer: Any = None) -> dict[str, Any]:
    """Measure a built world and write ``calibration.json`` + ``calibration.png`` into ``world_dir``.

    ``models`` (``teacher``/``student`` objects) and ``tokenizer`` skip reloading from disk.
    """
    world_dir = Path(world_dir)
    if cfg is None:
        cfg = WorldConfig.from_dict(read_json(world_dir / "world.json")["config"])
    models = dict(models or {})
    for name in ("teacher", "student"):
        if name not in models:
            models[name], tokenizer = load_model_and_tokenizer(world_dir / name)
    docs = {name: load_jsonl(world_dir / f"{name}.jsonl") for name in ("train", "eval_math", "eval_hard", "probe")}
    student = measure_student(models["student"], tokenizer, docs, cfg)
    t_sampler = HFSampler(models["teacher"], tokenizer, batch_size=cfg.sampler_batch_size)
    teacher = {tier: greedy_accuracy(t_sampler, ToyArith(), _by_tier(docs["eval_math"], tier), _budget(cfg))
               for tier in TIERS}
    record = {"student": student, "teacher_greedy": teacher, "checks": regime_checks(student, teacher),
              "distillation": "not measured here: the before/after-uniform-distillation comparison needs the "
                              "trainer (paced.trainer); run it through the workflow",
              "provenance": provenance(cfg.to_dict(), cfg.seed)}
    write_json(world_dir / "calibration.json", record)
    plot_calibration(record, world_dir / "calibration.png")
    log.info("calibration: %s", record["checks"])
    return record


def plot_calibration(record: Mapping[str, Any], path: str | Path) -> None:
    """Two panels: pool pass-rate histogram by tier; greedy accuracies (student by tier, teacher) and probe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from paced.io import atomic_path

    st = record["student"]
    hist = st["pool_histogram"]
    k = st["k"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(k + 1)
    for i, tier in enumerate(TIERS):
        ax1.bar(x + (i - 0.5) * 0.4, hist[tier], width=0.4, label=f"{tier} (n={sum(hist[tier])})")
    ax1.set_xticks(x, [f"{j}/{k}" for j in x])
    ax1.set_xlabel("base-student pass rate p̂ over the pool")
    ax1.set_ylabel("problems")
    ax1.legend()
    bars = {"student\nlearnable": st["greedy"]["learnable"],
            "student\nintractable": st["greedy"]["intractable"],
            "student\nhard": st["greedy"]["hard"], "probe MC": st["probe"]["mc"],
            "probe EM": st["probe"]["em"], "teacher\nlearnable": record["teacher_greedy"]["learnable"],
            "teacher\nintractable": record["teacher_greedy"]["intractable"]}
    ax2.bar(range(len(bars)), list(bars.values()), color="tab:gray")
    ax2.set_xticks(range(len(bars)), list(bars), fontsize=7)
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("accuracy")
    for j, v in enumerate(bars.values()):
        ax2.text(j, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    fig.suptitle("toy world calibration (base student)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
