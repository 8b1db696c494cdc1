"""The paper's claims, pre-registered: what each claim compares, on which cell, and in which family.

Pre-registration (fixed here, before any result is read):

- a **track** is a set of roles (``paced``, ``uniform``, ...) mapped to method ids; the FKL track is the
  paper's distillation table (forward KL, plus the two-stage FKL→RKL), the self track its
  self-distillation table (reverse KL, the student prompted with the gold answer);
- each claim of a track has one **primary cell**: the first of ``tasks`` present in the summary, tier
  ``all``, its ``metric``, at the **final budget** (the largest step evaluated); the SNR bell's primary
  cell is the ``all`` bin group of the base student's SNR measurement;
- a track's primary claims form one **family** of m claims; each is judged with a two-sided interval at
  level 1 − α/m (Bonferroni), so the chance that any primary verdict of a track is wrong (reproduced or
  not reproduced when the truth is the opposite or no difference) is at most α. Bonferroni rather than
  Holm: the verdict is then exactly "the reported interval excludes the null value", which a reader
  can check from the table;
- every other cell (other tiers, budgets, metrics, bin groups) is **exploratory**: judged at level 1 − α
  per cell with no adjustment, and labelled so.

"Forgets no more than" is a non-inferiority claim: reproduced when the interval of forgetting(reference)
− forgetting(method) lies above −margin (``report.noninferiority_margin_pts``), not reproduced when it
lies below −margin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SUPERIORITY, NONINFERIORITY = "superiority", "noninferiority"
TARGETS = ("accuracy", "forgetting", "snr")
PRIMARY, EXPLORATORY = "primary", "exploratory"
# Generation tasks in the order a primary cell is looked for: the toy world's, then the paper's hardest
# benchmark (AIME 2025 carries the paper's headline gains), then MATH-500.
ACCURACY_TASKS = ("toy_arith", "aime25", "aime24", "math500")
PROBE_TASKS = ("toy_probe", "mmlu")
SNR_PRIMARY_GROUP = "all"


@dataclass(frozen=True)
class Claim:
    """``method`` beats ``reference`` (role names) on ``target``; ``test`` says how a win is judged.

    ``tasks``/``tier``/``metric``: the pre-registered primary cell (first task present wins).
    """

    name: str
    method: str
    reference: str
    target: str  # accuracy (higher is better), forgetting (lower is better), snr (bell in p̂)
    test: str = SUPERIORITY
    tasks: tuple[str, ...] = ACCURACY_TASKS
    tier: str = "all"
    metric: str = "avg@k"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"Claim.target={self.target!r} is not allowed; choose one of {', '.join(TARGETS)}")
        if self.test not in (SUPERIORITY, NONINFERIORITY):
            raise ValueError(f"Claim.test={self.test!r} is not allowed; choose {SUPERIORITY} or {NONINFERIORITY}")


PACED_GT_UNIFORM = Claim("PACED > uniform", "paced", "uniform", "accuracy")
PACED_GT_HARDFILTER = Claim("PACED > hard filter", "paced", "hardfilter", "accuracy")
PACED_GT_AKL = Claim("PACED > AKL", "paced", "akl", "accuracy")
TWO_STAGE_GT_PACED = Claim("FKL→RKL > PACED FKL", "two_stage", "paced", "accuracy")
TWO_STAGE_GT_UNIFORM = Claim("FKL→RKL > uniform FKL", "two_stage", "uniform", "accuracy")
PACED_FORGETS_LESS = Claim(
    "PACED forgets no more than uniform",
    "paced",
    "uniform",
    "forgetting",
    test=NONINFERIORITY,
    tasks=PROBE_TASKS,
    metric="forgetting_pts",  # MC accuracy, the paper's MMLU measure
)
SNR_BELL = Claim("SNR is bell-shaped in p", "base", "", "snr", tasks=("snr",), tier=SNR_PRIMARY_GROUP, metric="snr")

CLAIMS: tuple[Claim, ...] = (
    PACED_GT_UNIFORM,
    PACED_GT_HARDFILTER,
    PACED_GT_AKL,
    TWO_STAGE_GT_PACED,
    TWO_STAGE_GT_UNIFORM,
    PACED_FORGETS_LESS,
    SNR_BELL,
)


@dataclass(frozen=True)
class Track:
    """A paper table: role -> method id, and the claims (its primary family) judged on it."""

    name: str
    roles: tuple[tuple[str, str], ...]
    claims: tuple[Claim, ...]

    @property
    def role_map(self) -> dict[str, str]:
        return dict(self.roles)

    @property
    def family_size(self) -> int:
        return len(self.claims)


FKL_TRACK = Track(
    "fkl",
    (
        ("paced", "paced-fkl"),
        ("uniform", "uniform-fkl"),
        ("hardfilter", "hardfilter-fkl"),
        ("akl", "akl"),
        ("two_stage", "paced-fkl-then-rkl"),
        ("oracle", "oracle-fkl"),
    ),
    CLAIMS,
)
# The self-distillation rows of config/paper-self.yaml; the paper reports no two-stage run there.
SELF_TRACK = Track(
    "self-rkl",
    (
        ("paced", "self-paced-rkl"),
        ("uniform", "self-uniform-rkl"),
        ("hardfilter", "self-hardfilter-rkl"),
        ("akl", "self-akl"),
    ),
    (PACED_GT_UNIFORM, PACED_GT_HARDFILTER, PACED_GT_AKL, PACED_FORGETS_LESS, SNR_BELL),
)
TRACKS: tuple[Track, ...] = (FKL_TRACK, SELF_TRACK)


def tracks_for(methods: set[str] | frozenset[str], roles: Mapping[str, str] | None = None) -> list[Track]:
    """The tracks to judge: each whose ``paced`` method was run (the FKL track if none was).

    Explicit ``roles`` override the FKL track's (a custom track keeping its claims and family).
    """
    if roles:
        return [Track("custom", tuple({**FKL_TRACK.role_map, **roles}.items()), FKL_TRACK.claims)]
    present = [t for t in TRACKS if t.role_map["paced"] in methods]
    return present or [FKL_TRACK]


def primary_level(alpha: float, family_size: int) -> float:
    """Per-claim interval level of a Bonferroni family of ``family_size`` claims: 1 − α/m."""
    if not 0 < alpha < 1:
        raise ValueError(f"report.alpha={alpha!r} is out of range; allowed: (0, 1)")
    return 1.0 - alpha / max(int(family_size), 1)
