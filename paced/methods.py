"""Method specs: divergence schedule × kernel × weight source × refresh × smoothing × teacher.

A :class:`MethodSpec` says *what* to train, never *how long*: stage lengths are **fractions** of
``DistillConfig.steps`` (so the stage split of a two-stage schedule is an ablation knob that does
not change the step budget) or, alternatively, absolute step counts that must add up to
``DistillConfig.steps`` (checked by :meth:`MethodSpec.stage_steps` before any model loads).

Presets for the paper's rows live in :data:`METHODS` (``get_method("paced-fkl")``); a dict such as
``{"preset": "paced-fkl", "kernel": {"alpha": 2}}`` overrides a preset (:func:`load_method`).

Decisions the paper leaves open (docs/paper.md, "Not reported"), as defaults here:

- two-stage split FKL→RKL: 0.5 / 0.5 of the steps;
- refresh: ``once`` (p̂ estimated before training) for one-stage methods, ``per_stage`` for
  two-stage pass-rate methods (the student has moved after the FKL stage);
- ``online`` refresh keeps, per problem, a window of its last ``k`` verified outcomes; the on-policy
  samples of reverse-KL stages push new outcomes into it;
- smoothing ``none`` (p̂ = c/K, hard zeros at 0 and 1), K = 8, normalisation ``sum`` (Σwℓ/Σw).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from paced.divergences import Divergence, get_divergence
from paced.kernels import KERNELS, Kernel, get_kernel
from paced.normalisation import NORMALISATIONS
from paced.passrate import SMOOTHINGS
from paced.passrate.refresh import REFRESH_POLICIES
from paced.problem_weights import WEIGHT_SOURCES
from paced.registry import Registry

TEACHERS = ("separate", "self")
SOURCES = ("references", "on_policy")
# Which sequences a divergence is computed on unless a stage says otherwise (docs/paper.md).
DEFAULT_SOURCE = {"forward_kl": "references", "adaptive_kl": "references", "jsd": "references",
                  "reverse_kl": "on_policy"}
SHORT = {"forward_kl": "fkl", "reverse_kl": "rkl", "adaptive_kl": "akl", "jsd": "jsd"}
# docs/paper.md: the self-distillation teacher is the student prompted with the gold answer.
SELF_TEACHER_TEMPLATE = ("The ground truth answer to this problem is: {answer}; "
                         "derive the same final answer in your own words.\n{prompt}")


def check_keys(where: str, given: Mapping[str, Any], allowed: set[str]) -> None:
    """Raise ``ValueError`` naming unknown keys of ``given`` and the allowed ones."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))} in {where}; "
                         f"allowed: {', '.join(sorted(allowed))}")


def _choice(field_name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{field_name}={value!r} is not allowed; choose one of {', '.join(allowed)}")


@dataclass(frozen=True)
class StageSpec:
    """One stage: a divergence on ``source`` sequences for a ``fraction`` of the steps (or ``steps``)."""

    divergence: str
    fraction: float | None = None
    steps: int | None = None
    source: str | None = None  # None -> DEFAULT_SOURCE[divergence]
    params: tuple[tuple[str, float], ...] = ()  # e.g. AKL's mu, JSD's beta

    def __post_init__(self) -> None:
        params = self.params.items() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), float(v)) for k, v in params)))
        self.build()  # unknown name -> "did you mean / available"; bad params -> ValueError
        if (self.fraction is None) == (self.steps is None):
            raise ValueError(f"stage {self.divergence!r}: give exactly one of fraction or steps, got "
                             f"fraction={self.fraction!r}, steps={self.steps!r}")
        if self.fraction is not None and not (0 < float(self.fraction) <= 1):
            raise ValueError(f"stage fraction={self.fraction!r} is out of range; allowed: (0, 1]")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 0):
            raise ValueError(f"stage steps={self.steps!r} is out of range; allowed: integers >= 0")
        if self.source is None:
            object.__setattr__(self, "source", DEFAULT_SOURCE.get(self.divergence, "references"))
        _choice("stage source", self.source, SOURCES)

    @property
    def on_policy(self) -> bool:
        return self.source == "on_policy"

    def build(self) -> Divergence:
        return get_divergence(self.divergence, **dict(self.params))

    @classmethod
    def from_obj(cls, obj: Any) -> StageSpec:
        """From a dict, a ``[divergence, fraction]`` pair, or a StageSpec."""
        if isinstance(obj, StageSpec):
            return obj
        if isinstance(obj, (list, tuple)) and len(obj) == 2:
            key = "steps" if isinstance(obj[1], int) and not isinstance(obj[1], bool) else "fraction"
            return cls(divergence=obj[0], **{key: obj[1]})
        if not isinstance(obj, Mapping):
            raise ValueError(f"a stage must be a mapping or [divergence, fraction]; got {obj!r}")
        check_keys("stage", obj, {f.name for f in dataclasses.fields(cls)})
        return cls(**obj)


