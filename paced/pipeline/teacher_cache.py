"""Stage ``teacher_cache``: teacher log-probs on every fixed reference, computed once and shared by every
method and seed."""

from __future__ import annotations

from typing import Any

from paced.pipeline.common import device


def params(suite: Any) -> dict[str, Any]:
    return {"teacher": suite.teacher, "task": suite.train_task, "data": suite.train_path,
            "top_k": suite.train.teacher_cache_top_k, "dtype": suite.models.dtype,
            "chat_template": bool(suite.models.chat_template), "device": device(suite.resources.gpus_sample),
            "enable_thinking": suite.models.get("enable_thinking") if suite.models.chat_template else None}


def run(p: dict[str, Any], refs: str, cache: str) -> None:
    from paced.teacher_cache import build_teacher_cache

    build_teacher_cache(p["teacher"], p["task"], p["data"], refs, cache, top_k=p["top_k"], dtype=p["dtype"],
                        device=p["device"], chat_tokenizer=p["teacher"] if p["chat_template"] else None,
                        enable_thinking=p.get("enable_thinking"))
