"""The toy world: generators (closed-form examples), config validation, a tiny end-to-end build."""

from __future__ import annotations

import json
import random

import pytest
import torch

from paced.tasks import get_task
from paced.world import WorldConfig, build_world
from paced.world.config import ModelSpec, TrainSpec
from paced.world.data import DIGITS, intractable_spec, learnable_spec, make_facts, render, run_chain, sample_chain
from paced.world.models import encode_pairs, lr_factor, progress_every
from paced.world.recipes import make_datasets


def test_render_matches_the_worked_example():
    steps = [("+", 8), ("*", 15), ("-", 9), ("-", 11), ("*", 6), ("*", 4), ("-", 4)]
    prompt, solution, answer = render(learnable_spec(8), 13, steps, pad_to=8)
    assert prompt == "@D+8*F-9-B*6*4-4..="
    assert solution == "D,5,B,2,7,A,8,4,#4" and answer == "4"
    assert solution.index("#") - 2 == 2 * len(steps)  # two characters per running value


def test_intractable_problems_defeat_a_mod16_solver():
    spec = intractable_spec(6, 8)
    rng = random.Random(0)
    for _ in range(200):
        row = sample_chain(rng, spec, 8)
        body = row["prompt"][1:-1].replace(".", "")
        a0, steps = DIGITS.index(body[0]), [(body[i], DIGITS.index(body[i + 1])) for i in range(1, len(body), 2)]
        assert 6 <= len(steps) <= 8 and row["prompt"][0] == "$"
        assert all(b in spec.mul_operands for op, b in steps if op == "*")
        assert DIGITS[run_chain(a0, steps, 24)[-1]] == row["answer"]
        assert DIGITS[run_chain(a0, steps, 16)[-1]] != row["answer"]


def test_facts_have_four_distinct_choices_with_the_answer():
    facts = make_facts(random.Random(1), 50)
    assert len({f["prompt"] for f in facts}) == 50
    for f in facts:
        assert len(set(f["choices"])) == 4 and f["answer"] in f["choices"]


def test_config_validation_names_field_value_and_range():
    with pytest.raises(ValueError, match=r"WorldConfig.hard_max_pass = 1.5 is invalid; allowed: \[0, 1\)"):
        WorldConfig(hard_max_pass=1.5)
    with pytest.raises(ValueError, match=r"TrainSpec\.warmup_steps = 20"):
        TrainSpec(max_steps=10, warmup_steps=20)
    with pytest.raises(ValueError, match=r"ModelSpec\.n_heads"):
        ModelSpec(n_heads=0)
    with pytest.raises(ValueError, match="Did you mean 'tiny'"):
        WorldConfig.preset("tiyn")
    cfg = WorldConfig.preset("tiny", seed=3)
    assert WorldConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_lr_schedule_closed_form():
    spec = TrainSpec(lr=1.0, max_steps=110, warmup_steps=10, min_lr_frac=0.1, eval_from=0)
    assert lr_factor(0, spec) == pytest.approx(0.1) and lr_factor(9, spec) == pytest.approx(1.0)
    assert lr_factor(60, spec) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way down the cosine
    assert lr_factor(110, spec) == pytest.approx(0.1)


def test_encode_pairs_puts_loss_on_completion_and_eos_only():
    from paced.world.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    b = encode_pairs([("!ab=", "q"), ("@1+1..=", "1,2,#2")], tok.get_vocab(), tok.eos_token_id, tok.pad_token_id)
    assert b["input_ids"].shape == (2, 14)
    labels = b["labels"][0].tolist()
    assert labels[:4] == [-100] * 4 and labels[4:6] == [tok.get_vocab()["q"], tok.eos_token_id]
    assert labels[6:] == [-100] * 8 and b["attention_mask"][0].sum() == 6


def test_datasets_deterministic_disjoint_and_tiered():
    cfg = WorldConfig.preset("tiny")
    a, b = make_datasets(cfg), make_datasets(cfg)
    assert a == b
    assert make_datasets(WorldConfig.preset("tiny", seed=1))["pool_learnable"] != a["pool_learnable"]
    prompts = [r["prompt"] for name, rows in a.items() if name != "facts" for r in rows]
    assert len(prompts) == len(set(prompts))
    assert {len(p) for p in prompts} == {2 * cfg.max_len + 3}
    assert {r["tier"] for r in a["pool_intractable"]} == {"intractable"}


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("w") / "world"
    rec = build_world(WorldConfig.preset("tiny"), out, calibrate=True)
    return out, rec


