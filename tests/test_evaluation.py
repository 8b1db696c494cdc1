"""Evaluation through lm-eval: our task YAMLs, avg@k / pass@k from k verified samples, MC accuracy.

Every test is offline on a tiny random Qwen3 with the char tokenizer; scores computed through
lm-eval are checked against direct computations (the paced verifier over the logged samples,
log-likelihoods from a forward pass, greedy ``generate``).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from paced.evaluation import (
    EvalConfig,
    evaluate_model,
    evaluate_tasks,
    generation_metrics,
    mean_by_tier,
    sample_scores,
    write_eval_result,
)
from paced.evaluation.prepare import prepare_tasks
from paced.io import read_json
from paced.tasks.base import TASKS, Doc, Task, get_task
from paced.world.tokenizer import save_char_tokenizer

# lm-eval must never reach the hub here (datasets reads these when lm-eval first imports it)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# the first half of the char alphabet: a random model's first character lands in it about half the time
_HALF = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"


class _FirstCharTask(Task):
    """Stand-in generation task: correct iff the completion's first character is in ``doc.answer``."""

    name = "evaltest_firstchar"
    kind = "generate"

    def format_prompt(self, doc: Doc) -> str:
        return f"{doc.prompt}="

    def extract_answer(self, completion: str) -> str | None:
        return completion[:1] or None

    def check(self, doc: Doc, completion: str) -> bool:
        return bool(completion) and completion[0] in doc.answer


class _ChoiceTask(Task):
    """Stand-in multiple-choice task. Its verifier (used for greedy EM) is a parity rule on the first
    generated character and the doc's last digit, so a random model scores strictly between 0 and 1."""

    name = "evaltest_choice"
    kind = "multiple_choice"

    def format_prompt(self, doc: Doc) -> str:
        return f"!{doc.prompt}="

    def extract_answer(self, completion: str) -> str | None:
        return completion[:1] or None

    def check(self, doc: Doc, completion: str) -> bool:
        return bool(completion) and (ord(completion[0]) + int(doc.prompt[-1])) % 2 == 0


for _cls in (_FirstCharTask, _ChoiceTask):
    if _cls.name not in TASKS:
        TASKS.add(_cls.name, _cls)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("tiny_model")
    tok = save_char_tokenizer(path)
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, head_dim=16,
                      max_position_embeddings=64, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    Qwen3ForCausalLM(cfg).save_pretrained(path)
    return path


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gen_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [{"id": f"g{i}", "prompt": f"{i}+{i + 3}", "answer": _HALF, "tier": ("easy", "hard")[i % 2]}
            for i in range(8)]
    return _write(tmp_path_factory.mktemp("gen") / "gen.jsonl", rows)


@pytest.fixture(scope="module")
def mc_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    choices = ["a", "k", "s", "z"]
    rows = [{"id": f"m{i}", "prompt": f"ab{i}", "answer": choices[i % 4], "choices": choices,
             "tier": "facts"} for i in range(8)]
    return _write(tmp_path_factory.mktemp("mc") / "mc.jsonl", rows)


def _evaluate_gen(model: Path, data: Path, out: Path, seed: int) -> dict:
    return evaluate_model(model, "evaltest_firstchar", data, k=4, max_new_tokens=3, temperature=1.0,
                          seed=seed, batch_size=16, samples_path=out, method="base", step=0)


def test_generate_avg_and_pass_at_k_match_direct_check(tiny_model: Path, gen_data: Path,
                                                        tmp_path: Path) -> None:
    result = _evaluate_gen(tiny_model, gen_data, tmp_path / "s.jsonl", seed=3)
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    task = get_task("evaltest_firstchar")
    docs = {d.id: d for d in task.load(gen_data)}
    assert len(rows) == 8 and all(len(r["completions"]) == 4 for r in rows)
    direct = [{"tier": docs[r["id"]].tier,
               "correct": [task.check(docs[r["id"]], c) for c in r["completions"]]} for r in rows]
    assert [r["correct"] for r in rows] == [[int(c) for c in d["correct"]] for d in direct]
    expected = generation_metrics(direct)
    for tier, n in (("all", 8), ("easy", 4), ("hard", 4)):
        got = result["metrics"][tier]
        for key in ("avg@k", "pass@k", "avg@k_std"):
            assert got[key] == pytest.approx(expected[tier][key]), (tier, key)
        assert (got["k"], got["n"]) == (4, n)
    # by hand for one tier: avg@k = mean of the flags, pass@k = share of problems with any correct
    easy = [d["correct"] for d in direct if d["tier"] == "easy"]
    assert result["metrics"]["easy"]["avg@k"] == pytest.approx(sum(map(sum, easy)) / 16)
    assert result["metrics"]["easy"]["pass@k"] == pytest.approx(sum(map(any, easy)) / 4)
    # the aggregates lm-eval itself reported agree with ours
    agg = result["provenance"]["config"]["lm_eval"]["results"]["paced_evaltest_firstchar"]
    for key in ("avg@k", "pass@k", "avg@k_std"):
        assert agg[f"{key},first_4"] == pytest.approx(result["metrics"]["all"][key]), key
    # non-degenerate: k real samples, some right and some wrong, so avg@k < pass@k somewhere
    assert 0 < result["metrics"]["all"]["avg@k"] < result["metrics"]["all"]["pass@k"]
    assert any(len(set(r["completions"])) > 1 for r in rows)
    assert (result["task"], result["kind"], result["method"], result["step"], result["seed"]) == (
        "evaltest_firstchar", "generate", "base", 0, 3)


