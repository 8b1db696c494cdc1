"""The toy world's tasks: chained modular arithmetic (``toy_arith``) and the facts probe (``toy_probe``).

The prompts in the world's jsonl files are already what the model sees (no chat template: the toy
models are trained on raw ``prompt + solution`` strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from paced.tasks.base import TASKS, DataError, Doc, Task, load_jsonl


def _filter_tiers(docs: list[Doc], tiers: Sequence[str] | None, source: str | Path) -> list[Doc]:
    if tiers is None:
        return docs
    kept = [d for d in docs if d.tier in tiers]
    if not kept:
        found = sorted({str(d.tier) for d in docs})
        raise DataError(f"{source}: no rows with tier in {list(tiers)}; tiers present: {found}")
    return kept


@TASKS.register("toy_arith")
class ToyArith(Task):
    """Chained arithmetic; correct iff the text after the last ``#`` is exactly the gold answer.

    ``tiers`` restricts :meth:`load` to some tiers (``learnable``, ``intractable``).
    """

    name = "toy_arith"
    kind = "generate"

    def __init__(self, tiers: Sequence[str] | None = None) -> None:
        self.tiers = tuple(tiers) if tiers is not None else None

    def format_prompt(self, doc: Doc) -> str:
        return doc.prompt

    def extract_answer(self, completion: str) -> str | None:
        if "#" not in completion:
            return None
        answer = completion.rsplit("#", 1)[1].strip()
        return answer or None

    def check(self, doc: Doc, completion: str) -> bool:
        return self.extract_answer(completion) == doc.answer

    def load(self, source: str | Path) -> list[Doc]:
        return _filter_tiers(load_jsonl(source), self.tiers, source)


@TASKS.register("toy_probe")
class ToyProbe(Task):
    """Facts probe ``!xyz=`` -> letter: multiple choice by log-likelihood, or greedy exact match
    (the first non-space character of the completion)."""

    name = "toy_probe"
    kind = "multiple_choice"

    def format_prompt(self, doc: Doc) -> str:
        return doc.prompt

    def extract_answer(self, completion: str) -> str | None:
        text = completion.strip()
        return text[0] if text else None

    def check(self, doc: Doc, completion: str) -> bool:
        return self.extract_answer(completion) == doc.answer

    def load(self, source: str | Path) -> list[Doc]:
        docs = load_jsonl(source)
        for d in docs:
            if d.choices is None:
                raise DataError(f"{source}: row {d.id!r} has no 'choices' (toy_probe is multiple choice)")
        return docs
