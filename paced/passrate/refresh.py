"""Refresh policies: when the pass-rate state p̂ is re-estimated during training.

A policy is registered once in :data:`REFRESH_POLICIES`; :class:`paced.methods.MethodSpec` names it
(``refresh``), the trainer asks it whether a refresh is due before each step (``due``) and whether
on-policy outcomes feed the windows after each step (``online``). Adding a policy is one
``REFRESH_POLICIES.add(...)`` here.

- ``once``: p̂ from the given pass-rate file (or K rollouts before step 1), never again;
- ``per_stage``: again at the start of every later stage of a multi-stage schedule;
- ``every_n``: again every ``refresh_every`` steps;
- ``online``: each on-policy sample's verified outcome enters its problem's window after the step;
  problems of the batch at weight zero get one probe rollout each, so a problem can leave p̂ ∈ {0, 1}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from paced.registry import Registry

# (0-based step, stage index, steps per stage, refresh_every) -> reason string, or None when not due
DueFn = Callable[[int, int, Sequence[int], "int | None"], "str | None"]


def _never(step: int, stage_idx: int, stage_steps: Sequence[int], every: int | None) -> str | None:
    return None


def _stage_start(step: int, stage_idx: int, stage_steps: Sequence[int], every: int | None) -> str | None:
    return "stage_start" if stage_idx > 0 and step == sum(stage_steps[:stage_idx]) else None


def _every_n(step: int, stage_idx: int, stage_steps: Sequence[int], every: int | None) -> str | None:
    return "every_n" if step > 0 and step % int(every or 1) == 0 else None


@dataclass(frozen=True)
class RefreshPolicy:
    """``due``: whether a full re-estimate runs before a step; ``online``: on-policy outcomes feed p̂;
    ``needs_every``: the policy reads ``refresh_every``; ``live``: it samples the student during training."""

    due: DueFn
    online: bool = False
    needs_every: bool = False
    live: bool = True
    doc: str = ""


REFRESH_POLICIES: Registry[RefreshPolicy] = Registry("refresh")
REFRESH_POLICIES.add("once", RefreshPolicy(_never, live=False, doc="estimated once, before training"))
REFRESH_POLICIES.add("per_stage", RefreshPolicy(_stage_start, doc="again at the start of every later stage"))
REFRESH_POLICIES.add("every_n", RefreshPolicy(_every_n, needs_every=True, doc="again every refresh_every steps"))
REFRESH_POLICIES.add("online", RefreshPolicy(_never, online=True,
                                             doc="on-policy outcomes update a window of the last K"))


def refresh_due(policy: str, step: int, stage_idx: int, stage_steps: Sequence[int], every: int | None,
                *, have_state: bool) -> str | None:
    """Why p̂ is re-estimated before 0-based ``step`` (``"initial"`` when there is no state yet), or None."""
    if not have_state:
        return "initial"
    return REFRESH_POLICIES.get(policy).due(step, stage_idx, stage_steps, every)
