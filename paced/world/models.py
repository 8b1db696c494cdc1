"""Tiny Qwen3 causal LMs for the toy world, and the from-scratch pretraining loop.

The loop trains on ``prompt + completion + <eos>`` strings with the loss on the completion only,
AdamW (0.9, 0.98), gradient clipping at 1.0, linear warmup then cosine decay. Every ``eval_every``
steps from ``eval_from`` it evaluates the model; the first checkpoint the ``accept`` predicate
admits is returned (the run stops there). If none is admitted, the checkpoint with the best
``score`` is returned and ``criteria_met`` is False.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import Qwen3Config, Qwen3ForCausalLM

from paced.world.config import ModelSpec, TrainSpec

log = logging.getLogger(__name__)

Pair = tuple[str, str]  # (prompt, completion without EOS)


def make_model(spec: ModelSpec, tokenizer: Any, seed: int, max_positions: int = 128) -> Qwen3ForCausalLM:
    """A freshly initialised Qwen3 LM of shape ``spec``; the init is seeded by ``seed``."""
    cfg = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=spec.d_model, intermediate_size=spec.d_mlp,
        num_hidden_layers=spec.n_layers, num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_heads, head_dim=spec.head_dim, max_position_embeddings=max_positions,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, use_cache=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(cfg)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def encode_pairs(pairs: Sequence[Pair], vocab: Mapping[str, int], eos_id: int,
                 pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask``/``labels`` (B, T); labels are -100 off the completion."""
    seqs, labels = [], []
    for prompt, completion in pairs:
        try:
            p_ids = [vocab[c] for c in prompt]
            c_ids = [vocab[c] for c in completion] + [eos_id]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the tokenizer's alphabet") from None
        seqs.append(p_ids + c_ids)
        labels.append([-100] * len(p_ids) + c_ids)
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    lab = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (s, lb) in enumerate(zip(seqs, labels, strict=True)):
        ids[i, :len(s)] = torch.tensor(s)
        lab[i, :len(s)] = torch.tensor(lb)
        mask[i, :len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": lab}


def lr_factor(step: int, spec: TrainSpec) -> float:
    """Multiplier of ``spec.lr`` at ``step`` (0-based): linear warmup, cosine down to ``min_lr_frac``."""
    if step < spec.warmup_steps:
        return (step + 1) / spec.warmup_steps
    progress = (step - spec.warmup_steps) / max(1, spec.max_steps - spec.warmup_steps)
    return spec.min_lr_frac + (1 - spec.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class TrainResult:
    step: int
    metrics: dict[str, float]
    criteria_met: bool
    history: list[dict[str, float]] = field(default_factory=list)


def train_lm(model: torch.nn.Module, batches: Iterator[list[Pair]], tokenizer: Any, spec: TrainSpec,
             evaluate: Callable[[], dict[str, float]], accept: Callable[[dict[str, float]], bool],
             score: Callable[[dict[str, float]], float], desc: str = "pretrain") -> TrainResult:
    """Pretrain ``model`` in place; it ends holding the selected checkpoint's weights.

    Logs progress every :func:`progress_every` steps and each evaluation: a build of minutes shows
    in its log while it runs (tqdm's bar reaches a terminal, not a log file).
    """
    vocab = tokenizer.get_vocab()
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.98), weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, spec))
    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, float], dict[str, torch.Tensor]] | None = None
    model.train()
    bar = tqdm(range(1, spec.max_steps + 1), desc=desc, leave=False)
    every, t0 = progress_every(spec.max_steps), time.perf_counter()
    for step in bar:
        batch = encode_pairs(next(batches), vocab, tokenizer.eos_token_id, tokenizer.pad_token_id)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % every == 0:
            log.info("%s step %d/%d: loss %.4f, %.1f steps/s", desc, step, spec.max_steps, float(loss.detach()),
                     step / (time.perf_counter() - t0))
        if step < spec.eval_from or (step - spec.eval_from) % spec.eval_every:
            continue
        metrics = {"step": step, "loss": float(loss.detach()), **evaluate()}
        model.train()
        history.append(metrics)
        bar.set_postfix({k: round(v, 3) for k, v in metrics.items() if k != "step"})
        log.info("%s step %d: %s", desc, step, metrics)
        if accept(metrics):
            return TrainResult(step, metrics, True, history)
        if best is None or score(metrics) > best[0]:
            best = (score(metrics), step, metrics, copy.deepcopy(model.state_dict()))
    if best is None:
        raise ValueError(f"{desc}: no checkpoint was evaluated (eval_from={spec.eval_from} > max_steps)")
    log.warning("%s: no checkpoint met the selection criteria; keeping step %d (%s)", desc, best[1], best[2])
    model.load_state_dict(best[3])
    return TrainResult(best[1], best[2], False, history)


def progress_every(max_steps: int, lines: int = 16) -> int:
    """Steps between two progress lines: about ``lines`` per run, whatever its length."""
    return max(1, max_steps // lines)


def mix_batches(streams: Sequence[Iterator[Pair]], batch_size: int,
                shares: Sequence[float] | None = None) -> Iterator[list[Pair]]:
    """Batches drawn from each stream in proportion to ``shares`` (equal by default; rounding
    remainders go to the first stream)."""
    shares = list(shares) if shares is not None else [1.0] * len(streams)
    total = sum(shares)
    counts = [int(batch_size * s / total) for s in shares]
    counts[0] += batch_size - sum(counts)
    while True:
        yield [next(s) for s, c in zip(streams, counts, strict=True) for _ in range(c)]
