"""PACED inside TRL's GKDTrainer: the loss is paced's weighted per-sequence divergence, on a tiny local model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from paced import forward_kl, weighted_loss  # noqa: E402
from paced.fixtures import build_paper_fixture  # noqa: E402
from paced.integrations.trl import WEIGHT_COLUMN, GKDConfig, PacedGKDTrainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = ROOT / "docs" / "examples" / "trl_snippet.py"
P_HAT = {"a": 0.5, "b": 0.25, "c": 1.0, "d": 0.125}
ANSWERS = {"a": "12", "b": "7", "c": "1234", "d": "99999"}  # different lengths: padding and masks matter


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_paper_fixture(tmp_path_factory.mktemp("trl_models"))


def _trainer(models: dict[str, Path], tmp_path: Path, **kwargs) -> PacedGKDTrainer:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [{"id": i, "messages": [{"role": "user", "content": f"q {i}?"}, {"role": "assistant", "content": a}]}
            for i, a in ANSWERS.items()]
    args = GKDConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, lmbda=0.0, max_steps=2,
                     report_to=[], save_strategy="no", logging_steps=1, seed=0, learning_rate=1e-2, bf16=False)
    return PacedGKDTrainer(model=AutoModelForCausalLM.from_pretrained(models["student"]),
                           teacher_model=AutoModelForCausalLM.from_pretrained(models["teacher"]),
                           processing_class=AutoTokenizer.from_pretrained(models["student"]), args=args,
                           train_dataset=datasets.Dataset.from_list(rows), **kwargs)


def _batch(trainer: PacedGKDTrainer) -> dict:
    ds = trainer.train_dataset
    return trainer.data_collator([ds[i] for i in range(len(ds))])


def test_weights_column_from_a_passrates_file(models: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "passrates.jsonl"
    path.write_text("".join(json.dumps({"id": i, "num_correct": int(p * 8), "k": 8, "p_hat": p}) + "\n"
                            for i, p in P_HAT.items()), encoding="utf-8")
    trainer = _trainer(models, tmp_path, pass_rates=path)
    expected = [p * (1 - p) for p in P_HAT.values()]  # w = p(1-p): 0.25, 0.1875, 0, 0.109375
    assert trainer.train_dataset[WEIGHT_COLUMN] == pytest.approx(expected)


def test_loss_is_paced_weighted_forward_kl(models: dict[str, Path], tmp_path: Path) -> None:
    trainer = _trainer(models, tmp_path, pass_rates=P_HAT)
    batch = _batch(trainer)
    trainer.model.eval()  # no dropout either way; eval keeps the comparison exact
    loss = trainer.compute_loss(trainer.model, batch)
    with torch.no_grad():
        s = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        t = trainer.teacher_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    mask = batch["labels"][:, 1:] != -100
    w = torch.tensor([p * (1 - p) for p in P_HAT.values()])
    paced_value = weighted_loss(forward_kl(student_logits=s, teacher_logits=t, mask=mask), w, "sum")
    torch.testing.assert_close(loss.detach(), paced_value)
    # and against a naive loop: per example, mean over response tokens of Σ_v p_T (log p_T − log p_S)
    num = den = 0.0
    for i in range(len(w)):
        lt, ls = t[i][mask[i]].double().log_softmax(-1), s[i][mask[i]].double().log_softmax(-1)
        ell = float((lt.exp() * (lt - ls)).sum(-1).mean())
        num, den = num + float(w[i]) * ell, den + float(w[i])
    assert loss.item() == pytest.approx(num / den, rel=1e-5)
    assert loss.item() > 0


def test_training_steps_change_the_student(models: dict[str, Path], tmp_path: Path) -> None:
    trainer = _trainer(models, tmp_path, pass_rates=P_HAT)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    out = trainer.train()
    assert math.isfinite(out.training_loss) and out.training_loss > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.model.parameters(), strict=True))


def test_missing_pass_rate_names_the_example(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no pass rate .* id 'd'"):
        _trainer(models, tmp_path, pass_rates={k: v for k, v in P_HAT.items() if k != "d"})
    with pytest.raises(ValueError, match=r"no 'p_hat' column"):
        _trainer(models, tmp_path)


def test_readme_contains_the_trl_snippet() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if "<!-- trl-snippet -->" not in readme:
        pytest.skip("README.md has no TRL snippet block yet")
    block = readme.split("<!-- trl-snippet -->", 1)[1].split("<!-- /trl-snippet -->", 1)[0]
    assert SNIPPET.read_text(encoding="utf-8").strip() in block


def test_trl_snippet_runs_as_written(tmp_path: Path) -> None:
    code = SNIPPET.read_text(encoding="utf-8")
    assert len(code.strip().splitlines()) <= 15
    env = {**os.environ, "GOMP_SPINCOUNT": "1000", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(SNIPPET)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train_loss" in proc.stdout + proc.stderr
