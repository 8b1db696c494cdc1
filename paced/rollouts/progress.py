"""Progress that reaches a rule's log: tqdm on a terminal, and ``logging`` lines at coarse intervals.

A Snakemake rule's log receives what ``logging`` writes (:func:`paced.pipeline.cells.setup_logging`); tqdm
writes carriage-return bars to stderr, which a log file shows as one unreadable line or not at all.
:class:`LoggingTqdm` is a tqdm whose updates are also logged, at most every ``log_every_s`` seconds and at
every ``log_fraction`` of the total (and once at the end), so a long sampling or evaluation stage shows
how far it is and how fast it goes. It can be passed wherever a tqdm class is taken (``vllm.LLM.generate``'s
``use_tqdm``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger("paced.progress")


class LoggingTqdm(tqdm):
    """tqdm that also logs ``"<desc>: n/total (pct) in s, rate/s"`` at coarse intervals.

    ``log_every_s``: the longest time between two lines; ``log_fraction``: a line at every such share of
    ``total`` (0.1: ten lines). The terminal bar is ``disable``-able on its own (``bar=False``) while the
    log lines still come.
    """

    def __init__(self, *args: Any, log_every_s: float = 30.0, log_fraction: float = 0.1, bar: bool = True,
                 logger: logging.Logger | None = None, **kwargs: Any) -> None:
        self._logger = logger or log
        self._log_every_s = log_every_s
        self._log_fraction = log_fraction
        self._t0 = self._last_log_t = time.monotonic()
        self._last_log_frac = 0.0
        self._logged_n = -1
        if not bar:
            kwargs["disable"] = True
        super().__init__(*args, **kwargs)
        if not bar:  # a disabled tqdm keeps no count: keep our own
            self.n, self.total, self.desc = 0, kwargs.get("total"), kwargs.get("desc", "")

    def __iter__(self) -> Any:
        # tqdm's own __iter__ counts inline, bypassing update(): count through update() so lines are logged
        try:
            for obj in self.iterable:
                yield obj
                self.update(1)
        finally:
            self.close()

    def update(self, n: float | None = 1) -> bool | None:
        if self.disable:
            self.n += n or 0
        out = super().update(n)
        self._maybe_log()
        return out

    def _maybe_log(self, final: bool = False) -> None:
        now, total = time.monotonic(), self.total
        frac = self.n / total if total else 0.0
        step = self._log_fraction
        due = final or now - self._last_log_t >= self._log_every_s or (
            total and int(frac / step + 1e-9) > int(self._last_log_frac / step + 1e-9))
        if not due or self.n == self._logged_n:
            return
        elapsed = now - self._t0
        rate = self.n / elapsed if elapsed > 0 else 0.0
        of = f"/{int(total)} ({100 * frac:.0f}%)" if total else ""
        self._logger.info("%s: %d%s in %.0f s, %.2f/s", self.desc or "progress", self.n, of, elapsed, rate)
        self._last_log_t, self._last_log_frac, self._logged_n = now, frac, self.n

    def close(self) -> None:
        if not getattr(self, "_closed_logged", False):
            self._closed_logged = True
            self._maybe_log(final=True)
        super().close()
