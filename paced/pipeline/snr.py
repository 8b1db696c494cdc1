"""Stage ``snr``: gradient SNR vs pass rate on the base student (the paper's Figure 1 analogue), with each
bin's alignment to a held-out gradient."""

from __future__ import annotations

from typing import Any

from paced.pipeline.common import device, models_slice, task_for

SNR_KEYS = ("max_problems", "heldout_problems", "sketch_dim", "n_bootstrap", "bins")


def params(suite: Any) -> dict[str, Any]:
    """The SNR settings, the models, the pool and the held-out set: the training task's own evaluation set if
    there is one, else the first other generation task (MATH-500 in the paper setting)."""
    evals = sorted(suite.eval_tasks, key=lambda t: t.task != suite.train_task)
    from paced.tasks import get_task

    gen = [t for t in evals if get_task(t.task).kind == "generate"]  # the kind needs no (chat) tokenizer
    heldout = {"task": gen[0].task, "path": gen[0].path} if gen else None
    return {"snr": {k: getattr(suite.snr, k) for k in SNR_KEYS},
            "student": suite.student, "teacher": suite.teacher, "task": suite.train_task, "data": suite.train_path,
            "heldout": heldout, "models": models_slice(suite.models), "device": device(suite.resources.gpus_train),
            "gradient_checkpointing": bool(suite.train.gradient_checkpointing)}


def run(p: dict[str, Any], rates: str, refs: str, out: str) -> None:
    from paced.io import provenance, write_json
    from paced.passrate.files import read_p_hat
    from paced.snr_measure import SNRConfig, measure_snr
    from paced.trainer.setup import load_model, load_tokenizer, read_references

    models, dtype = p["models"], p["models"]["dtype"]
    task = task_for(p["task"], p["student"], models)
    held_task = task_for(p["heldout"]["task"], p["student"], models) if p["heldout"] else None
    heldout = [d for d in held_task.load(p["heldout"]["path"]) if d.tier in (None, "learnable")] if held_task else []
    result = measure_snr(load_model(p["student"], dtype, trainable=True), load_model(p["teacher"], dtype, False),
                         load_tokenizer(p["student"]), task, task.load(p["data"]), read_references(refs),
                         read_p_hat(rates), heldout, SNRConfig(**p["snr"]), heldout_task=held_task, device=p["device"],
                         gradient_checkpointing=p["gradient_checkpointing"])
    write_json(out, {**result, "provenance": provenance(p)})
