"""Write lm-eval task YAMLs over a prepared local jsonl for one paced task.

The prepared jsonl holds, per doc, the exact prompt the model sees (``query`` =
``task.format_prompt(doc)``), the original row (``doc_json``) and the paced task name, so lm-eval's
``process_results`` can call the paced verifier. Each generated YAML ``include:``s a template from
``paced/evaluation/templates`` and adds only what varies: name, data file, sampling, k.

:func:`export_tasks` writes the same files for several tasks, with a copy of the templates, into one folder that
stock lm-eval runs as it is: ``lm_eval --include_path DIR --tasks paced_<task> ...`` (the YAMLs call paced's
verifier through ``!function paced.evaluation.hooks...``, so paced must be importable where lm-eval runs).

Optional task attributes read here: ``stop_sequences`` (generation stops besides EOS; default none),
``target_delimiter`` (between prompt and choice; default "") and ``mc_continuations(doc)``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from paced.evaluation.config import EvalConfig
from paced.io import atomic_write_text, write_jsonl
from paced.tasks.base import Doc, Task, get_task

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAMES = ("_generate.yaml", "_multiple_choice.yaml", "_greedy.yaml")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedTasks:
    """Names of the lm-eval tasks written for one paced task (``None`` where not applicable)."""

    include_path: Path
    generate: str | None = None
    multiple_choice: str | None = None
    greedy: str | None = None

    def names(self) -> list[str]:
        return [n for n in (self.generate, self.multiple_choice, self.greedy) if n is not None]


def mc_continuations(task: Task, doc: Doc) -> list[str]:
    """The strings scored by log-likelihood after the prompt (and the task's ``target_delimiter``,
    default ""): ``task.mc_continuations(doc)`` if the task defines it (e.g. the letters for MMLU,
    with ``target_delimiter = " "`` as lm-eval's own mmlu), else the choice texts themselves."""
    hook = getattr(task, "mc_continuations", None)
    return list(hook(doc)) if callable(hook) else list(doc.choices or ())


def mc_gold(doc: Doc) -> int:
    """Index of the gold choice: the ``answer_index`` label when the doc carries one (choice texts
    may repeat, as in MMLU), else the position of ``doc.answer`` among the choices."""
    if "answer_index" in doc.meta:
        return int(doc.meta["answer_index"])
    return (doc.choices or ()).index(doc.answer)


def prepared_row(task_name: str, task: Task, task_kwargs: Mapping[str, Any], doc: Doc) -> dict[str, Any]:
    """One lm-eval row: prompt, gold, the original doc and what is needed to rebuild the task."""
    row: dict[str, Any] = {
        "id": doc.id, "query": task.format_prompt(doc), "answer_text": doc.answer,
        "tier": None if doc.tier is None else str(doc.tier),
        "paced_task": task_name, "task_kwargs_json": json.dumps(dict(task_kwargs), sort_keys=True),
        "doc_json": json.dumps(doc.to_row(), sort_keys=True),
    }
    if task.kind == "multiple_choice":
        if not doc.choices:
            raise ValueError(f"task {task_name!r} is multiple choice but doc {doc.id!r} has no choices")
        row["mc_choices"] = mc_continuations(task, doc)
        row["mc_gold"] = mc_gold(doc)
    return row


def _gen_kwargs(task: Task, cfg: EvalConfig, greedy: bool) -> dict[str, Any]:
    # `until` must be explicit: lm-eval would otherwise stop at "\n\n"; the backend adds EOS itself.
    # Never a `seed` here: vLLM would then draw the k repeats identically.
    out: dict[str, Any] = {"until": list(getattr(task, "stop_sequences", ())),
                           "max_gen_toks": cfg.max_new_tokens}
    if greedy or cfg.temperature == 0:
        out.update(do_sample=False, temperature=0.0)
    else:
        out.update(do_sample=True, temperature=cfg.temperature)
        if cfg.top_p < 1:
            out["top_p"] = cfg.top_p
    return out


def _write_yaml(out_dir: Path, name: str, template: str, data: Path, extra: Mapping[str, Any],
                templates: Path | None = None) -> str:
    # the package's templates by absolute path; exported copies by a relative one, so the folder stays whole
    include = str(TEMPLATES / template) if templates is None else os.path.relpath(templates / template, out_dir)
    spec: dict[str, Any] = {
        "include": include,
        "task": name,
        # absolute paths: relative data_files resolve against the CWD, not this file
        "dataset_kwargs": {"data_files": {"test": str(data)}, "cache_dir": str(out_dir / "hf_datasets")},
        **extra,
    }
    atomic_write_text(out_dir / f"{name}.yaml", yaml.safe_dump(spec, sort_keys=False))
    return name


def prepare_tasks(task_name: str, docs: Sequence[Doc], out_dir: str | Path, cfg: EvalConfig,
                  task_kwargs: Mapping[str, Any] | None = None, *, templates: Path | None = None) -> PreparedTasks:
    """Write ``data.jsonl`` and the task YAMLs for the paced task ``task_name`` into ``out_dir``.

    Generation tasks get ``<name>`` (k samples, ``take_first_k``, avg@k / pass@k); multiple-choice
    tasks get ``<name>_mc`` (``acc``) and, if ``cfg.em``, ``<name>_em`` (greedy exact match). The YAMLs include
    the package's templates, or copies of them in ``templates`` (see :func:`export_tasks`).
    """
    task_kwargs = dict(task_kwargs or {})
    task = get_task(task_name, **task_kwargs)
    out_dir = Path(out_dir).resolve()
    data = out_dir / "data.jsonl"
    write_jsonl(data, (prepared_row(task_name, task, task_kwargs, d) for d in docs))
    base = f"paced_{task_name}"
    if task.kind == "generate":
        gen = _write_yaml(out_dir, base, "_generate.yaml", data, {
            "repeats": cfg.k, "generation_kwargs": _gen_kwargs(task, cfg, greedy=False),
            "filter_list": [{"name": f"first_{cfg.k}",
                             "filter": [{"function": "take_first_k", "k": cfg.k}]}]}, templates)
        return PreparedTasks(out_dir, generate=gen)
    if task.kind != "multiple_choice":
        raise ValueError(f"task {task_name!r} has kind {task.kind!r}; allowed: 'generate', 'multiple_choice'")
    mc = _write_yaml(out_dir, f"{base}_mc", "_multiple_choice.yaml", data,
                     {"target_delimiter": getattr(task, "target_delimiter", "")}, templates)
    em = None
    if cfg.em:
        em = _write_yaml(out_dir, f"{base}_em", "_greedy.yaml", data,
                         {"generation_kwargs": _gen_kwargs(task, cfg, greedy=True)}, templates)
    return PreparedTasks(out_dir, multiple_choice=mc, greedy=em)


def export_tasks(out_dir: str | Path, data: Mapping[str, str | Path], cfg: EvalConfig | None = None,
                 task_kwargs: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, PreparedTasks]:
    """Write the lm-eval tasks of several paced tasks (``{task_name: data source}``) into ``out_dir``.

    Layout: ``out_dir/_templates/`` (copies of the templates) and ``out_dir/<task_name>/`` (``data.jsonl`` and
    the YAMLs of :func:`prepare_tasks`). Stock lm-eval then runs them: ``lm_eval --model hf --model_args
    pretrained=MODEL --include_path out_dir --tasks paced_<task_name>``. The data files are named by absolute
    path (lm-eval resolves relative ones against its working directory), so export again after moving the folder.
    Returns ``{task_name: PreparedTasks}``.
    """
    cfg = cfg if cfg is not None else EvalConfig()
    out = Path(out_dir).resolve()
    templates = out / "_templates"
    templates.mkdir(parents=True, exist_ok=True)
    for name in TEMPLATE_NAMES:
        shutil.copyfile(TEMPLATES / name, templates / name)
    prepared: dict[str, PreparedTasks] = {}
    for task_name, source in data.items():
        kwargs = dict((task_kwargs or {}).get(task_name, {}))
        docs = get_task(task_name, **kwargs).load(source)[: cfg.limit]
        prepared[task_name] = prepare_tasks(task_name, docs, out / task_name, cfg, kwargs, templates=templates)
    names = [n for p in prepared.values() for n in p.names()]
    log.info("lm-eval tasks written to %s: run them with lm_eval --include_path %s --tasks %s", out, out,
             ",".join(names))
    return prepared
