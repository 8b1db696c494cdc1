"""The world's recipes: its data sets, and how the teacher and the student are trained and selected.

:mod:`paced.world.build` (the whole build) and :mod:`paced.world.worker` (one model in its own process)
both import this module and it imports neither, so a role trains the same way in either place.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from paced.rollouts.base import SamplingParams
from paced.rollouts.hf import HFSampler
from paced.tasks.base import Doc, doc_from_row
from paced.tasks.toy import ToyArith, ToyProbe
from paced.world.config import TrainSpec, WorldConfig
from paced.world.data import intractable_spec, learnable_spec, make_facts, stream_chains, unique_chains
from paced.world.evals import correct_counts, greedy_accuracy
from paced.world.models import Pair, TrainResult, make_model, mix_batches, train_lm

log = logging.getLogger(__name__)


def arith_max_new_tokens(max_len: int) -> int:
    """Tokens a full solution needs: 2 per running value, ``#`` + answer, EOS, plus 1 spare."""
    return 2 * (max_len + 1) + 2 + 1 + 1


def make_datasets(cfg: WorldConfig) -> dict[str, list[dict[str, Any]]]:
    """All problem sets of the world as rows; prompts are distinct across every set."""
    learn = learnable_spec(cfg.max_len)
    intr = intractable_spec(cfg.intractable_min_len, cfg.max_len)
    taken: set[str] = set()
    sets: dict[str, list[dict[str, Any]]] = {}
    plan = [("pool_learnable", learn, cfg.n_pool_learnable, "L"),
            ("pool_intractable", intr, cfg.n_pool_intractable, "I"),
            ("eval_learnable", learn, cfg.n_eval_learnable, "EL"),
            ("eval_intractable", intr, cfg.n_eval_intractable, "EI"),
            ("val_learnable", learn, cfg.n_val, "VL"),
            ("val_intractable", intr, cfg.n_val, "VI"),
            ("hard_candidates", learn, cfg.n_hard_candidates, "H")]
    for name, spec, n, prefix in plan:
        rng = random.Random(f"{cfg.seed}:{name}")
        sets[name] = unique_chains(rng, spec, n, cfg.max_len, taken, prefix)
    sets["facts"] = make_facts(random.Random(f"{cfg.seed}:facts"), cfg.n_facts)
    return sets


def _docs(rows: list[dict[str, Any]], name: str) -> list[Doc]:
    return [doc_from_row(r, f"<world {name} row {i}>") for i, r in enumerate(rows)]


def _fact_stream(rng: random.Random, facts: list[dict[str, Any]]) -> Iterator[Pair]:
    while True:
        f = rng.choice(facts)
        yield f["prompt"], f["answer"]


