"""Method specs, presets, weights from pass-rate state, and data order (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from paced.methods import METHODS, MethodSpec, get_method, load_method
from paced.passrate.state import PassRateState, histogram
from paced.problem_weights import problem_weights
from paced.tasks.base import Doc
from paced.trainer.batches import batch_indices
from paced.trainer.config import DistillConfig

PAPER_ROWS = ["base", "uniform-fkl", "hardfilter-fkl", "akl", "paced-fkl", "paced-fkl-then-rkl",
              "uniform-fkl-then-rkl", "uniform-rkl", "hardfilter-rkl", "paced-rkl", "self-paced-rkl", "oracle-fkl"]


def test_presets_exist_and_are_named_by_their_id():
    assert set(PAPER_ROWS) <= set(METHODS.names())
    for name in PAPER_ROWS:
        assert get_method(name).id == name


def test_preset_contents():
    paced = get_method("paced-fkl")
    assert (paced.kernel.name, paced.kernel.alpha, paced.kernel.beta) == ("beta", 1.0, 1.0)
    assert paced.weight_source == "pass_rate" and paced.k == 8 and paced.smoothing == "none"
    assert [s.divergence for s in get_method("paced-fkl-then-rkl").stages] == ["forward_kl", "reverse_kl"]
    assert get_method("paced-fkl-then-rkl").stage_steps(300) == [150, 150]
    assert [s.source for s in get_method("uniform-fkl-then-rkl").stages] == ["references", "on_policy"]
    assert get_method("hardfilter-rkl").kernel.name == "hard_filter"
    assert get_method("self-paced-rkl").teacher == "self"
    assert get_method("oracle-fkl").weight_source == "oracle_tier"
    assert get_method("akl").stages[0].divergence == "adaptive_kl"
    assert get_method("base").stages == ()


def test_override_of_a_preset_gets_a_self_describing_id():
    spec = load_method({"preset": "paced-fkl", "kernel": {"alpha": 2}})
    assert (spec.kernel.alpha, spec.kernel.beta) == (2.0, 1.0)
    assert spec.id == "paced-fkl-a2b1"
    split = load_method({"preset": "paced-fkl-then-rkl", "stages": [["forward_kl", 0.3], ["reverse_kl", 0.7]]})
    assert split.id == "paced-fkl0.3-then-rkl0.7-a1b1"
    assert split.stage_steps(10) == [3, 7]


def test_distinct_specs_get_distinct_ids():
    variants = [{"preset": "paced-fkl"}, {"preset": "paced-fkl", "smoothing": "laplace"},
                {"preset": "paced-fkl", "k": 16}, {"preset": "paced-fkl", "kernel": {"floor": 0.02}},
                {"preset": "paced-fkl", "refresh": "every_n", "refresh_every": 50},
                {"preset": "paced-fkl", "kernel": {"normalisation": "mean_one"}},
                {"preset": "uniform-fkl"}, {"preset": "hardfilter-fkl"}]
    ids = [load_method(v).id for v in variants]
    assert len(set(ids)) == len(ids), ids


def test_yaml_roundtrip(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("preset: paced-rkl\nkernel: {alpha: 3, beta: 1}\nrefresh: online\n")
    spec = load_method(str(path))
    assert (spec.kernel.alpha, spec.refresh, spec.stages[0].divergence) == (3.0, "online", "reverse_kl")
    again = load_method({k: v for k, v in spec.to_dict().items() if k != "name"})
    assert again == spec


@pytest.mark.parametrize("spec, match", [
    ({"preset": "paced-fkl", "kernal": {}}, "unknown key.*'kernal'.*allowed: .*kernel"),
    ({"preset": "paced-fkl", "kernel": {"alpah": 2}}, "unknown key.*'alpah'.*allowed: .*alpha"),
    ({"preset": "paced-fk"}, "Did you mean 'paced-fkl'"),
    ({"stages": [["forward_k", 1.0]]}, "Did you mean 'forward_kl'"),
    ({"stages": [["forward_kl", 1.0]], "weight_source": "pass_rate", "kernel": {"name": "betta"}},
     "Did you mean 'beta'"),
    ({"stages": [["forward_kl", -3]]}, "steps=-3"),
    ({"stages": [["forward_kl", 0.5], ["reverse_kl", 0.3]]}, "add up to 0.8"),
    ({"stages": [["forward_kl", 0.5], ["reverse_kl", 5]]}, "not a mix"),
    ({"preset": "paced-fkl", "refresh": "every_n"}, "refresh_every"),
    ({"stages": [["forward_kl", 1.0]], "kernel": {"name": "beta"}}, "weight_source='pass_rate'"),
    ({"preset": "paced-fkl", "refresh": "online"}, "no stage is on-policy"),
    ({"preset": "paced-fkl", "k": 0}, "k=0"),
    ({"preset": "paced-fkl", "kernel": {"alpha": -1}}, "alpha"),
])
def test_bad_specs_are_rejected(spec, match):
    with pytest.raises(ValueError, match=match):
        load_method(spec)


def test_absolute_stage_steps_must_add_up_to_the_run():
    spec = MethodSpec(stages=[("forward_kl", 30), ("reverse_kl", 70)])
    assert spec.stage_steps(100) == [30, 70]
    with pytest.raises(ValueError, match=r"add up to 100.*steps=120"):
        spec.stage_steps(120)


def test_distill_config_validation():
    base = dict(student="s", task="toy_arith", data="d", out_dir="o")
    with pytest.raises(ValueError, match="steps=-5"):
        DistillConfig(**base, steps=-5)
    with pytest.raises(ValueError, match="save_steps"):
        DistillConfig(**base, steps=10, save_steps=(5, 11))
    with pytest.raises(ValueError, match=r"unknown key.*'stpes'"):
        DistillConfig.from_dict({**base, "stpes": 3})
    assert DistillConfig(**base, steps=10, save_steps=[5, 2, 5]).save_steps == (2, 5)


def _docs(tiers):
    return [Doc(id=f"d{i}", prompt="p", answer="a", meta={"tier": t}) for i, t in enumerate(tiers)]


def test_hard_filter_drops_exactly_the_p_in_0_or_1_problems():
    docs = _docs(["learnable"] * 9)
    state = PassRateState()
    for c, d in enumerate(docs):
        state.set_counts(d.id, c, 8)  # p̂ = 0, 1/8, ..., 1
    w = problem_weights("pass_rate", docs, state, load_method("hardfilter-fkl").kernel.build())
    np.testing.assert_array_equal(w, [0, 1, 1, 1, 1, 1, 1, 1, 0])
    beta = problem_weights("pass_rate", docs, state, load_method("paced-fkl").kernel.build())
    p = np.arange(9) / 8
    np.testing.assert_allclose(beta, p * (1 - p))


def test_oracle_weights_follow_the_tier_label():
    docs = _docs(["learnable", "intractable", "learnable"])
    w = problem_weights("oracle_tier", docs, PassRateState(), load_method("oracle-fkl").kernel.build())
    np.testing.assert_array_equal(w, [1, 0, 1])


def test_online_window_and_histogram():
    docs = _docs(["learnable", "intractable"])
    state = PassRateState(smoothing="laplace")
    state.set_counts("d0", 1, 4)
    state.set_counts("d1", 0, 4)
    for _ in range(4):
        state.push("d0", True)  # the window now holds only the new outcomes
    np.testing.assert_allclose(state.p_hat(["d0", "d1"]), [(4 + 1) / 6, 1 / 6])
    assert histogram(state, docs) == {"all": {"0/4": 1, "4/4": 1}, "tier:learnable": {"4/4": 1},
                                      "tier:intractable": {"0/4": 1}}


def test_batch_order_is_seeded_and_covers_each_epoch():
    order = [i for s in range(5) for i in batch_indices(s, 10, 4, seed=3)]  # two epochs
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert order == [i for s in range(5) for i in batch_indices(s, 10, 4, seed=3)]
    assert order != [i for s in range(5) for i in batch_indices(s, 10, 4, seed=4)]
