"""The HF ``generate`` sampler backend (registered as ``"hf"``).

Batched, with the KV cache, ``num_return_sequences = n``, left padding, greedy when
``temperature == 0``, and completions cut at the first EOS. Sampling is seeded: each chunk of
prompts runs under ``torch.random.fork_rng`` seeded with ``params.seed`` + the chunk index, so the
same prompts, params and ``batch_size`` give the same rollouts and the caller's global RNG is left
untouched (``generate`` draws from the global generator; it takes no ``torch.Generator``). A job sampled in parts
seeds each part with :meth:`HFSampler.part_seed`: parts that start at multiples of ``batch_size`` give the rollouts
of one call.

At scale: the shared prefill computes logits for the last position only (``logits_to_keep=1``; full
logits of 1,024 prompts of 200 tokens at Qwen3's vocabulary of 151,936 are 62 GB in bf16), ``batch_size``
bounds the prompts per ``generate`` call, and ``synced_gpus`` keeps the ranks of a sharded (FSDP) model
stepping together until all have finished (a rank that stops early would hang the others' all-gathers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from paced.rollouts.base import SAMPLERS, Rollout, Sampler, SamplingParams
from paced.rollouts.progress import LoggingTqdm

log = logging.getLogger(__name__)


def load_model_and_tokenizer(path: str | os.PathLike[str], dtype: torch.dtype = torch.float32,
                             device: str = "cpu", trust_remote_code: bool = False) -> tuple[Any, Any]:
    """``AutoModelForCausalLM`` + ``AutoTokenizer`` from a local checkpoint directory or a hub name.

    A path that looks local (exists, or starts with ``.``/``/``) but holds no ``config.json``
    raises ``FileNotFoundError`` naming it, instead of a hub lookup for a misspelt directory.
    ``trust_remote_code`` is passed explicitly (never ``None``: transformers would prompt on stdin).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    looks_local = p.exists() or str(path).startswith((".", "/", "~"))
    if looks_local and not (p / "config.json").is_file():
        raise FileNotFoundError(
            f"model path {str(path)!r} is not a checkpoint directory (no config.json there); "
            "build the world first (paced.world.build_world) or pass the directory save_pretrained wrote")
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype,
                                                 trust_remote_code=trust_remote_code).to(device)
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    return model, tok


