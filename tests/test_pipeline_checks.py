"""Parse-time config checks, the results lock, and the split between cell and infrastructure failures."""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from paced.failures import is_infrastructure
from paced.pipeline.cells import run_cell
from paced.pipeline.config_checks import check_integers, check_seeds, check_size, resolve_results_dir
from paced.pipeline.results_lock import ResultsLock, ResultsLockedError
from paced.trainer.step import NonFiniteLossError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


# --- config checks -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "  ", "/", "/usr", "/etc/", "~/..", None])
def test_results_dir_refuses_empty_root_and_system_dirs(bad):
    with pytest.raises(ValueError, match="results_dir"):
        resolve_results_dir(bad)


def test_results_dir_expands_home_and_allows_absolute_elsewhere(tmp_path):
    assert resolve_results_dir("~/paced-x") == os.path.expanduser("~/paced-x")
    assert resolve_results_dir(str(tmp_path / "r") + "/") == str(tmp_path / "r")
    assert resolve_results_dir("results") == "results"
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        resolve_results_dir(str(f))


def test_integers_are_integers():
    check_integers({"train": {"steps": 8, "save_steps": [4, 8]}, "seeds": [0, 1]}, SCHEMA)
    for cfg, key in (({"train": {"steps": 8.0}}, r"train\.steps=8\.0"),
                     ({"eval": {"budgets": [8.0]}}, r"eval\.budgets\[0\]"),
                     ({"seeds": [0, 1.5]}, r"seeds\[1\]"), ({"world": {"seed": True}}, r"world\.seed")):
        with pytest.raises(ValueError, match=key):
            check_integers(cfg, SCHEMA)


def test_seeds_below_two_to_the_32():
    check_seeds([0, 2**32 - 1], 0)
    with pytest.raises(ValueError, match=r"seeds\[1\]"):
        check_seeds([0, 2**64], 0)
    with pytest.raises(ValueError, match=r"world\.seed"):
        check_seeds([0], 2**40)


def test_alias_bomb_and_huge_lists_are_refused_fast():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))  # 10^10 leaves
    with pytest.raises(ValueError, match="alias bomb"):
        check_size(yaml.safe_load(bomb))
    with pytest.raises(ValueError, match="more than"):
        check_size({"seeds": list(range(100_000))})
    check_size(yaml.safe_load((ROOT / "config/config.yaml").read_text()))


# --- the results lock ----------------------------------------------------------------------------------------

def test_results_lock_refuses_a_second_workflow_and_takes_over_a_stale_one(tmp_path):
    a, b = ResultsLock(tmp_path / "r/.paced.lock"), ResultsLock(tmp_path / "r/.paced.lock")
    a.acquire()
    with pytest.raises(ResultsLockedError, match="in use by another workflow"):
        b.acquire()
    a.release()
    b.acquire()
    b.release()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "r/.paced.lock").write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout),
                                                        "cwd": "/elsewhere"}))
    a.acquire()  # the owner is gone: taken over
    assert json.loads((tmp_path / "r/.paced.lock").read_text())["pid"] == os.getpid()
    a.release()


# --- failures: cell vs infrastructure ------------------------------------------------------------------------

class _OutOfMemoryError(RuntimeError):
    pass


_OutOfMemoryError.__name__ = "OutOfMemoryError"  # as torch.OutOfMemoryError, matched by class name


@pytest.mark.parametrize("err", [OSError(errno.ENOSPC, "No space left on device"), MemoryError(),
                                 FileNotFoundError("x"), subprocess.CalledProcessError(-9, ["torchrun"]),
                                 RuntimeError("NCCL watchdog thread terminated"), TimeoutError(),
                                 _OutOfMemoryError("CUDA out of memory"), ModuleNotFoundError("vllm")])
def test_infrastructure_failures_fail_the_job(tmp_path, err):
    assert is_infrastructure(err)
    out = tmp_path / "result.json"

    def fail():
        raise err

    with pytest.raises(type(err)):
        run_cell(fail, [out], on_error="record")
    assert not out.exists()  # no record that a rerun would mistake for a result


