"""Packaging: core deps as ranges, extras, the pinned set, the core install without extras; LICENSE; the paper
page agrees with the numbers the report uses; nothing names a document outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
WORKFLOW_ONLY = {"snakemake", "lm-eval", "math-verify", "datasets", "pandas", "matplotlib", "jsonschema", "trl",
                 "nbclient", "nbformat", "ipykernel", "vllm"}


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.strip()
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            out[canonicalize_name(name)] = version.strip()
    return out


CONSTRAINTS = _pins((ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines())


def _requirements(group: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    raw = project["dependencies"] if group == "core" else project["optional-dependencies"][group]
    return [Requirement(r) for r in raw]


def test_core_dependencies_are_ranges_without_the_workflow() -> None:
    core = _requirements("core")
    names = {canonicalize_name(r.name) for r in core}
    assert {"torch", "numpy", "transformers"} <= names
    assert not names & WORKFLOW_ONLY, names & WORKFLOW_ONLY
    assert all(not any(s.operator == "==" for s in r.specifier) for r in core), [str(r) for r in core]


def test_test_extra_pulls_what_the_default_test_run_imports() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"workflow", "notebooks", "trl", "vllm", "slurm", "test"} <= set(extras)
    (self_ref,) = [r for r in _requirements("test") if canonicalize_name(r.name) == "paced"]
    assert {"workflow", "notebooks", "trl"} <= self_ref.extras
    assert PYPROJECT["project"]["scripts"]["paced"] == "paced.cli:main"


@pytest.mark.parametrize("group", ["core", "workflow", "notebooks", "trl", "slurm", "test"])
def test_constraints_pin_a_version_inside_every_range(group: str) -> None:
    for req in _requirements(group):
        name = canonicalize_name(req.name)
        if name == "paced":
            continue
        assert name in CONSTRAINTS, f"constraints.txt pins no version of {name}"
        assert req.specifier.contains(CONSTRAINTS[name], prereleases=True), \
            f"constraints.txt pins {name}=={CONSTRAINTS[name]}, outside pyproject's {req}"


def test_environment_yml_pins_equal_constraints() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    pins = _pins(pip)
    assert pins and {n: CONSTRAINTS.get(n) for n in pins} == pins
    direct = {canonicalize_name(r.name) for g in ("core", "workflow", "notebooks", "trl", "slurm", "test")
              for r in _requirements(g)} - {"paced"}
    assert direct <= set(pins), direct - set(pins)


def test_import_paced_and_the_cli_need_no_workflow_package(tmp_path: Path) -> None:
    blocked = sorted(m.replace("-", "_") for m in WORKFLOW_ONLY)
    (tmp_path / "p.jsonl").write_text('{"id": "a", "num_correct": 2, "k": 8}\n', encoding="utf-8")
    code = f"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import paced
from paced.cli import main
assert float(paced.get_kernel('beta')(0.5)) == 0.25
assert main(['weights', 'p.jsonl', '-o', 'w.jsonl']) == 0
print(json.loads(open('w.jsonl').read())['weight'])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split()[-1]) == pytest.approx(0.25 * 0.75)  # p̂ = 2/8: w = p(1-p)


def test_license_is_mit_as_pyproject_says() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def _paper_tables() -> dict[str, dict[tuple[str, str], tuple[float, float]]]:
    text = (ROOT / "docs" / "paper.md").read_text(encoding="utf-8")
    out = {}
    for title, body in re.findall(r"<!-- paper-table: (.*?) -->\n(.*?)\n\n", text, flags=re.S):
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in body.splitlines()]
        header, cells = rows[0], rows[2:]
        out[title] = {(r[0], bench): tuple(float(x) for x in cell.split("±"))
                      for r in cells for bench, cell in zip(header[1:], r[1:], strict=True)}
    return out


def test_docs_paper_tables_match_the_numbers_the_report_uses() -> None:
    from paced.report.paper import PAPER_NUMBERS, V3_DISTILL, V3_SELF

    tables = _paper_tables()
    assert set(tables) == {"v3 distillation", "v3 self-distillation"}
    for title, setting in (("v3 distillation", V3_DISTILL), ("v3 self-distillation", V3_SELF)):
        code = {(n.method, n.benchmark): (n.mean, n.std) for n in PAPER_NUMBERS
                if n.setting == setting and n.quantity == "accuracy"}
        assert tables[title] == code, title
    text = (ROOT / "docs" / "paper.md").read_text(encoding="utf-8")
    for n in PAPER_NUMBERS:
        if n.quantity != "accuracy":
            assert f"{n.mean}" in text, f"docs/paper.md lacks {n}"
    assert "arxiv.org/abs/2603.11178" in text and "@article{" in text


def test_nothing_names_a_document_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True,
                           cwd=ROOT, check=True).stdout.split()
    pattern = re.compile("|".join(re.escape(x) for x in ("SPEC" + " §", "SPEC" + ".md", "../" + "shared")))
    files = [f for f in files if not f.startswith((".venv", "build/"))]  # local venvs and build trees are not ours
    hits = [f"{f}:{i}" for f in files if (ROOT / f).is_file()
            and (ROOT / f).suffix in {".py", ".md", ".yaml", ".yml", ".ipynb", ".smk", ".txt", ".toml", ".sh", ""}
            for i, line in enumerate((ROOT / f).read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if pattern.search(line)]
    assert not hits, hits


@pytest.mark.slow
def test_core_install_in_a_fresh_venv(tmp_path: Path) -> None:
    """``.ci/core_install.sh``: a fresh venv, ``pip install -c constraints.txt .`` (no extras), the math API."""
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "core_install.sh"), str(tmp_path / "venv")],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "core install OK: paced --help runs" in proc.stdout
    print(f"core install lane: {time.perf_counter() - t0:.0f} s")
