"""Where the time goes: py-spy samples of bfdask reading, grouped by Python line.

Runs a child process that reads the big OME-TIFF through bfdask (threaded scheduler, one
thread) and samples it with ``py-spy record --format raw``. Java time shows as the Python line
that made the JNI call (``env.call_method`` = Bio-Formats' ``openBytes``).
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._util import REPO, Table

_CHILD = r"""
import sys, time
import bfdask
from benchmarks import _tasks
path, seconds, chunks = sys.argv[1], float(sys.argv[2]), sys.argv[3]
arr = bfdask.open(path, chunks=None if chunks == "default" else {"Z": 1}, ome=False).data
_tasks.read_and_count(arr[:1], scheduler="threads", num_workers=1)
end = time.time() + seconds
while time.time() < end:
    _tasks.read_and_count(arr, scheduler="threads", num_workers=1)
"""


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if os.path.exists(found) else None


def profile(path: str, work: Path, seconds: float = 8.0, chunks: str = "default") -> Table:
    exe = py_spy()
    if exe is None:
        return Table("py-spy profile", ["line", "share"], [["py-spy not installed", "-"]])
    out = work / f"pyspy_{chunks}.txt"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [
            exe,
            "record",
            "--format",
            "raw",
            "-r",
            "200",
            "-o",
            str(out),
            "--",
            sys.executable,
            "-c",
            _CHILD,
            path,
            str(seconds),
            chunks,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds * 10 + 120,
    )
    if proc.returncode != 0 or not out.exists():
        return Table(
            "py-spy profile",
            ["line", "share"],
            [[f"py-spy failed: {proc.stderr.strip()[-200:]}", "-"]],
        )
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        # the worker thread's samples only: those that pass through bfdask's task function
        if not any("read_block" in f or "__getitem__ (bfdask" in f for f in frames):
            continue
        leaf = frames[-1]
        leaves[_short(leaf)] += int(count)
        total += int(count)
    rows = [[name, f"{100 * n / total:.1f} %"] for name, n in leaves.most_common(8)]
    return Table(
        f"py-spy: where bfdask's task time goes (chunks={chunks}, threads=1, {seconds:.0f} s, "
        f"{total} samples in tasks)",
        [
            "innermost Python frame (Java time shows on the line that calls it)",
            "share of task samples",
        ],
        rows or [["no samples", "-"]],
    )


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py:123)"
    if "(" in frame and frame.endswith(")"):
        func, _, where = frame.partition(" (")
        where = where[:-1]
        return f"{func} ({os.path.basename(where)})"
    return frame


def line_text(frame_desc: str) -> str:  # pragma: no cover - helper for the report
    return frame_desc


def summary(tables: list[Table]) -> dict[str, Any]:
    return {t.title: t.rows for t in tables}
