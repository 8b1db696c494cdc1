"""Prompt + generation budget against a model's context: checked before any work, and per row at job start.

A budget larger than the model's context makes lm-eval cut the prompt to nothing and vLLM refuse the
request; one over-long row in a user's data made a sampling job allocate 17 GB and die naming no row.
:func:`check_context` runs where only the model's config is known (config parse time): the budget alone must
leave room for a prompt. :func:`fit_rows` runs at job start, once prompts are tokenised: each row over the
limit is refused (naming file, line and id) or skipped (counted in the log), as the policy says.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

OVERLONG_POLICIES = ("refuse", "skip")


def model_context(model: str) -> int | None:
    """``max_position_embeddings`` from ``model``'s ``config.json`` (a local directory, or a hub id already in
    the local cache); ``None`` when the config cannot be read without the network or names no such limit."""
    path = Path(model) / "config.json"
    if not path.is_file():
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(model, "config.json", local_files_only=True))
        except Exception:  # not cached, not a repo id, or no hub client: the caller checks later, per row
            return None
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg = cfg.get("text_config", cfg)  # multimodal configs nest the language model's
    value = cfg.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


def check_context(model: str, max_new_tokens: int, *, key: str = "models.student",
                  budget_key: str = "sampling.max_new_tokens", context: int | None = None,
                  max_model_len: int | None = None, min_prompt_tokens: int = 1) -> int | None:
    """Refuse a budget that leaves no room for a prompt in ``model``'s context; returns the limit used.

    The limit is the model's context (``context``, else its ``config.json``), capped by ``max_model_len``
    (the ``vllm:`` section) when set. ``max_new_tokens + min_prompt_tokens`` must fit. Nothing is checked
    (``None`` returned) when no limit is known; rows are then checked at job start (:func:`fit_rows`).
    Raises ``ValueError`` in one line naming the model, the limit and the fix.
    """
    known = context if context is not None else model_context(model)
    limits = [x for x in (known, max_model_len) if x is not None]
    if not limits:
        return None
    limit = min(limits)
    where = (f"{key} {model!r} has {known:,} positions (max_position_embeddings)" if limit == known
             else f"vllm.max_model_len={limit:,} for {key} {model!r}")
    if max_new_tokens + min_prompt_tokens > limit:
        raise ValueError(f"{budget_key}={max_new_tokens:,} does not fit: {where}, which must hold the prompt and "
                         f"the completion; set {budget_key} to at most {limit - min_prompt_tokens:,} minus the "
                         "longest prompt, or use a model with a longer context")
    return limit


def fit_rows(prompt_tokens: Sequence[int], ids: Sequence[str], *, limit: int, max_new_tokens: int,
             source: str, policy: str = "refuse", lines: Sequence[int] | None = None) -> list[int]:
    """Indices of the rows whose prompt (``prompt_tokens[i]`` tokens) + ``max_new_tokens`` fit in ``limit``.

    ``policy="refuse"`` raises ``ValueError`` at the first row that does not, naming ``source`` (the data
    file), its line (``lines[i]``, 1-based; default ``i + 1``) and its id; ``"skip"`` drops such rows and
    logs how many were dropped and the first few ids.
    """
    if policy not in OVERLONG_POLICIES:
        raise ValueError(f"over-long row policy {policy!r} is not one of {OVERLONG_POLICIES}")
    if len(prompt_tokens) != len(ids) or (lines is not None and len(lines) != len(ids)):
        raise ValueError(f"fit_rows: {len(prompt_tokens)} lengths, {len(ids)} ids"
                         + ("" if lines is None else f", {len(lines)} lines") + ": one of each per row")
    room = limit - max_new_tokens
    keep, dropped = [], []
    for i, n in enumerate(prompt_tokens):
        if n <= room:
            keep.append(i)
            continue
        line = lines[i] if lines is not None else i + 1
        if policy == "refuse":
            raise ValueError(f"{source}:{line} (id {ids[i]!r}): the prompt has {n:,} tokens, and with "
                             f"max_new_tokens={max_new_tokens:,} exceeds the context of {limit:,}; shorten or "
                             "drop the row, or set the over-long policy to skip")
        dropped.append(ids[i])
    if dropped:
        log.warning("%s: skipped %d of %d rows whose prompt + %d new tokens exceeds %d tokens (first: %s)",
                    source, len(dropped), len(ids), max_new_tokens, limit, ", ".join(map(str, dropped[:5])))
    return keep


def fit_prompts(model: str, prompts: Sequence[str], ids: Sequence[str], *, max_new_tokens: int, source: str,
                policy: str = "refuse", lines: Sequence[int] | None = None, max_model_len: int | None = None,
                trust_remote_code: bool = False, key: str = "model",
                budget_key: str = "sampling.max_new_tokens") -> list[int]:
    """Indices of ``prompts`` that fit ``model``'s context with ``max_new_tokens`` more (:func:`check_context` on
    the budget, then :func:`fit_rows` on the prompts as ``model``'s tokenizer counts them); every index when no limit
    is known (a hub id not in the local cache: the backend checks)."""
    limit = check_context(model, max_new_tokens, key=key, budget_key=budget_key, max_model_len=max_model_len)
    if limit is None or not prompts:
        return list(range(len(prompts)))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    lengths = [len(x) for x in tok(list(prompts), add_special_tokens=False)["input_ids"]]
    return fit_rows(lengths, ids, limit=limit, max_new_tokens=max_new_tokens, source=source, policy=policy,
                    lines=lines)
