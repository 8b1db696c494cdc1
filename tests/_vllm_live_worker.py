"""What each process runs in tests/test_vllm_live.py's sharded case: ``torchrun … _vllm_live_worker.py WORLD OUT``.

A two-stage PACED run (FKL, then on-policy RKL, p̂ estimated before step 1 and again at the stage boundary) with
the student sharded by FSDP2 over 2 processes and every in-training sample drawn by a vLLM engine in each process
(``external_launcher``), its weights reloaded from the sharded student after each update. Each process writes how
often its engine was reloaded and the weights it was given last, for the test to compare.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    world, out = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    from paced.rollouts.live_vllm import LiveVLLMSampler
    from paced.trainer import DistillConfig, distill

    syncs = []
    sync = LiveVLLMSampler.sync

    def counted(self):
        sync(self)
        syncs.append(self.syncs)

    LiveVLLMSampler.sync = counted
    from paced.rollouts.vllm import VLLMSampler

    load = VLLMSampler.load_weights

    def kept(self, weights):  # what the engine was given at the last reload, whole, for the test to compare
        weights = [(name, t.clone()) for name, t in weights]
        import torch

        torch.save(dict(weights), out / f"loaded_rank{rank}.pt")
        load(self, weights)

    VLLMSampler.load_weights = kept
    cfg = DistillConfig(**{**world["config"], "out_dir": str(out / "run"), "sharding": "fsdp"})
    distill(cfg, world["method"])
    (out / f"rank{rank}.json").write_text(json.dumps({"syncs": len(syncs)}))


if __name__ == "__main__":
    main()
