"""``python -m bfdask ...``: the command line (see :mod:`bfdask.cli`)."""

import sys

from .cli import main

sys.exit(main())
