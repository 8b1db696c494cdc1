"""The benchmark suite's resolved configuration: what the Snakemake DAG runs.

``resolve_suite(config)`` takes the (schema-validated) config dict, checks everything a schema
cannot — method and task names against the registries, budgets against checkpoints, paths that
could escape the results directory, hub names that are unavailable offline — and returns a
frozen :class:`Suite`. It raises ``ValueError`` naming the key, the value and the fix, before any
job runs.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from paced.availability import check_dataset_available, check_model_available
from paced.pipeline.config_checks import check_grid, check_seeds, resolve_results_dir
from paced.pipeline.layout import Layout

SECTIONS = ("world", "models", "sampling", "passrate", "references", "snr", "train", "eval", "resources", "report",
            "vllm")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class EvalTask:
    name: str
    task: str
    path: str
    k: int = 8
    limit: int | None = None


@dataclass(frozen=True)
class Section:
    """A config section as an attribute bag (frozen)."""

    values: Mapping[str, Any]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __contains__(self, key: object) -> bool:
        return key in self.values

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


@dataclass(frozen=True)
class Suite:
    raw: Mapping[str, Any]
    results_dir: str
    logs_dir: str
    builds_world: bool
    teacher: str
    student: str
    train_task: str
    train_path: str
    eval_tasks: tuple[EvalTask, ...]
    method_ids: tuple[str, ...]
    method_specs: Mapping[str, Mapping[str, Any]]
    seeds: tuple[int, ...]
    budgets: tuple[int, ...]
    after_passrate_methods: tuple[str, ...]
    stock_tasks: tuple[str, ...] = ()  # lm-eval's registered tasks (data.lm_eval_tasks), named lmeval_<task>
    sections: Mapping[str, Section] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        sections = object.__getattribute__(self, "sections")
        if key in sections:
            return sections[key]
        raise AttributeError(key)

    @property
    def layout(self) -> Layout:
        """Every results path of this suite (:mod:`paced.pipeline.layout`)."""
        return Layout(self.results_dir, self.logs_dir)

    def eval_cells(self) -> list[tuple[str, int, int]]:
        """(method, seed, step) of every evaluation; the untouched student is ``("base", seed, 0)``."""
        cells = [("base", s, 0) for s in self.seeds]
        cells += [(m, s, b) for m in self.method_ids for s in self.seeds for b in self.budgets]
        return cells



def _check_path(key: str, value: str) -> str:
    if any(part == ".." for part in PurePath(value).parts):
        raise ValueError(f"{key}={value!r}: '..' is not allowed in output paths (they must stay inside "
                         f"the working directory); give a plain relative or absolute path")
    return value


def _check_name(key: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{key}={value!r}: names must match {_NAME.pattern} (lowercase letters, digits, "
                         f"'.', '_', '-'; they become directory names)")
    return value


def resolve_method(mid: str, override: Mapping[str, Any] | None, passrate: Mapping[str, Any]) -> Any:
    """The MethodSpec for config id ``mid``: a preset, or ``method_overrides[mid]`` (which names its preset).

    The suite's ``passrate`` section supplies ``k``, ``smoothing`` and (unless ``refresh: preset``) the
    refresh schedule of pass-rate-weighted methods, unless the override sets them itself.
    """
    from paced.methods import get_method, load_method
    from paced.passrate.refresh import REFRESH_POLICIES

    d = dict(override) if override is not None else {"preset": mid}
    if "preset" not in d:
        raise ValueError("an override needs 'preset: <name>' naming the preset it changes")
    base = get_method(d["preset"])
    if base.weight_source == "pass_rate":  # an unweighted method's spec (its identity) does not follow passrate.*
        d.setdefault("k", passrate["k"])
        d.setdefault("smoothing", passrate["smoothing"])
    if passrate.get("refresh", "preset") != "preset" and base.weight_source == "pass_rate":
        d.setdefault("refresh", passrate["refresh"])
        if REFRESH_POLICIES.get(d["refresh"]).needs_every:
            d.setdefault("refresh_every", passrate["refresh_every"])
    return load_method(d)


def resolve_methods(cfg: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """The method ids of ``cfg`` and their resolved spec dicts (presets or ``method_overrides``), checked."""
    overrides = cfg.get("method_overrides", {}) or {}
    ids = list(cfg["methods"])
    if len(set(ids)) != len(ids):
        raise ValueError(f"methods: {ids} lists a method twice")
    if "base" in ids:
        raise ValueError("methods: 'base' is evaluated automatically (the untouched student); remove it")
    specs: dict[str, dict[str, Any]] = {}
    for mid in ids:
        _check_name("methods[]", mid)
        try:
            spec = resolve_method(mid, overrides.get(mid), cfg["passrate"])
        except (ValueError, TypeError) as err:
            raise ValueError(f"methods: {mid!r}: {err}") from None
        specs[mid] = spec.to_dict()
    unused = sorted(set(overrides) - set(ids))
    if unused:
        raise ValueError(f"method_overrides defines {unused} but methods does not list them; add them to "
                         f"'methods' or remove the overrides")
    return tuple(ids), specs


def _default_eval(world_dir: str, k: int) -> list[dict[str, Any]]:
    return [
        {"name": "arith", "task": "toy_arith", "path": f"{world_dir}/eval_arith.jsonl", "k": k},
        {"name": "probe", "task": "toy_probe", "path": f"{world_dir}/probe.jsonl", "k": 1},
    ]


def _resolve_eval(cfg: Mapping[str, Any], world_dir: str | None) -> tuple[EvalTask, ...]:
    from paced.tasks import TASKS

    rows = cfg["data"].get("eval") or []
    if not rows:
        if world_dir is None:
            raise ValueError("data.eval is empty and no world is built (world.preset: none); list the "
                             "evaluation tasks under data.eval")
        rows = _default_eval(world_dir, int(cfg["eval"].get("k", 8)))
    tasks = []
    for i, row in enumerate(rows):
        key = f"data.eval[{i}]"
        _check_name(f"{key}.name", row["name"])
        if row["task"] not in TASKS:
            raise ValueError(f"{key}.task: {TASKS.unknown_message(row['task'])}")
        path = row.get("path") or getattr(TASKS.get(row["task"]), "hub_name", None)
        if not path:
            raise ValueError(f"{key}.path: task {row['task']!r} has no default data set; give a jsonl path")
        if world_dir is None:
            check_dataset_available(str(path), key=f"{key}.path")
        tasks.append(EvalTask(name=row["name"], task=row["task"], path=str(path), k=int(row.get("k", 8)),
                              limit=row.get("limit")))
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"data.eval: names must be unique, got {names}")
    return tuple(tasks)


def _resolve_budgets(cfg: Mapping[str, Any]) -> tuple[int, ...]:
    train, budgets = cfg["train"], sorted(set(cfg["eval"]["budgets"]))
    saves = set(train["save_steps"]) | {train["steps"]}
    for b in budgets:
        if b > train["steps"]:
            raise ValueError(f"eval.budgets contains {b} > train.steps={train['steps']}; budgets must be "
                             f"training steps at which a checkpoint exists")
        if b not in saves:
            raise ValueError(f"eval.budgets contains {b}, but no checkpoint is saved at that step; add it to "
                             f"train.save_steps (now {sorted(train['save_steps'])})")
    return tuple(budgets)


def resolve_suite(cfg: Mapping[str, Any]) -> Suite:
    """Validate and resolve a (schema-filled) config dict into a :class:`Suite`."""
    check_seeds(list(cfg["seeds"]), cfg["world"]["seed"])
    check_grid(len(cfg["methods"]), len(cfg["seeds"]), len(cfg["eval"]["budgets"]))
    results = _check_path("results_dir", resolve_results_dir(cfg.get("results_dir", "results")))
    logs = Layout.for_results(results).logs
    preset = cfg["world"]["preset"]
    builds = preset != "none"
    world_dir = f"{results}/world" if builds else None
    models = cfg["models"]
    teacher = models.get("teacher") or (f"{world_dir}/teacher" if builds else None)
    student = models.get("student") or (f"{world_dir}/student" if builds else None)
    if teacher is None or student is None:
        raise ValueError("models.teacher and models.student are required when world.preset is 'none'")
    if not builds:  # every unavailable model in one message, so one pre-fetch round fixes them all
        missing = []
        for key, name in (("models.teacher", teacher), ("models.student", student)):
            try:
                check_model_available(name, key=key)
            except ValueError as err:
                missing.append(str(err))
        if missing:
            raise ValueError("\n".join(missing))
    if cfg["sampling"]["backend"] == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ValueError("sampling.backend='vllm' but vLLM is not installed: pip install 'paced[vllm]' "
                         "(on a GPU machine), or set sampling.backend: hf")
    data = cfg["data"]
    from paced.tasks import TASKS

    if data["train_task"] not in TASKS:
        raise ValueError(f"data.train_task: {TASKS.unknown_message(data['train_task'])}")
    train_path = data.get("train_path") or (f"{world_dir}/train.jsonl" if builds else
                                            getattr(TASKS.get(data["train_task"]), "hub_name", None))
    if not train_path:
        raise ValueError("data.train_path is required when world.preset is 'none' (a jsonl path or hub id)")
    if not builds:
        check_dataset_available(str(train_path), key="data.train_path")
    method_ids, specs = resolve_methods(cfg)
    seeds = tuple(cfg["seeds"])
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: {list(seeds)} lists a seed twice")
    after = tuple(m for m in ("uniform-fkl", "paced-fkl") if m in method_ids) or method_ids[:1]
    stock = tuple(data.get("lm_eval_tasks") or ())
    if stock:
        from paced.evaluation.stock import check_stock_tasks

        try:
            check_stock_tasks(stock)
        except ValueError as err:
            raise ValueError(f"data.lm_eval_tasks: {err}") from None
    sections = {k: Section(dict(cfg[k])) for k in SECTIONS if k in cfg}
    return Suite(raw=dict(cfg), results_dir=results, logs_dir=logs, builds_world=builds, teacher=teacher,
                 student=student, train_task=data["train_task"], train_path=train_path,
                 eval_tasks=_resolve_eval(cfg, world_dir), method_ids=method_ids, method_specs=specs,
                 seeds=seeds, budgets=_resolve_budgets(cfg), after_passrate_methods=after, sections=sections,
                 stock_tasks=stock)
