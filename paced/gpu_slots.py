"""Disjoint GPUs for concurrent jobs on one node (each distributed launch also takes a free port:
:func:`paced.trainer.distributed.free_port`).

Snakemake on one node limits how many GPUs its running jobs ask for (``--resources gpu=8``), but it does not
say *which*: without ``CUDA_VISIBLE_DEVICES`` every job lands on GPU 0. :func:`claim` hands a job ``n`` GPUs
no other job holds, sets ``CUDA_VISIBLE_DEVICES`` for it and its children, and gives them back on exit.

Each GPU is one lock file (``<state_dir>/gpu<i>.lock``) held with ``flock`` for as long as the job runs: the
kernel drops the lock when the holder exits, so a killed job never leaks a GPU. A claim takes the directory's
``alloc.lock`` first, so two jobs never each take half of what they need and wait for each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

COUNT_ENV = "PACED_GPU_COUNT"  # the node's GPU count, when set (tests set a fake one); else torch's count
DIR_ENV = "PACED_GPU_SLOTS_DIR"


def device_count() -> int:
    """GPUs on this node: ``$PACED_GPU_COUNT`` when set, else ``torch.cuda.device_count()``."""
    if os.environ.get(COUNT_ENV):
        return int(os.environ[COUNT_ENV])
    import torch

    return torch.cuda.device_count()


def default_state_dir() -> Path:
    """``$PACED_GPU_SLOTS_DIR``, else a per-user directory under /tmp (shared by every job of the node)."""
    return Path(os.environ.get(DIR_ENV) or f"/tmp/paced-gpu-slots-{os.getuid()}")


def _try_take(state_dir: Path, n: int, total: int) -> list[tuple[int, int]]:
    """Non-blocking: ``n`` (device, fd) pairs with their locks held, or [] (nothing held) if fewer are free."""
    held: list[tuple[int, int]] = []
    for dev in range(total):
        fd = os.open(state_dir / f"gpu{dev}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        held.append((dev, fd))
        if len(held) == n:
            return held
    for _, fd in held:
        os.close(fd)  # closing drops the lock
    return []


@contextlib.contextmanager
def claim(n: int, *, total: int | None = None, state_dir: str | Path | None = None, timeout_s: float = 86400.0,
          poll_s: float = 1.0, set_env: bool = True) -> Iterator[list[int]]:
    """Hold ``n`` GPUs no other claim holds; yields their indices (sets ``CUDA_VISIBLE_DEVICES`` to them).

    ``n == 0`` yields ``[]`` and leaves the environment alone (a CPU job). Waits up to ``timeout_s`` for
    enough GPUs to be free. Raises ``ValueError`` when ``n`` exceeds the node's ``total`` GPUs.
    """
    if n < 0:
        raise ValueError(f"gpu claim: n must be >= 0, got {n}")
    if n == 0:
        yield []
        return
    total = device_count() if total is None else total
    if n > total:
        raise ValueError(f"gpu claim: a job asks for {n} GPUs but this node has {total}; lower the rule's "
                         f"resources.gpu (the config's resources.gpus_*) or run it on a larger node")
    root = Path(state_dir) if state_dir is not None else default_state_dir()
    root.mkdir(parents=True, exist_ok=True)
    deadline, held = time.monotonic() + timeout_s, []
    while True:
        with open(root / "alloc.lock", "a+") as alloc:
            fcntl.flock(alloc, fcntl.LOCK_EX)  # one claim at a time; released when the file closes
            held = _try_take(root, n, total)
        if held or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    if not held:
        raise TimeoutError(f"gpu claim: {n} of {total} GPUs not free within {timeout_s:.0f} s ({root})")
    devices = [dev for dev, _ in held]
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    if set_env:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, devices))
    log.info("claimed GPUs %s of %d", devices, total)
    try:
        yield devices
    finally:
        for _, fd in held:
            os.close(fd)
        if set_env:
            if previous is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = previous

