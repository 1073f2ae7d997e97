"""Progress bars for long commands, on stderr so that stdout keeps only the results.

``bfdask profile ... > table.txt`` or ``bfdask info --json | jq`` get clean output; the bar
still shows in the terminal.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


def wait(futures: Any) -> None:
    """Show distributed's text progress bar until ``futures`` are done (on stderr)."""
    from distributed import progress

    with contextlib.redirect_stdout(sys.stderr):  # distributed's text bar writes to stdout
        progress(futures)
        print()


@contextlib.contextmanager
def local() -> Iterator[None]:
    """dask's progress bar for computations on the local scheduler, on stderr."""
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr):
        yield
