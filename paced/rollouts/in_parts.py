"""Sampling a job's problems in parts, each saved when done, so that a killed job resumes from its last finished part.

:func:`sample_in_parts` samples ``part_size`` problems per ``sampler.generate`` call; each part's rollouts are
checked by a :class:`~paced.tasks.verify.Verifier` (on worker processes, part i is checked while part i + 1
samples), reduced by ``record`` to one JSON record per problem and saved to a
:class:`~paced.rollouts.part_store.PartStore`. Parts already in the store are reused ("reusing 3 of 8 parts") and
the sampler is built only if a part is left to sample. The log shows "part i/M done" lines.
:func:`sample_some_parts` samples given parts only (a sampling replica's share, :mod:`paced.rollouts.replicas`).
A record function is registered by name in :data:`RECORDS` (``outcomes``, ``first_correct``), so a replica
process can be told which one to use.

Seeding: the part starting at problem ``s`` samples with ``sampler.part_seed(params.seed, s)``: ``seed + s`` by
default, and on the HF backend ``seed + ceil(s / batch_size)``, the seed one call gives the chunk starting there.
So a job in one part samples as before; on the HF backend a job in parts of a multiple of ``batch_size`` gives the
rollouts of one call, and a resumed job those of an uninterrupted one. vLLM seeds its engine once
(``LLM(seed=...)``) and draws every request from that stream in call order (:mod:`paced.rollouts.vllm`), so there a
resumed job, which skips the finished parts' calls, equals an uninterrupted one in distribution, not bitwise, and
the part size changes which samples are drawn: it is part of the job's identity.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from paced.registry import Registry
from paced.rollouts.base import Rollout, Sampler, SamplingParams
from paced.rollouts.part_store import PartStore
from paced.tasks.base import Doc, Task
from paced.tasks.verify import Verdicts, Verifier

log = logging.getLogger(__name__)

# one problem's JSON record of a part, from its rollouts and their verdicts
Record = Callable[[Doc, Sequence[Rollout], Sequence[bool]], dict[str, Any]]


def part_bounds(n: int, part_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each part of ``n`` problems, ``part_size`` per part (the last may be shorter)."""
    if not isinstance(part_size, int) or isinstance(part_size, bool) or part_size < 1:
        raise ValueError(f"part_size must be an int >= 1 (problems per saved part), got {part_size!r}")
    return [(s, min(s + part_size, n)) for s in range(0, n, part_size)]


class _LazySampler:
    """Builds the sampler on first use (a resumed job with every part done never loads a model)."""

    def __init__(self, make: Callable[[], Sampler]) -> None:
        self.make, self.sampler = make, None

    def __call__(self) -> Sampler:
        if self.sampler is None:
            self.sampler = self.make()
        return self.sampler


def parts_done(store: PartStore, docs: Sequence[Doc], part_size: int
               ) -> tuple[list[tuple[int, int]], dict[int, list[dict[str, Any]]]]:
    """The bounds of the parts of ``docs`` and the records of those already in ``store`` (by part index)."""
    bounds = part_bounds(len(docs), part_size)
    done: dict[int, list[dict[str, Any]]] = {}
    for i, (s, e) in enumerate(bounds):
        records = store.load(i, [d.id for d in docs[s:e]])
        if records is not None:
            done[i] = records
    return bounds, done


def parts_left(store: PartStore, docs: Sequence[Doc], part_size: int) -> list[int]:
    """The indices of the parts of ``docs`` not yet in ``store``, in order."""
    bounds, done = parts_done(store, docs, part_size)
    return [i for i in range(len(bounds)) if i not in done]


def sample_in_parts(make_sampler: Callable[[], Sampler], task: Task, docs: Sequence[Doc], params: SamplingParams,
                    store: PartStore, *, part_size: int, record: Record, workers: int = 1) -> list[dict[str, Any]]:
    """One record per problem of ``docs`` (in order): ``record(doc, its params.n rollouts, their verdicts)``.

    ``make_sampler`` builds the sampler, once, when the first part left to sample is reached. ``workers``
    processes check the rollouts (1 = in this process; the verdicts are the same). See the module docstring for
    the parts, their seeds and resuming.
    """
    bounds, done = parts_done(store, docs, part_size)
    if done:
        log.info("reusing %d of %d parts in %s", len(done), len(bounds), store.root)
    log.info("%d problems in %d parts of up to %d; %d parts to sample", len(docs), len(bounds), part_size,
             len(bounds) - len(done))
    todo = [i for i in range(len(bounds)) if i not in done]
    if todo:
        _sample_parts(_LazySampler(make_sampler), task, docs, params, store, bounds, todo, record, workers, done)
    return [r for i in range(len(bounds)) for r in done[i]]


