"""Shared figure plumbing: pyplot-free figures (no global backend state), atomic PNG + PDF saving."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from paced.io import atomic_path
from paced.report.tables import method_order

FORMATS = ("png", "pdf")


def new_figure(
    nrows: int = 1, ncols: int = 1, width: float = 5.0, height: float = 3.6, squeeze: bool = False
) -> tuple[Figure, np.ndarray]:
    """A standalone ``Figure`` and its axes grid [nrows, ncols] (never touches pyplot's state)."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze)
    return fig, axes


def save_figure(fig: Figure, out_stem: str | os.PathLike[str], formats: Sequence[str] = FORMATS) -> list[Path]:
    """Save ``fig`` as ``<out_stem>.png`` and ``<out_stem>.pdf`` (atomically); returns the paths."""
    stem = Path(out_stem)
    paths = []
    for fmt in formats:
        path = stem.parent / f"{stem.name}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
        paths.append(path)
    return paths


def method_colors(methods: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """A stable colour per method, in canonical method order (base is grey)."""
    from matplotlib import colormaps

    ordered = [m for m in method_order(list(methods)) if m != "base"]
    cmap = colormaps["tab10" if len(ordered) <= 9 else "tab20"]  # tab10's grey (7) is kept for base
    palette = [cmap(i) for i in range(cmap.N) if cmap.N != 10 or i != 7]
    colors = {m: palette[i % len(palette)] for i, m in enumerate(ordered)}
    colors["base"] = (0.45, 0.45, 0.45, 1.0)
    return colors


def empty_note(ax: object, text: str) -> None:
    """Mark an axis as having no data (keeps a figure readable when a cell is missing)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)  # type: ignore[attr-defined]
    ax.set_axis_off()  # type: ignore[attr-defined]