def test_generate_seeded(tiny_model: Path, gen_data: Path, tmp_path: Path) -> None:
    _evaluate_gen(tiny_model, gen_data, tmp_path / "a.jsonl", seed=5)
    _evaluate_gen(tiny_model, gen_data, tmp_path / "b.jsonl", seed=5)
    _evaluate_gen(tiny_model, gen_data, tmp_path / "c.jsonl", seed=6)
    a, b, c = ((tmp_path / f"{n}.jsonl").read_text() for n in "abc")
    assert a == b
    assert a != c and len(a) > 0


def _direct_loglik(model, ids_prompt: list[int], ids_choice: list[int]) -> float:
    ids = torch.tensor([ids_prompt + ids_choice])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)  # (T, V)
    pos = range(len(ids_prompt) - 1, len(ids_prompt) + len(ids_choice) - 1)
    return float(sum(logp[p, t] for p, t in zip(pos, ids_choice, strict=True)))


def test_multiple_choice_matches_direct_loglikelihood_and_greedy(tiny_model: Path, mc_data: Path,
                                                                  tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = evaluate_model(tiny_model, "evaltest_choice", mc_data, max_new_tokens=2, seed=0,
                            batch_size=8, samples_path=tmp_path / "s.jsonl")
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "s.jsonl").read_text().splitlines())}
    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    task = get_task("evaltest_choice")
    hits, ems = [], []
    for doc in task.load(mc_data):
        prompt_ids = tok(task.format_prompt(doc), add_special_tokens=False)["input_ids"]
        lls = [_direct_loglik(model, prompt_ids, tok(c, add_special_tokens=False)["input_ids"])
               for c in doc.choices]
        torch.testing.assert_close(torch.tensor(rows[doc.id]["loglikelihoods"]), torch.tensor(lls),
                                   atol=1e-4, rtol=1e-4)
        hits.append(float(max(range(len(lls)), key=lls.__getitem__) == doc.choices.index(doc.answer)))
        out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=2, do_sample=False,
                             pad_token_id=tok.pad_token_id)
        completion = tok.decode(out[0, len(prompt_ids):], skip_special_tokens=True)
        assert rows[doc.id]["completions"] == [completion]
        ems.append(float(task.check(doc, completion)))
    for tier in ("all", "facts"):
        assert result["metrics"][tier]["mc_acc"] == pytest.approx(sum(hits) / len(hits))
        assert result["metrics"][tier]["em"] == pytest.approx(sum(ems) / len(ems))
        assert result["metrics"][tier]["n"] == 8
    assert 0 < sum(hits) < len(hits) and 0 < sum(ems) < len(ems)  # neither score is degenerate
    assert result["kind"] == "multiple_choice"
    write_eval_result(tmp_path / "r" / "step0.json", result)
    assert read_json(tmp_path / "r" / "step0.json")["metrics"] == result["metrics"]
    assert set(result["provenance"]) >= {"config", "seed", "versions", "git"}


def test_evaluate_tasks_loads_the_model_once_for_several_tasks(tiny_model: Path, gen_data: Path,
                                                                 mc_data: Path, tmp_path: Path) -> None:
    both = evaluate_tasks(tiny_model, {"evaltest_firstchar": gen_data, "evaltest_choice": mc_data}, k=2,
                          max_new_tokens=2, seed=0, batch_size=8, work_dir=tmp_path / "w", method="m")
    alone = evaluate_model(tiny_model, "evaltest_choice", mc_data, k=2, max_new_tokens=2, seed=0, batch_size=8)
    assert both["evaltest_choice"]["metrics"] == alone["metrics"]  # greedy + log-likelihood: deterministic
    gen = both["evaltest_firstchar"]
    assert (gen["task"], gen["kind"], gen["method"], gen["metrics"]["all"]["k"]) == (
        "evaltest_firstchar", "generate", "m", 2)
    assert sorted(gen["provenance"]["config"]["lm_eval"]["results"]) == ["paced_evaltest_firstchar"]
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["evaltest_choice", "evaltest_firstchar"]


