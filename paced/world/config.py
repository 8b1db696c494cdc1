"""Configuration of the embedded toy world: data sizes, model shapes and pretraining schedules.

Two presets live in :data:`WORLD_PRESETS`: ``default`` (calibrated to the paper's regime, builds in
a few minutes on 2 CPU cores) and ``tiny`` (builds in seconds for tests; not calibrated).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from paced.registry import Registry


def _check(cond: bool, owner: str, name: str, value: object, allowed: str) -> None:
    if not cond:
        raise ValueError(f"{owner}.{name} = {value!r} is invalid; allowed: {allowed}")


def _check_ints(obj: object, names: tuple[str, ...], low: int = 1) -> None:
    """Each named field of ``obj`` is an integer >= ``low``."""
    for name in names:
        value = getattr(obj, name)
        _check(isinstance(value, int) and value >= low, type(obj).__name__, name, value, f"an integer >= {low}")


@dataclass(frozen=True)
class ModelSpec:
    """A Qwen3 causal LM trained from scratch (tied embeddings)."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 2
    head_dim: int = 64  # vLLM needs head_dim >= 64, so heads are sized by head_dim, not d_model / n_heads
    d_mlp: int = 384

    def __post_init__(self) -> None:
        _check_ints(self, ("d_model", "n_layers", "n_heads", "head_dim", "d_mlp"))


