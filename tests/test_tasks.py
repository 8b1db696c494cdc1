"""Tasks: registry, toy verifiers, boxed extraction, math-verify grading, real-task loaders on fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paced.tasks import TASKS, DataError, Doc, get_task
from paced.tasks.math import extract_boxed, math_equal, split_indices, strip_dapo_wrapper
from paced.tasks.rows import load_rows

FIX = Path(__file__).parent / "fixtures"


def test_registry_has_all_tasks_and_suggests_on_typo():
    assert set(TASKS.names()) >= {"toy_arith", "toy_probe", "dapo_math", "aime25", "aime24", "math500", "mmlu"}
    with pytest.raises(ValueError, match=r"Did you mean 'toy_arith'.*Available:"):
        get_task("toy_arth")


@pytest.mark.parametrize("completion, ok", [
    ("D,5,B,2,7,A,8,4,#4", True), ("#4", True), ("D,5,#4 ", True), ("D,5,#3", False),
    ("D,5,B,2", False), ("#44", False), ("#4#5", False), ("", False),
])
def test_toy_arith_check_reads_text_after_last_hash(completion, ok):
    doc = Doc(id="x", prompt="@D+8*F-9-B*6*4-4..=", answer="4")
    assert get_task("toy_arith").check(doc, completion) is ok


def test_toy_probe_is_multiple_choice_and_checks_first_letter(tmp_path):
    task = get_task("toy_probe")
    assert task.kind == "multiple_choice"
    doc = Doc(id="f", prompt="!abc=", answer="q", choices=("a", "q", "z", "m"))
    assert task.check(doc, "q") and task.check(doc, " q\n") and not task.check(doc, "a") and not task.check(doc, "")
    bad = tmp_path / "probe.jsonl"
    bad.write_text(json.dumps({"id": "1", "prompt": "!abc=", "answer": "q"}) + "\n")
    with pytest.raises(DataError, match="no 'choices'"):
        task.load(bad)


def test_toy_arith_tier_filter_and_malformed_row_names_file_and_line(tmp_path):
    rows = [{"id": "a", "prompt": "@1+1..=", "answer": "2", "tier": "learnable"},
            {"id": "b", "prompt": "$1+1..=", "answer": "2", "tier": "intractable"}]
    good = tmp_path / "t.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    docs = get_task("toy_arith", tiers=["intractable"]).load(good)
    assert [d.id for d in docs] == ["b"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + '{"id": "c", "prompt": "@1"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: missing required field 'answer'"):
        get_task("toy_arith").load(bad)


@pytest.mark.parametrize("text, want", [
    ("so \\boxed{3} and finally \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{{a}+{b}}", "{a}+{b}"),
    ("answer: \\boxed 5.", "5"),
    ("\\fbox{7}", "7"),
    ("no box here", None),
    ("\\boxed{3} then \\boxed{unclosed", "3"),
])
def test_extract_boxed_last_box_wins(text, want):
    assert extract_boxed(text) == want


@pytest.mark.parametrize("gold, pred, ok", [
    ("\\frac{1}{2}", "0.5", True), ("34", "034", True), ("3", "4", False), ("12", None, False),
    ("x^2+1", "1+x^2", True), ("2", "9" * 400, False),
])
def test_math_equal_inline(gold, pred, ok):
    assert math_equal(gold, pred, timeout_s=None) is ok


def test_math_equal_worker_and_timeout_kills_worker():
    from paced.tasks.math import _WORKER

    assert math_equal("\\frac{1}{2}", "\\frac{2}{4}", timeout_s=60.0) is True
    assert _WORKER.proc is not None and _WORKER.proc.poll() is None
    # a check that cannot finish within the bound is counted wrong and the worker is killed
    assert math_equal("\\frac{1}{3}", "\\frac{2}{6}", timeout_s=1e-9) is False
    assert _WORKER.proc is None


def test_math500_aime_loaders_read_the_real_schemas():
    m5 = get_task("math500", timeout_s=None)
    docs = m5.load(FIX / "math500.jsonl")
    assert [d.answer for d in docs] == ["\\frac{1}{2}", "2", "4"]
    assert docs[0].solution and docs[0].meta["subject"] == "Algebra"
    prompt = m5.format_prompt(docs[0])
    assert prompt.startswith("Simplify") and prompt.endswith("within \\boxed{}.")
    assert m5.check(docs[0], "... so \\boxed{0.5}") and not m5.check(docs[0], "\\boxed{2} no \\boxed{3}")
    a25 = get_task("aime25").load(FIX / "aime25.jsonl")
    assert len(a25) == 3 and a25[1].answer == "51" and a25[1].id == "aime25-1"
    aime24 = get_task("aime24", timeout_s=None)
    a24 = aime24.load(FIX / "aime24.jsonl")
    assert a24[1].id == "aime24-2024-I-2" and aime24.check(a24[1], "\\boxed{33}")  # gold "033"


def test_math_loader_missing_field_names_the_row(tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n" + json.dumps({"problem": "2+2?"}) + "\n")
    with pytest.raises(DataError, match=r"m\.jsonl:row 2: none of the fields \['answer', 'Answer'\]"):
        get_task("math500").load(bad)


def test_dapo_both_schemas_dedup_and_80_20_split():
    orig = get_task("dapo_math", split="all").load(FIX / "dapo_math_17k.jsonl")
    proc = get_task("dapo_math", split="all").load(FIX / "dapo_math_processed.jsonl")
    assert len(orig) == 5  # every problem appears twice in the fixture
    assert [(d.prompt, d.answer) for d in orig] == [(d.prompt, d.answer) for d in proc]
    assert orig[0].prompt == "What is $3+4$?" and orig[0].answer == "7" and orig[0].id == "dapo-uuid-0"
    train = get_task("dapo_math").load(FIX / "dapo_math_17k.jsonl")
    test = get_task("dapo_math", split="test").load(FIX / "dapo_math_17k.jsonl")
    assert len(train) == 4 and len(test) == 1
    assert {d.id for d in train} | {d.id for d in test} == {d.id for d in orig}


def test_split_indices_match_datasets_train_test_split():
    from datasets import Dataset

    ds = Dataset.from_dict({"i": list(range(53))}).train_test_split(test_size=0.2, seed=42)
    train, test = split_indices(53, 0.2, 42)
    assert train == ds["train"]["i"] and test == ds["test"]["i"]


def test_strip_dapo_wrapper_keeps_plain_problems():
    assert strip_dapo_wrapper("Find $x$.") == "Find $x$."


def test_mmlu_loader_maps_index_to_choice_text():
    task = get_task("mmlu")
    docs = task.load(FIX / "mmlu.jsonl")
    assert docs[0].answer == "4" and docs[0].choices == ("3", "4", "5", "6") and docs[1].answer == "Mercury"
    assert task.kind == "multiple_choice"
    assert task.format_prompt(docs[0]).endswith("C. 5\nD. 6\nAnswer:")
    assert task.check(docs[0], " B") and not task.check(docs[0], "A") and not task.check(docs[0], "none")
    assert [d.id for d in get_task("mmlu", subjects=["astronomy"]).load(FIX / "mmlu.jsonl")] == ["mmlu-astronomy-1"]


def test_hub_name_offline_fails_fast_naming_the_dataset(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"'no-such-org/no-such-data'.*local file.*HF cache"):
        load_rows("no-such-org/no-such-data", split="test")


def test_local_path_missing_or_malformed(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        get_task("aime25").load(tmp_path / "nope.jsonl")
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"problem": "x", "answer": "1"}\n{not json\n')
    with pytest.raises(DataError, match=r"broken\.jsonl"):
        get_task("aime25").load(bad)


def test_mmlu_scores_letters_after_a_space():
    from paced.evaluation.prepare import mc_continuations
    from paced.tasks import get_task

    task = get_task("mmlu")
    doc = task.row_to_doc({"question": "2+2?", "choices": ["3", "4", "5", "6"], "answer": 1, "subject": "m"}, 0, "t")
    assert mc_continuations(task, doc) == ["A", "B", "C", "D"]
    assert task.target_delimiter == " "
    assert task.format_prompt(doc).endswith("Answer:")
    assert task.check(doc, " B") and not task.check(doc, " A")


def test_chat_task_templates_prompts_and_delegates_checking(tmp_path):
    from paced.tasks import get_task
    from paced.world.tokenizer import ASCII_ALPHABET, save_char_tokenizer

    save_char_tokenizer(tmp_path, ASCII_ALPHABET, chat=True)
    plain, chat = get_task("math500"), get_task("math500", chat_tokenizer=str(tmp_path))
    doc = plain.load("tests/fixtures/math500.jsonl")[0]
    assert chat.format_prompt(doc) == f"<|im_start|>user\n{plain.format_prompt(doc)}<|im_end|>\n<|im_start|>assistant\n"
    good = f"so \\boxed{{{doc.answer}}}"
    assert chat.check(doc, good) and plain.check(doc, good)
    assert not chat.check(doc, "\\boxed{definitely wrong}")
    assert chat.name == "math500" and chat.kind == "generate"


def test_chat_task_needs_a_chat_template(tmp_path):
    import pytest

    from paced.tasks import get_task
    from paced.world.tokenizer import save_char_tokenizer

    save_char_tokenizer(tmp_path)  # no chat template
    with pytest.raises(ValueError, match="no chat template"):
        get_task("toy_arith", chat_tokenizer=str(tmp_path))
