"""Teachers: a separate frozen model, or the student itself prompted with the gold answer.

The teacher scores the *same response tokens* as the student; only its prompt may differ. For the
self-distillation teacher (SPEC §1) the prompt carries the ground-truth answer, the student's
prompt does not. Teacher logits on fixed references can be cached (exact all-V log-probs in a
:class:`paced.teacher_cache.TeacherCache`): each problem's are computed once, alone (no padding),
so the cached values do not depend on batch composition and a resumed run sees exactly the values
an uninterrupted one saw.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from paced.methods import SELF_TEACHER_TEMPLATE, MethodSpec
from paced.tasks.base import Doc, Task
from paced.teacher_cache import TeacherCache
from paced.trainer.batches import collate, response_logits

log = logging.getLogger(__name__)


def student_prompt(task: Task, doc: Doc) -> str:
    """What the student is conditioned on: the task's prompt, nothing else."""
    return task.format_prompt(doc)


def teacher_prompt(method: MethodSpec, task: Task, doc: Doc) -> str:
    """What the teacher is conditioned on.

    ``separate``: the student's prompt. ``self``: the gold answer + the student's prompt, from the
    method's ``self_teacher_template``; a task may define ``self_teacher_prompt(doc)`` (e.g. a
    toy task whose tokenizer lacks the paper's wording), used while the template is the default.
    """
    if method.teacher == "separate":
        return student_prompt(task, doc)
    hook = getattr(task, "self_teacher_prompt", None)
    if callable(hook) and method.self_teacher_template == SELF_TEACHER_TEMPLATE:
        return str(hook(doc))
    return method.self_teacher_template.format(answer=doc.answer, prompt=student_prompt(task, doc))


class TeacherScorer:
    """Teacher logits on response positions, [B, R, V] fp32, with an optional per-problem cache."""

    def __init__(self, model: torch.nn.Module, pad_id: int, *, cache_max_bytes: int = 0) -> None:
        self.model = model
        self.pad_id = pad_id
        self.cache_max_bytes = cache_max_bytes
        self._cache: TeacherCache | None = None  # exact (all-V) log-probs per problem id

    @torch.no_grad()
    def logits(self, ids: Sequence[str], prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]],
               *, cacheable: bool, device: torch.device) -> torch.Tensor:
        """``cacheable``: the responses are fixed references (not fresh samples) for these ids."""
        if not (cacheable and self.cache_max_bytes > 0):
            batch = collate(prompts, responses, self.pad_id).to(device)
            return response_logits(self.model, batch).float()
        rows = [self._cached(pid, p, r, device) for pid, p, r in zip(ids, prompts, responses, strict=True)]
        r_len = max(1, max(len(r) for r in responses))
        out = torch.zeros((len(rows), r_len, rows[0].shape[-1]), dtype=torch.float32, device=device)
        for i, row in enumerate(rows):
            out[i, :row.shape[0]] = row.to(device)
        return out  # (B, R, V); padded positions are zero and masked out by the caller

    def _cached(self, pid: str, prompt: Sequence[int], response: Sequence[int],
                device: torch.device) -> torch.Tensor:
        """Teacher log-probs [R_i, V] of one problem (log-probs are valid logits for every divergence)."""
        if self._cache is not None and pid in self._cache and self._cache[pid].length == len(response):
            return self._cache[pid].logp
        batch = collate([prompt], [response], self.pad_id).to(device)
        row = response_logits(self.model, batch)[0, :len(response)].float()  # (R_i, V)
        if self._cache is None:
            self._cache = TeacherCache(vocab_size=int(row.shape[-1]))
        if self._cache.nbytes + row.numel() * row.element_size() <= self.cache_max_bytes:
            return self._cache.add(pid, row).logp
        return row

    @property
    def cached_problems(self) -> int:
        return 0 if self._cache is None else len(self._cache)
