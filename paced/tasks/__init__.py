"""Task registry: ``get_task("toy_arith")``; importing the package registers the built-in tasks.

Toy tasks: ``toy_arith`` (generation, tiers ``learnable``/``intractable``), ``toy_probe`` (multiple
choice). Real tasks: ``dapo_math``, ``math500``, ``aime24``, ``aime25`` (``\\boxed{}`` + math-verify)
and ``mmlu`` (multiple choice), loaded from hub names or local files.
"""

from __future__ import annotations

from paced.tasks import math, mmlu, toy  # noqa: F401  -- registers the tasks
from paced.tasks.base import TASKS, DataError, Doc, Task, doc_from_row, get_task, load_jsonl

__all__ = ["TASKS", "DataError", "Doc", "Task", "doc_from_row", "get_task", "load_jsonl"]
