"""What the planner reads: the workflow's config files (YAML merged over the default config, the schema's
defaults filled in, as Snakemake does) and the planner's own assumptions about the hardware and the data."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from paced.config_files import merge_config, read_config_file

SCHEMA = Path("workflow/schemas/config.schema.yaml")
BASE_CONFIG = Path("config/config.yaml")
# Problems per data set, where the config names a hub data set (sizes of the public sets; the training pool is
# DAPO-Math-17k: about 17.4k de-duplicated prompts, 80% of which train; an estimate).
KNOWN_SIZES = {"dapo_math": 13_918, "math500": 500, "aime24": 30, "aime25": 30, "mmlu": 14_042}


@dataclass(frozen=True)
class PlanSettings:
    """The planner's assumptions; each is a flag of ``paced plan``.

    ``gpus``: GPUs of a training job (None: the config's ``resources.gpus_train``). ``gpu_mem_gb``: memory of
    one GPU. ``usable_fraction``: the part of it a job may plan for (the rest: CUDA context, allocator
    fragmentation, NCCL buffers). ``prompt_tokens``: prompt length (chat template + problem) assumed where the
    prompts are not read. ``mean_response_fraction``: mean response length as a fraction of the generation
    budget, for time and disk (memory uses the full budget). ``train_tflops``: sustained dense bf16 TFLOP/s of
    one GPU while training (400 ≈ 40% of an H100's 989); ``sample_tflops``: the same while vLLM decodes
    (memory-bound, so lower). ``gpu_bandwidth_tbs``: sustained memory bandwidth of one GPU in TB/s while decoding
    (2.0 ≈ 60% of an H100 SXM's 3.35): a decode step reads the weights once and the KV cache of every sequence in
    flight, which bounds long generations more than the FLOPs do. ``pool_problems``: training problems (None: a
    known data set's size or the world's).
    """

    gpus: int | None = None
    gpu_mem_gb: float = 80.0
    usable_fraction: float = 0.9
    prompt_tokens: int = 512
    mean_response_fraction: float = 0.5
    train_tflops: float = 400.0
    sample_tflops: float = 150.0
    gpu_bandwidth_tbs: float = 2.0
    pool_problems: int | None = None

    def __post_init__(self) -> None:
        checks = (("gpus", self.gpus is None or (isinstance(self.gpus, int) and self.gpus >= 1), "None or >= 1"),
                  ("gpu_mem_gb", self.gpu_mem_gb > 0, "> 0"),
                  ("usable_fraction", 0 < self.usable_fraction <= 1, "(0, 1]"),
                  ("prompt_tokens", isinstance(self.prompt_tokens, int) and self.prompt_tokens >= 1, ">= 1"),
                  ("mean_response_fraction", 0 < self.mean_response_fraction <= 1, "(0, 1]"),
                  ("train_tflops", self.train_tflops > 0, "> 0"), ("sample_tflops", self.sample_tflops > 0, "> 0"),
                  ("gpu_bandwidth_tbs", self.gpu_bandwidth_tbs > 0, "> 0"),
                  ("pool_problems", self.pool_problems is None or self.pool_problems >= 1, "None or >= 1"))
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"PlanSettings.{name}={getattr(self, name)!r} is out of range; allowed: {allowed}")

    @property
    def usable_bytes(self) -> float:
        return self.gpu_mem_gb * 1e9 * self.usable_fraction


def fill_defaults(config: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the schema's ``default`` values into ``config`` (objects and arrays of objects, recursively)."""
    for key, sub in (schema.get("properties") or {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        value = config.get(key)
        if isinstance(value, dict):
            fill_defaults(value, sub)
        elif isinstance(value, list) and isinstance(sub.get("items"), Mapping):
            for item in value:
                if isinstance(item, dict):
                    fill_defaults(item, sub["items"])
    return config


def repository_root(path: Path) -> Path | None:
    """The repository holding ``path`` (or the working directory): the first with the workflow's schema."""
    for parent in [Path.cwd(), *path.resolve().parents]:
        if (parent / SCHEMA).is_file():
            return parent
    return None


def load_config(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The config the workflow would see for ``--configfile paths``: the repository's ``config/config.yaml``,
    each file merged over it in order, then the schema's defaults."""
    if not paths:
        raise ValueError("no config file given; pass --configfile FILE (e.g. config/paper.yaml)")
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"config file {str(p)!r} does not exist")
    root = repository_root(Path(paths[0]))
    config: dict[str, Any] = {}
    if root is not None and (root / BASE_CONFIG).is_file():
        config = read_config_file(root / BASE_CONFIG)
    for p in paths:
        config = merge_config(config, read_config_file(p))
    if root is not None:
        fill_defaults(config, yaml.safe_load((root / SCHEMA).read_text(encoding="utf-8")))
    return config
