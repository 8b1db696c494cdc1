"""Data order and collation: prompt + response sequences whose response tokens line up across rows.

Prompts are padded on the left and responses on the right, so every row's response starts at the
same column P of the ``[B, P + R]`` input; the logits that predict response tokens are then the
slice ``[:, P - 1 : P - 1 + R]`` for every row. Position ids come from the attention mask, so a
left-padded row sees the same positions as an unpadded one. Student and teacher batches share the
response ids and differ only in their prompts (the self-distillation teacher sees the gold answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` training problems in ``epoch`` (a pure function of seed and epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> list[int]:
    """Problem indices of the batch at 0-based ``step``: positions ``step·B … step·B + B − 1`` of the
    concatenated per-epoch permutations. Depends only on its arguments, so a resumed run draws the
    same batches as an uninterrupted one."""
    out: list[int] = []
    perms: dict[int, np.ndarray] = {}
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch, i = divmod(pos, n)
        if epoch not in perms:
            perms[epoch] = epoch_permutation(n, seed, epoch)
        out.append(int(perms[epoch][i]))
    return out


@dataclass(frozen=True)
class Batch:
    """``input_ids``/``attention_mask``/``position_ids`` [B, P + R]; ``response_mask`` [B, R]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_mask: torch.Tensor

    @property
    def response_len(self) -> int:
        return int(self.response_mask.shape[1])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.position_ids,
                                              self.response_mask)))


def collate(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int) -> Batch:
    """Left-pad prompts, right-pad responses; every prompt needs at least one token."""
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(f"collate needs equally many prompts and responses (>0); got {len(prompts)} "
                         f"and {len(responses)}")
    if min(len(p) for p in prompts) < 1:
        raise ValueError("every prompt needs at least one token (the response's first token is predicted "
                         "from the prompt's last)")
    p_len = max(len(p) for p in prompts)
    r_len = max(1, max(len(r) for r in responses))
    b = len(prompts)
    ids = torch.full((b, p_len + r_len), pad_id, dtype=torch.long)
    attn = torch.zeros((b, p_len + r_len), dtype=torch.long)
    resp_mask = torch.zeros((b, r_len), dtype=torch.bool)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        ids[i, p_len - len(p):p_len] = torch.as_tensor(list(p), dtype=torch.long)
        attn[i, p_len - len(p):p_len + len(r)] = 1
        if len(r):
            ids[i, p_len:p_len + len(r)] = torch.as_tensor(list(r), dtype=torch.long)
        resp_mask[i, :len(r)] = True
    pos = (attn.cumsum(-1) - 1).clamp_min(0)
    return Batch(ids, attn, pos, resp_mask)


def response_logits(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Logits that predict the response tokens: [B, R, V] (position P − 1 + t predicts token t)."""
    r = batch.response_len
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                position_ids=batch.position_ids, logits_to_keep=r + 1, use_cache=False)
    return out.logits[:, :-1, :]  # (B, R, V)
