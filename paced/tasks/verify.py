"""Checking sampled completions with a task's verifier, in this process or on worker processes.

``task.check`` is CPU work (math-verify: sympy) that a sampling job would otherwise run on one thread after
sampling. A :class:`Verifier` with ``workers > 1`` checks on that many worker processes
(:mod:`paced.tasks._verify_worker`, which import only :mod:`paced.tasks`, not torch), each holding its own copy of
the checker; the verdicts are the same, in the same order, as checking in-process (``workers=1``).
:meth:`Verifier.submit` returns at once, so a caller can sample the next part while this one is checked.

The checker sent to the workers is :func:`checker` of the task: a chat-templated task (:class:`ChatTask`) is sent
as the task it wraps (its check is that task's; its tokenizer stays behind). A checker that cannot be pickled is
run in-process (logged).
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from paced.tasks._verify_worker import frame, receive, send
from paced.tasks.base import ChatTask, Doc, Task

log = logging.getLogger(__name__)

Verdicts = list[list[bool]]
CHUNKS_PER_WORKER = 4  # several chunks per worker even out problems that take longer to check


def checker(task: Task) -> Task:
    """The task whose ``check`` decides: a :class:`ChatTask`'s inner task, else ``task``."""
    return task.inner if isinstance(task, ChatTask) else task


def check_all(task: Task, docs: Sequence[Doc], texts: Sequence[Sequence[str]]) -> Verdicts:
    """``out[i][j]``: whether ``texts[i][j]`` answers ``docs[i]`` (``task.check``)."""
    if len(docs) != len(texts):
        raise ValueError(f"{len(docs)} problems but {len(texts)} lists of completions: one list per problem")
    return [[bool(task.check(d, t)) for t in ts] for d, ts in zip(docs, texts, strict=True)]


class _Worker:
    """One worker process holding ``task``; :meth:`check` sends it one chunk and waits for the verdicts."""

    def __init__(self, task_bytes: bytes) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the parent's imports
        self.proc = subprocess.Popen([sys.executable, "-m", "paced.tasks._verify_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None
        self.proc.stdin.write(task_bytes)
        self.proc.stdin.flush()

    def check(self, docs: list[Doc], texts: list[list[str]]) -> Verdicts:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            send(self.proc.stdin, (docs, texts))
            status, value = receive(self.proc.stdout)
        except (EOFError, BrokenPipeError) as err:
            raise RuntimeError(f"a verification worker exited (code {self.proc.poll()}); its error is in the log "
                               "above") from err
        if status != "ok":
            raise RuntimeError(f"task.check failed in a verification worker:\n{value}")
        return value

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # EOF: the worker returns
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Verifier:
    """Checks completions with ``task``'s verifier on ``workers`` processes (1 = in this process).

    Worker processes start on the first :meth:`submit`; use as a context manager (or call :meth:`close`) so they stop.
    """

    def __init__(self, task: Task, workers: int = 1) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"Verifier.workers must be an int >= 1 (1 = verify in-process), got {workers!r}")
        self.task = checker(task)
        self._task_bytes = b""
        if workers > 1:
            try:
                self._task_bytes = frame(self.task)
            except Exception as err:  # a task holding a live handle can only check here
                log.warning("task %s cannot be sent to worker processes (%s); verifying in-process",
                            self.task.name, err)
                workers = 1
        self.workers = workers
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _start(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                for _ in range(self.workers):
                    w = _Worker(self._task_bytes)
                    self._all.append(w)
                    self._idle.put(w)
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="verify")
                log.info("verifying on %d worker processes", self.workers)
            return self._threads

    def _run_chunk(self, docs: list[Doc], texts: list[list[str]]) -> Verdicts:
        worker = self._idle.get()  # one thread per worker: never blocks for long
        try:
            return worker.check(docs, texts)
        finally:
            self._idle.put(worker)

    def submit(self, docs: Sequence[Doc], texts: Sequence[Sequence[str]]) -> Callable[[], Verdicts]:
        """Start checking ``texts[i][j]`` against ``docs[i]``; the returned function waits for the verdicts.
        In-process (``workers=1``) the checking happens here, before returning."""
        if len(docs) != len(texts):
            raise ValueError(f"{len(docs)} problems but {len(texts)} lists of completions: one list per problem")
        if self.workers == 1:
            verdicts = check_all(self.task, docs, texts)
            return lambda: verdicts
        threads = self._start()
        size = max(1, -(-len(docs) // (self.workers * CHUNKS_PER_WORKER)))
        futures: list[Future[Verdicts]] = [
            threads.submit(self._run_chunk, list(docs[i:i + size]), [list(t) for t in texts[i:i + size]])
            for i in range(0, len(docs), size)]

        def result() -> Verdicts:
            return [row for f in futures for row in f.result()]
        return result

    def verify(self, docs: Sequence[Doc], texts: Sequence[Sequence[str]]) -> Verdicts:
        """The verdicts of ``texts`` against ``docs`` (waits for them)."""
        return self.submit(docs, texts)()

    def close(self) -> None:
        """Wait for pending checks, then stop the worker processes."""
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None
        for w in self._all:
            w.stop()
        self._all.clear()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
