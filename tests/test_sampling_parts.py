"""Pass-rate and reference stages in resumable parts: resuming, discarding, parallel verification, over-long rows."""

from __future__ import annotations

import json
import logging
import random
from types import SimpleNamespace

import pytest
from _distill_world import build, toy_rows, write_jsonl
from _verify_tasks import FussyTask

from paced.io import read_json
from paced.passrate.estimate import estimate_pass_rates
from paced.passrate.files import read_passrates
from paced.passrate.state import PassRateState
from paced.references import generate_references
from paced.rollouts.base import Rollout, Sampler, SamplingParams
from paced.rollouts.in_parts import outcome_record, sample_in_parts
from paced.rollouts.part_store import PartStore, parts_dir
from paced.tasks.base import ChatTask, Doc, doc_from_row, get_task
from paced.tasks.verify import Verifier, check_all


class SeededSampler(Sampler):
    """Deterministic in (call seed, position in the call, prompt): answers correctly with probability 1/2; ``fail_on``
    (1-based) makes that call raise, as a killed job would stop."""

    def __init__(self, by_prompt: dict[str, Doc], fail_on: int | None = None):
        self.by_prompt, self.fail_on, self.calls = by_prompt, fail_on, []

    def generate(self, prompts, params):
        self.calls.append((len(prompts), params.seed))
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise RuntimeError("killed")
        out = []
        for i, p in enumerate(prompts):
            rng = random.Random(f"{params.seed}/{i}/{p}")
            answer = self.by_prompt[p].answer
            out.append([Rollout(f"0,#{answer if rng.random() < 0.5 else 'X'}", (1,)) for _ in range(params.n)])
        return out


@pytest.fixture
def docs() -> list[Doc]:
    return [doc_from_row(r, "t") for r in toy_rows(6, 2)]


def sampler(docs, fail_on=None) -> SeededSampler:
    return SeededSampler({d.prompt: d for d in docs}, fail_on)


def rates(docs, out, samp, **kw):
    return estimate_pass_rates(samp, "toy_arith", docs, out, **{"k": 4, "seed": 3, "part_size": 2, **kw})


def test_a_killed_job_resumes_from_its_parts_and_equals_an_uninterrupted_one(tmp_path, docs, caplog):
    whole = rates(docs, tmp_path / "whole" / "p.jsonl", sampler(docs))
    killed = sampler(docs, fail_on=3)
    out = tmp_path / "resumed" / "p.jsonl"
    with pytest.raises(RuntimeError, match="killed"):
        rates(docs, out, killed)
    assert not out.exists() and sorted(p.name for p in parts_dir(out).glob("part-*")) == [
        "part-00000.jsonl", "part-00001.jsonl"]  # part 2 was saved although part 3's sampling failed
    again = sampler(docs)
    with caplog.at_level(logging.INFO):
        rates(docs, out, again)
    assert "reusing 2 of 4 parts" in caplog.text and "part 4/4 done" in caplog.text
    assert again.calls == [(2, 3 + 4), (2, 3 + 6)]  # only parts 3 and 4, each seeded seed + its first problem
    assert out.read_text() == whole.read_text()
    assert len({r["num_correct"] for r in map(json.loads, out.read_text().splitlines())}) > 1
    assert not parts_dir(out).exists()


@pytest.mark.parametrize(("change", "key"), [({"k": 2}, "params.n"), ({"seed": 4}, "params.seed")])
def test_parts_of_another_k_or_seed_are_discarded(tmp_path, docs, caplog, change, key):
    out = tmp_path / "p.jsonl"
    with pytest.raises(RuntimeError, match="killed"):
        rates(docs, out, sampler(docs, fail_on=3))
    again = sampler(docs)
    with caplog.at_level(logging.INFO):
        estimate_pass_rates(again, "toy_arith", docs, out, **{"k": 4, "seed": 3, "part_size": 2, **change})
    assert f"discarding 2 finished part(s) in {parts_dir(out)}: made by a job with other {key}" in caplog.text
    assert len(again.calls) == 4 and "reusing" not in caplog.text
    assert {k for _, k in read_passrates(out).values()} == {change.get("k", 4)}


