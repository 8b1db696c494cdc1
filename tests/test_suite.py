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
    vllm = sampler_kwargs({**suite.sampling.values, "backend": "vllm"}, suite.models, "cpu", {"enforce_eager": True},
                          seed=7)
    # VLLMSampler passes trust_remote_code on to vllm.LLM; the vllm: section is its engine config; the job's seed
    # seeds the engine (it takes no per-request seed)
    assert vllm == {"trust_remote_code": False, "progress": True, "config": {"enforce_eager": True}, "dtype": "float32",
                    "seed": 7}


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


@pytest.fixture
def vllm_present(monkeypatch):
    """The parse-time check that vLLM is installed, answered yes (the main test environment has no vLLM)."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "vllm" else find_spec(name, *a))


def test_only_runs_that_sample_their_student_carry_the_in_training_engine(vllm_present):
    from paced.pipeline import distill

    hf = _suite({"methods": ["uniform-fkl", "paced-fkl-then-rkl"]})
    engine = {"vllm": {"dtype": "bfloat16", "max_model_len": 40960, "tensor_parallel_size": 2,
                       "data_parallel_size": 4, "gpu_memory_utilization": 0.9}}
    vl = _suite({"methods": ["uniform-fkl", "paced-fkl-then-rkl"], "sampling": {"backend": "vllm"}, **engine})
    # an unweighted FKL run never samples: the backend and the engine are no part of it
    assert distill.params(hf, "uniform-fkl", 0) == distill.params(vl, "uniform-fkl", 0)
    assert "vllm" not in distill.params(hf, "uniform-fkl", 0)["config"]
    two = distill.params(vl, "paced-fkl-then-rkl", 0)["config"]
    # the two-stage run samples on-policy: vLLM, and of the engine only its dtype (the trainer sizes its context,
    # runs one whole engine per process; evaluation's context and parallel sizes are not its business)
    assert two["sampler"] == "vllm" and two["vllm"] == {"dtype": "bfloat16"}
    edited = _suite({"methods": ["paced-fkl-then-rkl"], "sampling": {"backend": "vllm"},
                     "vllm": {**engine["vllm"], "max_model_len": 8192, "data_parallel_size": 1,
                              "gpu_memory_utilization": 0.5, "train_gpu_memory_utilization": 0.2}})
    assert distill.params(edited, "paced-fkl-then-rkl", 0) == distill.params(vl, "paced-fkl-then-rkl", 0)


def test_the_in_training_engine_gets_its_run_time_settings_and_its_share(vllm_present):
    from paced.pipeline import distill
    from paced.trainer import DistillConfig
    from paced.trainer.identity import run_identity

    cfg = snakemake_config({"sampling": {"backend": "vllm"},
                            "vllm": {"dtype": "float32", "enforce_eager": True, "max_model_len": 40960,
                                     "gpu_memory_utilization": 0.9, "train_gpu_memory_utilization": 0.25}})
    p = distill.params(resolve_suite(cfg), "paced-fkl-then-rkl", 0)["config"]
    fields = distill.run_fields(p, distill.runtime(cfg))
    assert {k: v for k, v in fields["vllm"].items() if v is not None} == {  # unset keys: vLLM's defaults
        "dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.25}
    assert distill.run_fields({**p, "vllm": None}, distill.runtime(cfg))["vllm"] is None  # hf: no engine
    assert distill.runtime(snakemake_config({}))["vllm"]["gpu_memory_utilization"] == 0.3  # the default share
    # the run identity keeps the engine's dtype only: a lower memory share resumes the same run
    a = DistillConfig.from_dict({**fields, "out_dir": "x"})
    b = DistillConfig.from_dict({**fields, "out_dir": "x", "vllm": {**fields["vllm"], "gpu_memory_utilization": 0.1}})
    c = DistillConfig.from_dict({**fields, "out_dir": "x", "vllm": {**fields["vllm"], "dtype": "bfloat16"}})
    from paced.methods import get_method

    method = get_method("paced-fkl-then-rkl")
    assert run_identity(a, method)["digest"] == run_identity(b, method)["digest"]
    assert run_identity(a, method)["digest"] != run_identity(c, method)["digest"]


def test_a_split_in_training_engine_is_refused_before_weights_load(tmp_path, vllm_present):
    from _distill_world import build

    from paced.methods import get_method
    from paced.trainer import DistillConfig
    from paced.trainer.setup import validate_run

    world = build(tmp_path)
    cfg = DistillConfig(student=world["student"], teacher=world["teacher"], task="toy_arith", data=world["data"],
                        out_dir=str(tmp_path / "run"), sampler="vllm", vllm={"tensor_parallel_size": 2})
    with pytest.raises(ValueError, match=r"one whole engine per training process; got vllm.tensor_parallel_size=2 "):
        validate_run(cfg, get_method("uniform-rkl"))
