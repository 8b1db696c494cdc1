"""A sampling job on several processes at once: one replica per GPU (per ``tensor_parallel_size`` GPUs on vLLM).

:func:`run_replicas` writes the job's spec (``replicas.json`` in its parts directory: everything a process needs to
rebuild the job, JSON) and starts ``count`` processes, ``python -m paced.rollouts._replica SPEC r count``, each with
``CUDA_VISIBLE_DEVICES`` set to its own group of devices (:func:`device_groups`; on CPU the variable is left as it
is). Replica ``r`` samples every ``count``-th of the parts left to do, starting at the ``r``-th, into the job's part
store (one file per part, written atomically: replicas never collide), with ``workers`` verification processes of
its own; its log lines (tagged ``replica r of count``) go to this process's log file. When every replica has exited
the caller assembles the output from the parts as a job on one process would (no sampler is built).

A replica that fails makes :func:`run_replicas` raise :class:`ReplicaFailed` (an infrastructure failure,
:mod:`paced.failures`) naming it and its exit code, after the others have finished: the parts every replica saved
stay, so a rerun, with any number of replicas, samples only the rest.

Seeds: a backend seeded once when it is built (vLLM's engine, ``sampler_kwargs["seed"]``) gets ``seed + r`` in
replica ``r``, so no two engines draw the same stream. Per-part seeds are the job's (:mod:`paced.rollouts.in_parts`):
on the HF backend a part's samples are the same whichever replica draws it, so the output equals that of one
process exactly; on vLLM the replica count changes which engine stream draws a part (the same in distribution),
as a resume does. So the replica count is a run-time setting, not part of the job's identity.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from paced.io import atomic_write_text, job_log
from paced.tasks.base import TASKS, ChatTask, Task

log = logging.getLogger(__name__)

ENTRY = "paced.rollouts._replica"  # python -m ENTRY SPEC INDEX COUNT
SPEC_FILE = "replicas.json"


class ReplicaFailed(subprocess.CalledProcessError):
    """A sampling replica exited with an error (a CalledProcessError: an infrastructure failure)."""

    def __init__(self, message: str, returncode: int, cmd: Sequence[str]) -> None:
        super().__init__(returncode, list(cmd))
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_count(count: Any) -> int:
    """``count`` when it is an int >= 1 (sampling processes), else a ``ValueError``."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"replicas must be an int >= 1 (sampling processes, one per GPU group), got {count!r}")
    return count


