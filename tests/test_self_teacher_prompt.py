"""The self-distillation teacher's hint (the gold answer) is part of the user message inside the chat template."""

from __future__ import annotations

from paced.methods import SELF_TEACHER_TEMPLATE, get_method
from paced.tasks.base import ChatTask, Doc, get_task
from paced.trainer.teacher import student_prompt, teacher_prompt
from paced.world.tokenizer import ASCII_ALPHABET, build_char_tokenizer

DOC = Doc(id="p1", prompt="What is 1+1?", answer="2")


def _chat_task() -> ChatTask:
    return ChatTask(get_task("math500"), build_char_tokenizer(ASCII_ALPHABET, chat=True))


def test_hint_inside_the_user_message() -> None:
    task = _chat_task()
    student = student_prompt(task, DOC)
    teacher = teacher_prompt(get_method("self-paced-rkl"), task, DOC)
    bare = task.inner.format_prompt(DOC)
    head, tail = student.split(bare)  # the template's user marker before the problem, the generation prompt after
    assert head and tail
    hint = SELF_TEACHER_TEMPLATE.format(answer="2", prompt=bare)
    assert teacher == head + hint + tail  # one user turn holding hint + problem, then the assistant turn
    assert teacher.count(head) == 1 and teacher.endswith(tail)


def test_without_a_chat_template_the_hint_precedes_the_prompt() -> None:
    task = get_task("math500")
    teacher = teacher_prompt(get_method("self-paced-rkl"), task, DOC)
    assert teacher == SELF_TEACHER_TEMPLATE.format(answer="2", prompt=task.format_prompt(DOC))
    assert teacher_prompt(get_method("paced-fkl"), _chat_task(), DOC) == student_prompt(_chat_task(), DOC)