@dataclass(frozen=True)
class KernelConfig:
    """Kernel name and parameters; parameters a kernel does not take are ignored (not passed)."""

    name: str = "uniform"
    alpha: float = 1.0
    beta: float = 1.0
    floor: float = 0.0
    normalisation: str = "sum"

    def __post_init__(self) -> None:
        KERNELS.get(self.name)
        NORMALISATIONS.get(self.normalisation)
        self.build()  # validates alpha, beta, floor ranges

    def params(self) -> dict[str, float]:
        keys = KERNELS.get(self.name).defaults
        return {k: float(getattr(self, k)) for k in keys}

    def build(self) -> Kernel:
        return get_kernel(self.name, floor=float(self.floor), **self.params())


@dataclass(frozen=True)
class MethodSpec:
    """A distillation method. See the module docstring for the defaults and their reasons."""

    stages: tuple[StageSpec, ...] = ()
    kernel: KernelConfig = field(default_factory=KernelConfig)
    weight_source: str = "none"
    refresh: str = "once"
    refresh_every: int | None = None
    smoothing: str = "none"
    k: int = 8
    teacher: str = "separate"
    self_teacher_template: str = SELF_TEACHER_TEMPLATE
    oracle_zero_tiers: tuple[str, ...] = ("intractable",)
    name: str | None = None  # a preset's name; None -> derived id

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(StageSpec.from_obj(s) for s in self.stages))
        if isinstance(self.kernel, Mapping):
            check_keys("kernel", self.kernel, {f.name for f in dataclasses.fields(KernelConfig)})
            object.__setattr__(self, "kernel", KernelConfig(**self.kernel))
        object.__setattr__(self, "oracle_zero_tiers", tuple(self.oracle_zero_tiers))
        WEIGHT_SOURCES.get(self.weight_source)
        policy = REFRESH_POLICIES.get(self.refresh)
        _choice("teacher", self.teacher, TEACHERS)
        SMOOTHINGS.get(self.smoothing)
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k={self.k!r} is out of range; allowed: integers >= 1")
        if policy.needs_every:
            if isinstance(self.refresh_every, bool) or not isinstance(self.refresh_every, int) \
                    or self.refresh_every < 1:
                raise ValueError(f"refresh_every={self.refresh_every!r} must be an integer >= 1 "
                                 f"when refresh={self.refresh!r}")
        elif self.refresh_every is not None:
            raise ValueError(f"refresh_every={self.refresh_every!r} is only used by refresh policies that "
                             f"read it, got refresh={self.refresh!r}")
        if self.weight_source != "pass_rate" and self.kernel.name != "uniform":
            raise ValueError(f"kernel {self.kernel.name!r} needs pass rates; set weight_source='pass_rate' "
                             f"(got weight_source={self.weight_source!r})")
        if policy.online and not any(s.on_policy for s in self.stages):
            raise ValueError("refresh='online' updates p̂ from on-policy samples, but no stage is on-policy")
        self._check_stage_kinds()
        if self.teacher == "self" and "{answer}" not in self.self_teacher_template:
            raise ValueError("self_teacher_template must contain '{answer}' "
                             "(the self-distillation teacher sees the gold answer)")

    def _check_stage_kinds(self) -> None:
        kinds = {s.fraction is None for s in self.stages}
        if len(kinds) > 1:
            raise ValueError("stages must all give fractions or all give steps, not a mix")
        if self.stages and self.stages[0].fraction is not None:
            total = sum(float(s.fraction) for s in self.stages)  # type: ignore[arg-type]
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"stage fractions add up to {total:g}; they must add up to 1")

    @property
    def uses_pass_rates(self) -> bool:
        return self.weight_source == "pass_rate"

    @property
    def needs_sampler(self) -> bool:
        return self.uses_pass_rates or any(s.on_policy for s in self.stages)

    def stage_steps(self, total: int) -> list[int]:
        """Steps of each stage for a run of ``total`` steps (fractions rounded; last takes the rest)."""
        if not self.stages:
            return []
        if self.stages[0].steps is not None:
            steps = [int(s.steps) for s in self.stages]  # type: ignore[arg-type]
            if sum(steps) != total:
                raise ValueError(f"stage steps {steps} add up to {sum(steps)}, but the run has "
                                 f"steps={total}; make them equal or give fractions")
            return steps
        out = [round(float(s.fraction) * total) for s in self.stages[:-1]]  # type: ignore[arg-type]
        out.append(total - sum(out))
        if min(out) < 0:
            raise ValueError(f"stage split {out} of steps={total} is invalid")
        return out

    @property
    def id(self) -> str:
        """Self-describing id: the preset name, or e.g. ``paced-fkl-a2b1`` for an override."""
        return self.name if self.name else derive_id(self)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stages"] = [{**dataclasses.asdict(s), "params": dict(s.params)} for s in self.stages]
        d["oracle_zero_tiers"] = list(self.oracle_zero_tiers)
        d["id"] = self.id
        return d


def _stage_tag(spec: MethodSpec) -> str:
    parts = []
    even = all(s.fraction is not None and math.isclose(float(s.fraction), 1 / len(spec.stages))
               for s in spec.stages)
    for s in spec.stages:
        tag = SHORT.get(s.divergence, s.divergence)
        if s.source != DEFAULT_SOURCE.get(s.divergence, "references"):
            tag += "_" + s.source  # type: ignore[operator]
        if not even:
            tag += f"{s.fraction:g}" if s.fraction is not None else f"{s.steps}"
        parts.append(tag)
    return "-then-".join(parts) or "none"