@pytest.mark.parametrize("err", [NonFiniteLossError("non-finite loss at step 3"), ValueError("bad row"),
                                 RuntimeError("shape mismatch")])
def test_cell_failures_are_recorded(tmp_path, err):
    assert not is_infrastructure(err)
    out = tmp_path / "result.json"

    def fail():
        raise err

    run_cell(fail, [out], on_error="record")
    record = json.loads(out.read_text())
    assert record["error_kind"] == "cell" and type(err).__name__ in record["error"]
    with pytest.raises(type(err)):
        run_cell(fail, [tmp_path / "other.json"], on_error="fail")


_WRITE_BIG = """
import sys
from paced.pipeline.cells import run_cell
def stage():
    with open(sys.argv[1] + "/big.bin", "wb") as f:
        f.write(b"0" * (4 << 20))
run_cell(stage, [sys.argv[1] + "/result.json"], on_error="record")
"""


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # writes past 1 MiB fail with EFBIG


def test_a_full_disk_fails_the_job_and_leaves_no_record(tmp_path):
    """A write that runs out of room (file-size limit: the same OSError path as a full disk) fails the process."""
    proc = subprocess.run([sys.executable, "-c", _WRITE_BIG, str(tmp_path)], preexec_fn=_limit_file_size,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "File too large" in proc.stderr
    assert not (tmp_path / "result.json").exists()


def test_a_full_tmpfs_fails_the_job_and_leaves_no_record(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (CI runs as root); the file-size test covers the same path")
    try:
        proc = subprocess.run([sys.executable, "-c", _WRITE_BIG, str(mnt)], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode != 0 and "No space left on device" in proc.stderr
        assert not (mnt / "result.json").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# --- through the real Snakefile ------------------------------------------------------------------------------

def _snakemake(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("edit", "match"), [
    ({"train": {"steps": 8.0}}, "train.steps=8.0: must be an integer"),
    ({"seeds": [0, 2**64]}, r"seeds[1]=18446744073709551616: seeds must lie in [0, 2^32)"),
    ({"results_dir": "/"}, "results_dir='/': the filesystem root or a system directory"),
    ({"vllm": {"train_gpu_memory_utilization": float("nan")}}, "vllm.train_gpu_memory_utilization=nan: must be a "
                                                               "finite number"),
    ({"sampling": {"temperature": float("inf")}}, "sampling.temperature=inf: must be a finite number"),
])
def test_snakefile_refuses_bad_values_before_planning(tmp_path, edit, match):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "r"), **edit}))
    proc = _snakemake("-n", "--configfile", ".test/config/config.yaml", str(bad))
    assert proc.returncode != 0 and match in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
    assert not (tmp_path / "r").exists()


