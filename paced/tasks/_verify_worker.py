"""A verification worker: ``python -m paced.tasks._verify_worker``, started by :class:`~paced.tasks.verify.Verifier`.

Protocol on stdin/stdout, each message a pickle behind an 8-byte big-endian length: the first message in is the
task (its ``check`` decides), then each ``(docs, texts)`` in is answered by ``("ok", verdicts)`` or ``("error",
traceback)``. EOF on stdin ends the worker. Anything else the checker prints goes to stderr, not into the protocol.
A separate process rather than a ``multiprocessing`` pool: a spawned pool child re-runs the parent's main script
(a Snakemake ``script:`` job would run again), and a forked one copies the sampler's CUDA context and threads.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import traceback
from typing import IO, Any

_LEN = struct.Struct(">Q")


def frame(obj: Any) -> bytes:
    """``obj`` as one message: its pickle behind its length."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


def send(stream: IO[bytes], obj: Any) -> None:
    stream.write(frame(obj))
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next message, or ``EOFError`` when the stream has ended."""
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError("stream closed")
    size = _LEN.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("stream closed mid-message")
    return pickle.loads(data)


def serve() -> None:
    from paced.tasks.verify import check_all

    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the protocol
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    task = receive(inp)
    while True:
        try:
            docs, texts = receive(inp)
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", check_all(task, docs, texts))
        except Exception:
            reply = ("error", traceback.format_exc())
        send(out, reply)


if __name__ == "__main__":
    serve()
