#!/usr/bin/env bash
# CI lane: the core library (no extras) installs into a fresh venv and its math API works without Snakemake,
# lm-eval, pandas, matplotlib, TRL or Jupyter. Usage: .ci/core_install.sh [VENV_DIR]  (default: a temp dir)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="${1:-$work/venv}"
# Build from a copy of the working tree's files so that the build leaves nothing (build/, *.egg-info) in the checkout;
# local virtual environments are not part of it, and files deleted in the working tree are skipped.
(cd "$repo" && git ls-files -co --exclude-standard -z | grep -zv '^\.venv' \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$work"
mkdir -p "$work/src" && (cd "$work" && find . -mindepth 1 -maxdepth 1 ! -name src ! -name venv -exec mv {} src/ \;)
python3 -m venv "$venv"
"$venv/bin/pip" install -q -c "$repo/constraints.txt" "$work/src"
cd "$work"  # import the installed package, not the checkout
GOMP_SPINCOUNT=1000 "$venv/bin/python" - <<'PY'
import importlib.util

import torch

import paced
from paced import forward_kl, get_kernel, weighted_loss

extras = [m for m in ("snakemake", "lm_eval", "math_verify", "pandas", "matplotlib", "trl", "nbclient", "jsonschema")
          if importlib.util.find_spec(m) is not None]
assert not extras, f"the core install pulled extras' packages: {extras}"
w = get_kernel("beta", alpha=1.0, beta=1.0)(torch.tensor([0.0, 0.5, 1.0]))
torch.testing.assert_close(w, torch.tensor([0.0, 0.25, 0.0]))
logits = torch.randn(2, 3, 5)
torch.testing.assert_close(forward_kl(student_logits=logits, teacher_logits=logits), torch.zeros(2))
loss = weighted_loss(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 3.0]), normalisation="sum")
torch.testing.assert_close(loss, torch.tensor(2.5))  # (1·1 + 3·3) / (1 + 3)
print(f"core install OK: paced {paced.__version__} from {paced.__file__}")
PY
"$venv/bin/paced" --help >/dev/null
echo "core install OK: paced --help runs"