def test_a_damaged_part_is_sampled_again_and_a_finished_job_loads_no_sampler(tmp_path, docs):
    task = get_task("toy_arith")
    params = SamplingParams(n=3, seed=1)
    store = PartStore.open(tmp_path / "o.jsonl", {"job": 1})
    first = sampler(docs)
    records = sample_in_parts(lambda: first, task, docs, params, store, part_size=3, record=outcome_record)
    assert len(first.calls) == 3 and [r["id"] for r in records] == [d.id for d in docs]

    def no_sampler():
        raise AssertionError("every part is done: no sampler may be built")
    assert sample_in_parts(no_sampler, task, docs, params, store, part_size=3, record=outcome_record) == records
    store.path(1).write_text(store.path(1).read_text()[:40])  # a torn file (not by our atomic writer)
    again = sampler(docs)
    assert sample_in_parts(lambda: again, task, docs, params, store, part_size=3, record=outcome_record) == records
    assert again.calls == [(3, 1 + 3)]


def test_parallel_verification_equals_serial(tmp_path, docs):
    task = get_task("toy_arith")
    rng = random.Random(0)
    texts = [[f"1,#{d.answer if rng.random() < 0.5 else d.answer + '0'}" for _ in range(5)] for d in docs]
    serial = check_all(task, docs, texts)
    with Verifier(task, workers=2) as verifier:
        assert verifier.workers == 2
        parallel = verifier.verify(docs, texts)
        assert verifier.submit(docs[:3], texts[:3])() == serial[:3]
    assert parallel == serial and any(map(any, serial)) and not all(map(all, serial))
    one = rates(docs, tmp_path / "1" / "p.jsonl", sampler(docs), workers=1)
    two = rates(docs, tmp_path / "2" / "p.jsonl", sampler(docs), workers=2)
    assert one.read_text() == two.read_text()


def test_a_chat_task_is_verified_by_the_task_it_wraps(docs):
    from paced.world.tokenizer import ASCII_ALPHABET, build_char_tokenizer

    chat = ChatTask(get_task("toy_arith"), build_char_tokenizer(ASCII_ALPHABET, chat=True))
    texts = [[f"#{d.answer}", "#no"] for d in docs]
    with Verifier(chat, workers=2) as verifier:
        assert verifier.verify(docs, texts) == [[True, False]] * len(docs)


def test_a_failing_check_in_a_worker_is_reported():
    bad = [Doc("ok", "1", "1"), Doc("bad", "2", "2")]
    with Verifier(FussyTask(), workers=2) as verifier, pytest.raises(RuntimeError, match="the checker broke"):
        verifier.verify(bad, [["#1"], ["#2"]])


def _long_world(tmp_path):
    world = build(tmp_path)  # tiny models of 128 positions, one character per token
    rows = toy_rows(3, 1)
    rows.insert(2, {"id": "long", "prompt": "1+" * 80, "answer": "1", "tier": "learnable"})
    return world, write_jsonl(tmp_path / "long.jsonl", rows), rows


def test_an_overlong_row_is_refused_naming_file_line_and_id(tmp_path):
    world, data, _ = _long_world(tmp_path)
    out = tmp_path / "p.jsonl"
    with pytest.raises(ValueError, match=r"long\.jsonl:3 \(id 'long'\): the prompt has 160 tokens"):
        estimate_pass_rates(world["student"], "toy_arith", data, out, k=2, max_new_tokens=4)
    with pytest.raises(ValueError, match=r"long\.jsonl:3 \(id 'long'\)"):
        generate_references(world["teacher"], "toy_arith", data, tmp_path / "r.jsonl", max_new_tokens=4)
    assert not parts_dir(out).exists()  # refused before any sampling
    with pytest.raises(ValueError, match=r"every one of the 5 prompts \+ max_new_tokens=127 exceeds the context"):
        estimate_pass_rates(world["student"], "toy_arith", data, out, k=2, max_new_tokens=127, overlong="skip")
    assert not out.exists() and not parts_dir(out).exists()  # skipping everything samples nothing: refused


