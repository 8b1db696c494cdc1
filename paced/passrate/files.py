"""The ``passrates.jsonl`` file format: one row ``{id, num_correct, k, p_hat, tier}`` per problem.

Written by :func:`paced.passrate.estimate.estimate_pass_rates`; read by the trainer (initial p̂),
the SNR stage and the figures. Reading names the file and line of a malformed row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from paced.io import write_jsonl
from paced.tasks.base import DataError

REQUIRED = ("id", "num_correct", "k")


def is_overlong(row: Mapping[str, Any]) -> bool:
    """A row the pass-rate stage skipped as over-long (``"overlong": true``): no estimate, never trained on."""
    return bool(row.get("overlong"))


def read_passrate_rows(path: str | Path, *, include_overlong: bool = False) -> list[dict[str, Any]]:
    """The rows of ``path`` (blank lines skipped; over-long rows only with ``include_overlong``: the trainer, the
    SNR stage and the figures leave them out); a row without id/num_correct/k raises ``DataError``."""
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            int(row["num_correct"]), int(row["k"]), str(row["id"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}:{lineno}: a pass-rate row needs {', '.join(REQUIRED)} ({err})") from err
        if include_overlong or not is_overlong(row):
            rows.append(row)
    return rows


def read_passrates(path: str | Path) -> dict[str, tuple[int, int]]:
    """``{id: (num_correct, k)}`` from a ``passrates.jsonl``."""
    return {str(r["id"]): (int(r["num_correct"]), int(r["k"])) for r in read_passrate_rows(path)}


def overlong_ids(path: str | Path) -> set[str]:
    """Ids of the problems the pass-rate stage skipped as over-long (rows flagged ``"overlong": true``: their
    prompt + budget exceeds the model's context, so they are never trained on)."""
    return {str(r["id"]) for r in read_passrate_rows(path, include_overlong=True) if is_overlong(r)}


def read_p_hat(path: str | Path) -> dict[str, float]:
    """``{id: p_hat}`` from a ``passrates.jsonl``."""
    return {str(r["id"]): float(r["p_hat"]) for r in read_passrate_rows(path)}


def write_passrates(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows atomically (see the module docstring for the fields)."""
    write_jsonl(path, [dict(r) for r in rows])
    return Path(path)
