"""The ``paced`` command: --help on every command, real small runs, one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _distill_world import build

from paced.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results"
LEAVES = [["passrates"], ["weights"], ["verdicts"], ["world", "build"], ["tasks", "export"], ["plan"]]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _passrates(path: Path, counts: dict[str, int], k: int = 8) -> Path:
    path.write_text("".join(json.dumps({"id": i, "num_correct": c, "k": k, "p_hat": c / k, "tier": "learnable"})
                            + "\n" for i, c in counts.items()), encoding="utf-8")
    return path


def test_console_script_lists_every_command() -> None:
    script = Path(sys.executable).parent / "paced"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "paced.cli"]
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("passrates", "weights", "verdicts", "world", "tasks", "plan"):
        assert name in proc.stdout
    assert sorted(COMMANDS) == ["passrates", "plan", "tasks", "verdicts", "weights", "world"]


@pytest.mark.parametrize("argv", LEAVES, ids=lambda a: " ".join(a))
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert f"usage: paced {' '.join(argv)}" in capsys.readouterr().out


def test_weights_from_a_passrate_file(tmp_path: Path) -> None:
    src = _passrates(tmp_path / "passrates.jsonl", {"a": 0, "b": 2, "c": 4, "d": 8})
    assert main(["weights", str(src), "-o", str(tmp_path / "w.jsonl")]) == 0
    rows = _rows(tmp_path / "w.jsonl")
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert [r["weight"] for r in rows] == pytest.approx([0.0, 0.1875, 0.25, 0.0])  # p(1-p), p = 0, 1/4, 1/2, 1
    assert main(["weights", str(src), "-o", str(tmp_path / "w2.jsonl"), "--param", "alpha=2",
                 "--smoothing", "laplace", "--param", "floor=0.01"]) == 0
    # Laplace p = (c+1)/(k+2); w = max(p²(1-p), 0.01)
    expected = [max(((c + 1) / 10) ** 2 * (1 - (c + 1) / 10), 0.01) for c in (0, 2, 4, 8)]
    assert [r["weight"] for r in _rows(tmp_path / "w2.jsonl")] == pytest.approx(expected)


def test_weights_of_the_fixture_pass_rates_use_its_p_hat(tmp_path: Path) -> None:
    src = FIXTURE / "passrates" / "base" / "passrates.jsonl"
    assert main(["weights", str(src), "-o", str(tmp_path / "w.jsonl"), "--kernel", "hard_filter"]) == 0
    got = {r["id"]: r["weight"] for r in _rows(tmp_path / "w.jsonl")}
    want = {r["id"]: float(0 < r["num_correct"] < r["k"]) for r in _rows(src)}
    assert got == want and 0 < sum(got.values()) < len(got)


@pytest.mark.parametrize("argv, message", [
    (["weights", "missing.jsonl", "-o", "w.jsonl"], "missing.jsonl"),
    (["weights", "{src}", "-o", "w.jsonl", "--kernel", "betta"], "Did you mean 'beta'"),
    (["weights", "{src}", "-o", "w.jsonl", "--param", "alpha"], "expected NAME=NUMBER"),
    (["weights", "{src}", "-o", "w.jsonl", "--param", "gamma=1"], "gamma"),
    (["verdicts", "nope.csv", "-o", "out"], "nope.csv"),
    (["tasks", "export", "out"], "nothing to export"),
    (["tasks", "export", "out", "--task", "toy_arithm=x.jsonl"], "Did you mean 'toy_arith'"),
    (["world", "build", "w", "--preset", "tny"], "Did you mean 'tiny'"),
])
def test_user_errors_are_one_line_with_status_2(argv: list[str], message: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    src = _passrates(tmp_path / "p.jsonl", {"a": 1})
    assert main([a.replace("{src}", str(src)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    prog = "paced " + " ".join(argv[:2] if argv[0] in ("world", "tasks") else argv[:1])
    assert err[-1].startswith(f"{prog}: error: ")
    assert message in err[-1] and "Traceback" not in "\n".join(err)


def test_verdicts_from_the_fixture_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    out = tmp_path / "tables"
    assert main(["verdicts", str(FIXTURE / "summary.csv"), "-o", str(out),
                 "--snr", str(FIXTURE / "snr" / "snr.json")]) == 0
    raw = pd.read_csv(out / "verdicts_raw.csv")
    row = raw[(raw.method == "paced-fkl") & (raw.reference == "akl") & (raw.step == 300) & (raw.tier == "all")
              & (raw.metric == "avg@k")].iloc[0]
    # by hand from the summary: mean over seeds of (paced-fkl − akl) avg@k, in points
    summary = pd.read_csv(FIXTURE / "summary.csv")
    cell = summary[(summary.step == 300) & (summary.task == "toy_arith") & (summary.tier == "all")
                   & (summary.metric == "avg@k")].pivot(index="seed", columns="method", values="value")
    assert row.mean_diff == pytest.approx(100 * (cell["paced-fkl"] - cell["akl"]).mean())
    assert row.n_pairs == len(cell)
    assert "SNR is bell-shaped in p" in set(raw.claim)
    assert (out / "verdicts.md").is_file() and any(out.glob("table_step*.md"))
    assert "PACED > AKL" in capsys.readouterr().out


def test_passrates_on_a_tiny_model(tmp_path: Path) -> None:
    world = build(tmp_path)
    out = tmp_path / "pr" / "passrates.jsonl"
    assert main(["passrates", "--model", world["student"], "--task", "toy_arith", "--data", world["data"],
                 "-o", str(out), "-k", "2", "--max-new-tokens", "4", "--batch-size", "4"]) == 0
    rows = _rows(out)
    assert len(rows) == 8 and all(r["k"] == 2 and r["p_hat"] == r["num_correct"] / 2 for r in rows)
    assert json.loads((out.parent / "summary.json").read_text())["n"] == 8


def test_tasks_export_loads_in_stock_lm_eval(tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager

    world = build(tmp_path)
    out = tmp_path / "tasks"
    assert main(["tasks", "export", str(out), "--task", f"toy_arith={world['data']}", "-k", "2"]) == 0
    manager = TaskManager(include_path=str(out), include_defaults=False)
    assert "paced_toy_arith" in manager.all_tasks
    task = manager.load_task_or_group(["paced_toy_arith"])  # builds the task: reads the YAML, data and hooks
    (obj,) = task.values()
    docs = list(obj.test_docs())
    assert len(docs) == 8 and obj.config.repeats == 2
    assert obj.doc_to_text(docs[0]) == docs[0]["query"]


@pytest.mark.slow
def test_exported_tasks_run_with_stock_lm_eval(tmp_path: Path) -> None:
    """``paced tasks export`` then the ``lm_eval`` console script, as a user would run it (about a minute)."""
    world = build(tmp_path)
    out = tmp_path / "tasks"
    assert main(["tasks", "export", str(out), "--task", f"toy_arith={world['data']}", "-k", "2",
                 "--max-new-tokens", "4"]) == 0
    lm_eval = Path(sys.executable).parent / "lm_eval"
    proc = subprocess.run([str(lm_eval), "--model", "hf", "--model_args", f"pretrained={world['student']}",
                           "--include_path", str(out), "--tasks", "paced_toy_arith", "--device", "cpu",
                           "--output_path", str(tmp_path / "lm_eval_out")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "paced_toy_arith" in proc.stdout and "pass@k" in proc.stdout
    (result,) = (tmp_path / "lm_eval_out").rglob("results_*.json")
    assert 0.0 <= json.loads(result.read_text())["results"]["paced_toy_arith"]["avg@k,first_2"] <= 1.0


def test_world_build_then_export_its_tasks(tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager

    world = tmp_path / "world"
    assert main(["world", "build", str(world), "--preset", "tiny"]) == 0
    assert json.loads((world / "world.json").read_text())["sizes"]["train"] > 0
    assert main(["world", "build", str(world), "--preset", "tiny"]) == 2  # exists: needs --overwrite
    out = tmp_path / "tasks"
    assert main(["tasks", "export", str(out), "--world", str(world), "-k", "2"]) == 0
    names = set(TaskManager(include_path=str(out), include_defaults=False).all_tasks)
    assert {"paced_toy_arith", "paced_toy_probe_mc", "paced_toy_probe_em"} <= names


def test_plan_runs_on_the_paper_config(capsys: pytest.CaptureFixture[str]) -> None:
    from paced.cli.plan import _plan_module

    if _plan_module() is None:
        pytest.skip("paced.plan provides no command line")
    assert main(["plan", "--configfile", str(ROOT / "config" / "paper.yaml")]) in (0, 2)  # 2: refused, one line
    out = capsys.readouterr()
    assert out.out.strip() or out.err.strip().count("\n") == 0


def test_plan_says_when_it_is_not_available(capsys: pytest.CaptureFixture[str]) -> None:
    from paced.cli.plan import _plan_module

    if _plan_module() is not None:
        pytest.skip("paced.plan provides a command line")
    assert main(["plan"]) == 2
    assert "not available" in capsys.readouterr().err
