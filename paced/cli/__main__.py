"""``python -m paced.cli`` = the ``paced`` console script."""

import sys

from paced.cli import main

sys.exit(main())
