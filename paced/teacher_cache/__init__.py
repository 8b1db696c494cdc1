"""Teacher log-probs on fixed reference responses, computed once and reused by every method and seed.

:mod:`~paced.teacher_cache.entry`: entries (exact, or top-k + tail mass) and the forward KL against them;
:mod:`~paced.teacher_cache.store`: :class:`TeacherCache` in memory and as sharded files read lazily per batch;
:mod:`~paced.teacher_cache.build`: :func:`build_teacher_cache`, the stage that writes one from a teacher.
"""

from __future__ import annotations

from typing import Any

from paced.teacher_cache.entry import (
    TAILS,
    CacheEntry,
    build_entry,
    forward_kl_from_cache,
    forward_kl_tokens_from_cache,
    select_rows,
)
from paced.teacher_cache.store import ShardReader, ShardWriter, TeacherCache

__all__ = ["TAILS", "CacheEntry", "ShardReader", "ShardWriter", "TeacherCache", "build_entry", "build_teacher_cache",
           "cache_serves_every_stage", "forward_kl_from_cache", "forward_kl_tokens_from_cache", "select_rows"]


def __getattr__(name: str) -> Any:
    # the builder imports the trainer, which imports this package: load it on first use, not at import
    if name == "build_teacher_cache":
        from paced.teacher_cache.build import build_teacher_cache

        return build_teacher_cache
    raise AttributeError(f"module 'paced.teacher_cache' has no attribute {name!r}")


def cache_serves_every_stage(method: Any, top_k: int | None) -> bool:
    """Whether a shared cache serves every stage of ``method`` (a :class:`~paced.methods.MethodSpec`), so the
    teacher need not be loaded: a separate teacher, every stage teacher-forced on the fixed references, and
    with a top-k cache every stage forward KL."""
    return method.teacher == "separate" and all(
        s.source == "references" and (top_k is None or s.divergence == "forward_kl") for s in method.stages)