def test_a_skipped_overlong_row_is_counted_and_left_out_of_training(tmp_path, caplog):
    from paced.trainer.refresh import initial_state

    world, data, rows = _long_world(tmp_path)
    out = tmp_path / "p.jsonl"
    with caplog.at_level(logging.WARNING):
        estimate_pass_rates(world["student"], "toy_arith", data, out, k=2, max_new_tokens=4, overlong="skip",
                            sampler_kwargs={"batch_size": 4})
    assert "skipped 1 of 5 rows" in caplog.text and "(first: long)" in caplog.text
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in written] == [r["id"] for r in rows]  # every problem, in data order
    assert [r for r in written if r.get("overlong")] == [
        {"id": "long", "num_correct": 0, "k": 2, "p_hat": 0.0, "tier": "learnable", "overlong": True}]
    summary = read_json(tmp_path / "summary.json")
    assert summary["n"] == 4 and summary["n_overlong"] == 1 and summary["overlong_ids"] == ["long"]
    assert sum(summary["histogram"]["all"].values()) == 4
    docs = get_task("toy_arith").load(data)
    # the trainer never trains on it: a pass-rate-weighted run's pool leaves flagged rows out, and every other
    # problem gets its pass rate
    from paced.trainer.loop import without_overlong

    weighted, unweighted = SimpleNamespace(uses_pass_rates=True), SimpleNamespace(uses_pass_rates=False)
    with caplog.at_level(logging.WARNING):
        pool = without_overlong(docs, SimpleNamespace(passrates=str(out)), weighted)
    assert [d.id for d in pool] == [r["id"] for r in rows if r["id"] != "long"]
    assert "1 of 5 training problems are left out" in caplog.text
    assert without_overlong(docs, SimpleNamespace(passrates=None), unweighted) == docs
    ctx = SimpleNamespace(state=PassRateState())
    initial_state(ctx, SimpleNamespace(passrates=str(out), data=data), weighted, pool)
    assert ctx.state.has([d.id for d in pool]) and not ctx.state.has(["long"])
    with pytest.raises(ValueError, match="no pass rate for 1 training problem"):  # the whole file's pool: refused
        initial_state(SimpleNamespace(state=PassRateState()), SimpleNamespace(passrates=str(out), data=data),
                      weighted, docs)

    refs = generate_references(world["teacher"], "toy_arith", data, tmp_path / "r.jsonl", max_new_tokens=4,
                               overlong="skip")
    assert [json.loads(line)["id"] for line in refs.read_text().splitlines()] == [
        r["id"] for r in rows if r["id"] != "long"]
    assert read_json(tmp_path / "references_summary.json")["n_overlong"] == 1


def test_hf_parts_at_batch_multiples_sample_as_one_call(tmp_path):
    world = build(tmp_path)  # a random model: its pass rates are all 0, its sampled texts are what to compare
    kw = {"attempts": 2, "max_new_tokens": 6, "seed": 5, "sampler_kwargs": {"batch_size": 2}}
    one = generate_references(world["teacher"], "toy_arith", world["data"], tmp_path / "1" / "r.jsonl",
                              part_size=64, **kw)
    parts = generate_references(world["teacher"], "toy_arith", world["data"], tmp_path / "2" / "r.jsonl",
                                part_size=4, **kw)
    texts = [json.loads(line)["reference"] for line in parts.read_text().splitlines()]
    assert parts.read_text() == one.read_text() and len(set(texts)) == len(texts) == 8


def test_the_workflow_resume_key_leaves_out_run_time_engine_settings():
    from paced.pipeline.common import with_runtime, without_runtime

    p = {"model": "m", "vllm": {"dtype": "bfloat16", "max_model_len": 4096}}
    low = with_runtime(p, {"vllm": {"gpu_memory_utilization": 0.5, "max_model_len": 4096}})
    high = with_runtime(p, {"vllm": {"gpu_memory_utilization": 0.9, "max_model_len": 4096}})
    assert low != high and without_runtime(low) == without_runtime(high) == p
    assert without_runtime({"model": "m", "vllm": None}) == {"model": "m", "vllm": None}


