"""Safe defaults: no remote code, no eval/exec, safe YAML, a time-bounded verifier, paths kept inside results."""

from __future__ import annotations

import ast
import re
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import validate

from paced.evaluation.backends import backend_args
from paced.evaluation.config import EvalConfig
from paced.pipeline.suite import resolve_suite
from paced.tasks import get_task
from paced.tasks.base import Doc

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("paced", "workflow", "benchmarks")


def _python_files() -> list[Path]:
    files = [p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 20, files  # the scan must actually see the code
    return files


def _snakemake_files() -> list[Path]:
    return [ROOT / "Snakefile", *(ROOT / "workflow/rules").glob("*.smk")]


def _calls(path: Path) -> list[tuple[ast.Call, str]]:
    """Every call in ``path`` with a dotted name of what is called (``yaml.load``, ``eval``, ...)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call):
            out.append((node, ast.unparse(node.func)))
    return out


def test_no_eval_exec_or_compile_on_anything():
    """Model output must never reach eval/exec: the simplest guarantee is that the code calls neither."""
    def dangerous(call: ast.Call, name: str) -> bool:
        if name == "__import__":  # a literal module name is harmless; a computed one is not
            return not all(isinstance(a, ast.Constant) for a in call.args)
        return name in ("eval", "exec", "compile", "builtins.eval", "builtins.exec")

    bad = [f"{p.relative_to(ROOT)}:{c.lineno}: {name}(...)" for p in _python_files() for c, name in _calls(p)
           if dangerous(c, name)]
    pattern = re.compile(r"(?<![\w.])(eval|exec)\s*\(")
    bad += [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in _snakemake_files()
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not bad, bad


def test_the_ast_scan_finds_a_planted_eval(tmp_path):
    planted = tmp_path / "x.py"
    planted.write_text("import yaml\nout = eval(completion)\ncfg = yaml.load(text)\n")
    assert {name for _, name in _calls(planted)} >= {"eval", "yaml.load"}


def test_yaml_is_loaded_safely():
    unsafe = {"yaml.load", "yaml.load_all", "yaml.full_load", "yaml.full_load_all", "yaml.unsafe_load",
              "yaml.unsafe_load_all"}
    bad = []
    for p in _python_files():
        for call, name in _calls(p):
            loader = next((ast.unparse(k.value) for k in call.keywords if k.arg == "Loader"), "")
            if name in unsafe and not loader.endswith(("SafeLoader", "CSafeLoader")):
                bad.append(f"{p.relative_to(ROOT)}:{call.lineno}: {name}")
    assert not bad, bad


def test_trust_remote_code_is_never_switched_on_in_code():
    """No loader passes ``trust_remote_code=True`` (a literal) and lm-eval's model_args do not either."""
    bad = [f"{p.relative_to(ROOT)}:{c.lineno}" for p in _python_files() for c, _ in _calls(p)
           for k in c.keywords if k.arg == "trust_remote_code" and isinstance(k.value, ast.Constant) and k.value.value]
    assert not bad, bad
    _, args = backend_args("some/model", EvalConfig())
    assert args.get("trust_remote_code", False) is False


@pytest.fixture
def remote_code_model(tmp_path: Path) -> Path:
    """A model directory whose config needs custom code; running that code writes EXECUTED."""
    root = tmp_path / "evil"
    root.mkdir()
    auto = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel",
            "AutoTokenizer": ["evil.EvilTokenizer", None]}
    (root / "config.json").write_text(yaml.safe_dump({"model_type": "evil_model", "auto_map": auto,
                                                      "vocab_size": 10}, default_flow_style=True))
    (root / "tokenizer_config.json").write_text('{"tokenizer_class": "EvilTokenizer", "auto_map": '
                                                '{"AutoTokenizer": ["evil.EvilTokenizer", null]}}')
    (root / "evil.py").write_text("import pathlib\npathlib.Path(__file__).with_name('EXECUTED').write_text('ran')\n")
    return root


def _loaders():
    from paced.rollouts.hf import load_model_and_tokenizer
    from paced.trainer.setup import _vocab_size, load_model, load_tokenizer

    return {"trainer.load_model": lambda p: load_model(p, torch.float32, trainable=False),
            "trainer.load_tokenizer": load_tokenizer, "trainer._vocab_size": _vocab_size,
            "rollouts.hf.load_model_and_tokenizer": load_model_and_tokenizer}


@pytest.mark.parametrize("loader", list(_loaders()))
def test_model_repo_code_is_not_executed(remote_code_model, loader):
    with pytest.raises(Exception):  # noqa: B017  -- any refusal will do; running the code will not
        _loaders()[loader](str(remote_code_model))
    assert not (remote_code_model / "EXECUTED").exists(), f"{loader} executed the model repository's code"


PATHOLOGICAL = {
    "nested_boxes": "\\boxed{" * 20_000 + "7" + "}" * 20_000,
    "unclosed_boxes": "\\boxed{" * 30_000,
    "bare_boxes": "\\boxed $" * 30_000,
    "million_char_expression": "\\boxed{" + "1+" * 500_000 + "1}",
    "deep_braces": "\\boxed{" + "{" * 200_000 + "}" * 200_000 + "}",
    "tower": "\\boxed{9^{9^{9^{9^{9^{9^{9}}}}}}}",
    "factorial_tower": "\\boxed{((((99!)!)!)!)!}",
}


def test_verifier_is_time_bounded_in_a_worker_thread():
    """math-verify's signal timeouts do not work off the main thread; the verifier bounds itself."""
    task = get_task("math500", timeout_s=3.0)
    doc = Doc(id="x", prompt="p", answer="2")
    assert task.check(doc, "\\boxed{2}") is True  # also starts the worker outside the timed part
    results: dict[str, tuple[bool, float]] = {}

    def run() -> None:
        for name, completion in PATHOLOGICAL.items():
            t0 = time.monotonic()
            results[name] = (task.check(doc, completion), time.monotonic() - t0)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), f"the verifier hung; finished: {results}"
    for name, (ok, seconds) in results.items():
        assert ok is False, name
        assert seconds < 15, (name, seconds)
    assert task.check(doc, "so \\boxed{1+1}") is True  # still works (the worker restarts after a kill)


def _config(**patch) -> dict:
    cfg = {**yaml.safe_load((ROOT / ".test/config/config.yaml").read_text()), **patch}
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return cfg


@pytest.mark.parametrize("results_dir", ["../elsewhere", "results/../../etc", "/tmp/x/../y"])
def test_results_dir_cannot_climb_out(results_dir):
    with pytest.raises(ValueError, match=r"results_dir=.*'\.\.' is not allowed"):
        resolve_suite(_config(results_dir=results_dir))


@pytest.mark.parametrize("patch, match", [
    ({"methods": ["../evil"]}, r"methods\[\]='\.\./evil': names must match"),
    ({"methods": ["a/b"]}, r"methods\[\]='a/b': names must match"),
    ({"methods": [".."]}, r"methods\[\]='\.\.': names must match"),
    ({"methods": ["x/../../y"], "method_overrides": {"x/../../y": {"preset": "uniform-fkl"}}}, r"names must match"),
    ({"data": {"eval": [{"name": "..", "task": "math500"}]}}, r"does not match"),
    ({"data": {"eval": [{"name": "a/b", "task": "math500"}]}}, r"does not match"),
])
def test_names_that_become_directories_cannot_hold_paths(patch, match):
    with pytest.raises(Exception, match=match):
        resolve_suite(_config(**patch))


def test_a_plain_results_dir_resolves():
    assert resolve_suite(_config(results_dir="results/ablations/a1")).results_dir == "results/ablations/a1"
