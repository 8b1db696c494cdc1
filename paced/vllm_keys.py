"""Which vLLM engine settings are part of a result's identity, and which only say how an engine runs.

Torch-free (the workflow reads it while parsing the config). The identity keys change what an engine computes; the
others (memory share, CUDA graphs, scheduling, executor) are handed to a job at run time, so lowering
``gpu_memory_utilization`` after an out-of-memory failure reruns nothing that finished and resumes a killed run.
"""

from __future__ import annotations

IDENTITY_KEYS = ("dtype", "max_model_len", "tensor_parallel_size", "data_parallel_size")
# the in-training engine's memory share (the trainer's engine shares its GPUs with the student and the teacher)
TRAINING_ONLY_KEYS = ("train_gpu_memory_utilization",)
DEFAULT_TRAIN_GPU_MEMORY_UTILIZATION = 0.3
# of the trainer's own engine (paced.rollouts.live_vllm), only the dtype changes what it samples: it is one whole
# engine per process (no tensor or data parallelism) sized by the trainer from its prompts (its max_model_len)
TRAINING_IDENTITY_KEYS = ("dtype",)