@dataclass(frozen=True)
class TrainSpec:
    """Pretraining schedule: AdamW (0.9, 0.98), clip 1.0, linear warmup then cosine to ``min_lr_frac``.

    Checkpoints are evaluated every ``eval_every`` steps from ``eval_from``; the first that meets the
    selection criteria is kept (accuracy jumps abruptly, so a fixed step would miss the target).
    """

    lr: float = 3e-3
    batch_size: int = 64
    max_steps: int = 1400
    warmup_steps: int = 50
    min_lr_frac: float = 0.1
    weight_decay: float = 0.01
    eval_from: int = 300
    eval_every: int = 25

    def __post_init__(self) -> None:
        _check(self.lr > 0, "TrainSpec", "lr", self.lr, "> 0")
        _check_ints(self, ("batch_size", "max_steps", "eval_every"))
        _check(0 <= self.warmup_steps < self.max_steps, "TrainSpec", "warmup_steps", self.warmup_steps,
               f"0 <= warmup_steps < max_steps ({self.max_steps})")
        _check(0 <= self.eval_from <= self.max_steps, "TrainSpec", "eval_from", self.eval_from,
               f"0 .. max_steps ({self.max_steps})")
        _check(0 <= self.min_lr_frac <= 1, "TrainSpec", "min_lr_frac", self.min_lr_frac, "[0, 1]")
        _check(self.weight_decay >= 0, "TrainSpec", "weight_decay", self.weight_decay, ">= 0")


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world; the same config and seed give the same world."""

    seed: int = 0
    max_len: int = 8  # chain length of the learnable tier is uniform on 1..max_len; prompts pad to it
    intractable_min_len: int = 6  # intractable chains are intractable_min_len..max_len long
    # 25% intractable. The default run (300 steps x 16) draws each problem ~6 times; keep it <~ 16 (a
    # prototype that drew 128 intractable problems ~47 times each memorised them). A 1,536 pool doubled the
    # cost of every pass-rate estimate and refresh for no change in the regime
    n_pool_learnable: int = 576
    n_pool_intractable: int = 192
    n_eval_learnable: int = 384
    n_eval_intractable: int = 128
    n_val: int = 256  # per tier, for checkpoint selection only (never written as an eval set)
    n_hard_candidates: int = 1024
    max_hard: int = 128
    hard_max_pass: float = 0.125  # "hard" (AIME analogue) = base-student pass rate <= 1/8
    n_facts: int = 256
    k: int = 8  # samples per problem for pass rates (hard set and calibration)
    temperature: float = 1.0
    teacher: ModelSpec = field(default_factory=lambda: ModelSpec(256, 2, 4, 64, 768))
    # 4 heads of 64 (vLLM-loadable): at lr 3e-3 it passed mod-16 greedy 0.6-0.8 at mixed steps 525-800;
    # 2 heads of 64 stayed below 0.4 on mod-16 for 1400 steps
    student: ModelSpec = field(default_factory=lambda: ModelSpec(128, 2, 4, 64, 384))
    # higher lr, cosine over 800 steps, early stop at the first checkpoint >= teacher_min_acc (checked every 50):
    # 0.98/0.98 at step 650 (seed 0; lr 3e-3 over 1500 needed 850); mod-24 is the slower tier (0.68 at 500).
    # Tried and slower (1 thread, same seed): d = 192 (0.25/0.07 at step 350), MLP 512 (0.27/0.15 at 500),
    # cosine over 500 (0.17/0.07 at 375), 2/3 of each batch mod-24 (0.52/0.22 at 400 vs 0.69/0.39)
    teacher_train: TrainSpec = field(default_factory=lambda: TrainSpec(lr=5e-3, max_steps=800, eval_from=400,
                                                                       eval_every=25))
    student_train: TrainSpec = field(default_factory=TrainSpec)
    # facts-only steps before the mixed phase (constant lr ``student_train.lr``, 20 warmup steps; ~1/4 the cost
    # of a mixed step). How deeply the facts are learned decides whether distillation can erode them: 400 steps
    # then 50% facts in the mixed phase left a median MC log-likelihood margin of ~10 nats, and the probe did
    # not move in 300 distillation steps at lr 1e-4 (EM 0.996 -> 0.984); 150 steps (EM ~0.5), 12% facts
    # in the mixed phase and the top-up below start the probe at EM 0.91 / MC 0.98 and uniform FKL erodes it
    # gradually (EM 0.85, 0.83, 0.80 at steps 100, 200, 300; MC 0.97, 0.97, 0.96)
    student_facts_first_steps: int = 150
    # > 0: select the student by the mod-16 window alone, then re-learn the facts (half facts, half mod-16)
    # for at most this many steps, stopping at the first check with facts EM >= student_min_facts_em: the
    # probe then starts high but shallowly learned, so distillation can erode it (0 = facts EM is part of
    # the mixed-phase selection, and the facts end up deeply over-learned)
    student_topup_steps: int = 200
    teacher_min_acc: float = 0.98  # first teacher checkpoint with greedy accuracy >= this on both tiers
    student_min_facts_em: float = 0.9
    student_acc_range: tuple[float, float] = (0.6, 0.8)  # mod-16 greedy accuracy window
    student_facts_share: float = 0.12  # share of facts in a mixed-phase student batch (the rest is mod-16)
    teacher_intractable_share: float = 0.5  # share of mod-24 in a teacher batch (the rest is mod-16)
    # prompts per generate call for the world's own evaluations (x k rows when sampling): on CPU, 32 prompts x 8
    # samples ran 1.7x faster than 256 x 8 (8.9 s against 15.5 s for 512 prompts, one thread)
    sampler_batch_size: int = 32

    def __post_init__(self) -> None:
        _check_ints(self, ("seed", "student_topup_steps", "student_facts_first_steps"), low=0)
        _check(1 <= self.max_len <= 12, "WorldConfig", "max_len", self.max_len, "1..12")
        _check(1 <= self.intractable_min_len <= self.max_len, "WorldConfig", "intractable_min_len",
               self.intractable_min_len, f"1..max_len ({self.max_len})")
        _check_ints(self, ("n_pool_learnable", "n_pool_intractable", "n_eval_learnable", "n_eval_intractable",
                           "n_val", "n_hard_candidates", "max_hard", "n_facts", "k", "sampler_batch_size"))
        _check(self.n_facts <= 26 ** 3, "WorldConfig", "n_facts", self.n_facts, "<= 26**3 distinct keys")
        _check(0 <= self.hard_max_pass < 1, "WorldConfig", "hard_max_pass", self.hard_max_pass, "[0, 1)")
        _check(self.temperature > 0, "WorldConfig", "temperature", self.temperature, "> 0")
        _check(0 <= self.teacher_min_acc <= 1, "WorldConfig", "teacher_min_acc", self.teacher_min_acc, "[0, 1]")
        _check(0 <= self.student_min_facts_em <= 1, "WorldConfig", "student_min_facts_em",
               self.student_min_facts_em, "[0, 1]")
        _check(0 < self.student_facts_share < 1, "WorldConfig", "student_facts_share",
               self.student_facts_share, "(0, 1)")
        _check(0 < self.teacher_intractable_share < 1, "WorldConfig", "teacher_intractable_share",
               self.teacher_intractable_share, "(0, 1)")
        lo, hi = self.student_acc_range
        _check(0 <= lo <= hi <= 1, "WorldConfig", "student_acc_range", self.student_acc_range,
               "(lo, hi) with 0 <= lo <= hi <= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        """Inverse of :meth:`to_dict` (nested specs and the accuracy window are rebuilt)."""
        d = dict(d)
        for key, spec in (("teacher", ModelSpec), ("student", ModelSpec),
                          ("teacher_train", TrainSpec), ("student_train", TrainSpec)):
            if isinstance(d.get(key), dict):
                d[key] = spec(**d[key])
        if "student_acc_range" in d:
            d["student_acc_range"] = tuple(d["student_acc_range"])
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"WorldConfig: unknown fields {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> WorldConfig:
        """A named preset (``default``, ``tiny``) with field overrides."""
        return dataclasses.replace(WORLD_PRESETS.get(name)(), **overrides)


WORLD_PRESETS: Registry[Any] = Registry("world preset")
WORLD_PRESETS.add("default", WorldConfig)


@WORLD_PRESETS.register("tiny")
def _tiny() -> WorldConfig:
    """Seconds to build; for tests. Not calibrated: selection criteria are wide open."""
    return WorldConfig(
        n_pool_learnable=48, n_pool_intractable=16, n_eval_learnable=24, n_eval_intractable=8,
        n_val=16, n_hard_candidates=32, max_hard=8, n_facts=16, k=4,
        teacher=ModelSpec(64, 1, 1, 64, 64), student=ModelSpec(32, 1, 1, 32, 64),
        teacher_train=TrainSpec(lr=3e-3, batch_size=16, max_steps=12, warmup_steps=2, eval_from=6,
                                eval_every=6),
        student_train=TrainSpec(lr=3e-3, batch_size=16, max_steps=12, warmup_steps=2, eval_from=6,
                                eval_every=6),
        teacher_min_acc=0.0, student_min_facts_em=0.0, student_acc_range=(0.0, 1.0),
        student_facts_first_steps=4, sampler_batch_size=64)
