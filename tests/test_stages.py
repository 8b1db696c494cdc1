"""The pass-rate and reference stages (fake and tiny HF samplers), and the vLLM backend's wiring."""

from __future__ import annotations

import json
import sys
import types

import pytest
from _distill_world import build, toy_rows, write_jsonl

from paced.io import read_json
from paced.passrate.estimate import estimate_pass_rates
from paced.references import generate_references
from paced.rollouts.base import Rollout, Sampler, SamplingParams, get_sampler
from paced.tasks.base import doc_from_row


class ScriptedSampler(Sampler):
    """Answers problem i correctly in the first ``right[i]`` of its n samples."""

    def __init__(self, docs, right):
        self.right = {d.id: r for d, r in zip(docs, right, strict=True)}
        self.by_prompt = {d.prompt: d for d in docs}
        self.calls = []

    def generate(self, prompts, params):
        self.calls.append(params)
        out = []
        for p in prompts:
            d = self.by_prompt[p]
            out.append([Rollout(f"0,#{d.answer if j < self.right[d.id] else 'X'}", (1,)) for j in range(params.n)])
        return out


@pytest.fixture
def docs():
    return [doc_from_row({**r, "id": f"p{i}"}, "t") for i, r in enumerate(toy_rows(3, 1))]


def test_estimate_pass_rates_writes_counts_p_hat_and_histogram(tmp_path, docs):
    sampler = ScriptedSampler(docs, [0, 2, 4, 1])
    out = estimate_pass_rates(sampler, "toy_arith", docs, tmp_path / "passrates.jsonl", k=4,
                              smoothing="laplace", seed=7)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["num_correct"], r["k"], r["tier"]) for r in rows] == [
        ("p0", 0, 4, "learnable"), ("p1", 2, 4, "learnable"), ("p2", 4, 4, "learnable"), ("p3", 1, 4, "intractable")]
    assert [r["p_hat"] for r in rows] == pytest.approx([1 / 6, 3 / 6, 5 / 6, 2 / 6])
    summary = read_json(tmp_path / "summary.json")
    assert summary["histogram"]["all"] == {"0/4": 1, "1/4": 1, "2/4": 1, "4/4": 1}
    assert summary["histogram"]["tier:intractable"] == {"1/4": 1}
    assert summary["provenance"]["seed"] == 7 and summary["provenance"]["config"]["k"] == 4
    assert sampler.calls == [SamplingParams(n=4, max_new_tokens=64, temperature=1.0, seed=7)]


def test_generate_references_keeps_a_verified_sample_or_drops_the_problem(tmp_path, docs):
    sampler = ScriptedSampler(docs, [0, 1, 3, 0])
    out = generate_references(sampler, "toy_arith", docs, tmp_path / "refs.jsonl", attempts=3, only_correct=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["correct"]) for r in rows] == [("p1", True), ("p2", True)]
    assert all(r["reference"].endswith("#" + d.answer) for r, d in zip(rows, docs[1:3], strict=True))
    every = generate_references(sampler, "toy_arith", docs, tmp_path / "all.jsonl", attempts=3)
    assert [json.loads(line)["correct"] for line in every.read_text().splitlines()] == [False, True, True, False]
    assert read_json(tmp_path / "references_summary.json")["n_correct"] == 2


def test_stages_run_on_a_tiny_hf_model_by_path(tmp_path):
    world = build(tmp_path)
    out = estimate_pass_rates(world["student"], "toy_arith", world["data"], tmp_path / "pr" / "passrates.jsonl",
                              k=2, max_new_tokens=4, sampler_kwargs={"batch_size": 4})
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and all(r["k"] == 2 and 0 <= r["num_correct"] <= 2 for r in rows)
    refs = generate_references(world["teacher"], "toy_arith", world["data"], tmp_path / "refs.jsonl",
                               max_new_tokens=4)
    assert len(refs.read_text().splitlines()) == 8


def test_vllm_backend_says_how_to_install_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'paced\[vllm\]'"):
        get_sampler("vllm", model="some/model")


def test_vllm_backend_maps_params_and_strips_eos(monkeypatch):
    fake = types.ModuleType("vllm")
    made = {}

    class LLM:
        def __init__(self, **kw):
            made["llm"] = kw

        def get_tokenizer(self):
            return types.SimpleNamespace(eos_token_id=2)

        def generate(self, prompts, sp, use_tqdm=False):
            made["sp"] = sp
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"{p}!{j}", token_ids=[7, j, 2])
                                                   for j in range(sp.n)]) for p in prompts]

    fake.LLM = LLM
    fake.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    sampler = get_sampler("vllm", model="m", seed=3)
    out = sampler.generate(["a", "b"], SamplingParams(n=2, max_new_tokens=5, temperature=0.7, seed=11))
    assert made["llm"]["seed"] == 3 and made["llm"]["model"] == "m"
    assert vars(made["sp"]) == {"n": 2, "max_tokens": 5, "temperature": 0.7, "top_p": 1.0, "top_k": 0,
                                "min_p": 0.0, "presence_penalty": 0.0}  # no per-request seed
    assert [[r.text for r in rs] for rs in out] == [["a!0", "a!1"], ["b!0", "b!1"]]
    assert out[0][1].token_ids == (7, 1)


def test_passrates_file_feeds_the_trainer(tmp_path, docs):
    from paced.passrate.files import read_passrates

    path = estimate_pass_rates(ScriptedSampler(docs, [0, 2, 4, 1]), "toy_arith", docs, tmp_path / "p.jsonl", k=4)
    assert read_passrates(path) == {"p0": (0, 4), "p1": (2, 4), "p2": (4, 4), "p3": (1, 4)}
    write_jsonl(tmp_path / "bad.jsonl", [{"id": "p0", "k": 4}])
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*num_correct"):
        read_passrates(tmp_path / "bad.jsonl")
