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
