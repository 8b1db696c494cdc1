"""Real math tasks: DAPO-Math-17k (training prompts), MATH-500, AIME 2024, AIME 2025.

Answers are read from the **last** ``\\boxed{...}`` of a completion (as the authors' grader and
lm-eval do) and compared to the gold answer with math-verify (``verify(parse(gold), parse(pred))``,
gold first). math-verify's own timeouts use ``signal.alarm`` (main thread only), so it is called with
``parsing_timeout=None, timeout_seconds=None`` and bounded here instead: answers longer than
``MAX_ANSWER_CHARS`` are compared as strings only, and by default each check runs in a persistent
worker process (``_verify_server.py``, no torch) that is killed and restarted when a check
exceeds ``timeout_s`` (the check counts as wrong).

``Doc.prompt`` holds the bare problem; :meth:`MathTask.format_prompt` appends the instruction
"Please reason step by step, and put your final answer within \\boxed{}.". Chat templating is the
model side's job (the sampler / lm-eval ``apply_chat_template``), not the task's.
"""

from __future__ import annotations

import json
import logging
import re
import select
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from paced.tasks._verify_server import verify_pair
from paced.tasks.base import TASKS, DataError, Doc, Task
from paced.tasks.rows import load_rows

log = logging.getLogger(__name__)

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
MAX_ANSWER_CHARS = 300  # longer answers are compared as strings only (sympy can stall on huge input)
_BOX = re.compile(r"\\(?:boxed|fbox)\s*")
_BRACE = re.compile(r"[{}]")
_BARE = re.compile(r"[^\s$]+")


