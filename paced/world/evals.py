"""Measurements the world builder needs: greedy accuracy, k-sample pass counts, MC log-likelihood.

These are the world's own quick checks (checkpoint selection, the hard set, calibration); the suite's
evaluation stage goes through lm-eval instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from paced.rollouts.base import Sampler, SamplingParams
from paced.tasks.base import Doc, Task


def correct_counts(sampler: Sampler, task: Task, docs: Sequence[Doc], params: SamplingParams) -> list[int]:
    """Number of correct samples out of ``params.n`` for each doc."""
    prompts = [task.format_prompt(d) for d in docs]
    outs = sampler.generate(prompts, params)
    return [sum(task.check(d, r.text) for r in rs) for d, rs in zip(docs, outs, strict=True)]


def greedy_accuracy(sampler: Sampler, task: Task, docs: Sequence[Doc], max_new_tokens: int) -> float:
    """Fraction of docs the greedy completion answers correctly."""
    if not docs:
        return float("nan")
    counts = correct_counts(sampler, task, docs, SamplingParams(n=1, max_new_tokens=max_new_tokens,
                                                                temperature=0.0))
    return sum(counts) / len(docs)


@torch.inference_mode()
def choice_logprobs(model: Any, tokenizer: Any, docs: Sequence[Doc], batch_size: int = 512) -> list[list[float]]:
    """``out[i][j]``: summed log-probability of choice j's tokens after doc i's prompt (no separator)."""
    rows = [(d.prompt, c) for d in docs for c in (d.choices or ())]
    vocab = tokenizer.get_vocab()
    scores: list[float] = []
    was_training = model.training
    model.eval()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        seqs = [[vocab[ch] for ch in p + c] for p, c in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)  # (B, T, V)
        for i, (p, c) in enumerate(chunk):
            pos = torch.arange(len(p) - 1, len(p) + len(c) - 1)
            scores.append(float(logp[i, pos, ids[i, pos + 1]].sum()))
    model.train(was_training)
    out, it = [], iter(scores)
    for d in docs:
        out.append([next(it) for _ in d.choices or ()])
    return out


def mc_accuracy(model: Any, tokenizer: Any, docs: Sequence[Doc]) -> float:
    """Fraction of docs whose highest-log-likelihood choice is the gold answer."""
    if not docs:
        return float("nan")
    lps = choice_logprobs(model, tokenizer, docs)
    hits = [d.choices[max(range(len(lp)), key=lp.__getitem__)] == d.answer  # type: ignore[index]
            for d, lp in zip(docs, lps, strict=True)]
    return sum(hits) / len(docs)
