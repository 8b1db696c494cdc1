"""The shared teacher cache as a file-writing stage: teacher log-probs on the fixed references, once.

Every teacher-forced method and seed with the same teacher and references reads the same ``.npz``
(``DistillConfig.teacher_cache_path``) instead of running the teacher each step. The sidecar
``<out>.json`` records what was scored (a digest of each problem's reference ids) and provenance;
the trainer refuses entries whose reference changed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from paced.io import provenance, write_json
from paced.methods import get_method
from paced.tasks.base import get_task
from paced.teacher_cache import TeacherCache
from paced.trainer.batches import collate, response_logits
from paced.trainer.config import DTYPES, DistillConfig
from paced.trainer.setup import load_model, load_tokenizer, reference_ids
from paced.trainer.teacher import reference_digest, sidecar_path, teacher_prompt

log = logging.getLogger(__name__)


@torch.no_grad()
def build_teacher_cache(teacher_path: str, task: str, data: str, references_path: str | None, out_path: str,
                        top_k: int | None = None, *, batch_size: int = 16, dtype: str = "float32",
                        device: str = "cpu", chat_tokenizer: str | None = None) -> TeacherCache:
    """Score every reference of ``data`` with the teacher and write a :class:`TeacherCache` to ``out_path``.

    ``references_path``: a ``references.jsonl`` (rows ``{id, reference}``), or None for the task's
    gold solutions (as ``DistillConfig.references``). ``top_k``: None = exact log-probs over all V
    (small vocabularies), else top-k + tail mass (forward KL only; see :mod:`paced.teacher_cache`).
    Tokenisation, prompts and EOS handling are the trainer's own (``reference_ids``,
    ``teacher_prompt``), so the cached rows are the ones a live teacher would score.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
    run = DistillConfig(student=teacher_path, teacher=teacher_path, task=task, data=data,
                        out_dir=str(Path(out_path).parent), references=references_path,
                        chat_tokenizer=chat_tokenizer)
    method = get_method("uniform-fkl")  # any teacher-forced method with a separate teacher
    task_obj = get_task(task, chat_tokenizer=chat_tokenizer)
    tokenizer = load_tokenizer(teacher_path)
    pool, refs = reference_ids(run, method, task_obj, task_obj.load(data), tokenizer)
    model = load_model(teacher_path, DTYPES[dtype], trainable=False).to(device)
    cache = TeacherCache(int(model.get_output_embeddings().weight.shape[0]), top_k)
    pad = int(tokenizer.pad_token_id)
    for start in range(0, len(pool), batch_size):
        docs = pool[start:start + batch_size]
        prompts = [tokenizer(teacher_prompt(method, task_obj, d), add_special_tokens=False)["input_ids"]
                   for d in docs]
        responses = [refs[d.id] for d in docs]
        logits = response_logits(model, collate(prompts, responses, pad).to(device))  # (b, R, V)
        for i, d in enumerate(docs):
            cache.add(d.id, logits[i, :len(responses[i])].float())
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cache.save(out)
    write_json(sidecar_path(out), {
        "teacher": teacher_path, "task": task, "data": data, "references": references_path, "top_k": top_k,
        "problems": len(cache), "nbytes": cache.nbytes,
        "reference_digest": {d.id: reference_digest(refs[d.id]) for d in pool},
        "provenance": provenance({"teacher": teacher_path, "task": task, "data": data,
                                  "references": references_path, "top_k": top_k, "dtype": dtype})})
    log.info("teacher cache: %d problems, %.1f MB -> %s", len(cache), cache.nbytes / 1e6, out)
    return cache