def derive_id(spec: MethodSpec) -> str:
    """``<weighting>-<stages>[-<params>]``, e.g. ``paced-fkl-a1b1``, ``uniform-fkl-then-rkl``."""
    kern = spec.kernel
    prefix = {"beta": "paced", "hard_filter": "hardfilter"}.get(kern.name, kern.name)
    if spec.weight_source == "oracle_tier":
        prefix = "oracle"
    if spec.teacher == "self":
        prefix = "self-" + prefix
    out = f"{prefix}-{_stage_tag(spec)}"
    if kern.name == "beta":
        out += f"-a{kern.alpha:g}b{kern.beta:g}"
    extras = [(kern.floor, 0.0, f"floor{kern.floor:g}"),
              (kern.normalisation, "sum", f"norm_{kern.normalisation}")]
    if spec.uses_pass_rates:
        extras += [(spec.smoothing, "none", spec.smoothing), (spec.k, 8, f"k{spec.k}"),
                   (spec.refresh, _default_refresh(spec), f"refresh_{spec.refresh}"
                    + (str(spec.refresh_every) if spec.refresh_every else ""))]
    return out + "".join(f"-{tag}" for value, default, tag in extras if value != default)


def _default_refresh(spec: MethodSpec) -> str:
    return "per_stage" if len(spec.stages) > 1 else "once"


METHODS: Registry[MethodSpec] = Registry("method")

_F, _R, _A = "forward_kl", "reverse_kl", "adaptive_kl"
_BETA = {"name": "beta", "alpha": 1.0, "beta": 1.0}
_HARD = {"name": "hard_filter"}
_PR = "pass_rate"
_PRESETS: dict[str, dict[str, Any]] = {
    "base": {},
    "uniform-fkl": {"stages": [(_F, 1.0)]},
    "hardfilter-fkl": {"stages": [(_F, 1.0)], "kernel": _HARD, "weight_source": _PR},
    "akl": {"stages": [(_A, 1.0)]},
    "paced-fkl": {"stages": [(_F, 1.0)], "kernel": _BETA, "weight_source": "pass_rate"},
    "paced-fkl-then-rkl": {"stages": [(_F, 0.5), (_R, 0.5)], "kernel": _BETA, "weight_source": "pass_rate",
                           "refresh": "per_stage"},
    "uniform-fkl-then-rkl": {"stages": [(_F, 0.5), (_R, 0.5)]},
    "uniform-rkl": {"stages": [(_R, 1.0)]},
    "hardfilter-rkl": {"stages": [(_R, 1.0)], "kernel": _HARD, "weight_source": _PR},
    "paced-rkl": {"stages": [(_R, 1.0)], "kernel": _BETA, "weight_source": "pass_rate"},
    "self-paced-rkl": {"stages": [(_R, 1.0)], "kernel": _BETA, "weight_source": _PR, "teacher": "self"},
    "oracle-fkl": {"stages": [(_F, 1.0)], "weight_source": "oracle_tier"},
}
for _name, _d in _PRESETS.items():
    METHODS.add(_name, MethodSpec(**_d, name=_name))
PRESET_ORDER: tuple[str, ...] = tuple(_PRESETS)  # the paper's row order; report tables list methods in it


def get_method(name: str) -> MethodSpec:
    """A preset by name (``ValueError`` with "did you mean" for unknown names)."""
    return METHODS.get(name)


_SPEC_KEYS = {f.name for f in dataclasses.fields(MethodSpec)}


def method_from_dict(d: Mapping[str, Any]) -> MethodSpec:
    """A spec from a dict; ``preset`` names a base whose fields (and kernel fields) the dict overrides."""
    check_keys("method spec", d, _SPEC_KEYS | {"preset", "id"})
    d = {k: v for k, v in d.items() if k != "id"}
    if "preset" not in d:
        return MethodSpec(**d)
    base = get_method(d["preset"]).to_dict()
    base.pop("id")
    base["name"] = None  # an override is no longer the preset: its id is derived
    for key, value in d.items():
        if key == "preset":
            continue
        if key == "kernel" and isinstance(value, Mapping):
            check_keys("kernel", value, {f.name for f in dataclasses.fields(KernelConfig)})
            base["kernel"] = {**base["kernel"], **value}
        else:
            base[key] = value
    return MethodSpec(**base)


def load_method(spec: str | Path | Mapping[str, Any] | MethodSpec) -> MethodSpec:
    """Resolve a preset name, a YAML file path, a dict (optionally with ``preset``), or a spec."""
    if isinstance(spec, MethodSpec):
        return spec
    if isinstance(spec, Mapping):
        return method_from_dict(spec)
    text = str(spec)
    if text.endswith((".yaml", ".yml")):
        data = yaml.safe_load(Path(text).read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise ValueError(f"{text}: a method YAML must hold a mapping, got {type(data).__name__}")
        return method_from_dict(data)
    return get_method(text)
