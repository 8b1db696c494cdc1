"""A sampling job on several replica processes: each samples its share of the parts, the output equals one
process's (HF), a failed replica is named and its partners' parts are reused, the stages size the replicas."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
from _distill_world import build

from paced.failures import is_infrastructure
from paced.references import generate_references
from paced.rollouts.part_store import parts_dir
from paced.rollouts.replicas import ReplicaFailed, device_groups, replica_kwargs, split_job, task_spec

# 8 problems in 4 parts of 2; batch_size 2: the HF seeds of each part are those one call gives it
KW = {"attempts": 2, "max_new_tokens": 6, "seed": 5, "part_size": 2, "sampler_kwargs": {"batch_size": 2}}


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the replicas sample on one thread, as this process does
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    return build(tmp_path)


@pytest.fixture
def job_log(tmp_path):
    """A log file on the root logger, as a workflow job has (the replicas' lines are appended to it)."""
    path = tmp_path / "job.log"
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    root = logging.getLogger()
    level = root.level
    root.handlers.insert(0, handler)  # before pytest's own (a FileHandler on /dev/null): the one the job finds
    root.setLevel(logging.INFO)
    yield path
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


def parts_done_by(log_text: str) -> dict[str, list[int]]:
    """{"replica r of n": [parts it finished]} from a job log."""
    out: dict[str, list[int]] = {}
    for who, part in re.findall(r"(replica \d of \d) paced\.rollouts\.in_parts: part (\d)/4 done", log_text):
        out.setdefault(who, []).append(int(part))
    return out


def test_replicas_sample_their_own_parts_and_equal_one_process_on_hf(tmp_path, world, job_log):
    one = generate_references(world["teacher"], "toy_arith", world["data"], tmp_path / "1" / "r.jsonl", **KW)
    out = tmp_path / "2" / "r.jsonl"
    two = generate_references(world["teacher"], "toy_arith", world["data"], out, replicas=2, **KW)
    log_text = job_log.read_text()
    assert parts_done_by(log_text) == {"replica 0 of 2": [1, 3], "replica 1 of 2": [2, 4]}
    assert "reusing 4 of 4 parts" in log_text and "sampling on 2 replicas" in log_text
    assert two.read_text() == one.read_text() and len(set(two.read_text().splitlines())) == 8
    assert not parts_dir(out).exists()  # the spec went with the parts


def test_a_failed_replica_is_named_and_a_rerun_on_one_process_reuses_the_others_parts(tmp_path, world, job_log,
                                                                                      monkeypatch, caplog):
    hook = tmp_path / "hook"  # a replica on the "broken" device dies at start-up, as on a bad GPU
    hook.mkdir()
    (hook / "sitecustomize.py").write_text('import os\nif os.environ.get("CUDA_VISIBLE_DEVICES") == "broken":\n'
                                           '    os._exit(7)\n')
    monkeypatch.syspath_prepend(str(hook))  # the replicas import what this process does
    out = tmp_path / "r.jsonl"
    with pytest.raises(ReplicaFailed, match=r"replica 1 of 2 \(CUDA_VISIBLE_DEVICES=broken\) exited with code 7"
                       ) as err:
        generate_references(world["teacher"], "toy_arith", world["data"], out, replicas=2,
                            replica_devices=["0", "broken"], **KW)
    assert is_infrastructure(err.value)  # the job fails (and is retried); no cell record
    assert sorted(p.name for p in parts_dir(out).glob("part-*")) == ["part-00000.jsonl", "part-00002.jsonl"]
    assert parts_done_by(job_log.read_text()) == {"replica 0 of 2": [1, 3]}
    with caplog.at_level(logging.INFO):
        generate_references(world["teacher"], "toy_arith", world["data"], out, **KW)
    assert "reusing 2 of 4 parts" in caplog.text and "2 parts to sample" in caplog.text
    whole = generate_references(world["teacher"], "toy_arith", world["data"], tmp_path / "w" / "r.jsonl", **KW)
    assert out.read_text() == whole.read_text()


def test_replicas_need_a_model_path_and_a_registered_task(tmp_path, world):
    from _verify_tasks import FussyTask

    from paced.rollouts.hf import HFSampler
    from paced.tasks import get_task

    with pytest.raises(ValueError, match="replicas=2 needs a checkpoint path"):
        generate_references(HFSampler(world["teacher"]), "toy_arith", world["data"], tmp_path / "r.jsonl",
                            replicas=2)
    with pytest.raises(ValueError, match=r"'fussy' .* is not a registered task"):
        task_spec(FussyTask())
    assert task_spec(get_task("toy_arith")) == {"name": "toy_arith"}
    assert not parts_dir(tmp_path / "r.jsonl").exists()


def test_a_replica_that_rebuilds_another_job_refuses_to_sample(tmp_path, world):
    from paced.io import write_json
    from paced.rollouts.base import SamplingParams
    from paced.rollouts.part_store import PartStore
    from paced.rollouts.sampling_job import job_identity, run_replica
    from paced.tasks import get_task

    task = get_task("toy_arith")
    docs = task.load(world["data"])
    params = SamplingParams(n=2, max_new_tokens=4, seed=1)
    out = tmp_path / "r.jsonl"
    store = PartStore.open(out, job_identity("references", world["teacher"], task, docs, params, 2, "hf", {}))
    store.claim()  # as the parent does before it starts replicas
    spec = {"stage": "references", "model": world["teacher"], "task": {"name": "toy_arith"},
            "docs": [d.to_row() for d in docs], "params": {**params.__dict__, "seed": 2}, "record": "first_correct",
            "sampler": "hf", "sampler_kwargs": {}, "part_size": 2, "workers": 1, "resume_key": {},
            "out_path": str(out), "digest": store.digest, "parts": [0, 1, 2, 3]}
    write_json(tmp_path / "spec.json", spec)
    with pytest.raises(ValueError, match=r"replica 1 of 2: the job it rebuilt .* differs from the parent's in "
                                         r"params\.seed; sample with replicas=1"):
        run_replica(tmp_path / "spec.json", 1, 2)
    assert not list(parts_dir(out).glob("part-*"))
    spec["params"]["seed"] = 1  # the same job: it samples parts 2 and 4
    write_json(tmp_path / "spec.json", spec)
    run_replica(tmp_path / "spec.json", 1, 2)
    assert sorted(p.name for p in parts_dir(out).glob("part-*")) == ["part-00001.jsonl", "part-00003.jsonl"]


def test_device_groups_seeds_and_the_split_of_gpus_and_workers():
    assert device_groups(2, visible="4,5,6,7") == ["4,5", "6,7"]
    assert device_groups(3, visible="0,1,2,3") == ["0", "1", "2"]  # the rest unused
    assert device_groups(2, visible="") == [None, None]  # CPU: left as it is
    assert device_groups(2, ["3", "1"]) == ["3", "1"]
    with pytest.raises(ValueError, match="3 sampling replicas need at least 3 GPUs"):
        device_groups(3, visible="0,1")
    with pytest.raises(ValueError, match="replica_devices has 1 entries for 2 replicas"):
        device_groups(2, ["0"])
    with pytest.raises(ValueError, match="is one string; give a list with one CUDA_VISIBLE_DEVICES value per replica"):
        device_groups(3, "0,1")
    with pytest.raises(ValueError, match="gives a device to more than one replica"):
        device_groups(2, ["0,1", "1"])
    with pytest.raises(ValueError, match="has an empty entry"):
        device_groups(2, ["0", ""])
    with pytest.raises(ValueError, match="replicas must be an int >= 1"):
        device_groups(0)
    assert replica_kwargs({"seed": 3, "dtype": "bfloat16"}, 2) == {"seed": 5, "dtype": "bfloat16"}
    assert replica_kwargs({"batch_size": 4}, 1) == {"batch_size": 4}  # HF: seeded per part, not per replica
    vllm = {"config": {"tensor_parallel_size": 2}, "seed": 0}
    assert split_job(8, 16, vllm) == (4, 4) and split_job(3, 16, vllm) == (1, 16)
    assert split_job(4, 6, {"batch_size": 2}) == (4, 1) and split_job(0, 6, {"batch_size": 2}) == (1, 6)


@pytest.mark.parametrize(("backend", "gpus", "replicas", "workers"), [("vllm", 4, 2, 4), ("hf", 2, 2, 4),
                                                                      ("hf", 0, 1, 8)])
def test_the_stages_run_one_replica_per_gpu_group(monkeypatch, backend, gpus, replicas, workers):
    import paced.passrate.estimate
    import paced.references
    from paced.pipeline import passrates, references

    seen = []
    monkeypatch.setattr(paced.passrate.estimate, "estimate_pass_rates", lambda *a, **kw: seen.append(kw))
    monkeypatch.setattr(paced.references, "generate_references", lambda *a, **kw: seen.append(kw))
    sampling = {"backend": backend, "max_new_tokens": 4, "temperature": 1.0, "batch_size": 2, "part_size": 2,
                "overlong": "skip"}
    common = {"task": "toy_arith", "data": "d.jsonl", "sampling": sampling, "seed": 0,
              "device": "cuda" if gpus else "cpu", "vllm": {"tensor_parallel_size": 2} if backend == "vllm" else None,
              "models": {"dtype": "float32", "trust_remote_code": False, "chat_template": False}}
    passrates.run({**common, "model": "m", "k": 2, "smoothing": "none"}, "p.jsonl", "s.json", workers=8, gpus=gpus)
    references.run({**common, "teacher": "t", "references": {"source": "teacher", "attempts": 2,
                                                             "verified_only": False}}, "r.jsonl", "rs.json",
                   workers=8, gpus=gpus)
    assert [(kw["replicas"], kw["workers"]) for kw in seen] == [(replicas, workers)] * 2


def test_a_replica_dies_with_its_parent(tmp_path):
    """A killed sampling job (SIGKILL: no Python cleanup runs) takes its replicas with it (PR_SET_PDEATHSIG)."""
    import signal
    import subprocess
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    parent = tmp_path / "parent.py"
    parent.write_text(
        "import subprocess, sys, time\n"
        "from paced.rollouts.replicas import die_with_parent\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], preexec_fn=die_with_parent())\n"
        f"open({str(tmp_path / 'child.pid')!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(parent)])
    pid_file = tmp_path / "child.pid"
    for _ in range(200):
        if pid_file.is_file() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    status = Path(f"/proc/{child}/status")
    for _ in range(100):  # the kernel signals the child when the parent is gone (a zombie left unreaped is dead)
        try:
            if "\nState:\tZ" in status.read_text():
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the replica outlived its killed parent")
