"""The HF generate sampler: shapes, seeding, greedy, left padding, EOS stripping, loading by path."""

from __future__ import annotations

import pytest
import torch

from paced.rollouts import HFSampler, SamplingParams, get_sampler
from paced.world.config import ModelSpec
from paced.world.models import make_model
from paced.world.tokenizer import build_char_tokenizer

PROMPTS = ["@D+8*F-9-B*6*4-4..=", "!abc=", "@1+B"]


@pytest.fixture(scope="module")
def tok():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    torch.set_num_threads(1)
    return make_model(ModelSpec(d_model=32, n_layers=1, n_heads=1, head_dim=32, d_mlp=64), tok, seed=0)


def test_registered_and_unknown_backend_suggests(model, tok):
    assert isinstance(get_sampler("hf", model=model, tokenizer=tok), HFSampler)
    with pytest.raises(ValueError, match="Did you mean 'hf'"):
        get_sampler("hff", model=model, tokenizer=tok)


def test_shapes_seeding_and_stripping(model, tok):
    s = HFSampler(model, tok, batch_size=2)
    params = SamplingParams(n=4, max_new_tokens=12, temperature=1.0, seed=5)
    out = s.generate(PROMPTS, params)
    assert [len(rs) for rs in out] == [4, 4, 4]
    assert out == s.generate(PROMPTS, params)  # same seed, same rollouts
    assert out != s.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=12, temperature=1.0, seed=6))
    special = {tok.eos_token_id, tok.pad_token_id}
    for rs in out:
        for r in rs:
            assert len(r.token_ids) <= 12 and not special & set(r.token_ids)
            assert r.text == tok.decode(list(r.token_ids), skip_special_tokens=True)


def test_sampling_matches_plain_generate(model, tok):
    """The prefill-once path draws exactly what ``generate(num_return_sequences=n)`` draws."""
    s = HFSampler(model, tok, batch_size=8)
    got = s.generate(PROMPTS, SamplingParams(n=3, max_new_tokens=10, temperature=0.8, top_p=0.9, seed=3))
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    torch.manual_seed(3)
    ref = model.generate(**enc, do_sample=True, temperature=0.8, top_p=0.9, top_k=0, max_new_tokens=10,
                         num_return_sequences=3, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    ref_text = [tok.decode(r[enc["input_ids"].shape[1]:], skip_special_tokens=True) for r in ref]
    assert [r.text for rs in got for r in rs] == ref_text


def test_greedy_is_padding_invariant_and_copies_n(model, tok):
    s = HFSampler(model, tok, batch_size=8)
    params = SamplingParams(n=3, max_new_tokens=8, temperature=0.0)
    batched = s.generate(PROMPTS, params)
    single = [s.generate([p], params)[0] for p in PROMPTS]
    assert batched == single  # left padding does not change a greedy completion
    assert all(rs[0] == rs[1] == rs[2] for rs in batched)


def test_global_rng_untouched(model, tok):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    HFSampler(model, tok).generate(PROMPTS, SamplingParams(n=2, max_new_tokens=4, seed=0))
    assert torch.equal(torch.rand(1), before)


def test_load_by_path_and_missing_path(model, tok, tmp_path):
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    s = HFSampler(str(tmp_path / "m"))
    params = SamplingParams(n=1, max_new_tokens=6, temperature=0.0)
    assert s.generate(PROMPTS, params) == HFSampler(model, tok).generate(PROMPTS, params)
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        HFSampler(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="tokenizer"):
        HFSampler(model)


def test_top_k_one_is_greedy_and_filters_match_plain_generate(model, tok):
    """top_k = 1 keeps only the argmax (a closed form: sampling = greedy); top-k and min-p together draw
    exactly what ``generate`` draws with the same filters."""
    s = HFSampler(model, tok, batch_size=8)
    greedy = s.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=8, temperature=0.0))
    top1 = s.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=8, temperature=1.3, top_k=1, seed=4))
    assert top1 == greedy
    params = SamplingParams(n=2, max_new_tokens=10, temperature=0.7, top_p=0.95, top_k=20, min_p=0.05, seed=9)
    got = s.generate(PROMPTS, params)
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    torch.manual_seed(9)
    ref = model.generate(**enc, do_sample=True, temperature=0.7, top_p=0.95, top_k=20, min_p=0.05,
                         max_new_tokens=10, num_return_sequences=2, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id)
    ref_text = [tok.decode(r[enc["input_ids"].shape[1]:], skip_special_tokens=True) for r in ref]
    assert [r.text for rs in got for r in rs] == ref_text
    unfiltered = s.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=10, temperature=0.7, seed=9))
    assert got != unfiltered and len({r.text for rs in unfiltered for r in rs}) > 1  # the filters act


