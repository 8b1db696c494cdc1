"""Refresh policies (a registry), and the trainer's p̂ refresh sampling exactly as the base pass rates do."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from paced.methods import load_method
from paced.passrate.estimate import estimate_pass_rates
from paced.passrate.refresh import REFRESH_POLICIES, refresh_due
from paced.passrate.state import PassRateState
from paced.rollouts.base import Rollout, Sampler, SamplingParams
from paced.tasks.base import Doc, get_task
from paced.trainer import DistillConfig
from paced.trainer.refresh import apply_online, maybe_refresh


class Recorder(Sampler):
    """Answers every prompt with the gold answer of its problem when ``right``; records each call's params."""

    def __init__(self, docs: list[Doc], right: bool = True) -> None:
        self.by_prompt = {get_task("toy_arith").format_prompt(d): d for d in docs}
        self.right, self.calls = right, []

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        task = get_task("toy_arith")
        return [[Rollout(text=task.reference(self.by_prompt[p]) if self.right else "no answer", token_ids=[1])
                 for _ in range(params.n)] for p in prompts]


def _docs(n: int = 4) -> list[Doc]:
    return [Doc(id=f"p{i}", prompt=f"{i}+1=", answer=str(i + 1), solution=f"{i}+1 #{i + 1}",
                meta={"tier": "learnable"}) for i in range(n)]


def test_policies_are_a_registry_with_their_schedules():
    assert set(REFRESH_POLICIES) >= {"once", "per_stage", "every_n", "online"}
    assert refresh_due("once", 0, 0, [10], None, have_state=False) == "initial"
    assert [refresh_due("every_n", s, 0, [10], 4, have_state=True) for s in (0, 3, 4, 8)] == \
        [None, None, "every_n", "every_n"]
    assert refresh_due("per_stage", 5, 1, [5, 5], None, have_state=True) == "stage_start"
    assert refresh_due("per_stage", 6, 1, [5, 5], None, have_state=True) is None
    assert refresh_due("online", 3, 0, [10], None, have_state=True) is None and REFRESH_POLICIES.get("online").online
    with pytest.raises(ValueError, match=r"Did you mean .online."):
        REFRESH_POLICIES.get("onlin")


def _ctx(docs, sampler, method, **cfg):
    config = DistillConfig(student="s", task="toy_arith", data="d", out_dir="o", max_new_tokens=7, **cfg)
    return SimpleNamespace(config=config, method=load_method(method), sampler=sampler, task=get_task("toy_arith"),
                           state=PassRateState(), online_outcomes=[])


ACC = SimpleNamespace(process_index=0, num_processes=1)


def test_refresh_samples_like_the_base_pass_rates(tmp_path):
    docs = _docs()
    decoding = {"top_p": 0.95, "top_k": 20, "min_p": 0.0}
    base = Recorder(docs)
    estimate_pass_rates(base, "toy_arith", docs, tmp_path / "p.jsonl", k=4, max_new_tokens=7, temperature=0.6,
                        decoding=decoding)
    live = Recorder(docs)
    ctx = _ctx(docs, live, {"preset": "paced-fkl", "k": 4}, temperature=0.6, decoding=decoding)
    maybe_refresh(ctx, ACC, docs, 0, 0, [10], SimpleNamespace(write=lambda row: None))
    (_, p_base), (_, p_live) = base.calls[0], live.calls[0]
    assert p_live.temperature == 0.6  # was a hard-coded 1.0
    same = {f: getattr(p_base, f) for f in SamplingParams.__dataclass_fields__ if f != "seed"}
    assert {f: getattr(p_live, f) for f in same} == same
    np.testing.assert_allclose(ctx.state.p_hat([d.id for d in docs]), 1.0)


def test_online_refresh_revisits_zero_weight_problems():
    docs = _docs(3)
    sampler = Recorder(docs, right=True)
    ctx = _ctx(docs, sampler, {"preset": "paced-rkl", "refresh": "online", "k": 2})
    ctx.state.set_counts("p0", 0, 2)  # p̂ = 0: weight 0 under the Beta kernel
    ctx.state.set_counts("p1", 2, 2)  # p̂ = 1: weight 0
    ctx.state.set_counts("p2", 1, 2)
    ctx.online_outcomes.append(("p2", 1))  # the on-policy sample of the one live problem
    apply_online(ctx, ACC, docs, np.array([0.0, 0.0, 0.25]), step=3)
    assert sampler.calls and len(sampler.calls[0][0]) == 2  # one probe each for p0 and p1
    assert ctx.state.counts("p0") == (1, 2)  # the student now solves it: p̂ leaves 0, the problem is back
    assert ctx.state.counts("p1") == (2, 2) and ctx.state.counts("p2") == (1, 2)


@pytest.mark.parametrize(("n", "world"), [(10, 2), (9, 2), (7, 4), (3, 4), (1, 2)])
def test_refresh_shards_are_even_so_sharded_generate_never_hangs(n, world):
    from paced.trainer.refresh import even_shard

    docs = _docs(n)
    shards = [even_shard(docs, r, world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n // world)
    assert {d.id for s in shards for d in s} == {d.id for d in docs}
