"""``python -m bfdask ...``: the command line (see :mod:`bfdask.cli`)."""

from .cli import run

run()
