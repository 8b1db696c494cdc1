"""What the pass-rate and reference stages share: the problems that fit the model, the job's identity, its parts.

:func:`run_sampling_job` loads the problems, keeps those whose prompt + ``max_new_tokens`` fits the model's
context (an over-long one is refused naming its file, line and id, or skipped and counted: ``overlong``), then
samples them in resumable parts (:mod:`paced.rollouts.in_parts`) under an identity that covers everything the
parts' content depends on: the model (its files' names, sizes and times), the task and its checker's settings,
the problems as the model sees them, the sampling parameters, the part size, the backend and ``resume_key``.
The caller writes its output from the records, then removes the parts (:meth:`SampledJob.done`).

With ``replicas > 1`` the parts left are sampled first on that many processes (:mod:`paced.rollouts.replicas`),
each running :func:`run_replica`; then the records are read from the parts as above, with no sampler built.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paced.fingerprint import canonical_digest, stat_digest
from paced.io import read_json
from paced.rollouts.base import Sampler, SamplingParams, get_sampler
from paced.rollouts.in_parts import RECORDS, Record, part_bounds, parts_left, sample_in_parts, sample_some_parts
from paced.rollouts.part_store import MANIFEST, PartStore, differing_keys, parts_dir
from paced.rollouts.replicas import device_groups, replica_kwargs, run_replicas, task_spec
from paced.tasks.base import Doc, Task, doc_from_row, get_task
from paced.tasks.verify import checker

log = logging.getLogger(__name__)

_PLAIN = (str, int, float, bool, type(None), list, tuple)


@dataclass(frozen=True)
class SampledJob:
    """The outcome of :func:`run_sampling_job`: every problem loaded, those sampled (in data order) and their
    records, the over-long problems left out (``overlong="skip"``), and the parts (removed by :meth:`done`)."""

    task: Task
    problems: list[Doc]
    docs: list[Doc]
    records: list[dict[str, Any]]
    skipped: list[Doc]
    store: PartStore

    def done(self) -> None:
        """The job's output is written: its parts are no longer needed."""
        self.store.remove()


def load_problems(task: str | Task, data: str | Path | Sequence[Doc]) -> tuple[Task, list[Doc]]:
    """The task (by name, or as given) and its problems (loaded from ``data``, or as given)."""
    task_obj = get_task(task) if isinstance(task, str) else task
    docs = task_obj.load(data) if isinstance(data, (str, Path)) else list(data)
    return task_obj, docs


def data_lines(data: Any, ids: Sequence[str]) -> list[int] | None:
    """The line of each id in ``data`` when it is a local jsonl file whose rows carry these ids, else ``None``."""
    path = Path(data) if isinstance(data, (str, Path)) else None
    if path is None or path.suffix != ".jsonl" or not path.is_file():
        return None
    where: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(row, Mapping) and "id" in row:
            where.setdefault(str(row["id"]), lineno)
    lines = [where.get(i) for i in ids]
    return None if any(n is None for n in lines) else [int(n) for n in lines if n is not None]


