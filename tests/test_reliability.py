"""Atomic result files and numerics: a crash mid-write leaves the old file (or none), never a partial one;
no NaN or inf reaches a checkpoint or a result file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from _distill_world import build, read_log

from paced.evaluation.lmeval import write_eval_result
from paced.io import atomic_write_text, write_json, write_jsonl
from paced.report._plot import new_figure, save_figure
from paced.report.collect import write_summary
from paced.report.format import write_frame
from paced.trainer import DistillConfig, NonFiniteLossError, distill
from paced.trainer import loop as loop_mod
from paced.trainer.checkpoint import save_checkpoint
from paced.world.tokenizer import build_char_tokenizer


class Crash(OSError):
    pass


def _crash_on_replace(monkeypatch) -> None:
    def crash(src, dst, *a, **k):
        raise Crash(f"simulated kill before renaming {src} onto {dst}")
    monkeypatch.setattr(os, "replace", crash)


def _figure(path: Path) -> None:
    fig, ax = new_figure()
    ax.reshape(-1)[0].plot([0, 1], [0, 1])
    save_figure(fig, path.with_suffix(""), formats=("png",))


WRITERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "atomic_write_text": ("out.txt", lambda p: atomic_write_text(p, "NEW" * 10_000)),
    "write_json": ("out.json", lambda p: write_json(p, {"value": 1.0})),
    "write_jsonl": ("out.jsonl", lambda p: write_jsonl(p, [{"id": i} for i in range(100)])),
    "write_eval_result": ("arith.json", lambda p: write_eval_result(p, {"metrics": {"all": {"avg@k": 0.5}}})),
    "write_summary": ("summary.csv", lambda p: write_summary(pd.DataFrame({"value": [1.0, 2.0]}), p)),
    "write_frame": ("table.csv", lambda p: write_frame(pd.DataFrame({"a": [1]}), p.with_suffix(""))),
    "save_figure": ("fig.png", _figure),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_crash_before_the_rename_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch, writer):
    name, write = WRITERS[writer]
    dest = tmp_path / name
    dest.write_text("OLD")
    _crash_on_replace(monkeypatch)
    with pytest.raises(Crash):
        write(dest)
    assert dest.read_text() == "OLD"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name], "a temporary file was left behind"


@pytest.mark.parametrize("writer", list(WRITERS))
def test_writers_write_when_nothing_crashes(tmp_path, writer):
    """The control for the test above: the same call does replace the file."""
    name, write = WRITERS[writer]
    dest = tmp_path / name
    dest.write_text("OLD")
    write(dest)
    assert dest.read_bytes() != b"OLD" and dest.stat().st_size > 0


def test_a_crash_while_saving_a_checkpoint_leaves_no_step_directory(tmp_path, monkeypatch):
    from _distill_world import tiny_model

    tok = build_char_tokenizer()
    model = tiny_model(tok, 0)
    _crash_on_replace(monkeypatch)
    with pytest.raises(Crash):
        save_checkpoint(tmp_path, 4, model=model, tokenizer=tok, state={"step": 4})
    assert list((tmp_path / "checkpoints").iterdir()) == [], "a partial checkpoint was left behind"
    monkeypatch.undo()
    final = save_checkpoint(tmp_path, 4, model=model, tokenizer=tok, state={"step": 4})
    assert final.name == "step4" and (final / "trainer_state.pt").is_file()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step4"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("write", [lambda p, x: write_json(p, {"metrics": {"all": {"avg@k": x}}}),
                                   lambda p, x: write_jsonl(p, [{"id": "a", "p_hat": 0.5}, {"id": "b", "p_hat": x}])],
                         ids=["write_json", "write_jsonl"])
def test_nan_and_inf_are_refused_and_the_old_result_kept(tmp_path, bad, write):
    dest = tmp_path / "result.json"
    dest.write_text("OLD")
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write(dest, bad)
    assert dest.read_text() == "OLD" and [p.name for p in tmp_path.iterdir()] == ["result.json"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build(tmp_path_factory.mktemp("world"), n_learnable=4, n_intractable=0)


def _cfg(world, out: Path, **kw) -> DistillConfig:
    base = dict(student=world["student"], teacher=world["teacher"], task="toy_arith", data=world["data"],
                out_dir=str(out), steps=3, batch_size=2, lr=1e-2, save_steps=(1, 2), progress=False)
    return DistillConfig(**{**base, **kw})


@pytest.mark.parametrize("poison", [float("inf"), float("nan")])
def test_non_finite_loss_at_the_first_step_writes_no_checkpoint_and_no_run_json(world, tmp_path, monkeypatch,
                                                                                poison):
    real = loop_mod.batch_loss
    monkeypatch.setattr(loop_mod, "batch_loss", lambda *a, **k: real(*a, **k) * poison)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \((nan|inf)\) at step 1"):
        distill(_cfg(world, tmp_path), "uniform-fkl")
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
    assert not (tmp_path / "run.json").exists()


def test_non_finite_weights_after_a_finite_loss_never_reach_a_checkpoint(world, tmp_path, monkeypatch):
    """An update can overflow the weights while the loss that produced it was finite."""
    real = loop_mod.apply_online

    def poison_weights_at_step_2(ctx, acc, *batch):
        real(ctx, acc, *batch)
        if len(read_log(tmp_path)) == 1:  # during step 2 (one row logged so far)
            with torch.no_grad():
                next(ctx.model.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(loop_mod, "apply_online", poison_weights_at_step_2)
    with pytest.raises(NonFiniteLossError, match=r"non-finite parameters after step 2 .*no checkpoint"):
        distill(_cfg(world, tmp_path), "uniform-fkl")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step1"]
    assert not (tmp_path / "run.json").exists()


def test_a_log_line_truncated_by_a_kill_does_not_block_resume(world, tmp_path, monkeypatch):
    cfg = _cfg(world, tmp_path, steps=2, save_steps=(1,))
    real = loop_mod.batch_loss

    def die_at_step_2(ctx, docs, weights, stage, step, *rows):
        if step == 1:
            with open(tmp_path / "log.jsonl", "a", encoding="utf-8") as f:
                f.write('{"event": "step", "step": 2, "lo')  # killed mid-append
            raise KeyboardInterrupt
        return real(ctx, docs, weights, stage, step, *rows)

    with monkeypatch.context() as m:
        m.setattr(loop_mod, "batch_loss", die_at_step_2)
        with pytest.raises(KeyboardInterrupt):
            distill(cfg, "uniform-fkl")
    distill(cfg, "uniform-fkl", resume=True)
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2]
    assert json.loads((tmp_path / "run.json").read_text())["skipped_batches"] == 0
