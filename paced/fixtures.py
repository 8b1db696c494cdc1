"""Tiny stand-ins for the paper setting's models, built offline (CPU tests of the paper code path).

``build_paper_fixture(out_dir)`` writes ``teacher/`` and ``student/``: random-init Qwen3 causal LMs with a
printable-ASCII character tokenizer that has a chat template, so ``config/paper.yaml``'s code path — hub-schema
loaders, chat templates, ``\\boxed{}`` extraction, math-verify grading, MMLU multiple choice — runs end to end
on a CPU without the hub. Their answers are random; only the plumbing is under test.
"""

from __future__ import annotations

from pathlib import Path

from paced.world.tokenizer import ASCII_ALPHABET, build_char_tokenizer


def build_tiny_lm(out_dir: str | Path, *, d_model: int = 64, n_layers: int = 1, seed: int = 0) -> Path:
    """One random-init Qwen3 causal LM + chat tokenizer saved with ``save_pretrained`` (head_dim 64)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = build_char_tokenizer(ASCII_ALPHABET, chat=True)
    torch.manual_seed(seed)
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=d_model, intermediate_size=2 * d_model,
                      num_hidden_layers=n_layers, num_attention_heads=1, num_key_value_heads=1, head_dim=64,
                      max_position_embeddings=4096, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    model = Qwen3ForCausalLM(cfg)
    out = Path(out_dir)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def build_paper_fixture(out_dir: str | Path) -> dict[str, Path]:
    """``teacher/`` (d=96) and ``student/`` (d=64) under ``out_dir``; returns their paths."""
    out = Path(out_dir)
    return {"teacher": build_tiny_lm(out / "teacher", d_model=96, seed=1),
            "student": build_tiny_lm(out / "student", d_model=64, seed=0)}


if __name__ == "__main__":
    import sys

    for name, path in build_paper_fixture(sys.argv[1] if len(sys.argv) > 1 else ".test/config-paper/models").items():
        print(f"{name}: {path}")
