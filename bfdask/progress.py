"""Progress bars for long commands, on stderr so that stdout keeps only the results.

``bfdask profile ... > table.txt`` or ``bfdask info --json | jq`` get clean output; the bar
still shows in the terminal. Only in a terminal: with stderr going to a file or a pipe (a
batch job's log), a bar would write thousands of updates, so there is none. The setting
``bfdask.progress`` (env ``BFDASK_PROGRESS``: yes/no) overrides the guess.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

from . import config

if TYPE_CHECKING:
    from collections.abc import Iterator


def enabled() -> bool:
    """Whether to draw progress bars: the setting ``bfdask.progress`` if set, else whether
    stderr is a terminal."""
    if config.get("bfdask.progress") not in (None, ""):
        return config.flag("bfdask.progress")
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def wait(futures: Any) -> None:
    """Wait for ``futures``, with distributed's text progress bar on stderr if
    :func:`enabled`."""
    from distributed import progress
    from distributed import wait as wait_for

    if not enabled():
        wait_for(futures)
        return
    with contextlib.redirect_stdout(sys.stderr):  # distributed's text bar writes to stdout
        progress(futures)
        print()


@contextlib.contextmanager
def local() -> Iterator[None]:
    """dask's progress bar for computations on the local scheduler, on stderr, if
    :func:`enabled`."""
    from dask.diagnostics import ProgressBar

    if not enabled():
        yield
        return
    with ProgressBar(out=sys.stderr):
        yield