def test_presence_penalty_refused_and_params_validated(model, tok):
    with pytest.raises(ValueError, match=r"presence_penalty=0\.5.*backend: vllm"):
        HFSampler(model, tok).generate(PROMPTS, SamplingParams(n=2, max_new_tokens=4, presence_penalty=0.5))
    for field, bad in (("top_k", -1), ("min_p", 1.0), ("top_p", 0.0), ("presence_penalty", 3.0)):
        with pytest.raises(ValueError, match=f"SamplingParams.{field} must be"):
            SamplingParams(**{field: bad})
    section = {"backend": "hf", "batch_size": 32, "max_new_tokens": 16, "temperature": 0.6, "top_p": 0.95,
               "top_k": 20, "min_p": 0.0, "presence_penalty": 0.0}
    assert SamplingParams.from_section(section, n=4, seed=3) == SamplingParams(
        n=4, seed=3, max_new_tokens=16, temperature=0.6, top_p=0.95, top_k=20)
    assert SamplingParams.from_section(section, n=1, seed=0, temperature=0.0).temperature == 0.0


def test_prefill_keeps_one_logit_position_and_synced_gpus_reaches_generate(model, tok, monkeypatch,
                                                                             tmp_path):
    """The shared prefill asks the model for the last position's logits only (a full [B, T, V] prefill is what
    runs out of memory at scale); ``synced_gpus`` is off on one process and passed through when set."""
    shapes = []
    hook = model.lm_head.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape)))
    try:
        HFSampler(model, tok, batch_size=8).generate(PROMPTS, SamplingParams(n=3, max_new_tokens=2, seed=0))
    finally:
        hook.remove()
    longest = max(len(p) for p in PROMPTS)
    assert shapes[0] == (len(PROMPTS), 1, len(tok))  # the prefill: one position, not longest - 1
    assert all(s[1] == 1 for s in shapes) and longest > 2
    seen = []
    real = model.generate
    monkeypatch.setattr(model, "generate", lambda *a, **kw: seen.append(kw["synced_gpus"]) or real(*a, **kw))
    HFSampler(model, tok).generate(PROMPTS[:1], SamplingParams(n=1, max_new_tokens=2, temperature=0.0))
    import torch.distributed as dist

    # synced_gpus all-reduces a "finished" flag each step: a one-rank gloo group stands in for the shards
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        greedy = SamplingParams(n=1, max_new_tokens=2, temperature=0.0)
        synced = HFSampler(model, tok, synced_gpus=True).generate(PROMPTS[:1], greedy)
    finally:
        dist.destroy_process_group()
    assert seen[0] is False and seen[1] is True
    assert synced == HFSampler(model, tok).generate(PROMPTS[:1], greedy)


def test_progress_lines_reach_the_log(model, tok, caplog):
    """``progress=True`` logs the chunks done (what a rule's log shows), ending at the total."""
    import logging

    with caplog.at_level(logging.INFO, logger="paced.progress"):
        HFSampler(model, tok, batch_size=1, progress=True).generate(
            PROMPTS, SamplingParams(n=1, max_new_tokens=2, temperature=0.0))
    lines = [r.getMessage() for r in caplog.records if r.name == "paced.progress"]
    assert lines and lines[-1].startswith("hf sampling (prompt chunks): 3/3 (100%)")
