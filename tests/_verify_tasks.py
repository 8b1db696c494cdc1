"""A task for verification-worker tests, in a module the workers import cheaply (no torch)."""

from __future__ import annotations

from paced.tasks.base import Task


class FussyTask(Task):
    """Checks like toy_arith, but fails on the problem ``bad`` (a verifier bug the job must report)."""

    name = "fussy"

    def format_prompt(self, doc):
        return doc.prompt

    def extract_answer(self, completion):
        return completion.rsplit("#", 1)[-1]

    def check(self, doc, completion):
        if doc.id == "bad":
            raise ZeroDivisionError("the checker broke")
        return self.extract_answer(completion) == doc.answer
