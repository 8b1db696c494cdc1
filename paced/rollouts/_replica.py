"""A sampling replica: ``python -m paced.rollouts._replica SPEC INDEX COUNT``, started by
:func:`paced.rollouts.replicas.run_replicas`; its log lines go to stderr (the parent's log file), tagged with it."""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: python -m paced.rollouts._replica SPEC INDEX COUNT")
    spec, index, count = argv[0], int(argv[1]), int(argv[2])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format=f"%(asctime)s %(levelname)s replica {index} of {count} %(name)s: %(message)s")
    from paced.rollouts.sampling_job import run_replica

    try:
        run_replica(spec, index, count)
    except BaseException:
        logging.getLogger("paced").exception("replica %d of %d failed", index, count)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main(sys.argv[1:])
