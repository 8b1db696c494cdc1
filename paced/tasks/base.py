"""The task protocol: documents, prompts and verifiers.

A task turns rows (a jsonl file or a hub data set) into :class:`Doc` objects, formats the
prompt a model sees, and verifies a completion with :meth:`Task.check`. There is one copy of
answer extraction per task family; the trainer, the pass-rate stage and the lm-eval tasks
all call the same :meth:`Task.check`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from paced.registry import Registry


class DataError(ValueError):
    """A malformed data file or row; the message names the file and the line."""


@dataclass(frozen=True)
class Doc:
    """One problem.

    ``answer`` is the gold final answer (for multiple choice: the text of the correct choice);
    ``solution`` an optional gold worked solution; ``meta`` free-form labels such as ``tier``.
    """

    id: str
    prompt: str
    answer: str
    choices: tuple[str, ...] | None = None
    solution: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tier(self) -> str | None:
        return self.meta.get("tier")

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "prompt": self.prompt, "answer": self.answer}
        if self.choices is not None:
            row["choices"] = list(self.choices)
        if self.solution is not None:
            row["solution"] = self.solution
        row.update(self.meta)
        return row


_DOC_KEYS = {"id", "prompt", "answer", "choices", "solution"}


def doc_from_row(row: Mapping[str, Any], where: str) -> Doc:
    """Build a :class:`Doc` from a jsonl row; ``where`` (``file:line``) is named in errors."""
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in ("id", "prompt", "answer"):
        if key not in row:
            raise DataError(f"{where}: missing required field {key!r} (a row needs id, prompt, answer)")
        if not isinstance(row[key], (str, int)) or (isinstance(row[key], str) and not row[key].strip()):
            raise DataError(f"{where}: field {key!r} must be a non-empty string, got {row[key]!r}")
    choices = row.get("choices")
    if choices is not None:
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: 'choices' must be a list of at least two strings, got {choices!r}")
        if str(row["answer"]) not in choices:
            raise DataError(f"{where}: answer {row['answer']!r} is not one of the choices {choices!r}")
    meta = {k: v for k, v in row.items() if k not in _DOC_KEYS}
    return Doc(id=str(row["id"]), prompt=str(row["prompt"]), answer=str(row["answer"]),
               choices=tuple(choices) if choices is not None else None,
               solution=row.get("solution"), meta=meta)


def load_jsonl(path: str | Path) -> list[Doc]:
    """Read and validate a jsonl file of docs: missing fields, bad JSON, non-UTF-8 text, an
    empty file and duplicate ids all raise :class:`DataError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist; build the world first or fix the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 (byte {err.start}); re-encode the file as UTF-8") from err
    docs: list[Doc] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: invalid JSON ({err.msg})") from err
        doc = doc_from_row(row, where)
        if doc.id in seen:
            raise DataError(f"{where}: duplicate id {doc.id!r} (first seen on line {seen[doc.id]})")
        seen[doc.id] = lineno
        docs.append(doc)
    if not docs:
        raise DataError(f"{path}: the file holds no rows")
    return docs


class Task(ABC):
    """A verifiable task. Subclasses set ``name`` and ``kind`` and implement the abstract methods."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "generate"  # "generate" or "multiple_choice"

    @abstractmethod
    def format_prompt(self, doc: Doc) -> str:
        """The exact text the model is conditioned on (chat template applied where relevant)."""

    @abstractmethod
    def extract_answer(self, completion: str) -> str | None:
        """The final answer in a completion, or ``None`` if it gives none."""

    @abstractmethod
    def check(self, doc: Doc, completion: str) -> bool:
        """Whether ``completion`` answers ``doc`` correctly."""

    def reference(self, doc: Doc) -> str | None:
        """A gold worked solution the teacher could be forced on, if the data carries one."""
        return doc.solution

    def load(self, source: str | Path) -> list[Doc]:
        """Load docs from a local jsonl path (hub-backed tasks override this)."""
        return load_jsonl(source)

    def check_many(self, docs: Sequence[Doc], completions: Iterable[Sequence[str]]) -> list[list[bool]]:
        """``completions[i]`` are the samples for ``docs[i]``; returns correctness per sample."""
        return [[self.check(d, c) for c in comps] for d, comps in zip(docs, completions, strict=True)]


class ChatTask(Task):
    """A task whose prompts go through a tokenizer's chat template (one user turn + generation prompt).

    Everything but :meth:`format_prompt` is delegated to the wrapped task, so answer checking stays in
    one place; every consumer (sampler, trainer, lm-eval tasks, SNR) sees the templated prompt.
    """

    def __init__(self, inner: Task, tokenizer: Any, enable_thinking: bool | None = None) -> None:
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(f"models.chat_template is on, but the tokenizer of {tokenizer.name_or_path!r} has no "
                             f"chat template; set models.chat_template: false or use a chat model's tokenizer")
        self.inner, self.tokenizer = inner, tokenizer
        # Qwen3's template reads enable_thinking (default on); None leaves the template's default
        self.template_kwargs = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
        self.name, self.kind = inner.name, inner.kind  # type: ignore[misc]

    def format_prompt(self, doc: Doc) -> str:
        return self.user_turn(self.inner.format_prompt(doc))

    def user_turn(self, content: str) -> str:
        """``content`` as the one user message of the chat template, with the generation prompt after it."""
        messages = [{"role": "user", "content": content}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  **self.template_kwargs)

    def extract_answer(self, completion: str) -> str | None:
        return self.inner.extract_answer(completion)

    def check(self, doc: Doc, completion: str) -> bool:
        return self.inner.check(doc, completion)

    def reference(self, doc: Doc) -> str | None:
        return self.inner.reference(doc)

    def load(self, source: str | Path) -> list[Doc]:
        return self.inner.load(source)

    def __getattr__(self, key: str) -> Any:  # task-specific hooks (mc_continuations, target_delimiter, ...)
        return getattr(self.__dict__["inner"], key)


TASKS: Registry[type[Task]] = Registry("task")


def get_task(name: str, *, chat_tokenizer: str | None = None, enable_thinking: bool | None = None,
             **kwargs: Any) -> Task:
    """Instantiate a registered task by name (``ValueError`` with suggestions if unknown).

    ``chat_tokenizer`` (a tokenizer path or hub id) wraps the task in :class:`ChatTask`; ``enable_thinking``
    is passed to its chat template (``None``: the template's default).
    """
    import paced.tasks  # noqa: F401  -- importing the package registers the built-in tasks

    task = TASKS.get(name)(**kwargs)
    if chat_tokenizer is None:
        if enable_thinking is not None:
            raise ValueError(f"enable_thinking={enable_thinking} needs a chat template: set models.chat_template: "
                             "true (or leave enable_thinking unset)")
        return task
    from transformers import AutoTokenizer

    return ChatTask(task, AutoTokenizer.from_pretrained(chat_tokenizer), enable_thinking=enable_thinking)