@pytest.mark.parametrize(("task_name", "rows", "keys"), [
    ("toy_arith", [{"id": f"t{i}", "prompt": f"@{i}+{i}*2:", "answer": str(i), "solution": f"{i},{i},#{i}",
                    "tier": ("learnable", "intractable")[i % 2]} for i in range(4)],
     {"avg@k", "avg@k_std", "pass@k", "k", "n"}),
    ("toy_probe", [{"id": f"p{i}", "prompt": f"!ab{i}=", "answer": "bc"[i % 2], "choices": ["a", "b", "c"]}
                   for i in range(4)], {"mc_acc", "mc_prob", "em", "n"}),
])
def test_toy_tasks_end_to_end(tiny_model: Path, tmp_path: Path, task_name: str, rows: list[dict],
                              keys: set[str]) -> None:
    import paced.tasks  # noqa: F401  -- registers the toy tasks once that package lists them

    if task_name not in TASKS:
        pytest.skip(f"{task_name} is not registered yet")
    data = _write(tmp_path / "d.jsonl", rows)
    result = evaluate_model(tiny_model, task_name, data, k=2, max_new_tokens=4, seed=0, batch_size=8)
    assert set(result["metrics"]["all"]) == keys and result["metrics"]["all"]["n"] == 4
    assert all(0.0 <= v <= 1.0 for k, v in result["metrics"]["all"].items() if k not in ("k", "n"))


