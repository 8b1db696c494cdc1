"""Teachers: a separate frozen model, or the student itself prompted with the gold answer.

The teacher scores the *same response tokens* as the student; only its prompt may differ. For the
self-distillation teacher (docs/paper.md) the prompt carries the ground-truth answer, the student's
prompt does not. Teacher logits on fixed references can be cached (exact all-V log-probs in a
:class:`paced.teacher_cache.TeacherCache`): each problem's are computed once, alone (no padding),
so the cached values do not depend on batch composition and a resumed run sees exactly the values
an uninterrupted one saw. A *shared* cache file (``DistillConfig.teacher_cache_path``, written once
by :func:`paced.teacher_cache.build_teacher_cache`) serves every method and seed; its sidecar
``<path>.json`` holds a hash of each problem's reference ids, checked before an entry is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from paced.fused import causal_lm_hidden
from paced.methods import SELF_TEACHER_TEMPLATE, MethodSpec
from paced.tasks.base import ChatTask, Doc, Task
from paced.teacher_cache import CacheEntry, TeacherCache
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
    With a chat template (:class:`ChatTask`) the hint goes *inside* the user message, beside the
    problem: outside it, the hint would precede the template's role markers, where a chat model
    never reads instructions.
    """
    if method.teacher == "separate":
        return student_prompt(task, doc)
    bare = task.inner if isinstance(task, ChatTask) else task
    hook = getattr(bare, "self_teacher_prompt", None)
    if callable(hook) and method.self_teacher_template == SELF_TEACHER_TEMPLATE:
        hinted = str(hook(doc))
    else:
        hinted = method.self_teacher_template.format(answer=doc.answer, prompt=bare.format_prompt(doc))
    return task.user_turn(hinted) if isinstance(task, ChatTask) else hinted


def reference_digest(token_ids: Sequence[int]) -> str:
    """A short hash of one reference's token ids (ties a shared cache entry to the reference it scored)."""
    return hashlib.sha256(json.dumps([int(t) for t in token_ids]).encode()).hexdigest()[:16]


def sidecar_path(cache_path: str | Path) -> Path:
    return Path(str(cache_path) + ".json")


class TeacherScorer:
    """Teacher logits on response positions, [B, R, V] fp32, with an optional per-problem cache.

    ``shared_cache``: a :class:`TeacherCache` computed once on the fixed references (or load one
    from a file with :meth:`load_shared`).
    """

    def __init__(self, model: torch.nn.Module, pad_id: int, *, cache_max_bytes: int = 0,
                 shared_cache: TeacherCache | None = None) -> None:
        self.model = model
        self.pad_id = pad_id
        self.cache_max_bytes = cache_max_bytes
        self._cache: TeacherCache | None = None  # exact (all-V) log-probs per problem id
        self._shared: TeacherCache | None = shared_cache
        self._shared_path: str | None = None
        self._digests: dict[str, str] = {}  # problem id -> reference digest from the sidecar
        self._checked: set[str] = set()

    def load_shared(self, path: str | Path, top_k: int | None = None) -> TeacherCache:
        """Load the shared cache file once (later calls with the same path return it).

        ``top_k``: what the file must have been built with (None = exact); a mismatch raises ``ValueError``.
        """
        if self._shared is not None and self._shared_path == str(path):
            return self._shared
        if not Path(path).is_file():
            raise FileNotFoundError(f"teacher_cache_path={str(path)!r} does not exist; build it with "
                                    "paced.teacher_cache.build_teacher_cache")
        cache = TeacherCache.load(path)
        if cache.top_k != top_k:
            raise ValueError(f"teacher cache {str(path)!r} was built with top_k={cache.top_k!r}, but "
                             f"DistillConfig.teacher_cache_top_k={top_k!r}")
        side = sidecar_path(path)
        self._digests = dict(json.loads(side.read_text(encoding="utf-8")).get("reference_digest", {})) \
            if side.is_file() else {}
        self._shared, self._shared_path, self._checked = cache, str(path), set()
        log.info("teacher cache %s: %d problems, top_k=%s", path, len(cache), cache.top_k)
        return cache

    @property
    def shared(self) -> TeacherCache | None:
        return self._shared

    def shared_entry(self, ids: Sequence[str], responses: Sequence[Sequence[int]],
                     device: torch.device) -> CacheEntry:
        """Batched shared-cache entry [B, R, ·] for these fixed references (R = the longest response).

        Raises ``ValueError`` naming the problems that are missing or whose reference differs from
        the one the cache scored (a stale cache must never be read silently).
        """
        assert self._shared is not None, "no shared teacher cache is loaded"
        missing = [pid for pid in ids if pid not in self._shared]
        stale = [pid for pid, r in zip(ids, responses, strict=True)
                 if pid not in missing and pid not in self._checked and not self._matches(pid, r)]
        if missing or stale:
            raise ValueError(f"teacher cache {self._shared_path!r} does not match the references: missing "
                             f"{missing[:5]}, different reference {stale[:5]}; rebuild it with build_teacher_cache")
        self._checked.update(ids)
        return self._shared.batch(list(ids), max(1, max(len(r) for r in responses)), device)

    def _matches(self, pid: str, response: Sequence[int]) -> bool:
        if self._shared[pid].length != len(response):
            return False
        return pid not in self._digests or self._digests[pid] == reference_digest(response)

    @torch.no_grad()
    def hidden(self, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], *,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Teacher hidden states on response positions [B, R, H] + its lm_head weight [V, H] and bias (fused path)."""
        batch = collate(prompts, responses, self.pad_id).to(device)
        hidden, weight, bias = causal_lm_hidden(self.model, batch.input_ids, batch.attention_mask,
                                                batch.position_ids)
        r = batch.response_len
        return hidden[:, -r - 1:-1], weight, bias  # position P − 1 + t predicts response token t

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
