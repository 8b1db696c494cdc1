"""Teacher log-probs on fixed reference responses, computed once and reused by every method and seed.

Teacher-forced FKL on fixed references sees the same teacher distribution at every step of every
run, so it can be stored per problem id: exactly (all V log-probs per token; fine for small V) or,
for large vocabularies, as the top-k log-probs + token ids per token plus the log of the tail mass
r = 1 − Σ_top-k p_T (computed as a logsumexp over the tail, so it is exact even when r ≪ 1).

How the tail enters FKL (``tail=``):

- ``"bucket"`` (default): the tail is one "other" outcome. With S = Σ_tail p_S,

      FKL_k = Σ_{v∈top-k} p_T(v) [log p_T(v) − log p_S(v)] + r [log r − log S].

  This is the exact KL between the two distributions coarse-grained to k + 1 outcomes, so
  0 ≤ FKL_k ≤ FKL and FKL − FKL_k = r · KL(p_T(·|tail) ‖ p_S(·|tail)): the error is the tail mass
  times how differently the two spread it, and vanishes as r → 0. Its gradient p_S − p̃_T moves the
  student's tail mass as a whole toward r without prescribing its shape.
- ``"uniform"``: the tail mass is spread evenly, p̃_T(v) = r / (V − k), a proper distribution on V.
  It prescribes a flat tail, so its cross-entropy term −r/(V−k) Σ_tail log p_S is driven by the
  student's rarest (least reliable) tokens, and it has no bound on its error.

Measured (``python benchmarks/bench_divergence.py cache``): relative error of the batch-mean FKL,
and ‖g_k − g‖/‖g‖ of its student-logit gradient, bucket / uniform; "tail" = mean teacher mass
outside the top-k. Synthetic: V = 151,936, teacher logits = Zipf ranks (p ∝ rank^−1.1, top-1
boosted by 6, mean top-1 mass 0.98) + noise, student = teacher + N(0, 1) on every logit:

    k       tail     FKL rel. err      grad rel. err
    8       0.017    0.26 / 0.93       0.021 / 0.017
    32      0.014    0.21 / 0.66       0.010 / 0.009
    128     0.011    0.16 / 0.43       0.005 / 0.005
    1024    0.007    0.10 / 0.18       0.001 / 0.005

The value error is the tail's within-tail mismatch (r · KL of the tail conditionals), large here
because the noise is on all 151k logits; the gradient is within 2% from k = 8. With a flatter
teacher (Zipf 1.0, top-1 mass 0.09, tail 0.39 at k = 1024) the errors are 0.40 / 0.61 (value) and
0.03 / 0.02 (gradient) at k = 1024. On the trained toy world (V = 80, top-1 mass 0.94) k = 8 gives
0.15% / 0.01% (value) and 0.6% / 0.07% (gradient): small vocabularies favour ``uniform``, but there
the exact cache (``top_k=None``) is cheap and is what to use. ``bucket`` is the default because it
is a bound with a known error term and does not depend on the student's far tail.

Entries and the FKL against them live here; storing them: :mod:`paced.teacher_cache.store`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from paced._checks import check_positive_int
from paced.divergences import as_bool_mask, forward_kl_tokens, unmasked_rows

TAILS = ("bucket", "uniform")


@dataclass(frozen=True)
class CacheEntry:
    """Teacher log-probs of one problem [T, ·] or a padded batch [B, T, ·].

    ``logp``: [..., V] exact log-probs (``ids`` None) or [..., k] top-k log-probs; ``ids`` [..., k]
    int64 token ids of the top-k; ``tail_logp`` [...] log of the mass outside the top-k (−inf if none).
    """

    logp: torch.Tensor
    ids: torch.Tensor | None
    tail_logp: torch.Tensor | None
    vocab_size: int

    @property
    def exact(self) -> bool:
        return self.ids is None

    @property
    def length(self) -> int:
        return int(self.logp.shape[-2])

    def to(self, device: torch.device | str) -> CacheEntry:
        ids = None if self.ids is None else self.ids.to(device)
        tail = None if self.tail_logp is None else self.tail_logp.to(device)
        return CacheEntry(self.logp.to(device), ids, tail, self.vocab_size)


def build_entry(teacher_logits: torch.Tensor, top_k: int | None = None) -> CacheEntry:
    """Cache entry from teacher logits [T, V]: exact when ``top_k`` is None or ≥ V, else top-k + tail mass."""
    if teacher_logits.dim() != 2:
        raise ValueError(f"teacher_logits must be [T, V]; got {tuple(teacher_logits.shape)}")
    v = int(teacher_logits.shape[-1])
    logp = torch.log_softmax(teacher_logits.detach().float(), dim=-1)  # (T, V)
    if top_k is None or check_positive_int("top_k", top_k) >= v:
        return CacheEntry(logp, None, None, v)
    top, ids = logp.topk(top_k, dim=-1)  # (T, k)
    tail = logp.scatter(-1, ids, float("-inf")).logsumexp(-1)  # (T,) log of the exact tail mass
    return CacheEntry(top, ids, tail, v)


def forward_kl_tokens_from_cache(student_logits: torch.Tensor, entry: CacheEntry,
                                 tail: str = "bucket") -> torch.Tensor:
    """Per-token FKL of student logits [N, V] against a flat cache entry (``logp`` [N, ·]). -> [N] fp32.

    Exact entries give :func:`paced.divergences.forward_kl_tokens`; top-k entries the ``tail``
    treatment of the module docstring.
    """
    if tail not in TAILS:
        raise ValueError(f"tail={tail!r} is not allowed; allowed: {', '.join(TAILS)}")
    if student_logits.shape[-1] != entry.vocab_size:
        raise ValueError(f"vocabulary size mismatch: student_logits V={student_logits.shape[-1]}, "
                         f"cache V={entry.vocab_size}")
    if entry.exact:
        return forward_kl_tokens(student_logits, entry.logp)
    log_s = torch.log_softmax(student_logits.float(), dim=-1)  # (N, V)
    top_t = entry.logp.float()  # (N, k)
    head = (top_t.exp() * (top_t - log_s.gather(-1, entry.ids))).sum(-1)  # (N,)
    r_log = entry.tail_logp.float()
    r = r_log.exp()
    safe_r_log = torch.where(r > 0, r_log, torch.zeros_like(r_log))
    if tail == "bucket":
        log_s_tail = log_s.scatter(-1, entry.ids, float("-inf")).logsumexp(-1)  # log Σ_tail p_S
        tail_term = r * (safe_r_log - log_s_tail)
    else:
        n_tail = entry.vocab_size - entry.ids.shape[-1]
        sum_tail = log_s.sum(-1) - log_s.gather(-1, entry.ids).sum(-1)  # Σ_tail log p_S
        tail_term = r * (safe_r_log - math.log(n_tail)) - r / n_tail * sum_tail
    return head + torch.where(r > 0, tail_term, torch.zeros_like(tail_term))


def forward_kl_from_cache(student_logits: torch.Tensor, cache_entry: CacheEntry, mask: Any = None,
                          tail: str = "bucket", chunk_size: int = 1024) -> torch.Tensor:
    """Per-sequence mean FKL of student logits [B, T, V] against a batched entry ([B, T, ·]); mask [B, T]. -> [B].

    Like :func:`paced.divergences.forward_kl` (chunks of ``chunk_size`` unmasked tokens; a sequence
    with no unmasked token gets 0), with the teacher read from the cache.
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if student_logits.dim() != 3 or cache_entry.logp.dim() != 3 \
            or tuple(cache_entry.logp.shape[:2]) != tuple(student_logits.shape[:2]):
        raise ValueError(f"cache entry shape {tuple(cache_entry.logp.shape)} must be [B, T, ·] matching "
                         f"student_logits [B, T, V] = {tuple(student_logits.shape)}")
    b, t, v = student_logits.shape
    mask = as_bool_mask(mask, b, t, student_logits.device)
    rows, seq, count = unmasked_rows(mask)
    flat = student_logits.reshape(b * t, v)
    student_rows = flat if rows.numel() == b * t else flat.index_select(0, rows)  # (N, V); one gather, see divergences
    total = flat[:0].float().sum() + torch.zeros(b, dtype=torch.float32, device=student_logits.device)
    for i, s_chunk in enumerate(student_rows.split(chunk_size)):
        idx = rows[i * chunk_size:(i + 1) * chunk_size]
        tok = forward_kl_tokens_from_cache(s_chunk, select_rows(cache_entry, idx), tail)  # (chunk,)
        total = total.index_add(0, seq[i * chunk_size:(i + 1) * chunk_size], tok)
    return total / count.clamp_min(1.0)


def select_rows(entry: CacheEntry, idx: torch.Tensor) -> CacheEntry:
    """Flat rows ``idx`` (into B·T) of a batched entry -> a flat entry [n, ·]."""
    def pick(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.reshape(-1, *x.shape[2:]).index_select(0, idx.to(x.device))
    return CacheEntry(pick(entry.logp), pick(entry.ids), pick(entry.tail_logp), entry.vocab_size)
