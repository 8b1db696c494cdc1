"""From config to runs: what the resolved suite hands to the trainer, samplers and lm-eval."""

from __future__ import annotations

import pytest
from test_ablations import snakemake_config

from paced.pipeline.common import chat_kwargs, sampler_kwargs
from paced.pipeline.distill import distill_config
from paced.pipeline.suite import Suite, resolve_suite


def _suite(override: dict) -> Suite:
    return resolve_suite(snakemake_config(override))


def test_default_grid_cells_and_paths():
    suite = resolve_suite(snakemake_config({}))
    cells = suite.eval_cells()
    assert ("base", 0, 0) in cells and ("paced-fkl", 2, 300) in cells
    assert len(cells) == 3 + 6 * 3 * 2  # base per seed + methods x seeds x budgets
    assert suite.train_path == "results/world/train.jsonl" and suite.student == "results/world/student"
    assert [t.path for t in suite.eval_tasks] == ["results/world/eval_arith.jsonl", "results/world/probe.jsonl"]


def test_eval_k_sets_the_world_reasoning_eval_only():
    tasks = {t.name: t.k for t in resolve_suite(snakemake_config({"eval": {"k": 3}})).eval_tasks}
    assert tasks == {"arith": 3, "probe": 1}
    own = [{"name": "mine", "task": "toy_arith", "path": "x.jsonl", "k": 5}]
    assert [t.k for t in resolve_suite(snakemake_config({"eval": {"k": 3}, "data": {"eval": own}})).eval_tasks] == [5]


@pytest.mark.parametrize("flag", [False, True])
def test_trust_remote_code_reaches_every_loader(flag):
    suite = _suite({"models": {"trust_remote_code": flag}})
    cfg = distill_config(suite, "paced-fkl", 0, passrates="p.jsonl", references="r.jsonl")
    assert cfg.trust_remote_code is flag
    assert sampler_kwargs(suite.sampling, suite.models, "cpu")["trust_remote_code"] is flag


def test_suite_passrate_section_sets_method_k_and_refresh():
    suite = _suite({"passrate": {"k": 16, "refresh": "every_n", "refresh_every": 50}})
    paced, uniform = suite.method_specs["paced-fkl"], suite.method_specs["uniform-fkl"]
    assert paced["k"] == 16 and paced["refresh"] == "every_n" and paced["refresh_every"] == 50
    assert uniform["weight_source"] == "none" and uniform["refresh"] == "once"  # unweighted: never refreshed
    cfg = distill_config(suite, "paced-fkl", 1, passrates="p.jsonl", references="r.jsonl", teacher_cache="c.npz")
    assert cfg.passrates == "p.jsonl" and cfg.seed == 1 and cfg.teacher_cache_path == "c.npz"
    assert cfg.out_dir == "results/runs/paced-fkl/seed1" and cfg.save_steps == (150,)


def test_chat_template_flag_wraps_tasks():
    assert chat_kwargs("m", _suite({}).models) == {}
    assert chat_kwargs("m", _suite({"models": {"chat_template": True}}).models) == {"chat_tokenizer": "m"}
    thinking = _suite({"models": {"chat_template": True, "enable_thinking": False}}).models
    assert chat_kwargs("m", thinking) == {"chat_tokenizer": "m", "enable_thinking": False}  # explicit, as configured


def test_sampler_kwargs_per_backend():
    suite = _suite({})
    hf = sampler_kwargs(suite.sampling, suite.models, "cpu")
    assert hf == {"trust_remote_code": False, "progress": True, "batch_size": 32,  # config.yaml: sampling.batch_size
                  "device": "cpu"}
    vllm = sampler_kwargs({**suite.sampling.values, "backend": "vllm"}, suite.models, "cpu", {"enforce_eager": True})
    # VLLMSampler passes trust_remote_code on to vllm.LLM; the vllm: section is its engine config
    assert vllm == {"trust_remote_code": False, "progress": True, "config": {"enforce_eager": True}, "dtype": "float32"}


def test_lm_eval_stock_tasks_are_named_and_checked_at_parse_time():
    suite = _suite({"data": {"lm_eval_tasks": ["aime25"]}})
    assert suite.stock_tasks == ("aime25",)
    with pytest.raises(ValueError, match=r"data\.lm_eval_tasks: lm-eval has no registered task 'aime25x'"):
        _suite({"data": {"lm_eval_tasks": ["aime25x"]}})


def test_vllm_engine_settings_split_into_identity_and_run_time():
    from types import SimpleNamespace

    from paced.pipeline.common import vllm_slice, with_runtime

    engine = {"gpu_memory_utilization": 0.5, "enforce_eager": True, "max_model_len": 4096, "dtype": None}
    suite = SimpleNamespace(sampling=SimpleNamespace(backend="vllm"), vllm=SimpleNamespace(values=engine))
    ident = vllm_slice(suite)
    assert ident == {"max_model_len": 4096, "dtype": None}  # what an engine computes: the job's identity
    assert vllm_slice(SimpleNamespace(sampling=SimpleNamespace(backend="hf"), vllm=suite.vllm)) is None
    full = with_runtime({"vllm": ident}, {"vllm": {**engine, "gpu_memory_utilization": 0.3, "max_model_len": 1}})
    assert full["vllm"]["gpu_memory_utilization"] == 0.3 and full["vllm"]["max_model_len"] == 4096


def test_unweighted_runs_do_not_depend_on_pass_rate_settings():
    from paced.pipeline import distill

    before, after = _suite({}), _suite({"passrate": {"k": 4, "smoothing": "laplace"}})
    uniform = distill.params(before, "uniform-fkl", 0)
    assert uniform == distill.params(after, "uniform-fkl", 0) and uniform["config"]["passrates"] is None
    assert distill.params(before, "paced-fkl", 0) != distill.params(after, "paced-fkl", 0)
    assert set(distill.RUNTIME_KEYS).isdisjoint(uniform["config"])  # micro-batching is no part of a run's identity
