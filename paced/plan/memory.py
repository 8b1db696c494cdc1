"""The planner's memory and time model: pure functions of architecture facts and sizes, in bytes and FLOPs.

Every formula counts what the code in this repository allocates; the tests check them against the tensors a
tiny model really holds on CPU (parameters, optimizer state, saved activations) and against hand-computed
figures for the paper's shapes.
"""

from __future__ import annotations

import math

from paced.plan.arch import ArchFacts

GB = 1e9
FP32 = 4


def layer_param_count(a: ArchFacts) -> int:
    """Parameters of one decoder layer.

    attention: H·(q + 2·kv) + q·H (+ q + 2·kv biases if ``qkv_bias``; + 2·head_dim if ``qk_norm``);
    SwiGLU MLP: 3·H·I; two RMSNorms: 2·H. (q = heads·head_dim, kv = kv_heads·head_dim.)
    """
    h, q, kv = a.hidden_size, a.q_dim, a.kv_dim
    attn = h * (q + 2 * kv) + q * h + (q + 2 * kv if a.qkv_bias else 0) + (2 * a.head_dim if a.qk_norm else 0)
    return attn + 3 * h * a.intermediate_size + 2 * h


def root_param_count(a: ArchFacts) -> int:
    """Parameters outside the decoder layers: embeddings V·H, lm_head V·H unless tied, final norm H."""
    return a.vocab_size * a.hidden_size * (1 if a.tie_word_embeddings else 2) + a.hidden_size


def param_count(a: ArchFacts) -> int:
    """All parameters: L · layer + root (Qwen3-1.7B: 1,720,574,976)."""
    return a.num_hidden_layers * layer_param_count(a) + root_param_count(a)


def training_state_bytes(params: int, *, shards: int = 1, master_bytes: int = FP32, grad_bytes: int = FP32,
                         optimizer_bytes: int = 2 * FP32) -> int:
    """Bytes of master weights + gradients + AdamW moments (exp_avg, exp_avg_sq) per shard: ⌈P·(m + g + o)/N⌉.

    fp32 everywhere: 16 bytes a parameter, split evenly over ``shards`` FSDP ranks.
    """
    return math.ceil(params * (master_bytes + grad_bytes + optimizer_bytes) / shards)


def gathered_bytes(a: ArchFacts, compute_bytes: int, shards: int) -> int:
    """FSDP2's unsharded compute copies alive at once: the root unit + two layers (current + prefetched).

    Zero extra when unsharded (the compute weights are then counted as the weights themselves).
    """
    if shards <= 1:
        return 0
    return compute_bytes * (root_param_count(a) + 2 * layer_param_count(a))


def activation_bytes_per_token_layer(a: ArchFacts, compute_bytes: int) -> int:
    """Bytes autograd saves per token in one decoder layer (HF Qwen/Llama layer, SDPA attention).

    Each RMSNorm keeps an fp32 copy of its input and its output in the compute dtype: (4 + b)·x, for the two
    layer norms (x = H) and the q/k norms (x = q, kv). Then in b bytes: rotate_half(q), rotate_half(k); SDPA's
    q, k, v and output; o_proj's input; the MLP's gate, SiLU(gate), up and their product (4·I):

        2(4 + b)·H + (4 + b)·(q + kv) + b·(4·q + 3·kv + 4·I)
    """
    b, h, q, kv = compute_bytes, a.hidden_size, a.q_dim, a.kv_dim
    return 2 * (4 + b) * h + (4 + b) * (q + kv) + b * (4 * q + 3 * kv + 4 * a.intermediate_size)


def checkpointed_bytes_per_token_layer(a: ArchFacts, compute_bytes: int) -> int:
    """With gradient checkpointing a layer keeps only its input: b·H a token."""
    return compute_bytes * a.hidden_size


def activation_bytes(a: ArchFacts, tokens: int, compute_bytes: int, checkpointing: bool) -> int:
    """Saved activations of a forward over ``tokens`` tokens, at the peak of the backward.

    No checkpointing: L · per-layer · tokens. Checkpointing: L layer inputs + one layer recomputed in full.
    """
    full = activation_bytes_per_token_layer(a, compute_bytes)
    extra = model_extra_bytes_per_token(a, compute_bytes)
    if not checkpointing:
        return (a.num_hidden_layers * full + extra) * tokens
    return (a.num_hidden_layers * checkpointed_bytes_per_token_layer(a, compute_bytes) + full + extra) * tokens


def model_extra_bytes_per_token(a: ArchFacts, compute_bytes: int) -> int:
    """Saved outside the layers, per token: the final RMSNorm, (4 + b)·H, and the rotary cos and sin shared by
    every layer, 2·head_dim·b."""
    return (4 + compute_bytes) * a.hidden_size + 2 * a.head_dim * compute_bytes


def logits_bytes(rows: int, vocab: int, dtype_bytes: int = FP32) -> int:
    """One [rows, V] logits tensor (one fp32 [4096, 151936] chunk: 2,489,319,424 bytes)."""
    return rows * vocab * dtype_bytes


def fused_working_bytes(a: ArchFacts, chunk_rows: int, tokens: int, compute_bytes: int) -> int:
    """The fused divergence's peak (:mod:`paced.fused`): per chunk the [n, V] student and teacher logits in the
    compute dtype and 3 fp32 [n, V] buffers; for the whole micro-batch the fp32 accumulators of the lm_head
    gradient [V, H] and of the hidden-state gradient [N, H], and the teacher's hidden states [N, H]."""
    v, h = a.vocab_size, a.hidden_size
    chunk = logits_bytes(chunk_rows, v, 2 * compute_bytes + 3 * FP32)
    return chunk + FP32 * v * h + FP32 * tokens * h + compute_bytes * tokens * h


def kv_cache_bytes_per_token(a: ArchFacts, dtype_bytes: int) -> int:
    """KV cache of one token: keys and values of every layer, 2 · L · kv_heads · head_dim · b."""
    return 2 * a.num_hidden_layers * a.kv_dim * dtype_bytes


def forward_flops(a: ArchFacts, tokens: int, context: int) -> float:
    """Forward FLOPs over ``tokens`` tokens: 2 · (L · layer + V · H) · tokens for the matmuls (the lm_head
    multiplies even when tied; the embedding lookup does not), + 2 · L · q · context · tokens for causal
    attention (QKᵀ and AV over, on average, half of a ``context``-token window)."""
    matmul = a.num_hidden_layers * layer_param_count(a) + a.vocab_size * a.hidden_size
    return 2.0 * matmul * tokens + 2.0 * a.num_hidden_layers * a.q_dim * context * tokens
