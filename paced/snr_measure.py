"""The SNR stage: per-problem gradients of the distillation loss on the base student, binned by p̂.

The paper's Figure 1 claims the cross-problem gradient SNR, ‖E g‖² / tr Cov g, is bell-shaped in
the pass rate p. Here, for a stratified sample of training problems, g_i is the gradient of the
teacher-forced forward KL on problem i's teacher reference (the FKL track's per-problem loss), taken
at the base student; SNR per p̂ bin (debiased, bootstrap CIs) overall and per tier, and each bin's
cosine with a held-out gradient (the mean gradient on held-out problems' gold solutions) — whether
a bin's signal points where held-out performance improves. Gradients are count-sketched
(:mod:`paced.gradients`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from paced.divergences import forward_kl
from paced.fused import causal_lm_hidden, fused_divergence
from paced.gradients import per_example_gradients
from paced.snr import binned_gradient_snr
from paced.tasks.base import Doc, Task
from paced.trainer.batches import collate, response_logits
from paced.trainer.config import FUSED_AUTO_MIN_VOCAB

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SNRConfig:
    max_problems: int = 384
    heldout_problems: int = 128
    sketch_dim: int = 65536
    n_bootstrap: int = 500
    bins: int = 9
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("max_problems", 2), ("heldout_problems", 1), ("sketch_dim", 1), ("n_bootstrap", 10),
                          ("bins", 2)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"SNRConfig.{name} must be an int >= {low}, got {value!r}")


def stratified_sample(p_hat: Sequence[float], tiers: Sequence[str | None], max_n: int, bins: int,
                      seed: int) -> list[int]:
    """Indices of at most ``max_n`` problems, spread evenly over (tier, p̂-bin) strata."""
    rng = np.random.default_rng(seed)
    strata: dict[tuple[str | None, int], list[int]] = {}
    for i, (p, t) in enumerate(zip(p_hat, tiers, strict=True)):
        strata.setdefault((t, min(int(p * bins), bins - 1)), []).append(i)
    per = max(2, max_n // max(1, len(strata)))
    picked = [j for key in sorted(strata, key=str) for j in rng.permutation(strata[key])[:per].tolist()]
    return sorted(picked)[:max_n] if len(picked) > max_n else sorted(picked)


def _fkl_loss_fn(teacher: torch.nn.Module, pad_id: int, device: torch.device, fused: bool):
    """Per-problem teacher-forced FKL on ``device``; ``fused``: from hidden states and lm_head chunk by chunk
    (:mod:`paced.fused`; no [T, V] logits), else from the logits."""
    def loss_fn(model: torch.nn.Module, ex: tuple[list[int], list[int], list[int]]) -> torch.Tensor:
        s_prompt, t_prompt, resp = ex
        s_batch = collate([s_prompt], [resp], pad_id).to(device)
        t_batch = collate([t_prompt], [resp], pad_id).to(device)
        if fused:
            r = s_batch.response_len
            with torch.no_grad():
                th, tw, tb = causal_lm_hidden(teacher, t_batch.input_ids, t_batch.attention_mask,
                                              t_batch.position_ids)
            sh, sw, sb = causal_lm_hidden(model, s_batch.input_ids, s_batch.attention_mask, s_batch.position_ids)
            return fused_divergence("forward_kl", student_hidden=sh[:, -r - 1:-1], student_weight=sw,
                                    student_bias=sb, teacher_hidden=th[:, -r - 1:-1], teacher_weight=tw,
                                    teacher_bias=tb, mask=s_batch.response_mask)[0]
        with torch.no_grad():
            t_logits = response_logits(teacher, t_batch)  # (1, R, V)
        s_logits = response_logits(model, s_batch)  # (1, R, V)
        return forward_kl(student_logits=s_logits, teacher_logits=t_logits, mask=s_batch.response_mask)[0]

    return loss_fn


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto``: CUDA when visible, else CPU; ``cuda`` without a GPU fails in one line."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but no CUDA device is visible; use device='cpu'")
    return dev


def _encode(tokenizer: Any, task: Task, docs: Sequence[Doc], refs: Mapping[str, str]) -> list[tuple]:
    eos = [int(tokenizer.eos_token_id)] if tokenizer.eos_token_id is not None else []

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    out = []
    for d in docs:
        prompt = ids(task.format_prompt(d))
        out.append((prompt, prompt, ids(refs[d.id]) + eos))
    return out


def measure_snr(student: torch.nn.Module, teacher: torch.nn.Module, tokenizer: Any, task: Task,
                docs: Sequence[Doc], references: Mapping[str, str], p_hat: Mapping[str, float],
                heldout: Sequence[Doc], cfg: SNRConfig, heldout_task: Task | None = None, *,
                device: str | torch.device = "cpu", fused: str = "auto",
                gradient_checkpointing: bool = False) -> dict[str, Any]:
    """Binned gradient SNR (overall and per tier) and held-out alignment; a JSON-ready dict.

    ``heldout`` docs (of ``heldout_task``, default ``task``) with a gold solution give the reference gradient.
    ``device``: where both models run and the gradients are sketched (``cpu``, ``cuda``, ``auto``); the models
    are moved there. ``fused``: ``auto`` takes the fused divergence from a vocabulary of 32,768 tokens (one
    [T, V] fp32 logits tensor per sequence would be ≥ 128 kB a token), ``on``/``off`` force it.
    ``gradient_checkpointing``: recompute the student's activations in backward (long references).
    """
    if fused not in ("auto", "on", "off"):
        raise ValueError(f"fused={fused!r} is not allowed; allowed: auto, on, off")
    dev = resolve_device(device)
    student, teacher = student.to(dev), teacher.to(dev)
    vocab = int(student.get_output_embeddings().weight.shape[0])
    use_fused = fused == "on" or (fused == "auto" and vocab >= FUSED_AUTO_MIN_VOCAB)
    if gradient_checkpointing:
        student.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    htask = heldout_task or task
    pool = [d for d in docs if d.id in references and d.id in p_hat]
    if len(pool) < 2:
        raise ValueError(f"SNR needs >= 2 problems with a reference and a pass rate; got {len(pool)}")
    idx = stratified_sample([p_hat[d.id] for d in pool], [d.tier for d in pool], cfg.max_problems, cfg.bins,
                            cfg.seed)
    sample = [pool[i] for i in idx]
    loss_fn = _fkl_loss_fn(teacher, int(tokenizer.pad_token_id), dev, use_fused)
    student.eval()
    grads = per_example_gradients(student, loss_fn, _encode(tokenizer, task, sample, references),
                                  sketch_dim=cfg.sketch_dim, seed=cfg.seed).double().numpy()
    held = [d for d in heldout if htask.reference(d)][: cfg.heldout_problems]
    ref_grad = None
    if held:
        hg = per_example_gradients(student, loss_fn, _encode(tokenizer, htask, held,
                                                             {d.id: htask.reference(d) for d in held}),
                                   sketch_dim=cfg.sketch_dim, seed=cfg.seed, desc="held-out gradients")
        ref_grad = hg.double().mean(0).numpy()
    p = np.array([p_hat[d.id] for d in sample])
    tiers = np.array([str(d.tier) for d in sample])
    rows = []
    for group in ["all", *sorted(set(tiers) - {"None"})]:
        sel = np.ones(len(sample), bool) if group == "all" else tiers == group
        for b in binned_gradient_snr(grads[sel], p[sel], cfg.bins, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed,
                                     debias=True, reference_grad=ref_grad):
            rows.append({"group": group, **{k: _finite(v) for k, v in asdict(b).items()}})
    log.info("SNR over %d problems (%d held-out) on %s, %s divergence", len(sample), len(held), dev,
             "fused" if use_fused else "logits")
    return {"bins": rows, "n_problems": len(sample), "n_heldout": len(held), "config": asdict(cfg),
            "kernel": {"alpha": 1.0, "beta": 1.0}, "loss": "forward_kl on teacher references"}


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
