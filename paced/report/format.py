"""Cell formatting (``mean ± std``) and small DataFrame -> Markdown / LaTeX / CSV writers."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from paced.io import atomic_write_text

MISSING = "—"
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_SYMBOLS = {
    "±": r"$\pm$",
    "—": "--",
    "→": r"$\to$",
    "≥": r"$\geq$",
    "−": "-",
    "↔": r"$\leftrightarrow$",
}


def _is_missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_mean_std(mean: float | None, std: float | None = None, digits: int = 1) -> str:
    """``"79.4 ± 0.5"``; ``"79.4"`` when std is missing (one seed); ``"—"`` when mean is missing."""
    if _is_missing(mean):
        return MISSING
    if _is_missing(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_ci(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """``"+1.2 [0.3, 2.1]"`` (a signed mean difference and its CI)."""
    if _is_missing(mean):
        return MISSING
    return f"{mean:+.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _cell(x: object) -> str:
    if isinstance(x, float):
        return MISSING if math.isnan(x) else f"{x:.4g}"
    return MISSING if x is None or x is pd.NA else str(x)


def to_markdown(df: pd.DataFrame, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (index as the first column when ``index``)."""
    frame = df.reset_index() if index else df
    header = [str(c) for c in frame.columns]
    rows = [[_cell(v).replace("|", r"\|") for v in row] for row in frame.itertuples(index=False)]
    align = [":---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map the few Unicode symbols the tables use to math mode."""
    out = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
    for sym, rep in _LATEX_SYMBOLS.items():
        out = out.replace(sym, rep)
    return out


def to_latex(df: pd.DataFrame, index: bool = True, caption: str | None = None) -> str:
    """A booktabs ``tabular`` (wrapped in ``table`` with a caption when one is given)."""
    frame = df.reset_index() if index else df
    spec = "l" + "r" * (len(frame.columns) - 1)
    head = " & ".join(latex_escape(str(c)) for c in frame.columns) + r" \\"
    body = [" & ".join(latex_escape(_cell(v)) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines = [
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        head,
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
    ]
    if caption:
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{latex_escape(caption)}}}",
            *lines,
            r"\end{table}",
        ]
    return "\n".join(lines) + "\n"


def write_frame(
    df: pd.DataFrame, stem: str | os.PathLike[str], index: bool = True, caption: str | None = None
) -> list[Path]:
    """Write ``df`` as ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` (atomically)."""
    stem = Path(stem)
    paths = [stem.parent / f"{stem.name}{ext}" for ext in (".csv", ".md", ".tex")]
    atomic_write_text(paths[0], df.to_csv(index=index))
    md = (f"**{caption}**\n\n" if caption else "") + to_markdown(df, index=index)
    atomic_write_text(paths[1], md)
    atomic_write_text(paths[2], to_latex(df, index=index, caption=caption))
    return paths