def sample_some_parts(make_sampler: Callable[[], Sampler], task: Task, docs: Sequence[Doc], params: SamplingParams,
                      store: PartStore, parts: Sequence[int], *, part_size: int, record: Record,
                      workers: int = 1) -> None:
    """Sample and save the parts ``parts`` of ``docs`` (indices; those already in ``store`` are skipped), as
    :func:`sample_in_parts` would: a sampling replica's share of a job (:mod:`paced.rollouts.replicas`)."""
    bounds, done = parts_done(store, docs, part_size)
    todo = [i for i in parts if i not in done]
    if any(not 0 <= i < len(bounds) for i in todo):
        raise ValueError(f"parts {list(parts)}: a job of {len(docs)} problems in parts of {part_size} has "
                         f"parts 0..{len(bounds) - 1}")
    log.info("sampling %d of parts %s of %d (%d already done)", len(todo), [i + 1 for i in parts], len(bounds),
             len(parts) - len(todo))
    if todo:
        _sample_parts(_LazySampler(make_sampler), task, docs, params, store, bounds, todo, record, workers, done)


def _sample_parts(sampler: _LazySampler, task: Task, docs: Sequence[Doc], params: SamplingParams, store: PartStore,
                  bounds: Sequence[tuple[int, int]], todo: Sequence[int], record: Record, workers: int,
                  done: dict[int, list[dict[str, Any]]]) -> None:
    """Sample, check and save the parts ``todo``; the check of a part overlaps the sampling of the next."""
    total, t0 = len(bounds), time.monotonic()
    pending: tuple[int, list[list[Rollout]], Callable[[], Verdicts], float] | None = None

    def finish(item: tuple[int, list[list[Rollout]], Callable[[], Verdicts], float]) -> None:
        i, rollouts, verdicts_of, sampled_s = item
        s, e = bounds[i]
        part = docs[s:e]
        verdicts = verdicts_of()
        records = [record(d, rs, vs) for d, rs, vs in zip(part, rollouts, verdicts, strict=True)]
        store.save(i, [d.id for d in part], records)
        done[i] = records
        finished = sum(bounds[j][1] - bounds[j][0] for j in done)
        log.info("part %d/%d done (%d problems sampled in %.0f s; %d/%d problems done, %.0f s so far)",
                 i + 1, total, e - s, sampled_s, finished, len(docs), time.monotonic() - t0)

    with Verifier(task, workers) as verifier:
        try:
            for i in todo:
                s, e = bounds[i]
                part = docs[s:e]
                samp = sampler()
                started = time.monotonic()
                rollouts = samp.generate([task.format_prompt(d) for d in part],
                                         replace(params, seed=samp.part_seed(params.seed, s)))
                if len(rollouts) != len(part):
                    raise RuntimeError(f"sampler returned {len(rollouts)} rollout lists for {len(part)} prompts")
                item = (i, rollouts, verifier.submit(part, [[r.text for r in rs] for rs in rollouts]),
                        time.monotonic() - started)
                previous, pending = pending, item
                if previous is not None:
                    finish(previous)
            last, pending = pending, None
            if last is not None:
                finish(last)
        finally:
            if pending is not None:  # sampling failed after this part was sampled: keep it for the rerun
                try:
                    finish(pending)
                except Exception as err:  # the original failure is the one to report
                    log.warning("part %d was sampled but could not be saved: %s", pending[0] + 1, err)


RECORDS: Registry[Record] = Registry("part record")


@RECORDS.register("outcomes")
def outcome_record(doc: Doc, rollouts: Sequence[Rollout], verdicts: Sequence[bool]) -> dict[str, Any]:
    """A pass-rate part's record: the problem's 0/1 outcome per rollout."""
    return {"id": doc.id, "outcomes": [int(v) for v in verdicts]}


@RECORDS.register("first_correct")
def first_correct_record(doc: Doc, rollouts: Sequence[Rollout], verdicts: Sequence[bool]) -> dict[str, Any]:
    """A reference part's record: the first verified rollout, else the first (``correct`` says which)."""
    pick = list(verdicts).index(True) if any(verdicts) else 0
    return {"id": doc.id, "reference": rollouts[pick].text, "correct": bool(verdicts[pick])}

