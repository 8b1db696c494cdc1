"""Building the shared teacher cache: the teacher's log-probs on every fixed reference, computed once.

Every teacher-forced method and seed with the same teacher and references reads the same cache
(``DistillConfig.teacher_cache_path``) instead of running the teacher each step. The teacher's final hidden
states are projected through ``lm_head`` ``token_chunk`` tokens at a time and each chunk is reduced to its
top-k at once, so no [T, V] logits tensor of a whole response exists at large V; entries go to a
:class:`~paced.teacher_cache.store.ShardWriter` as they are made, so the build holds one shard in RAM, not the
cache. The sidecar ``<out>.json`` records what was scored (a digest of each problem's reference ids) and
provenance; the trainer refuses entries whose reference changed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from paced.io import provenance, write_json
from paced.rollouts.progress import LoggingTqdm
from paced.teacher_cache.entry import CacheEntry, build_entry
from paced.teacher_cache.store import DEFAULT_SHARD_TOKENS, ShardWriter, TeacherCache

log = logging.getLogger(__name__)
DEFAULT_TOKEN_CHUNK = 1024  # lm_head rows at once: 3 fp32 [1024, 151936] buffers ≈ 1.9 GB at the paper's V


def entry_from_hidden(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, top_k: int | None,
                      token_chunk: int = DEFAULT_TOKEN_CHUNK) -> CacheEntry:
    """The cache entry of one response from the teacher's hidden states [T, H] and lm_head weight [V, H]:
    :func:`~paced.teacher_cache.entry.build_entry` of ``hidden @ weightᵀ + bias``, ``token_chunk`` rows at a
    time (equal to building from the whole [T, V] logits)."""
    parts = [build_entry(F.linear(h, weight, bias).float(), top_k) for h in hidden.split(token_chunk)]
    first = parts[0]
    cat = (lambda xs: None if xs[0] is None else torch.cat(xs).cpu())  # noqa: E731
    return CacheEntry(torch.cat([p.logp for p in parts]).cpu(), cat([p.ids for p in parts]),
                      cat([p.tail_logp for p in parts]), first.vocab_size)


@torch.no_grad()
def build_teacher_cache(teacher_path: str, task: str, data: str, references_path: str | None, out_path: str,
                        top_k: int | None = None, *, batch_size: int = 16, dtype: str = "float32",
                        device: str = "cpu", chat_tokenizer: str | None = None, enable_thinking: bool | None = None,
                        token_chunk: int = DEFAULT_TOKEN_CHUNK, shard_tokens: int = DEFAULT_SHARD_TOKENS,
                        ) -> TeacherCache:
    """Score every reference of ``data`` with the teacher and write a sharded :class:`TeacherCache` at ``out_path``.

    ``references_path``: a ``references.jsonl`` (rows ``{id, reference}``), or None for the task's
    gold solutions (as ``DistillConfig.references``). ``top_k``: None = exact log-probs over all V
    (small vocabularies), else top-k + tail mass (forward KL only; see :mod:`paced.teacher_cache`).
    Tokenisation, prompts and EOS handling are the trainer's own (``reference_ids``,
    ``teacher_prompt``), so the cached rows are the ones a live teacher would score. Returns the cache opened
    lazily from the files.
    """
    from paced.fused import causal_lm_hidden
    from paced.methods import get_method
    from paced.tasks.base import get_task
    from paced.trainer.batches import collate
    from paced.trainer.config import DTYPES, DistillConfig
    from paced.trainer.setup import load_model, load_tokenizer, reference_ids
    from paced.trainer.teacher import reference_digest, sidecar_path, teacher_prompt

    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
    run = DistillConfig(student=teacher_path, teacher=teacher_path, task=task, data=data,
                        out_dir=str(Path(out_path).parent), references=references_path,
                        chat_tokenizer=chat_tokenizer, enable_thinking=enable_thinking)
    method = get_method("uniform-fkl")  # any teacher-forced method with a separate teacher
    task_obj = get_task(task, chat_tokenizer=chat_tokenizer, enable_thinking=enable_thinking)
    tokenizer = load_tokenizer(teacher_path)
    pool, refs = reference_ids(run, method, task_obj, task_obj.load(data), tokenizer)
    model = load_model(teacher_path, DTYPES[dtype], trainable=False).to(device)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(out, int(model.get_output_embeddings().weight.shape[0]), top_k, shard_tokens)
    pad = int(tokenizer.pad_token_id)
    for start in LoggingTqdm(range(0, len(pool), batch_size), desc="teacher cache (batches)"):
        docs = pool[start:start + batch_size]
        prompts = [tokenizer(teacher_prompt(method, task_obj, d), add_special_tokens=False)["input_ids"]
                   for d in docs]
        responses = [refs[d.id] for d in docs]
        batch = collate(prompts, responses, pad).to(device)
        hidden, weight, bias = causal_lm_hidden(model, batch.input_ids, batch.attention_mask, batch.position_ids)
        r = batch.response_len
        hidden = hidden[:, -r - 1:-1]  # (b, R, H): position P − 1 + t predicts response token t
        for i, d in enumerate(docs):
            writer.add(d.id, entry_from_hidden(hidden[i, :len(responses[i])], weight, bias, top_k, token_chunk))
    writer.close()
    cache = TeacherCache.load(out)
    write_json(sidecar_path(out), {
        "teacher": teacher_path, "task": task, "data": data, "references": references_path, "top_k": top_k,
        "problems": len(cache), "nbytes": cache.nbytes,
        "reference_digest": {d.id: reference_digest(refs[d.id]) for d in pool},
        "provenance": provenance({"teacher": teacher_path, "task": task, "data": data,
                                  "references": references_path, "top_k": top_k, "dtype": dtype})})
    log.info("teacher cache: %d problems, %.1f MB -> %s", len(cache), cache.nbytes / 1e6, out)
    return cache
