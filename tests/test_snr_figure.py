"""The SNR figure draws the configured kernel's w(p), not a Beta kernel read from the SNR result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import paced.report.stage_figures as sf
from paced.kernels import get_kernel

SNR = {
    "bins": [
        {"group": "all", "bin_lo": lo, "bin_hi": lo + 0.25, "n": 20, "snr": s, "ci_lo": s - 0.01, "ci_hi": s + 0.01}
        for lo, s in zip((0.0, 0.25, 0.5, 0.75), (0.02, 0.05, 0.05, 0.02), strict=True)
    ],
    "kernel": {"alpha": 1.0, "beta": 1.0},  # what the SNR stage records, whatever the run trains with
}


def _overlay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kwargs: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """(p, w, label) of the dashed w(p) line the SNR figure draws."""
    figs = []
    monkeypatch.setattr(sf, "save_figure", lambda fig, stem: figs.append(fig) or [])
    sf.plot_snr(SNR, tmp_path / "snr", **kwargs)
    (line,) = [ln for ax in figs[0].axes for ln in ax.get_lines() if ln.get_label().startswith("w(p)")]
    return np.asarray(line.get_xdata()), np.asarray(line.get_ydata()), line.get_label()


@pytest.mark.parametrize(
    ("kernel", "label"),
    [
        ({"name": "hard_filter"}, "w(p): hard_filter"),
        ({"name": "beta", "alpha": 2.0, "beta": 0.5}, "w(p) = p^2(1−p)^0.5"),
        ({"name": "beta", "alpha": 1.0, "beta": 1.0, "floor": 0.1}, "w(p) = p^1(1−p)^1, floor 0.1"),
    ],
)
def test_overlay_follows_the_configured_kernel(monkeypatch, tmp_path, kernel, label) -> None:
    p, w, got = _overlay(monkeypatch, tmp_path, kernel=kernel)
    params = {k: v for k, v in kernel.items() if k != "name"}
    np.testing.assert_allclose(w, np.asarray(get_kernel(kernel["name"], **params)(p), dtype=float))
    assert got == label


def test_overlay_defaults_to_the_recorded_kernel(monkeypatch, tmp_path) -> None:
    p, w, label = _overlay(monkeypatch, tmp_path)
    np.testing.assert_allclose(w, p * (1 - p))
    assert label == "w(p) = p^1(1−p)^1"