def test_the_stages_pass_part_size_overlong_and_workers(tmp_path, caplog):
    from paced.pipeline import passrates, references

    world, data, _ = _long_world(tmp_path)
    sampling = {"backend": "hf", "max_new_tokens": 4, "temperature": 1.0, "batch_size": 2, "top_p": 1.0, "top_k": 0,
                "min_p": 0.0, "presence_penalty": 0.0, "part_size": 2, "overlong": "skip"}
    common = {"task": "toy_arith", "data": data, "sampling": sampling, "seed": 0, "device": "cpu", "vllm": None,
              "models": {"dtype": "float32", "trust_remote_code": False, "chat_template": False}}
    with caplog.at_level(logging.INFO):
        passrates.run({**common, "model": world["student"], "k": 2, "smoothing": "none"},
                      str(tmp_path / "p.jsonl"), str(tmp_path / "s.json"), workers=2)
        references.run({**common, "teacher": world["teacher"], "references": {
            "source": "teacher", "attempts": 2, "verified_only": False}}, str(tmp_path / "r.jsonl"),
            str(tmp_path / "rs.json"), workers=2)
    assert caplog.text.count("part 2/2 done") == 2 and "verifying on 2 worker processes" in caplog.text
    assert read_json(tmp_path / "s.json")["n_overlong"] == read_json(tmp_path / "rs.json")["n_overlong"] == 1
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize("policy", ["refuse", "skip"])
def test_the_config_keys_reach_the_stage_params(policy):
    from test_ablations import snakemake_config

    from paced.pipeline import evaluate, passrates, references
    from paced.pipeline.suite import resolve_suite

    def suite(cpus):
        return resolve_suite(snakemake_config({"sampling": {"part_size": 64, "overlong": policy},
                                               "resources": {"cpus_sample": cpus}}))

    six, one = suite(6), suite(1)
    for stage in (lambda s: passrates.params(s, s.student), references.params):
        p = stage(six)
        assert (p["sampling"]["part_size"], p["sampling"]["overlong"]) == (64, policy)  # the job's identity
        assert p == stage(one)  # not the verification processes: the verdicts do not depend on them
    assert evaluate.params(six, "base", 0, [0])["eval"]["overlong"] == policy


@pytest.mark.parametrize(("kw", "match"), [({"part_size": 0}, "part_size must be an int >= 1"),
                                           ({"workers": 0}, "workers must be an int >= 1")])
def test_a_bad_part_size_or_worker_count_fails_before_any_work(tmp_path, docs, kw, match):
    out = tmp_path / "p.jsonl"
    with pytest.raises(ValueError, match=match):
        estimate_pass_rates(sampler(docs), "toy_arith", docs, out, k=2, **kw)
    assert not parts_dir(out).exists()


def test_verification_workers_import_no_model_code():
    import subprocess
    import sys

    code = ("import sys, paced.tasks, paced.tasks.verify, paced.tasks._verify_worker; "
            "print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_rerun_that_fails_before_sampling_leaves_the_finished_parts_alone(tmp_path, docs, caplog):
    """Another job's parts are discarded only when the new job saves its first part: a rerun of another job (here
    another seed) that fails before it samples anything keeps them, and the first job then resumes from them."""
    out = tmp_path / "p.jsonl"
    with pytest.raises(RuntimeError, match="killed"):
        rates(docs, out, sampler(docs, fail_on=3))
    before = sorted(p.name for p in parts_dir(out).iterdir())
    with pytest.raises(RuntimeError, match="killed"):  # e.g. a device that fails on the first generate call
        rates(docs, out, sampler(docs, fail_on=1), seed=9)
    assert sorted(p.name for p in parts_dir(out).iterdir()) == before  # nothing discarded, nothing added
    again = sampler(docs)
    with caplog.at_level(logging.INFO):
        rates(docs, out, again)
    assert "reusing 2 of 4 parts" in caplog.text and len(again.calls) == 2


def test_a_hand_edited_part_is_refused_or_sampled_again(tmp_path, docs):
    out = tmp_path / "p.jsonl"
    with pytest.raises(RuntimeError, match="killed"):
        rates(docs, out, sampler(docs, fail_on=3))
    part = parts_dir(out) / "part-00000.jsonl"
    header, first, *rest = part.read_text().splitlines()
    part.write_text("\n".join([header, json.dumps({**json.loads(first), "outcomes": [1] * 50}), *rest]) + "\n")
    with pytest.raises(ValueError, match=r"hold \[1, 1, .* not k=4 0/1 values; delete .*p\.jsonl\.parts"):
        rates(docs, out, sampler(docs))
    part.write_text("\n".join([header, "[1, 2]", *rest]) + "\n")  # a record that is no object: sampled again
    again = sampler(docs)
    rates(docs, out, again)
    assert len(again.calls) == 1  # only part 1 again (the refused run had saved parts 3-4)
