"""The .test paper-path DAG end to end with vLLM for sampling (pass rates, references) and evaluation (lm-eval's
``vllm`` model), on vLLM's CPU backend (the `vllm` lane, .ci/vllm_lane.sh).

It runs in a private copy of the workflow files with its own results directory, on tiny models built here
(paced.fixtures: head_dim 64, which vLLM's CPU attention needs), never downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "workflow", "config", "profiles", ".test/config-paper", ".test/config-vllm")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from paced.fixtures import build_paper_fixture

    wd = tmp_path_factory.mktemp("vllm_dag")
    for rel in COPIED:
        src, dst = ROOT / rel, wd / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "models"))
        else:
            shutil.copy2(src, dst)
    build_paper_fixture(wd / ".test/config-paper/models")
    results = wd / "results"
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
    # the target: every sampling and evaluation job (the report rules after it have no vLLM in them)
    cmd = [sys.executable, "-m", "snakemake", str(results / "summary.csv"), "--cores", "2", "--configfile",
           "config/paper.yaml", ".test/config-paper/config.yaml", ".test/config-vllm/config.yaml",
           "--config", f"results_dir={results}"]
    proc = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    return results


def _logs(results: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(results)): p.read_text() for p in (results / "logs").rglob(pattern)}


def test_every_benchmark_scored_through_vllm(run: Path) -> None:
    import pandas as pd

    df = pd.read_csv(run / "summary.csv")
    assert "error" not in set(df["metric"]), df[df["metric"] == "error"]["note"].tolist()
    assert set(df["task"]) == {"math500", "aime24", "aime25", "mmlu"}
    assert set(zip(df["method"], df["step"], strict=True)) == {("base", 0), ("uniform-fkl", 2), ("paced-fkl", 2),
                                                               ("uniform-fkl-then-rkl", 2)}
    for method, step in (("base", 0), ("paced-fkl", 2)):
        res = json.loads((run / f"eval/{method}/seed0/step{step}/math500.json").read_text())
        lm = res["provenance"]["config"]["lm_eval"]
        assert lm["model"] == "vllm" and lm["model_args"]["enforce_eager"] is True
        assert res["metrics"]["all"]["k"] == 2 and 0 <= res["metrics"]["all"]["avg@k"] <= 1
    mmlu = json.loads((run / "eval/base/seed0/step0/mmlu.json").read_text())
    assert 0 <= mmlu["metrics"]["all"]["mc_acc"] <= 1


def test_sampling_stages_ran_on_vllm_engines_that_were_shut_down(run: Path) -> None:
    rates = [json.loads(x) for x in (run / "passrates/base/passrates.jsonl").read_text().splitlines()]
    assert rates and all(r["k"] == 2 and 0 <= r["p_hat"] <= 1 for r in rates)
    sampling = {**_logs(run, "*passrate*.log"), **_logs(run, "*reference*.log")}
    assert sampling, sorted(str(p) for p in (run / "logs").rglob("*.log"))
    for name, text in sampling.items():
        assert "starting a vLLM engine" in text, name
        assert "vllm processed prompts: " in text, name  # progress lines reach the rule's log
    evals = _logs(run, "eval/*.log")
    assert len(evals) == 4, sorted(evals)  # base, and one job per run
    for name, text in evals.items():  # one engine per checkpoint (one budget here), shut down when it is done
        assert text.count("lm-eval's vLLM engine shut down") == 1, name
        assert "Running generate_until requests: " in text, name  # lm-eval's progress reaches the log


def test_on_policy_samples_came_from_the_trainers_vllm_engine(run: Path) -> None:
    logs = _logs(run, "distill/*.log")
    two_stage = [text for name, text in logs.items() if "uniform-fkl-then-rkl" in name]
    assert len(two_stage) == 1, sorted(logs)
    text = two_stage[0]
    # the paper path trains under torchrun (FSDP2; one process here): the engine joins its process group, and the
    # launched process's lines reach the rule's log
    assert "starting a vLLM engine" in text and "'external_launcher'" in text
    # 2 steps: step 1 is FKL on references; step 2 samples on-policy after step 1's update, so the engine reloads
    assert text.count("the student's current weights loaded") == 1, text[-3000:]
    assert "vLLM engine shut down" in text
    for name, text in logs.items():  # runs that never sample the student start no engine
        if "uniform-fkl-then-rkl" not in name:
            assert "starting a vLLM engine" not in text, name