def fit_problems(model: str | Sampler, task: Task, docs: Sequence[Doc], data: Any, *, max_new_tokens: int,
                 sampler: str, sampler_kwargs: Mapping[str, Any], policy: str) -> tuple[list[Doc], list[Doc]]:
    """(problems that fit, problems skipped): the limit is ``model``'s context, capped by the ``vllm`` engine's
    ``max_model_len`` on that backend. A sampler object (no checkpoint to read) is not checked."""
    from paced.rollouts.context import OVERLONG_POLICIES, fit_prompts

    if policy not in OVERLONG_POLICIES:
        raise ValueError(f"overlong={policy!r} is not one of {OVERLONG_POLICIES} (refuse = stop naming the row, "
                         "skip = leave it out)")
    if isinstance(model, Sampler):
        return list(docs), []
    cap = None
    if sampler == "vllm":
        from paced.rollouts.vllm_config import VLLMConfig

        cap = VLLMConfig.from_mapping(dict(sampler_kwargs.get("config") or {})).max_model_len
    ids = [d.id for d in docs]
    lines = data_lines(data, ids)
    source = str(data) if lines is not None else f"{data if isinstance(data, (str, Path)) else 'data'} (problem #)"
    keep = fit_prompts(str(model), [task.format_prompt(d) for d in docs], ids, max_new_tokens=max_new_tokens,
                       source=source, policy=policy, lines=lines, max_model_len=cap,
                       trust_remote_code=bool(sampler_kwargs.get("trust_remote_code", False)))
    if docs and not keep:
        raise ValueError(f"{source}: every one of the {len(docs)} prompts + max_new_tokens={max_new_tokens} exceeds "
                         f"the context of {model!r}; nothing would be sampled (lower max_new_tokens or shorten the "
                         "prompts)")
    kept = set(keep)
    return [docs[i] for i in keep], [d for i, d in enumerate(docs) if i not in kept]


def job_identity(stage: str, model: str | Sampler, task: Task, docs: Sequence[Doc], params: SamplingParams,
                 part_size: int, sampler: str, resume_key: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the parts' content depends on (see the module docstring); JSON-able."""
    chk = checker(task)
    return {"stage": stage,
            "model": stat_digest(model) if isinstance(model, str) else type(model).__name__,
            "task": task.name,
            "checker": {"type": type(chk).__name__, "code": checker_code(chk),
                        **{k: v for k, v in getattr(chk, "__dict__", {}).items() if isinstance(v, _PLAIN)}},
            "problems": canonical_digest([[d.id, task.format_prompt(d), d.answer] for d in docs]),
            "params": asdict(params), "part_size": part_size, "sampler": sampler, "resume_key": dict(resume_key)}


def checker_code(chk: Task) -> dict[str, str | None]:
    """What the verdicts of saved parts were computed by: a digest of the checker's source file and the installed
    math-verify version (pass-rate parts keep verdicts, not texts, so a fixed checker must not reuse them)."""
    import hashlib
    import importlib.metadata
    import inspect

    try:
        source = inspect.getsourcefile(type(chk))
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16] if source else None
    except (OSError, TypeError):
        digest = None
    try:
        math_verify = importlib.metadata.version("math-verify")
    except importlib.metadata.PackageNotFoundError:
        math_verify = None
    return {"source_sha256": digest, "math_verify": math_verify}