def test_a_results_dir_held_by_another_workflow_is_refused_before_any_job(tmp_path):
    results = tmp_path / "r"
    results.mkdir()
    (results / ".paced.lock").write_text(json.dumps({"host": "another-host", "pid": 1, "cwd": "/other/clone"}))
    proc = _snakemake("--configfile", ".test/config/config.yaml", "--config", f"results_dir={results}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "in use by another workflow" in out and "/other/clone" in out, out[-2000:]
    assert sorted(p.name for p in results.iterdir()) == [".paced.lock"]  # nothing ran


# --- evaluating a failed run: the run's failure, recorded; a lost checkpoint of a finished run: the job fails --

def _eval_params(results: Path, method: str = "paced-fkl") -> dict:
    ckpt = results / "runs" / method / "seed0" / "checkpoints" / "step8"
    return {"results": str(results), "method": method, "seed": 0, "models": {"8": str(ckpt)},
            "tasks": [{"name": "arith", "task": "toy_arith", "path": "x.jsonl", "k": 4, "limit": None}],
            "eval": {"max_new_tokens": 8, "temperature": 1.0, "batch_size": 4},
            "model_config": {"dtype": "float32", "trust_remote_code": False, "chat_template": False},
            "backend": "hf", "device": "cpu"}


def test_evaluating_a_failed_run_records_the_runs_failure(tmp_path):
    from paced.pipeline import evaluate

    run_json = tmp_path / "runs/paced-fkl/seed0/run.json"
    run_json.parent.mkdir(parents=True)
    run_json.write_text(json.dumps({"error": "NonFiniteLossError: non-finite loss at step 3"}))
    evaluate.run(_eval_params(tmp_path), on_error="record")
    record = json.loads((tmp_path / "eval/paced-fkl/seed0/step8/arith.json").read_text())
    assert record["error"].startswith("RunFailedError: run ") and "paced-fkl/seed0 failed" in record["error"]
    assert "step 3" in record["error"]


def test_pass_rates_after_a_failed_run_are_recorded_not_a_job_failure(tmp_path):
    from paced.pipeline import passrates

    run_json = tmp_path / "runs/paced-fkl/seed0/run.json"
    run_json.parent.mkdir(parents=True)
    run_json.write_text(json.dumps({"error": "NonFiniteLossError: non-finite loss at step 3"}))
    p = {"model": str(run_json.parent / "checkpoints/step8")}
    rates, summary = tmp_path / "after/passrates.jsonl", tmp_path / "after/summary.json"
    passrates.run_after(p, str(rates), str(summary), on_error="record", context={"method": "paced-fkl"})
    assert "RunFailedError" in json.loads(summary.read_text())["error"] and rates.read_text() == ""


def test_a_missing_checkpoint_of_a_finished_run_fails_the_job(tmp_path):
    from paced.pipeline import evaluate

    run_json = tmp_path / "runs/paced-fkl/seed0/run.json"
    run_json.parent.mkdir(parents=True)
    run_json.write_text(json.dumps({"identity": {"digest": "abc"}}))
    with pytest.raises(FileNotFoundError, match="checkpoint of a finished run is missing"):
        evaluate.run(_eval_params(tmp_path), on_error="record")
    assert not (tmp_path / "eval").exists()


def test_a_cell_failure_inside_a_launched_training_process_is_recorded(tmp_path, monkeypatch):
    """torchrun/accelerate runs report their cell's failure by exit code + file; other exits stay infrastructure."""
    from paced.failures import CELL_ERROR_FILE, CELL_EXIT_CODE, CellFailure
    from paced.pipeline import distill
    from paced.trainer import DistillConfig

    out = tmp_path / "run"
    cfg = DistillConfig(student="s", task="toy_arith", data="d", out_dir=str(out), sharding="fsdp")

    real_run = subprocess.run

    def fake_run(cmd, check=False, **kw):
        if "torch.distributed.run" not in cmd:
            return real_run(cmd, check=check, **kw)  # git, from the provenance of the record
        out.mkdir(parents=True, exist_ok=True)
        (out / CELL_ERROR_FILE).write_text(json.dumps({"error": "NonFiniteLossError: non-finite loss at step 3"}))
        return subprocess.CompletedProcess(cmd, CELL_EXIT_CODE)

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(CellFailure, match="non-finite loss at step 3") as err:
        distill.run_distill(cfg, {"preset": "uniform-fkl"}, nproc=2)
    assert not is_infrastructure(err.value)
    record = tmp_path / "run.json"
    run_cell(lambda: distill.run_distill(cfg, {"preset": "uniform-fkl"}, nproc=2), [record], on_error="record")
    assert "non-finite loss" in json.loads(record.read_text())["error"]

    monkeypatch.setattr(subprocess, "run", lambda cmd, check=False, **kw: subprocess.CompletedProcess(cmd, -9))
    with pytest.raises(subprocess.CalledProcessError) as killed:
        distill.run_distill(cfg, {"preset": "uniform-fkl"}, nproc=2)
    assert is_infrastructure(killed.value)


def test_a_runtime_error_caused_by_an_infrastructure_error_is_infrastructure():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving the checkpoint failed") from inner
    except RuntimeError as err:
        assert is_infrastructure(err)
