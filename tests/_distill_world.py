"""A tiny offline world for trainer/stage tests: char tokenizer, two random Qwen3 models, toy docs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from paced.world.data import intractable_spec, learnable_spec, sample_chain
from paced.world.tokenizer import build_char_tokenizer

torch.set_num_threads(1)


def tiny_model(tok, seed: int, hidden: int = 32, vocab_size: int | None = None) -> Qwen3ForCausalLM:
    cfg = Qwen3Config(vocab_size=vocab_size or len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                      max_position_embeddings=128, tie_word_embeddings=True,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(cfg)


def save_model(model, tok, path: Path) -> str:
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return str(path)


def toy_rows(n_learnable: int = 6, n_intractable: int = 2, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for spec, n in ((learnable_spec(2), n_learnable), (intractable_spec(1, 2), n_intractable)):
        for _ in range(n):
            rows.append({"id": f"{spec.tier}-{len(rows)}", **sample_chain(rng, spec, pad_to=2)})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def build(tmp: Path, n_learnable: int = 6, n_intractable: int = 2) -> dict[str, str]:
    """Paths of a student, a teacher (same vocabulary, other init) and a data file under ``tmp``."""
    tok = build_char_tokenizer()
    return {"student": save_model(tiny_model(tok, 0), tok, tmp / "student"),
            "teacher": save_model(tiny_model(tok, 1, hidden=48), tok, tmp / "teacher"),
            "data": write_jsonl(tmp / "train.jsonl", toy_rows(n_learnable, n_intractable))}


def read_log(out_dir: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(out_dir) / "log.jsonl").read_text().splitlines()]
