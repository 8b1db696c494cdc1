"""MMLU (``cais/mmlu``): the forgetting probe of the paper setting, multiple choice.

Rows in the ``cais/mmlu`` schema (``question``, ``choices`` (4 strings), ``answer`` (index 0-3),
``subject``) become docs whose ``answer`` is the text of the correct choice. The prompt lists the
choices as ``A. ...`` lines and ends with ``Answer:`` (lm-eval's zero-shot MMLU layout, without its
per-subject header); a completion is read as its first choice letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paced.tasks.base import TASKS, DataError, Doc, Task
from paced.tasks.rows import load_rows

LETTERS = "ABCDEFGHIJ"


@TASKS.register("mmlu")
class MMLU(Task):
    """4-way multiple choice; ``subjects`` restricts :meth:`load` to some subjects."""

    name = "mmlu"
    kind = "multiple_choice"
    hub_name = "cais/mmlu"
    hub_config = "all"
    hub_split = "test"
    target_delimiter = " "  # scored continuations are " A", " B", ... after "Answer:", as lm-eval's mmlu

    def __init__(self, subjects: Sequence[str] | None = None) -> None:
        self.subjects = tuple(subjects) if subjects is not None else None

    def format_prompt(self, doc: Doc) -> str:
        lines = [doc.prompt.strip()]
        lines += [f"{LETTERS[i]}. {c}" for i, c in enumerate(doc.choices or ())]
        return "\n".join(lines) + "\nAnswer:"

    def mc_continuations(self, doc: Doc) -> list[str]:
        """Multiple choice scores the choice letters, not the choice texts (lm-eval's MMLU convention)."""
        return list(LETTERS[: len(doc.choices or ())])

    def extract_answer(self, completion: str) -> str | None:
        m = re.search(r"\b([A-J])\b", completion)
        return m.group(1) if m else None

    def check(self, doc: Doc, completion: str) -> bool:
        letter = self.extract_answer(completion)
        if letter is None or doc.choices is None or LETTERS.index(letter) >= len(doc.choices):
            return False
        gold = doc.meta.get("answer_index", doc.choices.index(doc.answer))  # by index: texts may repeat
        return LETTERS.index(letter) == gold

    @staticmethod
    def row_to_doc(row: Mapping[str, Any], index: int, where: str) -> Doc:
        for key in ("question", "choices", "answer"):
            if key not in row:
                raise DataError(f"{where}: missing field {key!r} (cais/mmlu rows have question, choices, "
                                f"answer, subject; got {sorted(row)})")
        choices, ans = row["choices"], row["answer"]
        if not isinstance(choices, list) or len(choices) < 2:
            raise DataError(f"{where}: 'choices' must be a list of at least 2 strings, got {choices!r}")
        if isinstance(ans, str) and ans in LETTERS:
            ans = LETTERS.index(ans)
        if not isinstance(ans, int) or not 0 <= ans < len(choices):
            raise DataError(f"{where}: 'answer' must be a choice index in 0..{len(choices) - 1}, got {ans!r}")
        subject = row.get("subject") or "unknown"
        return Doc(id=f"mmlu-{subject}-{index}", prompt=str(row["question"]), answer=str(choices[ans]),
                   choices=tuple(str(c) for c in choices), meta={"subject": subject, "answer_index": ans})

    def load(self, source: str | Path | None = None) -> list[Doc]:
        src = source if source is not None else self.hub_name
        rows = load_rows(src, split=self.hub_split, config=self.hub_config)
        docs = [self.row_to_doc(r, i, f"{src}:row {i + 1}") for i, r in enumerate(rows)]
        if self.subjects is not None:
            docs = [d for d in docs if d.meta.get("subject") in self.subjects]
            if not docs:
                raise DataError(f"{src}: no rows with subject in {list(self.subjects)}")
        return docs
