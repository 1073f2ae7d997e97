"""The benchmark suite's smoke test: ``python -m benchmarks --quick`` writes a complete report.

No timing is asserted (CI machines are noisy); only that every section ran, every table is
filled and the plots exist.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.cluster,
    # the suite measures the seed's own loop (python-bioformats' ImageReader), which runs on
    # javabridge only: it runs in the javabridge environment (ci/test.sh)
    pytest.mark.skipif(
        importlib.util.find_spec("javabridge") is None,
        reason="the benchmark suite's seed loop needs python-bioformats on javabridge",
    ),
]


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("bench-out")
    work = tmp_path_factory.mktemp("bench-work")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--work", str(work)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out, proc


def test_quick_run_succeeds(quick_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = quick_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (out / "FAILURES.txt").exists()


def test_results_tables_are_filled(quick_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = quick_run
    text = (out / "RESULTS.md").read_text()
    for heading in (
        "## Machine and versions",
        "## Summary: targets",
        "## 1. Dimension order",
        "## 2. Throughput",
        "## 3. Fixed cost per chunk",
        "## 4. Scale",
        "## 5. Native pixel path",
    ):
        assert heading in text, heading
    assert "TODO" not in text
    assert "Traceback" not in text
    assert "Bio-Formats | 7." in text  # versions were found
    tables = 0
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and all(c == "" for c in cells):  # the header row of the two-column table
            continue
        tables += 1
        # the machine table has an empty header row; every other cell must have something
        assert all(c for c in cells[1:]), line
        assert not any(re.fullmatch(r"nan|inf|None", c) for c in cells), line
    assert tables > 50


def test_targets_and_plots(quick_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = quick_run
    data = json.loads((out / "results.json").read_text())
    statuses = {row[3] for row in data["targets"]}
    assert statuses <= {"met", "NOT met", "-"}
    assert len(data["targets"]) >= 9
    for name in ("throughput.png", "dimorder.png", "task_cost.png", "scale.png"):
        png = out / name
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
