"""paced.plan: its formulas against the tensors a tiny model really holds on CPU, hand-computed figures for the
paper's shapes, and the refusals."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

from paced.plan import PAPER_ARCHS, PlanSettings, arch_for, check_config, load_config, main, plan
from paced.plan.arch import arch_from_config
from paced.plan.memory import (
    activation_bytes,
    activation_bytes_per_token_layer,
    kv_cache_bytes_per_token,
    logits_bytes,
    param_count,
    training_state_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
FITTING = {"micro_batch_size": 4, "micro_batch_tokens": 32768, "max_seq_len": 8704, "gradient_checkpointing": True,
           "sampler_batch_size": 32}  # the micro-batch settings chosen for config/paper.yaml on 8 x 80 GB


def tiny_qwen3(tied: bool = False, layers: int = 2) -> Qwen3Config:
    return Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=192, num_hidden_layers=layers,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                       tie_word_embeddings=tied)


@pytest.mark.parametrize("tied", [False, True])
def test_param_count_equals_a_tiny_qwen3s_parameters(tied):
    cfg = tiny_qwen3(tied)
    model = Qwen3ForCausalLM(cfg)
    assert param_count(arch_from_config(cfg.to_dict(), "tiny")) == sum(p.numel() for p in model.parameters())


def test_param_count_equals_a_tiny_qwen2s_parameters_with_qkv_bias():
    cfg = Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False)
    model = Qwen2ForCausalLM(cfg)
    assert param_count(arch_from_config(cfg.to_dict(), "tiny2")) == sum(p.numel() for p in model.parameters())


def test_training_state_equals_params_grads_and_adamw_moments_after_a_step():
    cfg = tiny_qwen3()
    model = Qwen3ForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.randint(0, 512, (2, 8)), labels=torch.randint(0, 512, (2, 8))).loss.backward()
    opt.step()
    held = sum(p.numel() * p.element_size() for p in model.parameters())
    held += sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    held += sum(v.numel() * v.element_size() for s in opt.state.values() for k, v in s.items() if k != "step")
    assert training_state_bytes(param_count(arch_from_config(cfg.to_dict(), "tiny"))) == held
    assert training_state_bytes(1000, shards=8) == 2000  # 16 bytes a parameter, split over 8 shards


def _saved_bytes(model: torch.nn.Module, ids: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves in a forward (parameters excluded): the activations."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in params:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.model(input_ids=ids)
    return sum(seen.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_activation_estimate_within_15_percent_of_the_saved_tensors(dtype, checkpointing):
    cfg = tiny_qwen3(layers=4)
    model = Qwen3ForCausalLM(cfg).to(dtype).train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    tokens, b = 2 * 96, torch.finfo(dtype).bits // 8
    measured = _saved_bytes(model, torch.randint(0, 512, (2, 96)))
    arch = arch_from_config(cfg.to_dict(), "tiny")
    estimate = activation_bytes(arch, tokens, b, checkpointing)
    if checkpointing:  # the forward saves layer inputs; the one layer recomputed in backward comes on top
        estimate -= activation_bytes_per_token_layer(arch, b) * tokens
    assert 0.85 <= measured / estimate <= 1.15, (measured, estimate)


def test_hand_computed_figures_for_qwen3_1_7b():
    a = PAPER_ARCHS["Qwen/Qwen3-1.7B"]
    layer = 2048 * (2048 + 2 * 1024) + 2048 * 2048 + 2 * 128 + 3 * 2048 * 6144 + 2 * 2048  # attn, qk-norm, MLP, norms
    total = 28 * layer + 151936 * 2048 + 2048  # tied embeddings, final norm
    assert param_count(a) == total == 1_720_574_976
    assert 2 * param_count(a) == 3_441_149_952  # bf16 weights, 3.44 GB
    assert logits_bytes(4096, 151936) == 2_489_319_424  # one fp32 [4096, 151936] chunk: 2.49 GB
    assert kv_cache_bytes_per_token(a, 2) == 2 * 28 * 8 * 128 * 2
    assert activation_bytes_per_token_layer(a, 2) == 2 * 6 * 2048 + 6 * 3072 + 2 * (4 * 2048 + 3 * 1024 + 4 * 6144)
    assert param_count(PAPER_ARCHS["Qwen/Qwen3-8B"]) == 8_190_735_360
    assert PAPER_ARCHS["Qwen/Qwen2.5-Math-7B-Instruct"].max_position_embeddings == 4096


def test_arch_read_from_a_local_config_json(tmp_path):
    cfg = tiny_qwen3(tied=True)
    cfg.save_pretrained(tmp_path)
    arch = arch_for(str(tmp_path))
    assert param_count(arch) == sum(p.numel() for p in Qwen3ForCausalLM(cfg).parameters())
    assert arch.source == str(tmp_path / "config.json")
    with pytest.raises(ValueError, match="hf download nobody/model"):
        arch_for("nobody/model")


def _paper(**train: object) -> dict:
    cfg = copy.deepcopy(load_config([str(ROOT / "config" / "paper.yaml")]))
    cfg["train"].update(train)
    return cfg


def test_paper_config_fits_8x80gb_with_the_chosen_micro_batch():
    estimates, problems = plan(_paper(**FITTING), PlanSettings(gpus=8, gpu_mem_gb=80))
    assert problems == []
    rules = {e.rule for e in estimates}
    assert {"passrates_base", "references", "teacher_cache", "snr", "distill", "distill (sampler)",
            "evaluate_base", "evaluate_run", "passrates_after"} <= rules
    assert all(0 < e.gpu_bytes <= 72e9 for e in estimates)


def test_refusal_names_micro_batch_and_sampler_batch_without_them():
    no_mb = {k: None for k in FITTING} | {"gradient_checkpointing": False}
    _, problems = plan(_paper(**no_mb), PlanSettings(gpus=8, gpu_mem_gb=80))
    text = " ".join(problems)
    assert "rule distill needs" in text and "train.micro_batch_tokens <=" in text
    # the in-training vLLM engine reserves its share beside the student: the fix names that share
    assert "train.gradient_checkpointing: true" in text and "lower vllm.train_gpu_memory_utilization" in text
    with pytest.raises(ValueError, match="paced plan refuses this config: rule distill"):
        check_config(_paper(**no_mb))
    hf = _paper(**no_mb)
    hf["sampling"]["backend"] = "hf"  # HF generate on the student: its batch's KV cache instead
    _, problems = plan(hf, PlanSettings(gpus=8, gpu_mem_gb=80))
    assert "train.sampler_batch_size <=" in " ".join(problems)


def test_in_training_vllm_engine_reserves_its_share_of_each_training_gpu():
    estimates, _ = plan(_paper(**FITTING), PlanSettings(gpus=8, gpu_mem_gb=80))
    sampler = next(e for e in estimates if e.rule == "distill (sampler)")
    step = next(e for e in estimates if e.rule == "distill")
    assert sampler.memory["vllm_engine"] == pytest.approx(0.3 * 80e9)
    assert sampler.gpu_bytes == pytest.approx(step.gpu_bytes + 0.3 * 80e9)  # beside a whole training step
    half = _paper(**FITTING)
    half["vllm"]["train_gpu_memory_utilization"] = 0.15
    estimates, _ = plan(half, PlanSettings(gpus=8, gpu_mem_gb=80))
    slower = next(e for e in estimates if e.rule == "distill (sampler)")
    assert slower.memory["vllm_engine"] == pytest.approx(0.15 * 80e9)
    assert slower.hours > sampler.hours  # fewer sequences in flight: more decoding steps


def test_refusal_names_gpus_when_one_gpu_is_too_small():
    _, problems = plan(_paper(**FITTING), PlanSettings(gpus=1, gpu_mem_gb=24))
    assert any("more GPUs (--gpus / resources.gpus_train)" in p for p in problems)


def test_context_refusal_names_the_model_and_the_key():
    cfg = load_config([str(ROOT / "config" / "paper-self.yaml")])
    cfg["train"].update(FITTING)
    cfg["sampling"]["max_new_tokens"] = 8192  # the budget paper-self.yaml once asked of a 4,096-position model
    with pytest.raises(ValueError, match=r"'Qwen/Qwen2.5-Math-7B-Instruct' has 4096 positions.*"
                                         r"set sampling.max_new_tokens <= 3584"):
        check_config(cfg)
    cfg["sampling"]["max_new_tokens"] = cfg["eval"]["max_new_tokens"] = 3584
    cfg["train"]["max_seq_len"] = 4096
    check_config(cfg)
    distill = next(e for e in plan(cfg, PlanSettings())[0] if e.rule == "distill")
    assert distill.memory["teacher"] == 0  # self-distillation: the teacher is the student, no second model


def test_world_config_is_not_sized_and_main_exit_codes(tmp_path, capsys):
    # the toy world's models do not exist before it is built: nothing to check
    check_config(load_config([str(ROOT / "config" / "config.yaml")]))
    unknown = _paper()
    unknown["models"]["teacher"] = "someorg/not-downloaded"
    check_config(unknown)  # nothing to size the model from: the workflow is not refused (paced plan refuses)
    with pytest.raises(ValueError, match="no architecture facts for model 'someorg/not-downloaded'"):
        plan(unknown, PlanSettings())
    good = tmp_path / "mb.yaml"
    good.write_text(json.dumps({"train": FITTING}))  # JSON is YAML
    assert main(["--configfile", str(ROOT / "config" / "paper.yaml"), str(good)]) == 0
    assert "every rule fits" in capsys.readouterr().out
    assert main(["--configfile", str(ROOT / "config" / "paper.yaml"), str(good), "--gpu-mem-gb", "16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("paced plan: error: refused:") and len(err.strip().splitlines()) == 1


def test_arch_read_from_the_local_hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    snap = tmp_path / "models--someorg--grpo-teacher" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc123")
    cfg = tiny_qwen3()
    (snap / "config.json").write_text(cfg.to_json_string())
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    arch = arch_for("someorg/grpo-teacher")
    assert arch.source == str(snap / "config.json") and arch.qk_norm
    assert param_count(arch) == sum(p.numel() for p in Qwen3ForCausalLM(cfg).parameters())
