"""``python tests/_self_kill.py SIGNAL CPU_DELAY_S RUN.json [--resume]``: the trainer CLI, killed by SIGNAL once
it has used CPU_DELAY_S seconds of its own CPU time past the first checkpoint newer than the one it started from.

The kill comes from a thread of the trainer's own process and is timed in that process's CPU time, so it lands
a given amount of training past the checkpoint however loaded the machine is. Killed from the test process
after a wall-clock sleep instead, a run descheduled test process let the trainer finish first (its last 35
steps take ~2 s) and the test failed at random under load.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from paced.trainer.__main__ import main
from paced.trainer.checkpoint import latest_checkpoint


def kill_past_next_checkpoint(out_dir: Path, sig: int, cpu_delay_s: float) -> None:
    start = latest_checkpoint(out_dir)
    while latest_checkpoint(out_dir) == start:
        time.sleep(0.005)
    cpu0 = time.process_time()  # CPU time of every thread of this process: the trainer's progress
    while time.process_time() - cpu0 < cpu_delay_s:
        time.sleep(0.001)
    os.kill(os.getpid(), sig)


if __name__ == "__main__":
    sig, delay, run_json, *rest = sys.argv[1:]
    out = Path(json.loads(Path(run_json).read_text(encoding="utf-8"))["config"]["out_dir"])
    threading.Thread(target=kill_past_next_checkpoint, args=(out, int(sig), float(delay)), daemon=True).start()
    main([run_json, *rest])
    sys.exit("the run ended before it was killed")  # exit status 1: the test reports it with this log's tail