def held_out_prompts(sets: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Every prompt of every data set: pre-training streams never draw these."""
    return {r["prompt"] for rows in sets.values() for r in rows}


def train_teacher(cfg: WorldConfig, sets: dict[str, list[dict[str, Any]]], tok: Any) -> tuple[Any, TrainResult]:
    """Teacher: mod-16 + mod-24 (``teacher_intractable_share``) per batch; the first checkpoint with
    >= ``teacher_min_acc`` greedy accuracy on both tiers."""
    held_out = held_out_prompts(sets)
    streams = [stream_chains(random.Random(f"{cfg.seed}:teacher:{t}"), spec, cfg.max_len, held_out)
               for t, spec in (("l", learnable_spec(cfg.max_len)),
                               ("i", intractable_spec(cfg.intractable_min_len, cfg.max_len)))]
    model = make_model(cfg.teacher, tok, seed=cfg.seed * 2 + 1)
    sampler = HFSampler(model, tok, batch_size=cfg.sampler_batch_size)
    task, budget = ToyArith(), arith_max_new_tokens(cfg.max_len)
    val_l, val_i = _docs(sets["val_learnable"], "val"), _docs(sets["val_intractable"], "val")

    def evaluate() -> dict[str, float]:
        return {"acc_learnable": greedy_accuracy(sampler, task, val_l, budget),
                "acc_intractable": greedy_accuracy(sampler, task, val_i, budget)}

    shares = [1 - cfg.teacher_intractable_share, cfg.teacher_intractable_share]
    result = train_lm(model, mix_batches(streams, cfg.teacher_train.batch_size, shares), tok, cfg.teacher_train,
                      evaluate, accept=lambda m: min(m["acc_learnable"], m["acc_intractable"]) >= cfg.teacher_min_acc,
                      score=lambda m: min(m["acc_learnable"], m["acc_intractable"]), desc="teacher")
    return model, result


def _student_score(cfg: WorldConfig, m: dict[str, float]) -> float:
    """Negative distance to the selection window (0 inside it)."""
    lo, hi = cfg.student_acc_range
    acc = m["acc_learnable"]
    return -(max(0.0, lo - acc) + max(0.0, acc - hi) + max(0.0, cfg.student_min_facts_em - m["facts_em"]))


def train_student(cfg: WorldConfig, sets: dict[str, list[dict[str, Any]]], tok: Any) -> tuple[Any, TrainResult]:
    """Student: ``student_facts_first_steps`` facts-only steps, then mod-16 + facts (``student_facts_share``)
    per batch; never sees ``$``. Selected by the criteria, not by a fixed step."""
    held_out = held_out_prompts(sets)
    streams = [stream_chains(random.Random(f"{cfg.seed}:student:l"), learnable_spec(cfg.max_len),
                             cfg.max_len, held_out),
               _fact_stream(random.Random(f"{cfg.seed}:student:f"), sets["facts"])]
    model = make_model(cfg.student, tok, seed=cfg.seed * 2 + 2)
    sampler = HFSampler(model, tok, batch_size=cfg.sampler_batch_size)
    val_l, facts = _docs(sets["val_learnable"], "val"), _docs(sets["facts"], "facts")
    budget = arith_max_new_tokens(cfg.max_len)

    def evaluate() -> dict[str, float]:
        return {"acc_learnable": greedy_accuracy(sampler, ToyArith(), val_l, budget),
                "facts_em": greedy_accuracy(sampler, ToyProbe(), facts, 2)}

    pre_history: list[dict[str, float]] = []
    if cfg.student_facts_first_steps:
        n = cfg.student_facts_first_steps
        spec = TrainSpec(lr=cfg.student_train.lr, batch_size=cfg.student_train.batch_size, max_steps=n,
                         warmup_steps=min(20, n - 1), eval_from=n, eval_every=n, min_lr_frac=1.0,
                         weight_decay=cfg.student_train.weight_decay)
        facts_only = mix_batches([_fact_stream(random.Random(f"{cfg.seed}:student:ff"), sets["facts"])],
                                 spec.batch_size)
        pre = train_lm(model, facts_only, tok, spec, lambda: {"facts_em": greedy_accuracy(
            sampler, ToyProbe(), facts, 2)}, accept=lambda m: True, score=lambda m: 0.0, desc="student facts")
        pre_history = [{**m, "phase": "facts_first"} for m in pre.history]  # type: ignore[dict-item]
    lo, hi = cfg.student_acc_range
    batches = mix_batches(streams, cfg.student_train.batch_size,
                          [1 - cfg.student_facts_share, cfg.student_facts_share])
    topup = cfg.student_topup_steps > 0
    result = train_lm(model, batches, tok, cfg.student_train,
                      evaluate, accept=lambda m: (topup or m["facts_em"] >= cfg.student_min_facts_em)
                      and lo <= m["acc_learnable"] <= hi,
                      score=lambda m: _student_score(cfg, m), desc="student")
    result.history = pre_history + result.history  # steps of the mixed phase count from 1 after the facts phase
    if topup and result.criteria_met and result.metrics["facts_em"] < cfg.student_min_facts_em:
        result = _facts_topup(cfg, model, tok, sets, held_out, evaluate, result)
    return model, result


def _facts_topup(cfg: WorldConfig, model: Any, tok: Any, sets: dict[str, list[dict[str, Any]]],
                 held_out: set[str], evaluate: Any, mixed: TrainResult) -> TrainResult:
    """Re-learn the facts just past ``student_min_facts_em`` (half facts, half mod-16 per batch, constant
    lr, checked every 5 steps), so the probe starts high but is freshly, not deeply, learned."""
    n = cfg.student_topup_steps
    spec = TrainSpec(lr=cfg.student_train.lr, batch_size=cfg.student_train.batch_size, max_steps=n,
                     warmup_steps=0, eval_from=min(5, n), eval_every=5, min_lr_frac=1.0,
                     weight_decay=cfg.student_train.weight_decay)
    streams = [stream_chains(random.Random(f"{cfg.seed}:student:topup"), learnable_spec(cfg.max_len),
                             cfg.max_len, held_out),
               _fact_stream(random.Random(f"{cfg.seed}:student:topup_f"), sets["facts"])]
    lo, hi = cfg.student_acc_range
    res = train_lm(model, mix_batches(streams, spec.batch_size), tok, spec, evaluate,
                   accept=lambda m: m["facts_em"] >= cfg.student_min_facts_em and lo <= m["acc_learnable"] <= hi,
                   score=lambda m: _student_score(cfg, m), desc="student facts top-up")
    history = mixed.history + [{**m, "phase": "topup"} for m in res.history]  # type: ignore[dict-item]
    return TrainResult(mixed.step + res.step, res.metrics, res.criteria_met, history)


def select_hard(cfg: WorldConfig, candidates: list[dict[str, Any]], student: Any, tok: Any) -> tuple[
        list[dict[str, Any]], dict[str, Any]]:
    """Candidates the base student passes <= ``hard_max_pass`` of ``k`` samples (hardest first)."""
    sampler = HFSampler(student, tok, batch_size=cfg.sampler_batch_size)
    params = SamplingParams(n=cfg.k, max_new_tokens=arith_max_new_tokens(cfg.max_len),
                            temperature=cfg.temperature, seed=cfg.seed + 7)
    counts = correct_counts(sampler, ToyArith(), _docs(candidates, "hard"), params)
    scored = sorted(zip(counts, range(len(candidates)), strict=True))
    hard = [(c, i) for c, i in scored if c / cfg.k <= cfg.hard_max_pass][:cfg.max_hard]
    met = bool(hard)
    if not met:
        log.warning("no candidate has base pass rate <= %s; taking the hardest %d instead",
                    cfg.hard_max_pass, min(cfg.max_hard, 16))
        hard = scored[:min(cfg.max_hard, 16)]
    rows = [{**candidates[i], "hard": True, "base_p_hat": c / cfg.k} for c, i in sorted(hard, key=lambda t: t[1])]
    return rows, {"n_candidates": len(candidates), "n_hard": len(rows), "threshold_met": met,
                  "candidate_histogram": [counts.count(j) for j in range(cfg.k + 1)]}


def save_model(model: Any, tok: Any, out: Path) -> None:
    """The model and its tokenizer, side by side in ``out`` (``from_pretrained`` loads either)."""
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))


def model_record(model: Any, res: TrainResult) -> dict[str, Any]:
    """The selected checkpoint: step, whether the criteria were met, its metrics, size and history."""
    return {"step": res.step, "criteria_met": res.criteria_met, "metrics": res.metrics,
            "n_params": sum(p.numel() for p in model.parameters()), "history": res.history}
