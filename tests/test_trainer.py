"""The distillation trainer on tiny random Qwen3 models (seconds each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _distill_world import build, read_log, save_model, tiny_model, write_jsonl
from safetensors.torch import load_file

from paced.rollouts.hf import HFSampler
from paced.trainer import DistillConfig, NonFiniteLossError, distill
from paced.trainer import loop as loop_mod
from paced.trainer import setup as setup_mod
from paced.trainer import step as step_mod
from paced.trainer.batches import collate, response_logits
from paced.trainer.teacher import TeacherScorer
from paced.world.tokenizer import build_char_tokenizer


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build(tmp_path_factory.mktemp("world"))


def _cfg(world, out, **kw):
    base = dict(student=world["student"], teacher=world["teacher"], task="toy_arith", data=world["data"],
                out_dir=str(out), steps=4, batch_size=4, lr=1e-2, progress=False, max_new_tokens=6)
    return DistillConfig(**{**base, **kw})


def _params(ckpt) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


def _passrates(path, counts: dict[str, int], k: int = 8) -> str:
    return write_jsonl(path, [{"id": i, "num_correct": c, "k": k} for i, c in counts.items()])


def _ids(world) -> list[str]:
    return [json.loads(line)["id"] for line in open(world["data"])]


def test_response_logits_line_up_with_unpadded_forward():
    tok = build_char_tokenizer()
    model = tiny_model(tok, 0).eval()
    prompts, responses = [[5, 6, 7], [8]], [[9, 10], [11, 12, 13, 14]]
    batch = collate(prompts, responses, tok.pad_token_id)
    got = response_logits(model, batch)  # (2, 4, V)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        alone = model(input_ids=torch.tensor([p + r])).logits[0, len(p) - 1:len(p) + len(r) - 1]
        torch.testing.assert_close(got[i, :len(r)], alone, atol=1e-5, rtol=1e-4)
    assert batch.response_mask.tolist() == [[True, True, False, False], [True] * 4]


def test_fkl_loss_goes_down(world, tmp_path):
    distill(_cfg(world, tmp_path, steps=8, batch_size=8), "uniform-fkl")
    losses = [r["loss"] for r in read_log(tmp_path) if r["event"] == "step"]
    assert len(losses) == 8 and losses[-1] < 0.6 * losses[0], losses


def test_base_method_saves_the_untouched_student(world, tmp_path):
    res = distill(_cfg(world, tmp_path), "base")
    assert res.final_checkpoint.name == "step0" and res.steps == 0
    before, after = _params(Path(world["student"])), _params(res.final_checkpoint)
    assert before.keys() == after.keys()
    for name, value in before.items():
        torch.testing.assert_close(after[name], value, rtol=0, atol=0)


def test_zero_weight_problem_alone_is_skipped_and_params_unchanged(world, tmp_path):
    pid = _ids(world)[0]
    data = write_jsonl(tmp_path / "one.jsonl", [json.loads(open(world["data"]).readline())])
    cfg = _cfg(world, tmp_path / "run", data=data, batch_size=1, steps=2,
               passrates=_passrates(tmp_path / "pr.jsonl", {pid: 0}))
    res = distill(cfg, "hardfilter-fkl")
    assert res.skipped_batches == 2
    rows = read_log(tmp_path / "run")
    assert [(r["skipped"], r["skipped_total"], r["zero_weight_share"]) for r in rows] == [(True, 1, 1.0),
                                                                                          (True, 2, 1.0)]
    before, after = _params(Path(world["student"])), _params(res.final_checkpoint)
    for name, value in before.items():
        torch.testing.assert_close(after[name], value, rtol=0, atol=0)


def test_zero_weight_problem_contributes_nothing_to_a_mixed_batch(world, tmp_path):
    rows = [json.loads(line) for line in open(world["data"])][:2]
    pr = _passrates(tmp_path / "pr.jsonl", {rows[0]["id"]: 0, rows[1]["id"]: 4})
    both = distill(_cfg(world, tmp_path / "both", data=write_jsonl(tmp_path / "2.jsonl", rows), batch_size=2,
                        steps=1, passrates=pr), "hardfilter-fkl")
    alone = distill(_cfg(world, tmp_path / "alone", data=write_jsonl(tmp_path / "1.jsonl", rows[1:]),
                         batch_size=1, steps=1, passrates=pr), "hardfilter-fkl")
    a, b = _params(both.final_checkpoint), _params(alone.final_checkpoint)
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_two_stage_schedule_switches_at_the_right_step(world, tmp_path):
    method = {"preset": "uniform-fkl-then-rkl", "stages": [["forward_kl", 0.25], ["reverse_kl", 0.75]]}
    distill(_cfg(world, tmp_path), method)
    assert [r["divergence"] for r in read_log(tmp_path)] == ["forward_kl"] + ["reverse_kl"] * 3


def test_rkl_samples_come_from_the_current_student(world, tmp_path, monkeypatch):
    seen = []
    original = HFSampler.generate

    def spy(self, prompts, params):
        seen.append((self.model, {k: v.detach().clone() for k, v in self.model.state_dict().items()}))
        return original(self, prompts, params)

    monkeypatch.setattr(HFSampler, "generate", spy)
    res = distill(_cfg(world, tmp_path, steps=3, save_steps=(1, 2)), "uniform-rkl")
    assert len(seen) == 3 and all(m is seen[0][0] for m, _ in seen)
    start = _params(Path(world["student"]))
    for name, value in start.items():  # step 1 samples the initial student ...
        torch.testing.assert_close(seen[0][1][name], value, rtol=0, atol=0)
    for step in (1, 2):  # ... step k+1 the student after k updates
        ck = _params(tmp_path / "checkpoints" / f"step{step}")
        for name, value in ck.items():
            torch.testing.assert_close(seen[step][1][name], value, rtol=0, atol=0)
    final = _params(res.final_checkpoint)  # and the sampled model object is the one being trained
    live = seen[0][0].state_dict()
    for name, value in final.items():
        torch.testing.assert_close(live[name], value, rtol=0, atol=0)


def test_self_teacher_sees_the_gold_answer_and_the_student_does_not(world, tmp_path, monkeypatch):
    student_inputs, teacher_inputs = [], []
    real_logits, real_teacher = step_mod.response_logits, TeacherScorer.logits

    def spy_student(model, batch):
        student_inputs.append(batch)
        return real_logits(model, batch)

    def spy_teacher(self, ids, prompts, responses, **kw):
        teacher_inputs.append((list(ids), prompts, responses))
        return real_teacher(self, ids, prompts, responses, **kw)

    monkeypatch.setattr(step_mod, "response_logits", spy_student)
    monkeypatch.setattr(TeacherScorer, "logits", spy_teacher)
    distill(_cfg(world, tmp_path, steps=1), {"preset": "uniform-rkl", "teacher": "self"})
    tok = build_char_tokenizer()
    docs = {r["id"]: r for r in map(json.loads, open(world["data"]))}
    (ids, t_prompts, responses), batch = teacher_inputs[0], student_inputs[0]
    for i, pid in enumerate(ids):
        gold = docs[pid]["answer"]
        teacher_text = tok.decode(t_prompts[i])
        assert f"answer to this problem is: {gold}" in teacher_text and teacher_text.endswith(docs[pid]["prompt"])
        row = batch.input_ids[i][batch.attention_mask[i].bool()].tolist()
        student_prompt = tok.decode(row[:len(row) - int(batch.response_mask[i].sum())])
        assert student_prompt == docs[pid]["prompt"]  # no hint for the student
        assert row[len(row) - len(responses[i]):] == list(responses[i])  # same response tokens


def test_nan_loss_stops_the_run_naming_step_and_batch_without_checkpoint(world, tmp_path, monkeypatch):
    real = loop_mod.batch_loss

    def poisoned(ctx, docs, weights, stage, step, *rows):
        loss = real(ctx, docs, weights, stage, step, *rows)
        return loss * float("nan") if step == 2 else loss

    monkeypatch.setattr(loop_mod, "batch_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*batch problem ids: \[.*'(learnable|intractable)-"):
        distill(_cfg(world, tmp_path, save_steps=(1, 2, 3)), "uniform-fkl")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step1", "step2"]
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2]


def _forbid_weights(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("model weights were loaded before validation")
    monkeypatch.setattr(setup_mod, "load_model", boom)


def test_teacher_with_another_vocabulary_is_rejected_before_loading(world, tmp_path, monkeypatch):
    tok = build_char_tokenizer()
    other = save_model(tiny_model(tok, 2, vocab_size=len(tok) + 8), tok, tmp_path / "big")
    _forbid_weights(monkeypatch)
    with pytest.raises(ValueError, match="vocab_size"):
        distill(_cfg(world, tmp_path / "run", teacher=other), "uniform-fkl")


@pytest.mark.parametrize("method, kw, match", [
    ("uniform-rkl", {"sampler": None}, "on-policy stage.*sampler is None"),
    ({"stages": [["forward_kl", 3]]}, {}, "add up to 3.*steps=4"),
    ("uniform-fkl", {"task": "toy_arithm"}, "Did you mean 'toy_arith'"),
    ("uniform-fkl", {"teacher": None}, "separate teacher"),
])
def test_bad_runs_are_rejected_before_loading(world, tmp_path, monkeypatch, method, kw, match):
    _forbid_weights(monkeypatch)
    with pytest.raises(ValueError, match=match):
        distill(_cfg(world, tmp_path, **kw), method)


def test_teacher_cache_matches_batched_logits_and_is_reused():
    tok = build_char_tokenizer()
    teacher = tiny_model(tok, 1).eval()
    prompts, responses = [[5, 6, 7], [8], [9, 9]], [[9, 10], [11, 12, 13, 14], [15]]
    plain = TeacherScorer(teacher, tok.pad_token_id)
    cached = TeacherScorer(teacher, tok.pad_token_id, cache_max_bytes=2**20)
    ids, cpu = ["a", "b", "c"], torch.device("cpu")
    want = plain.logits(ids, prompts, responses, cacheable=True, device=cpu)  # no budget: batched forward
    got = cached.logits(ids, prompts, responses, cacheable=True, device=cpu)
    mask = collate(prompts, responses, tok.pad_token_id).response_mask
    torch.testing.assert_close(got[mask].log_softmax(-1), want[mask].log_softmax(-1), atol=1e-5, rtol=1e-4)
    assert cached.cached_problems == 3
    teacher.model.embed_tokens.weight.data.add_(1.0)  # a cache hit must not run the model again
    torch.testing.assert_close(cached.logits(ids, prompts, responses, cacheable=True, device=cpu), got)


@pytest.mark.slow
def test_two_process_cpu_run_via_accelerate_launch():
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "distill_2proc.py"
    done = subprocess.run([sys.executable, str(script), "--steps", "4"], capture_output=True, text=True,
                          timeout=600, env={**__import__("os").environ, "GOMP_SPINCOUNT": "1000"})
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"rank"')]
    # one process, then two (logits path), then two with the DDP-wrapped student on the fused path
    assert sorted((r["rank"], r["world"]) for r in ranks) == [(0, 1), (0, 2), (0, 2), (1, 2), (1, 2)]
