"""The SNR stage's per-problem loss: the fused divergence gives the logits path's value and gradients."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from paced.gradients import per_example_gradients
from paced.snr_measure import _fkl_loss_fn, resolve_device


def _model(seed: int, hidden: int) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen3Config(vocab_size=97, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                      tie_word_embeddings=False)
    return Qwen3ForCausalLM(cfg).eval()


def test_fused_loss_and_gradients_equal_the_logits_path():
    student, teacher = _model(0, 32), _model(1, 48)
    examples = [([5, 6, 7], [5, 6, 7], [9, 10, 11, 12]), ([3, 4], [8, 3, 4], [20, 21, 22])]
    dev = torch.device("cpu")
    fused, plain = _fkl_loss_fn(teacher, 0, dev, True), _fkl_loss_fn(teacher, 0, dev, False)
    for ex in examples:
        torch.testing.assert_close(fused(student, ex), plain(student, ex), rtol=1e-5, atol=1e-6)
    g_fused = per_example_gradients(student, fused, examples, sketch_dim=4096, seed=3)
    g_plain = per_example_gradients(student, plain, examples, sketch_dim=4096, seed=3)
    assert g_fused.shape == (2, 4096) and float(g_plain.abs().sum()) > 0
    torch.testing.assert_close(g_fused, g_plain, rtol=1e-4, atol=1e-6)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is visible"):
            resolve_device("cuda")
