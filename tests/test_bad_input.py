"""The bad-input matrix: every bad config, data file, model or environment fails before any work,
with one message naming the thing and the fix, and leaves an existing results directory untouched."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from _distill_world import build, save_model, tiny_model
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from paced.availability import check_model_available
from paced.pipeline.distill import distill_config
from paced.pipeline.schema_errors import describe_schema_error
from paced.pipeline.suite import resolve_suite
from paced.tasks import get_task
from paced.tasks.base import DataError
from paced.trainer import DistillConfig, distill
from paced.trainer import setup as setup_mod
from paced.trainer.setup import check_same_vocabulary
from paced.world.tokenizer import build_char_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
BAD = Path(__file__).parent / "fixtures" / "bad"


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mtime_ns)} of every file under ``root``."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results directory holding finished results; every test checks it is unchanged afterwards."""
    root = tmp_path / "results"
    (root / "eval/base/seed0/step0").mkdir(parents=True)
    (root / "eval/base/seed0/step0/arith.json").write_text('{"metrics": {}}\n')
    (root / "runs/uniform-fkl/seed0/checkpoints/step8").mkdir(parents=True)
    (root / "runs/uniform-fkl/seed0/checkpoints/step8/trainer_state.pt").write_bytes(b"state")
    (root / "summary.csv").write_text("method,seed,step,task,tier,metric,value,n\n")
    before = snapshot(root)
    yield root
    assert snapshot(root) == before, "a rejected input modified the results directory"


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def test_config(patch: dict[str, Any], results: Path, base: str = ".test/config/config.yaml") -> dict[str, Any]:
    cfg = _merge(yaml.safe_load((ROOT / base).read_text()), {"results_dir": str(results), **patch})
    validate(cfg, SCHEMA)
    return cfg


test_config.__test__ = False  # a helper, not a test


def _override(kernel: dict[str, Any]) -> dict[str, Any]:
    return {"methods": ["paced-fkl-x"], "method_overrides": {"paced-fkl-x": {"preset": "paced-fkl", "kernel": kernel}}}


CONFIG_CASES = [
    ({"bogus": 1}, r"'bogus' was unexpected"),
    ({"train": {"stepz": 5}}, r"train: .*'stepz' was unexpected.*allowed keys: .*steps"),
    ({"train": {"steps": "many"}}, r"train\.steps='many': .*not of type 'integer'"),
    ({"train": {"steps": 0}}, r"train\.steps=0: .*minimum of 1"),
    ({"train": {"lr": 0}}, r"train\.lr=0"),
    ({"passrate": {"k": 0}}, r"passrate\.k=0"),
    ({"passrate": {"smoothing": "laplac"}}, r"passrate\.smoothing='laplac'.*'laplace'"),
    ({"methods": []}, r"methods=\[\]: .*non-empty"),
    ({"seeds": [-1]}, r"seeds\.0=-1"),
    ({"eval": {"budgets": [5]}}, r"eval\.budgets contains 5.*save_steps"),
    ({"eval": {"budgets": [99]}}, r"eval\.budgets contains 99 > train\.steps=8"),
    ({"methods": ["paced-fk"]}, r"unknown method 'paced-fk'.*Did you mean 'paced-fkl'"),
    ({"methods": ["uniform-fkl", "uniform-fkl"]}, r"lists a method twice"),
    ({"seeds": [0, 0]}, r"seeds: \[0, 0\] lists a seed twice"),
    (_override({"alpha": -1.0}), r"paced-fkl-x.*alpha=-1.0 is out of range"),
    (_override({"beta": float("nan")}), r"paced-fkl-x.*beta=nan is out of range"),
    (_override({"name": "betta"}), r"paced-fkl-x.*'betta'.*Did you mean 'beta'"),
    (_override({"alfa": 2}), r"paced-fkl-x.*alfa"),
    ({"method_overrides": {"unused-x": {"preset": "paced-fkl"}}}, r"method_overrides defines \['unused-x'\]"),
    ({"data": {"train_task": "toy_arithm"}}, r"data\.train_task: .*Did you mean 'toy_arith'"),
    ({"data": {"eval": [{"name": "a", "task": "math5000"}]}}, r"data\.eval\[0\]\.task: .*'math500'"),
    ({"data": {"eval": [{"name": "a/b", "task": "math500"}]}}, r"data\.eval\.0\.name='a/b'"),
    ({"world": {"preset": "huge"}}, r"world\.preset='huge'"),
]


@pytest.mark.parametrize("patch, match", CONFIG_CASES, ids=[m[:40] for _, m in CONFIG_CASES])
def test_bad_config_is_rejected_naming_the_key(patch, match, results):
    with pytest.raises((WorkflowError, ValueError)) as info:
        resolve_suite(test_config(patch, results))
    message = describe_schema_error(info.value) if isinstance(info.value, WorkflowError) else str(info.value)
    assert len(message.splitlines()) == 1, message
    assert re.search(match, message), message


def test_good_config_resolves(results):
    suite = resolve_suite(test_config({}, results))
    assert suite.method_ids == ("uniform-fkl", "paced-fkl") and suite.results_dir == str(results)


def _snakemake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "1", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def test_snakemake_dry_run_with_bad_config_fails_naming_the_key(tmp_path, results):
    """The schema check of the Snakefile (the library-level checks go through Snakemake in the offline test)."""
    bad, names = tmp_path / "bad.yaml", ["'stepz' was unexpected"]
    bad.write_text(yaml.safe_dump({"results_dir": str(results), "train": {"stepz": 5}}))
    proc = _snakemake("--configfile", ".test/config/config.yaml", str(bad))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    for name in names:
        assert name in out, out[-3000:]