def test_tiny_world_files_tiers_and_tasks(tiny_world):
    out, rec = tiny_world
    cfg = WorldConfig.preset("tiny")
    train = get_task("toy_arith").load(out / "train.jsonl")
    assert len(train) == cfg.n_pool_learnable + cfg.n_pool_intractable == rec["sizes"]["train"]
    assert rec["tiers"]["train"] == {"learnable": cfg.n_pool_learnable, "intractable": cfg.n_pool_intractable}
    hard = get_task("toy_arith").load(out / "eval_hard.jsonl")
    assert all(d.meta["hard"] and d.tier == "learnable" for d in hard) and len(hard) <= cfg.max_hard
    probe = get_task("toy_probe").load(out / "probe.jsonl")
    assert len(probe) == cfg.n_facts
    assert json.loads((out / "world.json").read_text())["provenance"]["seed"] == 0


def test_student_learns_facts_first_then_mixes(tiny_world):
    _, rec = tiny_world
    hist = rec["student"]["history"]
    cfg = WorldConfig.preset("tiny")
    assert hist[0]["phase"] == "facts_first" and hist[0]["step"] == cfg.student_facts_first_steps
    assert "facts_em" in hist[0] and "acc_learnable" not in hist[0]
    assert all("acc_learnable" in m for m in hist[1:]) and len(hist) > 1
    with pytest.raises(ValueError, match="student_facts_first_steps"):
        WorldConfig(student_facts_first_steps=-1)


def test_tiny_world_models_load_by_path(tiny_world):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, rec = tiny_world
    for name in ("teacher", "student"):
        model = AutoModelForCausalLM.from_pretrained(out / name)
        tok = AutoTokenizer.from_pretrained(out / name)
        assert model.config.tie_word_embeddings and len(tok) == model.config.vocab_size
        assert sum(p.numel() for p in model.parameters()) == rec[name]["n_params"]


def test_tiny_world_calibration_files(tiny_world):
    out, _ = tiny_world
    cal = json.loads((out / "calibration.json").read_text())
    hist = cal["student"]["pool_histogram"]
    cfg = WorldConfig.preset("tiny")
    assert sum(hist["learnable"]) == cfg.n_pool_learnable and len(hist["learnable"]) == cfg.k + 1
    assert sum(hist["intractable"]) == cfg.n_pool_intractable
    assert (out / "calibration.png").stat().st_size > 1000


def test_build_is_deterministic_and_refuses_nonempty_dir(tiny_world, tmp_path, caplog):
    """The same world in-process and with the teacher and student trained in two worker processes."""
    import logging

    out, rec = tiny_world
    again = tmp_path / "again"
    with caplog.at_level(logging.INFO, logger="paced.world.build"):
        rec2 = build_world(WorldConfig.preset("tiny"), again, workers=2)
    streamed = [r.getMessage().split(" worker: ", 1) for r in caplog.records if " worker: " in r.getMessage()]
    progress = {role for role, line in streamed if "paced.world.models: " in line and " steps/s" in line}
    assert progress == {"teacher", "student"}  # each worker's training progress reaches this process's log
    for name in ("train.jsonl", "eval_math.jsonl", "eval_hard.jsonl", "probe.jsonl", "student/model.safetensors",
                 "teacher/model.safetensors"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    assert rec2["workers"] == 2 and rec2["student"]["step"] == rec["student"]["step"]
    assert sorted(p.name for p in again.iterdir() if p.name.startswith(".")) == []  # worker records folded in
    with pytest.raises(FileExistsError, match="not empty"):
        build_world(WorldConfig.preset("tiny"), again)


def test_failed_worker_stops_the_build_and_leaves_nothing(tmp_path, monkeypatch):
    import subprocess
    import sys

    import paced.world.build as b

    real = subprocess.Popen

    def popen(args, **kw):  # the student worker dies at once; the teacher must be stopped, not awaited
        if "student" in args:
            args = [sys.executable, "-c", "raise SystemExit(3)"]
        return real(args, **kw)

    monkeypatch.setattr(b.subprocess, "Popen", popen)
    with pytest.raises(RuntimeError, match=r"student \(exit 3\)"):
        build_world(WorldConfig.preset("tiny"), tmp_path / "w", workers=2)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="workers"):
        build_world(WorldConfig.preset("tiny"), tmp_path / "w", workers=0)


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    import paced.world.worker as w

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(w, "train_student", boom)
    with pytest.raises(RuntimeError, match="boom"):
        build_world(WorldConfig.preset("tiny"), tmp_path / "w")
    assert list(tmp_path.iterdir()) == []