def _closing_braces(text: str, start: int) -> dict[int, int]:
    """``{open: close}`` positions of the matched braces of ``text[start:]``, in one linear pass."""
    stack: list[int] = []
    close: dict[int, int] = {}
    for m in _BRACE.finditer(text, start):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            close[stack.pop()] = m.start()
    return close


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (braces matched; ``\\boxed 5`` also accepted), else None.

    Linear in ``len(text)`` (one brace-matching pass), so a completion of thousands of unclosed
    boxes cannot stall the verifier."""
    starts = [m.end() for m in _BOX.finditer(text)]
    close = _closing_braces(text, starts[0]) if starts else {}
    for start in reversed(starts):
        if start < len(text) and text[start] == "{":
            if start in close:
                return text[start + 1:close[start]].strip() or None
            continue  # unbalanced: try an earlier box
        m = _BARE.match(text, start)
        if m:
            return m.group(0).rstrip(".")
    return None


def _norm(s: str) -> str:
    return re.sub(r"\s+|\$|\\[,;!]|\\(?:left|right)", "", s).rstrip(".")


class _Worker:
    """One persistent worker process running ``_verify_server.py``; an overrun kills it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()  # one request in flight: threads would interleave the line protocol

    def _start(self) -> None:
        script = Path(__file__).with_name("_verify_server.py")  # -P: its folder (with math.py) not on sys.path
        self.proc = subprocess.Popen([sys.executable, "-P", str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        if self._readline(120.0) != "ready":
            self.stop()
            raise RuntimeError("the math-verify worker did not start within 120 s")

    def _readline(self, timeout_s: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return self.proc.stdout.readline().strip() if ready else None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def check(self, gold: str, pred: str, timeout_s: float) -> bool:
        with self.lock:
            return self._check(gold, pred, timeout_s)

    def _check(self, gold: str, pred: str, timeout_s: float) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([gold, pred]) + "\n")
        self.proc.stdin.flush()
        answer = self._readline(timeout_s)
        if answer is not None:
            return answer == "true"
        log.warning("math-verify exceeded %.1f s on %r vs gold %r; counted wrong", timeout_s, pred[:80], gold)
        self.stop()
        return False


_WORKER = _Worker()


def math_equal(gold: str, pred: str | None, timeout_s: float | None = 5.0) -> bool:
    """Whether ``pred`` equals ``gold`` mathematically; time-bounded by ``timeout_s`` (None: inline)."""
    if pred is None:
        return False
    if _norm(gold) == _norm(pred):
        return True
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return False
    if timeout_s is None:
        return verify_pair(gold, pred)
    return _WORKER.check(gold, pred, timeout_s)


def _field(row: Mapping[str, Any], keys: tuple[str, ...], where: str, required: bool = True) -> Any:
    for k in keys:
        if k in row and row[k] is not None and str(row[k]).strip():
            return row[k]
    if required:
        raise DataError(f"{where}: none of the fields {list(keys)} is present (keys: {sorted(row)})")
    return None


class MathTask(Task):
    """A ``\\boxed{}`` math task loaded from ``hub_name`` (or a local file in the same schema)."""

    kind = "generate"
    hub_name: ClassVar[str] = ""
    hub_config: ClassVar[str | None] = None
    hub_split: ClassVar[str] = "test"
    problem_keys: ClassVar[tuple[str, ...]] = ("problem", "Problem", "question")
    answer_keys: ClassVar[tuple[str, ...]] = ("answer", "Answer")
    solution_keys: ClassVar[tuple[str, ...]] = ("solution", "Solution")
    id_keys: ClassVar[tuple[str, ...]] = ("unique_id", "id", "ID")

    def __init__(self, timeout_s: float | None = 5.0) -> None:
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"{type(self).__name__}.timeout_s must be > 0 or None, got {timeout_s}")
        self.timeout_s = timeout_s

    def format_prompt(self, doc: Doc) -> str:
        return f"{doc.prompt}\n{INSTRUCTION}"

    def extract_answer(self, completion: str) -> str | None:
        return extract_boxed(completion)

    def check(self, doc: Doc, completion: str) -> bool:
        return math_equal(doc.answer, self.extract_answer(completion), self.timeout_s)

    def row_to_doc(self, row: Mapping[str, Any], index: int, where: str) -> Doc:
        ident = _field(row, self.id_keys, where, required=False)
        solution = _field(row, self.solution_keys, where, required=False)
        meta = {k: row[k] for k in ("subject", "level", "year", "url") if k in row}
        return Doc(id=f"{self.name}-{ident if ident is not None else index}",
                   prompt=str(_field(row, self.problem_keys, where)).strip(),
                   answer=str(_field(row, self.answer_keys, where)).strip(),
                   solution=str(solution) if solution is not None else None, meta=meta)

    def rows_to_docs(self, source: str | Path | None = None) -> list[Doc]:
        """One doc per row of ``source`` (a local file, or a hub name; default ``hub_name``)."""
        src = source if source is not None else self.hub_name
        rows = load_rows(src, split=self.hub_split, config=self.hub_config)
        return [self.row_to_doc(r, i, f"{src}:row {i + 1}") for i, r in enumerate(rows)]

    def load(self, source: str | Path | None = None) -> list[Doc]:
        """Docs from ``source``; duplicate ids (pass rates and results are keyed by id) are an error."""
        docs = self.rows_to_docs(source)
        seen: dict[str, int] = {}
        for i, d in enumerate(docs):
            if d.id in seen:
                raise DataError(f"{source or self.hub_name}:row {i + 1}: duplicate id {d.id!r} (first seen on "
                                f"row {seen[d.id] + 1}); ids must be unique")
            seen[d.id] = i
        return docs


@TASKS.register("math500")
class Math500(MathTask):
    name = "math500"
    hub_name = "HuggingFaceH4/MATH-500"


@TASKS.register("aime25")
class Aime25(MathTask):
    name = "aime25"
    hub_name = "math-ai/aime25"


@TASKS.register("aime24")
class Aime24(MathTask):
    name = "aime24"
    hub_name = "Maxwell-Jia/AIME_2024"  # the lm-eval aime24 source: ID / Problem / Solution / Answer
    hub_split = "train"


_DAPO_PREFIX = re.compile(r"^\s*Solve the following math problem step by step\..*?the answer to the problem\.\s*", re.S)
_DAPO_SUFFIX = re.compile(r"\s*Remember to put your answer on its own line after \"Answer:\"\.?\s*$", re.S)


def strip_dapo_wrapper(prompt: str) -> str:
    """The bare problem of a DAPO-Math-17k prompt (its "Answer: $Answer" instructions removed)."""
    return _DAPO_SUFFIX.sub("", _DAPO_PREFIX.sub("", prompt)).strip()


def split_indices(n: int, test_size: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, test) row indices as ``datasets.Dataset.train_test_split(test_size, seed=seed)`` makes them:
    a ``numpy.random.default_rng(seed)`` permutation; the first ``ceil(test_size * n)`` rows are test."""
    import math as _math

    import numpy as np

    perm = np.random.default_rng(seed).permutation(n).tolist()
    n_test = _math.ceil(test_size * n)
    return perm[n_test:], perm[:n_test]


@TASKS.register("dapo_math")
class DapoMath(MathTask):
    """DAPO-Math-17k training prompts, de-duplicated by problem, split 80/20 with seed 42.

    Reads both the original schema (``prompt`` = chat messages, ``reward_model.ground_truth``) and
    open-r1's processed one (``prompt`` string, ``solution`` = the gold *answer*). ``split`` is
    ``train``, ``test`` or ``all``.
    """

    name = "dapo_math"
    hub_name = "open-r1/DAPO-Math-17k-Processed"
    hub_config = "all"
    hub_split = "train"

    def __init__(self, split: str = "train", test_size: float = 0.2, seed: int = 42,
                 timeout_s: float | None = 5.0) -> None:
        super().__init__(timeout_s)
        if split not in ("train", "test", "all"):
            raise ValueError(f"DapoMath.split must be 'train', 'test' or 'all', got {split!r}")
        if not 0 < test_size < 1:
            raise ValueError(f"DapoMath.test_size must be in (0, 1), got {test_size}")
        self.split, self.test_size, self.seed = split, test_size, seed

    def row_to_doc(self, row: Mapping[str, Any], index: int, where: str) -> Doc:
        prompt = _field(row, ("prompt", "problem"), where)
        if isinstance(prompt, list):  # chat messages: the user turn holds the problem
            users = [m.get("content", "") for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
            if not users:
                raise DataError(f"{where}: 'prompt' is a message list without a user message")
            prompt = users[0]
        reward = row.get("reward_model")
        answer = reward.get("ground_truth") if isinstance(reward, Mapping) else None
        if answer is None:
            answer = _field(row, ("solution", "answer"), where)
        extra = row.get("extra_info")
        ident = extra.get("index") if isinstance(extra, Mapping) else None
        return Doc(id=f"dapo-{ident if ident is not None else index}", prompt=strip_dapo_wrapper(str(prompt)),
                   answer=str(answer).strip(), meta={"data_source": row.get("data_source")})

    def load(self, source: str | Path | None = None) -> list[Doc]:
        docs, seen = [], set()
        for d in self.rows_to_docs(source):  # the raw rows repeat: de-duplicate by problem, not by id
            if d.prompt not in seen:  # the original repeats every problem ~100 times
                seen.add(d.prompt)
                docs.append(d)
        if self.split == "all":
            return docs
        train, test = split_indices(len(docs), self.test_size, self.seed)
        return [docs[i] for i in (train if self.split == "train" else test)]