def test_offline_hub_names_fail_fast_naming_every_missing_model(tmp_path, results):
    """config/paper.yaml with HF_HUB_OFFLINE=1 and an empty cache: Snakemake stops at parse time."""
    proc = _snakemake("--configfile", "config/paper.yaml", "--config", f"results_dir={results}",
                      env={"HF_HOME": str(tmp_path / "empty_hf_home"), "HF_HUB_CACHE": str(tmp_path / "empty_hub")})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    for name in ("models.teacher='Qwen/Qwen3-8B'", "models.student='Qwen/Qwen3-1.7B'", "hf download Qwen/Qwen3-8B",
                 "HF_HUB_OFFLINE=1"):
        assert name in out, out[-3000:]
    assert not (tmp_path / "empty_hf_home").exists() or not any((tmp_path / "empty_hf_home").rglob("*.safetensors"))


# ---------------------------------------------------------------------------------------------- data

@pytest.mark.parametrize("task, name, match", [
    ("toy_arith", "missing_prompt.jsonl", r"missing_prompt\.jsonl:2: missing required field 'prompt'"),
    ("toy_arith", "missing_answer.jsonl", r"missing_answer\.jsonl:2: missing required field 'answer'"),
    ("toy_arith", "empty.jsonl", r"empty\.jsonl: the file holds no rows"),
    ("toy_arith", "duplicate_ids.jsonl", r"duplicate_ids\.jsonl:3: duplicate id 'a' \(first seen on line 1\)"),
    ("toy_arith", "latin1.jsonl", r"latin1\.jsonl: not valid UTF-8.*re-encode"),
    ("toy_arith", "truncated.jsonl", r"truncated\.jsonl:2: invalid JSON"),
    ("toy_arith", "no_such_file.jsonl", r"no_such_file\.jsonl' does not exist"),
    ("math500", "math_missing_answer.jsonl", r"math_missing_answer\.jsonl:row 1: none of the fields \['answer'"),
    ("math500", "math_empty.jsonl", r"math_empty\.jsonl: the file is empty"),
    ("math500", "math_duplicate_ids.jsonl", r"math_duplicate_ids\.jsonl:row 2: duplicate id 'math500-t/0\.json'"),
    ("math500", "math_latin1.jsonl", r"math_latin1\.jsonl: not valid UTF-8.*re-encode"),
])
def test_bad_data_file_names_file_line_and_fix(task, name, match):
    kwargs = {"timeout_s": None} if task == "math500" else {}
    with pytest.raises(DataError, match=match):
        get_task(task, **kwargs).load(BAD / name)


# -------------------------------------------------------------------------------------------- models

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build(tmp_path_factory.mktemp("world"), n_learnable=4, n_intractable=0)


def _forbid_weights(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("model weights were loaded before validation")
    monkeypatch.setattr(setup_mod, "load_model", boom)


def _run(world, results: Path, **kw) -> DistillConfig:
    base = dict(student=world["student"], teacher=world["teacher"], task="toy_arith", data=world["data"],
                out_dir=str(results / "runs/uniform-fkl/seed0"), steps=2, batch_size=2, progress=False)
    return DistillConfig(**{**base, **kw})


def test_missing_model_path_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"models\.student='/no/such/model': no such model directory"):
        check_model_available("/no/such/model", key="models.student")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no config\.json; point it at a save_pretrained"):
        check_model_available(str(tmp_path / "empty"), key="models.teacher")


@pytest.mark.parametrize("which", ["student", "teacher"])
def test_trainer_with_missing_model_fails_before_loading(world, results, monkeypatch, which):
    _forbid_weights(monkeypatch)
    with pytest.raises(ValueError, match=rf"DistillConfig\.{which}='/no/such/{which}': no such model directory"):
        distill(_run(world, results, **{which: f"/no/such/{which}"}), "uniform-fkl")


def test_teacher_with_another_tokenizer_of_the_same_size_is_rejected(world, tmp_path, results, monkeypatch):
    tok = build_char_tokenizer()
    other = Path(save_model(tiny_model(tok, 3), tok, tmp_path / "permuted"))
    spec = json.loads((other / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    a, b = sorted(k for k in vocab if len(k) == 1 and k.isdigit())[:2]
    vocab[a], vocab[b] = vocab[b], vocab[a]  # same size, different ids: '0' and '1' swapped
    (other / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"tokenizers differ .*shared tokenizer"):
        check_same_vocabulary(world["student"], str(other))
    _forbid_weights(monkeypatch)
    with pytest.raises(ValueError, match=r"tokenizers differ"):
        distill(_run(world, results, teacher=str(other)), "uniform-fkl")


# ------------------------------------------------------------------------------------------ environment

def test_vllm_requested_but_absent_names_the_extra(results, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "vllm" else real(name, *a, **k))
    with pytest.raises(ValueError, match=r"sampling\.backend='vllm'.*pip install 'paced\[vllm\]'"):
        resolve_suite(test_config({"sampling": {"backend": "vllm"}}, results))


def test_gpu_requested_but_absent_fails_before_loading(world, results, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    suite = resolve_suite(test_config({"resources": {"gpus_train": 1}}, results))
    cfg = distill_config(suite, "uniform-fkl", 0, passrates="p.jsonl", references="r.jsonl")
    assert cfg.device == "cuda"
    _forbid_weights(monkeypatch)
    with pytest.raises(ValueError, match=r"device='cuda'.*resources\.gpus_train.*no CUDA GPU.*gpus_train: 0"):
        distill(_run(world, results, device="cuda"), "uniform-fkl")


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match=r"DistillConfig\.device='tpu' is out of range; allowed: cpu, cuda, auto"):
        DistillConfig(student="s", task="toy_arith", data="d", out_dir="o", device="tpu")