@SAMPLERS.register("hf")
class HFSampler(Sampler):
    """Samples with ``model.generate``.

    ``model`` is a ``PreTrainedModel`` (then ``tokenizer`` is required) or a checkpoint path
    (the tokenizer saved beside it is loaded). ``batch_size`` is the number of *prompts* per
    ``generate`` call; each expands to ``n`` rows. ``add_special_tokens`` is passed to the tokenizer.
    ``synced_gpus``: ``None`` turns it on when ``torch.distributed`` runs with more than one rank (a sharded
    model: every rank must call ``generate`` with the same number of batches). ``progress`` logs the chunks
    done at coarse intervals (the rule's log) and shows a bar on a terminal.
    """

    def __init__(self, model: Any, tokenizer: Any = None, *, batch_size: int = 256, device: str = "cpu",
                 dtype: torch.dtype = torch.float32, add_special_tokens: bool = False,
                 progress: bool = False, trust_remote_code: bool = False, synced_gpus: bool | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"HFSampler.batch_size must be >= 1, got {batch_size}")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"HFSampler device={device!r}, but no CUDA GPU is visible to torch; sample on a GPU "
                             "machine or with device='cpu'")
        if isinstance(model, (str, os.PathLike)):
            model, loaded_tok = load_model_and_tokenizer(model, dtype=dtype, device=device,
                                                         trust_remote_code=trust_remote_code)
            tokenizer = tokenizer if tokenizer is not None else loaded_tok
        elif tokenizer is None:
            raise ValueError("HFSampler: pass a tokenizer with a model object (or pass a checkpoint path)")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.add_special_tokens = add_special_tokens
        self.progress = progress
        self.synced_gpus = synced_gpus
        if tokenizer.pad_token_id is None:
            raise ValueError("HFSampler: the tokenizer has no pad token; set tokenizer.pad_token first")
        self.eos_id = tokenizer.eos_token_id

    # no_grad, not inference_mode: an FSDP2 student's first all-gather inside inference mode would make its
    # unsharded parameters inference tensors, which the next training step cannot write into
    @torch.no_grad()
    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Rollout]]:
        if isinstance(prompts, str):
            raise TypeError("HFSampler.generate takes a sequence of prompts, not one string")
        was_training = self.model.training
        self.model.eval()
        out: list[list[Rollout]] = []
        starts = range(0, len(prompts), self.batch_size)
        try:
            chunks = LoggingTqdm(starts, desc="hf sampling (prompt chunks)") if self.progress else starts
            for chunk_idx, start in enumerate(chunks):
                chunk = list(prompts[start:start + self.batch_size])
                with torch.random.fork_rng(devices=self._fork_devices()):
                    torch.manual_seed(params.seed + chunk_idx)
                    out.extend(self._generate_chunk(chunk, params))
        finally:
            self.model.train(was_training)
        return out

    def part_seed(self, seed: int, start: int) -> int:
        """``seed`` + the index of the chunk ``start`` falls in (rounded up): the chunks of a job split into calls at
        multiples of ``batch_size`` get the seeds one call would give them, so the rollouts are the same."""
        return seed + -(-start // self.batch_size)

    def _fork_devices(self) -> list[int]:
        dev = next(self.model.parameters()).device
        return [dev.index or 0] if dev.type == "cuda" else []

    def _generate_chunk(self, prompts: list[str], params: SamplingParams) -> list[list[Rollout]]:
        tok = self.tokenizer
        old_side = tok.padding_side
        tok.padding_side = "left"  # decoder-only: the prompt must end where generation begins
        try:
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=self.add_special_tokens)
        finally:
            tok.padding_side = old_side
        device = next(self.model.parameters()).device
        greedy = params.temperature == 0
        n = 1 if greedy else params.n  # greedy samples are identical: decode once, copy
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=params.max_new_tokens, do_sample=not greedy, num_return_sequences=n,
            pad_token_id=tok.pad_token_id, eos_token_id=self.eos_id, use_cache=True,
            synced_gpus=resolve_synced_gpus(self.synced_gpus), **decoding_kwargs(params))
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)  # (B, T)
        if n > 1 and ids.shape[1] > 1:
            # prefill each prompt once, then copy its cache n times (generate would prefill n copies)
            gen_kwargs["past_key_values"] = self._prefill(ids[:, :-1], mask[:, :-1], n)
            ids, mask = ids.repeat_interleave(n, dim=0), mask.repeat_interleave(n, dim=0)
            gen_kwargs["num_return_sequences"] = 1
        seqs = self.model.generate(input_ids=ids, attention_mask=mask, **gen_kwargs)
        new = seqs[:, ids.shape[1]:].tolist()  # (B*n, T_new)
        rollouts = [self._to_rollout(ids) for ids in new]
        if greedy:
            return [[r] * params.n for r in rollouts]
        return [rollouts[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _prefill(self, ids: torch.Tensor, mask: torch.Tensor, n: int) -> Any:
        """KV cache of all but the last prompt token, repeated ``n`` times along the batch."""
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: positions start at the first token
        cache = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                           logits_to_keep=1).past_key_values  # the logits are unused: keep one position
        cache.batch_repeat_interleave(n)
        return cache

    def _to_rollout(self, ids: list[int]) -> Rollout:
        if self.eos_id is not None and self.eos_id in ids:
            ids = ids[:ids.index(self.eos_id)]
        pad = self.tokenizer.pad_token_id
        ids = [i for i in ids if i != pad]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Rollout(text=text, token_ids=tuple(ids))


def decoding_kwargs(params: SamplingParams) -> dict[str, Any]:
    """``generate`` keyword arguments for our decoding params: greedy, or sampling with temperature, top-k,
    top-p and min-p (HF applies them in vLLM's order: temperature, then the filters). HF has no presence
    penalty of vLLM's kind (its ``repetition_penalty`` divides logits), so a non-zero one is refused."""
    if params.presence_penalty != 0:
        raise ValueError(f"SamplingParams.presence_penalty={params.presence_penalty}: the 'hf' sampler has no "
                         "presence penalty; set sampling.presence_penalty: 0 or use sampling.backend: vllm")
    if params.temperature == 0:
        return dict(temperature=None, top_p=None, top_k=None, min_p=None)
    return dict(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                min_p=params.min_p if params.min_p > 0 else None)


def resolve_synced_gpus(synced_gpus: bool | None) -> bool:
    """``synced_gpus`` for ``generate``: as given, or (``None``) on when more than one rank runs."""
    if synced_gpus is not None:
        return synced_gpus
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