def run_sampling_job(stage: str, model: str | Sampler, task: str | Task, data: str | Path | Sequence[Doc],
                     out_path: str | Path, params: SamplingParams, *, record: str | Record, sampler: str = "hf",
                     sampler_kwargs: Mapping[str, Any] | None = None, part_size: int = 512, workers: int = 1,
                     overlong: str = "refuse", resume_key: Mapping[str, Any] | None = None, replicas: int = 1,
                     replica_devices: Sequence[str] | None = None) -> SampledJob:
    """Sample ``params.n`` rollouts of every problem that fits, in resumable parts beside ``out_path``.

    ``model``: a checkpoint path or hub id (the ``sampler`` backend loads it with ``sampler_kwargs``, only if a
    part is left to sample), or a Sampler. ``record`` turns a problem's rollouts and verdicts into its record: a
    name in :data:`~paced.rollouts.in_parts.RECORDS` (``outcomes``, ``first_correct``) or a function.
    ``resume_key``: what else decides the samples (default: ``sampler_kwargs`` but ``progress``); the workflow
    passes its job's identity, which leaves out run-time engine settings (a retry with less GPU memory reuses the
    parts).

    ``replicas > 1`` samples the parts left on that many processes, one per group of ``replica_devices`` (their
    ``CUDA_VISIBLE_DEVICES``; default: this process's split evenly), each checking on ``workers`` processes of its
    own (:mod:`paced.rollouts.replicas`); it needs a checkpoint path, a registered task and a ``record`` name. The
    output is then written from the parts as with one process.
    """
    part_bounds(0, part_size)  # a bad part size or worker count fails before any loading
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an int >= 1 (processes verifying rollouts; 1 = in-process), got {workers!r}")
    groups = device_groups(replicas, replica_devices)  # a bad count or device list fails before any loading too
    if replicas > 1 and (isinstance(model, Sampler) or not isinstance(record, str)):
        raise ValueError(f"replicas={replicas} needs a checkpoint path (each replica builds its own sampler) and a "
                         "record name (one of RECORDS), not objects; pass those or use replicas=1")
    record_fn = RECORDS.get(record) if isinstance(record, str) else record
    kwargs = dict(sampler_kwargs or {})
    task_obj, problems = load_problems(task, data)
    docs, skipped = fit_problems(model, task_obj, problems, data, max_new_tokens=params.max_new_tokens,
                                 sampler=sampler, sampler_kwargs=kwargs, policy=overlong)
    key = resume_key if resume_key is not None else {k: v for k, v in kwargs.items() if k != "progress"}
    store = PartStore.open(out_path, job_identity(stage, model, task_obj, docs, params, part_size, sampler, key))
    left = parts_left(store, docs, part_size) if replicas > 1 else []
    if left:
        spec = {"stage": stage, "model": str(model), "task": task_spec(task_obj), "docs": [d.to_row() for d in docs],
                "params": asdict(params), "record": record, "sampler": sampler, "sampler_kwargs": kwargs,
                "part_size": part_size, "workers": workers, "resume_key": dict(key), "out_path": str(out_path),
                "digest": store.digest, "parts": left}
        run_replicas(spec, store.root, groups[:len(left)], claim=store.claim)
        missing = parts_left(store, docs, part_size)
        if missing:
            raise RuntimeError(f"parts {[i + 1 for i in missing]} are missing after every sampling replica "
                               f"succeeded; rerun the job (the parts in {store.root} are reused)")

    def make_sampler() -> Sampler:
        return model if isinstance(model, Sampler) else get_sampler(sampler, model=str(model), **kwargs)

    records = sample_in_parts(make_sampler, task_obj, docs, params, store, part_size=part_size, record=record_fn,
                              workers=workers)
    return SampledJob(task_obj, problems, docs, records, skipped, store)


def run_replica(spec_path: str | Path, index: int, count: int) -> None:
    """Replica ``index`` of ``count`` (:mod:`paced.rollouts.replicas`): rebuild the job of ``spec_path``, check that
    it has the parent's identity, and sample its share of the parts left (every ``count``-th, from the
    ``index``-th) into the parent's part store."""
    spec = read_json(spec_path)
    task = get_task(**spec["task"])
    docs = [doc_from_row(row, f"{spec_path}: docs[{i}]") for i, row in enumerate(spec["docs"])]
    params = SamplingParams(**spec["params"])
    identity = job_identity(spec["stage"], spec["model"], task, docs, params, spec["part_size"], spec["sampler"],
                            spec["resume_key"])
    plain = json.loads(json.dumps(identity, sort_keys=True, default=str))
    store = PartStore(parts_dir(spec["out_path"]), canonical_digest(identity), plain)
    if store.digest != spec["digest"]:
        keys = differing_keys(read_json(store.root / MANIFEST).get("identity"), plain)
        raise ValueError(f"replica {index} of {count}: the job it rebuilt from {spec_path} differs from the parent's "
                         f"in {', '.join(keys) or 'its identity'}; sample with replicas=1")
    kwargs = replica_kwargs(spec["sampler_kwargs"], index)
    log.info("started on CUDA_VISIBLE_DEVICES=%s",
             os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
    sample_some_parts(lambda: get_sampler(spec["sampler"], model=spec["model"], **kwargs), task, docs, params, store,
                      spec["parts"][index::count], part_size=spec["part_size"], record=RECORDS.get(spec["record"]),
                      workers=spec["workers"])
