"""Which failures belong to a cell of the grid, and which to the machine it ran on — decided here, once.

A *cell* (one training run, one evaluation of a checkpoint) can fail for reasons that are part of its result:
the method diverges (a non-finite loss), its data are malformed, its settings are inconsistent. Rerunning the
same cell fails the same way, so under ``on_error: record`` such a failure is written in place of the result
and the grid goes on (the summary lists it).

*Infrastructure* failures say nothing about the method: the disk is full, memory or GPU memory ran out, a
subprocess was killed, a collective timed out, a file or package is missing, the network is down. They are
transient or fixable outside the config, so they always fail the job: Snakemake's ``--retries`` and the next
run retry it, and no error record can be mistaken for a result.

:func:`is_infrastructure` is the split; anything it does not name is a cell failure.
"""

from __future__ import annotations

import subprocess

# exception class names, matched along the MRO (torch/NCCL classes without importing torch)
_INFRA_CLASSES = frozenset({
    "OutOfMemoryError",  # torch.OutOfMemoryError (CUDA / accelerator memory)
    "DistError", "DistBackendError", "DistNetworkError", "DistStoreError",  # torch.distributed
})
# message fragments of runtime errors raised by backends as plain RuntimeError
_INFRA_MESSAGES = ("out of memory", "nccl", "cuda error", "cudnn_status", "cublas_status", "gloo",
                   "connection reset", "connection refused", "broken pipe", "timed out", "watchdog",
                   "no space left on device", "killed")


# A launched training process (torchrun, accelerate) that fails for a reason of its cell writes CELL_ERROR_FILE in
# its run directory and exits with CELL_EXIT_CODE; the launcher turns that into a CellFailure. Any other non-zero exit
# of a subprocess stays an infrastructure failure.
CELL_EXIT_CODE = 3
CELL_ERROR_FILE = "cell_error.json"


class CellFailure(Exception):
    """A failure of the cell reported across a process boundary (its message names the original error)."""


def is_infrastructure(err: BaseException) -> bool:
    """True for failures of the machine, not of the cell (see the module docstring)."""
    if isinstance(err, (MemoryError, OSError, TimeoutError, ImportError, subprocess.SubprocessError,
                        KeyboardInterrupt, SystemExit)):
        return True  # OSError covers disk full, missing files, I/O and connection errors
    if any(c.__name__ in _INFRA_CLASSES for c in type(err).__mro__):
        return True
    if isinstance(err, RuntimeError) and any(m in str(err).lower() for m in _INFRA_MESSAGES):
        return True
    if isinstance(err, CellFailure):
        return False  # a subprocess reported a failure of its own cell (see CELL_EXIT_CODE)
    cause = err.__cause__ or err.__context__
    return cause is not None and cause is not err and is_infrastructure(cause)
