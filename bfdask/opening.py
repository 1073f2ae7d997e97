"""Before a Java reader exists: the checks a path passes before Bio-Formats sees it, and
Bio-Formats' ``setId`` bounded in time.

:func:`check_path` lets only regular files through, once their format's own checks
(:mod:`bfdask.precheck`: IFD loops, LIF claims, DTDs in OME-XML) have passed; :func:`set_id`
runs ``setId`` on a thread of its own and gives up after :func:`open_timeout` seconds, so a
file whose structure loops never hangs the caller.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from . import config, jvm
from .errors import UnsupportedFormatError
from .javaerrors import call_quietly


def check_path(path: str | os.PathLike[str]) -> str:
    """Return ``path`` made absolute, or raise a clear error before Java sees it.

    Only regular files go on (never a FIFO, socket or device), once the checks of their format
    in :mod:`bfdask.precheck` have passed (IFD loops, LIF claims, DTDs in OME-XML).
    """
    from . import precheck

    p = Path(path).expanduser()
    st = precheck.stat_path(p)  # missing, symlink loop, name too long: BfdaskFileNotFoundError
    if p.is_dir():
        raise UnsupportedFormatError(
            f"{str(p)!r} is a directory; pass the path of an image file inside it "
            "(for a multi-file dataset, the file Bio-Formats opens, e.g. the .companion.ome)."
        )
    precheck.require_regular_file(p, st)
    if st.st_size == 0 and p.suffix.lower() != ".fake":
        raise UnsupportedFormatError(f"{str(p)!r} is empty (0 bytes): there is nothing to read.")
    resolved = str(p.resolve())
    precheck.check_contents(resolved, st)
    return resolved


def open_timeout(path: str) -> float:
    """Seconds Bio-Formats may take to read the structure of ``path`` (``setId``).

    The setting ``bfdask.reader.open-timeout`` (env ``BFDASK_OPEN_TIMEOUT``; 0 turns the bound
    off), else 20 s plus 1 s per 100 MB of file: a damaged file whose structure loops fails
    within seconds, a real 400 GB file may take minutes, and a first open on a loaded machine
    (Bio-Formats' classes loading) has room.
    """
    value = config.get("bfdask.reader.open-timeout")
    if value is not None and str(value).strip() != "":
        return float(value)
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    return 20.0 + size / 100e6


def set_id(reader: Any, path: str) -> None:
    """``setId`` on a thread of its own, given :func:`open_timeout` seconds.

    A Java thread cannot be stopped: past the bound it is left to finish (or spin) in the
    background, and the caller gets an error instead of a hang. Raises
    :class:`JavaThrown` for Bio-Formats' own errors.
    """
    limit = open_timeout(path)
    if limit <= 0:
        call_quietly(reader, "setId", "(Ljava/lang/String;)V", path)
        return
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            jvm.ensure()  # attach this thread
            call_quietly(reader, "setId", "(Ljava/lang/String;)V", path)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="bfdask-setId", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        raise UnsupportedFormatError(
            f"Bio-Formats did not finish reading the structure of {path!r} within {limit:.0f} "
            "s: the file is probably damaged (a structure that loops or claims absurd sizes). "
            "For a file that is only slow to open, raise the bound: BFDASK_OPEN_TIMEOUT=600 "
            "(or dask config 'bfdask.reader.open-timeout'; 0 for none). Bio-Formats' attempt "
            "goes on in the background of this process, which stays usable."
        )
    if outcome and outcome[0] is not None:
        raise outcome[0]
