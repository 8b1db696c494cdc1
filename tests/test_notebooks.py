"""Every notebook runs top to bottom against the synthetic results fixture and writes its figures.

Kernel: ``python3`` from the venv's own kernelspec (``<venv>/share/jupyter/kernels/python3``, installed with
ipykernel); jupyter_client starts its ``python`` argv as ``sys.executable``, so the kernel is this interpreter
and imports this checkout's ``paced``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Figure stems each notebook must write from the fixture (PNG and PDF each).
EXPECTED = {
    "01_kernels_and_snr": ["01_kernels", "01_snr", "01_passrate_hist"],
    "02_main_comparison": [
        "02_accuracy_step300",
        "02_accuracy_step600",
        "02_forgetting",
        "02_vs_steps",
        "02_training_curves",
    ],
    "03_ablations": [
        "03_alpha_beta",
        "03_k",
        "03_refresh",
        "03_smoothing",
        "03_normalisation",
        "03_kernels",
        "03_stage_split",
    ],
}


def _env(results: Path, figures: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PACED_RESULTS": str(results),
        "PACED_FIGURES": str(figures),
        "GOMP_SPINCOUNT": "1000",
        "MPLBACKEND": "Agg",
        # the kernel must import this checkout's paced even when it is not installed
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


async def _execute(path: Path, results: Path, figures: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(path.parent)}}
    )
    await client.async_execute(env=_env(results, figures))
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    """Run every notebook on the fixture, and 02/03 on an empty results folder, concurrently (one kernel each:
    the kernels' start-up, mostly importing torch, overlaps); values are (figure dir, notebook or exception)."""
    empty = tmp_path_factory.mktemp("empty_results")
    jobs = {p.stem: (p, FIXTURE, tmp_path_factory.mktemp(p.stem)) for p in NOTEBOOKS}
    jobs |= {f"{p.stem}@empty": (p, empty, tmp_path_factory.mktemp(p.stem)) for p in NOTEBOOKS[1:]}

    async def run_all() -> list[object]:
        return await asyncio.gather(*(_execute(*job) for job in jobs.values()), return_exceptions=True)

    return {key: (job[2], out) for (key, job), out in zip(jobs.items(), asyncio.run(run_all()), strict=True)}


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_every_notebook_is_listed() -> None:
    assert [p.stem for p in NOTEBOOKS] == sorted(EXPECTED), [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_metadata(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["language_info"]["name"] == "python"  # Snakemake's notebook: directive needs it
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"


def test_kernel_is_this_interpreter() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    exe = spec.argv[0]
    assert exe in ("python", "python3", sys.executable), f"python3 kernel runs {exe}, not {sys.executable}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_on_fixture(name: str, executed: dict[str, tuple[Path, object]]) -> None:
    figures, nb = executed[name]
    if isinstance(nb, BaseException):
        raise nb  # nbclient's CellExecutionError names the cell and the traceback
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    for stem in EXPECTED[name]:
        for ext in ("png", "pdf"):
            f = figures / f"{stem}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f"{name} did not write {f.name}"
    assert not any("not available" in str(o) for o in outputs), "the fixture should cover every section"


@pytest.mark.parametrize("name", sorted(EXPECTED)[1:])
def test_notebook_survives_missing_results(name: str, executed: dict[str, tuple[Path, object]]) -> None:
    """With no results each notebook says what is missing and how to make it, instead of failing."""
    _, nb = executed[f"{name}@empty"]
    if isinstance(nb, BaseException):
        raise nb
    text = "".join(str(o) for o in _outputs(nb))
    assert "not available" in text and "snakemake --cores all" in text, text[:500]
