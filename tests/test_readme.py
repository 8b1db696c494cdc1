"""The README's library example runs as written."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    code = blocks[0] + "\nassert abs(float(w[1]) - 0.234375) < 1e-6 and float(w[0]) == 0.0 and loss.item() > 0\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_ci_runs_the_readmes_test_command():
    """.ci/run runs command (b) of the README exactly (then its extra lanes)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(python3 -m venv \.venv && .*)$", text, flags=re.M)
    assert len(commands) == 2, commands  # (a) run the default, (b) run the tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any(line.startswith(commands[1] + " ") or line == commands[1] for line in ci.splitlines()), commands[1]
    assert '-e ".[workflow]"' in commands[0] and "snakemake --cores all" in commands[0]
