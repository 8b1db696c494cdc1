"""math-verify as a function, and as a line-protocol server for a time-bounded worker process.

Standalone on purpose (imports only math-verify): the worker runs this file as a script, without
importing the ``paced`` package (and so torch). Protocol: one JSON ``[gold, pred]`` per stdin line,
one JSON ``true``/``false`` per stdout line; ``ready`` is printed once at start.
"""

from __future__ import annotations

import json
import sys


def verify_pair(gold: str, pred: str) -> bool:
    """``verify(parse(gold), parse(pred))`` (gold first) with math-verify's signal timeouts off;
    a parse failure is a wrong answer. Not time-bounded: callers bound it."""
    from math_verify import parse, verify

    try:
        g = parse("\\boxed{" + gold + "}", parsing_timeout=None)
        p = parse("\\boxed{" + pred + "}", parsing_timeout=None)
        return bool(g and p and verify(g, p, timeout_seconds=None))
    except Exception:
        return False


def serve() -> None:
    import math_verify  # noqa: F401  -- pay the import before announcing readiness

    print("ready", flush=True)
    for line in sys.stdin:
        gold, pred = json.loads(line)
        print(json.dumps(verify_pair(gold, pred)), flush=True)


if __name__ == "__main__":
    serve()
