"""Architecture facts of decoder-only models: what the planner needs to size weights, activations and caches.

The paper's four models are kept here as data, so ``paced plan`` works offline and without downloading a
model. Each value was copied from the model's public ``config.json`` on the Hugging Face hub (the file named in
``source``); any other model is read from the ``config.json`` of a local model directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HUB_CONFIG = "https://huggingface.co/{name}/blob/main/config.json"


@dataclass(frozen=True)
class ArchFacts:
    """The shape of a Qwen/Llama-style decoder (RMSNorm, GQA attention, SwiGLU MLP).

    ``qk_norm``: a per-head RMSNorm on queries and keys (Qwen3). ``qkv_bias``: biases on the q, k, v
    projections (Qwen2). ``source``: where the numbers come from.
    """

    name: str
    num_hidden_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    qk_norm: bool = False
    qkv_bias: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
                    "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ArchFacts({self.name!r}).{key}={value!r} is out of range; allowed: integers >= 1")

    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_key_value_heads * self.head_dim


def _qwen3(name: str, layers: int, hidden: int, inter: int, heads: int, tied: bool) -> ArchFacts:
    return ArchFacts(name, layers, hidden, inter, heads, 8, 128, 151936, 40960, tied, qk_norm=True,
                     source=HUB_CONFIG.format(name=name))


# name -> facts; layers, hidden, intermediate, heads, kv heads, head_dim, vocab, positions, tied embeddings
PAPER_ARCHS: dict[str, ArchFacts] = {
    "Qwen/Qwen3-1.7B": _qwen3("Qwen/Qwen3-1.7B", 28, 2048, 6144, 16, tied=True),
    "Qwen/Qwen3-8B": _qwen3("Qwen/Qwen3-8B", 36, 4096, 12288, 32, tied=False),
    "Qwen/Qwen3-14B": _qwen3("Qwen/Qwen3-14B", 40, 5120, 17408, 40, tied=False),
    # Qwen2 attention: biases on q, k, v; head_dim = hidden / heads = 128; 4,096 positions (the Math models)
    "Qwen/Qwen2.5-Math-7B-Instruct": ArchFacts(
        "Qwen/Qwen2.5-Math-7B-Instruct", 28, 3584, 18944, 28, 4, 128, 152064, 4096, False, qkv_bias=True,
        source=HUB_CONFIG.format(name="Qwen/Qwen2.5-Math-7B-Instruct")),
}


def arch_from_config(cfg: dict[str, Any], name: str, source: str = "") -> ArchFacts:
    """Facts from a transformers ``config.json`` dict (Qwen2/Qwen3/Llama keys)."""
    missing = [k for k in ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
                           "vocab_size", "max_position_embeddings") if k not in cfg]
    if missing:
        raise ValueError(f"{source or name}: config.json lacks {', '.join(missing)}; the planner needs a "
                         f"decoder-only causal LM config (Qwen2, Qwen3, Llama)")
    heads = int(cfg["num_attention_heads"])
    model_type = str(cfg.get("model_type", ""))
    return ArchFacts(
        name=name, num_hidden_layers=int(cfg["num_hidden_layers"]), hidden_size=int(cfg["hidden_size"]),
        intermediate_size=int(cfg["intermediate_size"]), num_attention_heads=heads,
        num_key_value_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(cfg.get("head_dim") or int(cfg["hidden_size"]) // heads), vocab_size=int(cfg["vocab_size"]),
        max_position_embeddings=int(cfg["max_position_embeddings"]),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)), qk_norm=model_type.startswith("qwen3"),
        qkv_bias=model_type == "qwen2" or bool(cfg.get("attention_bias", False)), source=source)


def _hub_cached_config(model: str) -> Path | None:
    """The ``config.json`` of hub model ``model`` if it is already in the local Hugging Face cache (no download)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not a valid repository id
        return None
    return Path(found) if isinstance(found, str) else None


def arch_for(model: str) -> ArchFacts:
    """Facts of ``model``: a local directory with a ``config.json``, one of the paper's hub models, or a hub model
    whose ``config.json`` is in the local Hugging Face cache (offline in every case)."""
    path = Path(model)
    if (path / "config.json").is_file():
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        return arch_from_config(cfg, model, source=str(path / "config.json"))
    if model in PAPER_ARCHS:
        return PAPER_ARCHS[model]
    cached = _hub_cached_config(model)
    if cached is not None:
        return arch_from_config(json.loads(cached.read_text(encoding="utf-8")), model, source=str(cached))
    raise ValueError(f"no architecture facts for model {model!r}: it is neither a local directory with a "
                     f"config.json nor one of the models kept in paced.plan.arch ({', '.join(PAPER_ARCHS)}); "
                     f"point models.* at a local copy (hf download {model} --local-dir DIR)")