def replicas_for(gpus: int, sampler_kwargs: Mapping[str, Any]) -> int:
    """Replicas that fit ``gpus`` GPUs: one per engine of ``tensor_parallel_size`` GPUs (the vLLM engine config in
    ``sampler_kwargs["config"]``; 1 GPU per replica without one, the HF backend); 1 on CPU (``gpus = 0``)."""
    per_replica = int(dict(sampler_kwargs.get("config") or {}).get("tensor_parallel_size", 1))
    return max(1, int(gpus) // max(1, per_replica))


def split_job(gpus: int, workers: int, sampler_kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """(replicas, verification workers per replica) of a job given ``gpus`` GPUs and ``workers`` CPU processes:
    :func:`replicas_for`, and the workers shared among the replicas (at least 1 each)."""
    replicas = replicas_for(gpus, sampler_kwargs)
    return replicas, max(1, int(workers) // replicas)


def device_groups(count: int, devices: Sequence[str] | None = None,
                  visible: str | None = None) -> list[str | None]:
    """The ``CUDA_VISIBLE_DEVICES`` of each of ``count`` replicas: ``devices`` as given (one per replica), else
    ``visible`` (default: this process's ``CUDA_VISIBLE_DEVICES``) split into ``count`` consecutive groups of equal
    size (the rest unused), else ``None`` for each (unset: a CPU job, the variable is left as it is)."""
    check_count(count)
    if devices is not None:
        if isinstance(devices, str):
            raise ValueError(f"replica_devices={devices!r} is one string; give a list with one CUDA_VISIBLE_DEVICES "
                             f"value per replica, e.g. {[d for d in devices.split(',') if d][:count]}")
        if len(devices) != count:
            raise ValueError(f"replica_devices has {len(devices)} entries for {count} replicas; give one "
                             "CUDA_VISIBLE_DEVICES value per replica (or none: this process's are split)")
        flat = [d.strip() for group in map(str, devices) for d in group.split(",")]
        if not all(flat):
            raise ValueError(f"replica_devices={list(devices)} has an empty entry; give each replica its GPUs")
        if len(set(flat)) != len(flat):
            raise ValueError(f"replica_devices={list(devices)} gives a device to more than one replica; each replica "
                             "needs GPUs of its own")
        return [str(d) for d in devices]
    env_visible = visible is None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    if not visible:
        if env_visible and count > 1 and _cuda_devices() > 0:
            raise ValueError(f"{count} sampling replicas on a GPU machine with CUDA_VISIBLE_DEVICES unset would all "
                             "use GPU 0; set CUDA_VISIBLE_DEVICES (the workflow's GPU slots do) or replica_devices")
        return [None] * count
    ids = [d.strip() for d in visible.split(",") if d.strip()]
    if len(ids) < count:
        raise ValueError(f"{count} sampling replicas need at least {count} GPUs, but CUDA_VISIBLE_DEVICES={visible} "
                         f"names {len(ids)}; ask for more GPUs (resources.gpus_sample) or fewer replicas")
    size = len(ids) // count
    return [",".join(ids[r * size:(r + 1) * size]) for r in range(count)]


def _cuda_devices() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel send a replica SIGTERM when the thread that started it dies, however it
    dies (a cancelled or killed job must not leave replicas holding GPUs), and exits at once if that thread is
    already gone; None where the C library has no ``prctl`` (not Linux). Everything it needs is resolved here, in
    the parent: the child runs it between fork and exec, where importing or loading libraries could deadlock."""
    import ctypes
    import signal

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        log.info("no prctl in this C library: sampling replicas will not be stopped if this job is killed")
        return None
    parent, sig = os.getpid(), int(signal.SIGTERM)

    def preexec() -> None:
        prctl(1, sig)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return preexec


def replica_kwargs(sampler_kwargs: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Replica ``index``'s sampler arguments: a ``seed`` the backend takes once (vLLM's engine) becomes
    ``seed + index``; the rest as they are."""
    kwargs = dict(sampler_kwargs)
    if "seed" in kwargs:
        kwargs["seed"] = int(kwargs["seed"]) + index
    return kwargs


def task_spec(task: Task) -> dict[str, Any]:
    """How a replica rebuilds ``task`` (``get_task(**spec)``): its registered name and, for a chat-templated task,
    its tokenizer and ``enable_thinking``. A replica checks that the rebuilt task gives the job's identity."""
    inner = task.inner if isinstance(task, ChatTask) else task
    if inner.name not in TASKS or type(inner) is not TASKS.get(inner.name):
        raise ValueError(f"task {inner.name!r} ({type(inner).__name__}) is not a registered task, which a sampling "
                         "replica could rebuild; sample it with replicas=1")
    if not isinstance(task, ChatTask):
        return {"name": task.name}
    thinking = task.template_kwargs.get("enable_thinking")
    return {"name": inner.name, "chat_tokenizer": str(task.tokenizer.name_or_path),
            **({"enable_thinking": thinking} if thinking is not None else {})}


def run_replicas(spec: Mapping[str, Any], root: str | Path, groups: Sequence[str | None],
                 claim: Callable[[], None] = lambda: None) -> None:
    """Write ``spec`` to ``root``/replicas.json and sample it on one replica process per entry of ``groups`` (its
    ``CUDA_VISIBLE_DEVICES``, ``None``: left as it is; :func:`device_groups`), as the module docstring says;
    returns when all have finished, raises :class:`ReplicaFailed` if any failed. ``claim`` makes ``root`` this job's
    (the part store's :meth:`~paced.rollouts.part_store.PartStore.claim`), once the spec is known to serialise."""
    count = check_count(len(groups))
    path = Path(root) / SPEC_FILE
    try:
        text = json.dumps(dict(spec), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"a sampling job on {count} replicas needs JSON-able arguments (sampler_kwargs, "
                         f"resume_key): {err}; pass plain values or use replicas=1") from err
    claim()  # replicas write into the store at once: another job's parts there go now, not at a first save
    atomic_write_text(path, text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the parent's imports
    cmds = [[sys.executable, "-m", ENTRY, str(path), str(r), str(count)] for r in range(count)]
    log.info("sampling on %d replicas (CUDA_VISIBLE_DEVICES %s)", count,
             ", ".join(g if g is not None else "unset" for g in groups))
    procs: list[subprocess.Popen[bytes]] = []
    preexec = die_with_parent()
    with job_log() as out:  # the replicas' lines go where this job's own do (the rule's log)
        try:
            for cmd, group in zip(cmds, groups, strict=True):
                child_env = env if group is None else {**env, "CUDA_VISIBLE_DEVICES": group}
                procs.append(subprocess.Popen(cmd, env=child_env, stdout=out, preexec_fn=preexec,
                                              stderr=subprocess.STDOUT if out else None))
            codes = [p.wait() for p in procs]  # all of them: a failed replica leaves the others' parts to finish
        finally:
            for p in procs:
                if p.poll() is None:  # this process was interrupted: stop the replicas with it
                    p.terminate()
                    try:
                        p.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
    failed = [(r, c) for r, c in enumerate(codes) if c != 0]
    if failed:
        r, code = failed[0]
        names = ", ".join(f"replica {r} of {count} (CUDA_VISIBLE_DEVICES={groups[r] or 'unset'}) exited with code {c}"
                          for r, c in failed)
        raise ReplicaFailed(f"sampling {names}; its error is in the log above, and the parts the replicas saved "
                            f"in {root} stay for the rerun", code, cmds[r])