def test_generated_yaml_loads_with_take_first_k(gen_data: Path, mc_data: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    monkeypatch.chdir(tmp_path)  # data paths must not depend on the CWD
    cfg = EvalConfig(k=5, temperature=0.7, max_new_tokens=9)
    gen = prepare_tasks("evaltest_firstchar", get_task("evaltest_firstchar").load(gen_data),
                        tmp_path / "gen", cfg)
    mc = prepare_tasks("evaltest_choice", get_task("evaltest_choice").load(mc_data), tmp_path / "mc", cfg)
    assert (gen.names(), mc.names()) == (["paced_evaltest_firstchar"],
                                         ["paced_evaltest_choice_mc", "paced_evaltest_choice_em"])
    spec = load_yaml(tmp_path / "gen" / "paced_evaltest_firstchar.yaml")
    assert spec["repeats"] == 5 and spec["output_type"] == "generate_until"
    assert spec["filter_list"][0]["filter"] == [{"function": "take_first_k", "k": 5}]
    assert spec["generation_kwargs"] == {"until": [], "max_gen_toks": 9, "do_sample": True,
                                         "temperature": 0.7}
    assert callable(spec["process_results"])
    assert Path(spec["dataset_kwargs"]["data_files"]["test"]).is_absolute()
    mc_spec = load_yaml(tmp_path / "mc" / "paced_evaltest_choice_mc.yaml")
    assert (mc_spec["output_type"], mc_spec["target_delimiter"]) == ("multiple_choice", "")
    for prepared in (gen, mc):
        manager = TaskManager(include_path=str(prepared.include_path), include_defaults=False)
        assert set(prepared.names()) <= set(manager.all_tasks)
    first = json.loads((tmp_path / "mc" / "data.jsonl").read_text().splitlines()[1])
    assert (first["query"], first["mc_choices"], first["mc_gold"]) == ("!ab1=", ["a", "k", "s", "z"], 1)


def test_unknown_task_is_a_clear_error(tiny_model: Path, gen_data: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown task 'evaltest_firstchr'.*evaltest_firstchar"):
        evaluate_model(tiny_model, "evaltest_firstchr", gen_data, k=1)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_missing_names_the_fix(tiny_model: Path, gen_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'paced\[vllm\]'"):
        evaluate_model(tiny_model, "evaltest_firstchar", gen_data, backend="vllm", work_dir=tmp_path / "w")
    assert not (tmp_path / "w").exists()  # failed before writing anything


@pytest.mark.parametrize(("knobs", "match"), [
    ({"k": 0}, r"EvalConfig\.k must be an int >= 1, got 0"),
    ({"temperature": -1.0}, r"EvalConfig\.temperature"),
    ({"dtype": "fp8"}, r"EvalConfig\.dtype must be one of"),
    ({"backend": "vlm"}, r"Did you mean 'vllm'"),
    ({"kk": 3}, r"unknown evaluation option\(s\) \['kk'\]; allowed: k, "),
])
def test_bad_options_are_named(tiny_model: Path, gen_data: Path, knobs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate_model(tiny_model, "evaltest_firstchar", gen_data, **knobs)


def test_scores_closed_form() -> None:
    assert sample_scores([True, False, False, True]) == {"avg@k": 0.5, "pass@k": 1.0}
    assert sample_scores([False] * 3) == {"avg@k": 0.0, "pass@k": 0.0}
    # per-index accuracies (1, 0.5, 0): mean 0.5, sample std 0.5
    gen = generation_metrics([{"tier": "t", "correct": [1, 1, 0]}, {"tier": None, "correct": [1, 0, 0]}])
    assert gen["all"] == pytest.approx({"avg@k": 0.5, "avg@k_std": 0.5, "pass@k": 1.0, "k": 3, "n": 2})
    assert gen["t"] == pytest.approx({"avg@k": 2 / 3, "avg@k_std": 0.57735027, "pass@k": 1.0, "k": 3, "n": 1})
    recs = [{"tier": "a", "x": 1.0}, {"tier": "a", "x": 0.0}, {"tier": "b", "x": 1.0},
            {"tier": None, "x": 0.0}]
    assert mean_by_tier(recs, ("x",)) == {"all": {"x": 0.5, "n": 4}, "a": {"x": 0.5, "n": 2},
                                          "b": {"x": 1.0, "n": 1}}
    with pytest.raises(ValueError, match="at least one sample"):
        sample_scores([])


def test_gold_choice_prob_renormalises_over_the_choices():
    import math

    from paced.evaluation.lmeval import gold_choice_prob

    lls = [math.log(0.2), math.log(0.1), math.log(0.1)]  # the choices hold 0.4 of the mass; gold has half
    assert gold_choice_prob(lls, 0) == pytest.approx(0.5)
    assert gold_choice_prob(lls, 2) == pytest.approx(0.25)
    far = [-1000.0, -1000.0 - math.log(3.0)]  # exp underflows without the max shift
    assert gold_choice_prob(far, 0) == pytest.approx(0.75)


def test_budget_and_rows_checked_against_the_context(tiny_model: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The tiny model has 64 positions: a budget with no room for a prompt is refused before lm-eval runs (it would
    cut the prompt to nothing); an over-long row is refused naming file, row and id, or skipped with a count."""
    rows = [{"id": f"g{i}", "prompt": "1+2" * (20 if i == 2 else 1), "answer": _HALF, "tier": "easy"}
            for i in range(4)]
    data = _write(tmp_path / "gen.jsonl", rows)
    with pytest.raises(ValueError, match=r"eval\.max_new_tokens=64 does not fit: model .* has 64 positions"):
        evaluate_model(tiny_model, "evaltest_firstchar", data, k=2, max_new_tokens=64)
    with pytest.raises(ValueError, match=r"gen\.jsonl:3 \(id 'g2'\): the prompt has 61 tokens"):
        evaluate_model(tiny_model, "evaltest_firstchar", data, k=2, max_new_tokens=8)
    import logging

    with caplog.at_level(logging.WARNING, logger="paced.rollouts.context"):
        result = evaluate_model(tiny_model, "evaltest_firstchar", data, k=2, max_new_tokens=8, overlong="skip",
                                batch_size=8)
    assert result["metrics"]["all"]["n"] == 3 and "skipped 1 of 4 rows" in caplog.text


def test_multiple_choice_under_a_chat_template_is_scored_without_thinking(tiny_model: Path, mc_data: Path,
                                                                          gen_data: Path, tmp_path: Path) -> None:
    """As lm-eval's mmlu: the MC task's prompt closes an empty think block (enable_thinking=False reaches the
    template), the generation task keeps the template's default (thinking on)."""
    import shutil

    from transformers import AutoTokenizer

    model = tmp_path / "chat_model"
    shutil.copytree(tiny_model, model)
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = ("{% for m in messages %}<{{ m['content'] }}>{% endfor %}"
                         "{% if enable_thinking is defined and enable_thinking is false %}#{% endif %}")
    tok.save_pretrained(model)
    evaluate_tasks(model, {"evaltest_choice": mc_data, "evaltest_firstchar": gen_data}, k=1, max_new_tokens=2,
                   work_dir=tmp_path / "work", limit=2, em=False,
                   task_kwargs={t: {"chat_tokenizer": str(model)} for t in ("evaltest_choice", "evaltest_firstchar")})
    queries = {t: [json.loads(x)["query"] for x in (tmp_path / "work" / t / "data.jsonl").read_text().splitlines()]
               for t in ("evaltest_choice", "evaltest_firstchar")}
    assert queries["evaltest_choice"] == ["<!ab0=>#", "<!ab1=>#"]
    assert queries["evaltest_firstchar"] == ["<0+3=>", "<1+4=>"]
