"""``log.jsonl`` of a training run: one JSON row per step and per pass-rate refresh.

Appended by the main process only. A resumed run drops the rows past its checkpoint (and a
truncated last line left by a kill), so the log always matches the weights it sits beside.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from paced.io import atomic_write_text

log = logging.getLogger(__name__)


class TrainingLog:
    """``log.jsonl`` rows, appended by the main process; a resumed run drops rows past its checkpoint."""

    def __init__(self, path: Path, enabled: bool, resume_step: int | None) -> None:
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        rows = []
        if resume_step is not None and path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            for i, line in enumerate(lines):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    if i < len(lines) - 1:
                        raise
                    log.warning("%s: dropping a truncated last line (the run was killed mid-write)", path)
                    break
                keep = row["step"] <= resume_step if row["event"] == "step" else row["step"] < resume_step
                if keep:
                    rows.append(line + "\n")
        atomic_write_text(path, "".join(rows))

    def write(self, row: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")