def test_facts_topup_runs_after_the_mixed_phase_selection():
    """With student_topup_steps, the mixed phase selects by the mod-16 window alone and the facts are then
    re-learned (checked every 5 steps) until facts EM reaches the bar; an unreachable bar runs it to the end."""
    from paced.world.recipes import train_student
    from paced.world.tokenizer import build_char_tokenizer

    torch.set_num_threads(1)
    cfg = WorldConfig.preset("tiny", student_min_facts_em=1.0, student_topup_steps=10)
    _, res = train_student(cfg, make_datasets(cfg), build_char_tokenizer())
    phases = [m.get("phase") for m in res.history]
    assert phases[0] == "facts_first" and phases.count("topup") == 2  # checks at top-up steps 5 and 10
    topup = [m for m in res.history if m.get("phase") == "topup"]
    assert [m["step"] for m in topup] == [5, 10] and not res.criteria_met
    assert max(m["facts_em"] for m in topup) < 1.0  # the bar was never reached, so the best check is kept
    best = 5 if topup[0]["facts_em"] >= topup[1]["facts_em"] else 10
    assert res.step == cfg.student_train.eval_from + best  # mixed phase accepted at its first check (step 6)
    with pytest.raises(ValueError, match="student_topup_steps"):
        WorldConfig(student_topup_steps=-1)
    with pytest.raises(ValueError, match=r"teacher_intractable_share = 1 is invalid; allowed: \(0, 1\)"):
        WorldConfig(teacher_intractable_share=1)


def test_worker_log_tail_returns_whole_lines_once(tmp_path):
    from paced.world.worker import WorkerLogTail

    path = tmp_path / ".teacher.log"
    tail = WorkerLogTail(path)
    assert tail.new_lines() == []  # the worker has not started writing
    path.write_text("a\nb\npart")
    assert tail.new_lines() == ["a", "b"]  # the line being written waits until it is complete
    with path.open("a") as f:
        f.write("ial\nc\n")
    assert tail.new_lines() == ["partial", "c"] and tail.new_lines() == []
    with path.open("a") as f:
        f.write("killed mid-li")
    assert tail.new_lines(final=True) == ["killed mid-li"]


def test_train_lm_logs_progress_before_the_first_evaluation(caplog):
    import logging

    from paced.world.models import make_model, mix_batches, train_lm
    from paced.world.tokenizer import build_char_tokenizer

    assert [progress_every(n) for n in (1, 12, 16, 800, 1400)] == [1, 1, 1, 50, 87]
    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    model = make_model(ModelSpec(d_model=32, d_mlp=64, n_layers=1, n_heads=1, head_dim=32), tok, seed=0)
    pairs = iter(lambda: ("!ab=", "q"), None)
    spec = TrainSpec(lr=1e-3, batch_size=2, max_steps=32, warmup_steps=1, eval_from=32, eval_every=32)
    with caplog.at_level(logging.INFO, logger="paced.world.models"):
        train_lm(model, mix_batches([pairs], 2), tok, spec, lambda: {"x": 1.0}, accept=lambda m: True,
                 score=lambda m: 0.0, desc="t")
    lines = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in lines if "steps/s" in m] == [f"t step {s}/32" for s in range(2, 33, 2)]
    assert lines[-1].startswith("t step 32: ")  # the evaluation


def test_world_modules_import_no_private_names_and_form_no_cycle():
    """build and worker share the recipes module; no world module reaches into another's private names,
    and no two import each other (at module level or inside a function)."""
    import ast
    from pathlib import Path

    import paced.world

    pkg = Path(paced.world.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in pkg.glob("*.py"):
        name = f"paced.world.{path.stem}".removesuffix(".__init__")
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("paced.world"):
                assert not [a.name for a in node.names if a.name.startswith("_")], (name, node.module)
                graph[name].add(node.module)
    assert "paced.world.recipes" in graph["paced.world.worker"] and graph["paced.world.recipes"]

    def reaches(src: str, dst: str, seen: set[str]) -> bool:
        return any(n == dst or (n not in seen and reaches(n, dst, seen | {n})) for n in graph.get(src, ()))

    cyclic = sorted(m for m in graph if m != "paced.world" and reaches(m, m, set()))
    assert cyclic == []


def test_a_failed_worker_writes_its_traceback_to_the_log_the_build_streams(tmp_path):
    import subprocess
    import sys

    from paced.world.worker import WorkerLogTail, log_path

    done = subprocess.run([sys.executable, "-m", "paced.world.worker", "teacher", str(tmp_path / "no.json"),
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stderr == ""  # everything goes to the log file, once
    lines = WorkerLogTail(log_path(tmp_path, "teacher")).new_lines(final=True)
    assert lines[0] == "ERROR paced.world.worker: training the teacher failed"
    assert lines[1] == "Traceback (most recent call last):" and "no.json" in lines[-1]
