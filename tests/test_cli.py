"""The command line, end to end: ``bfdask demo`` and ``bfdask profile`` in subprocesses."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bfdask import demo
from bfdask.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*Creating scratch directories.*:UserWarning")

SAMPLE = demo.Sample()
BAD = SAMPLE.series_names()[SAMPLE.bad_series]


def _command() -> list[str]:
    script = Path(sys.executable).with_name("bfdask")  # the console script of this venv
    return [str(script)] if script.exists() else [sys.executable, "-m", "bfdask"]


def _run(args: list[str], *, module: bool = False) -> tuple[subprocess.CompletedProcess, float]:
    command = [sys.executable, "-m", "bfdask"] if module else _command()
    start = time.perf_counter()
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=180, check=False
    )
    return done, time.perf_counter() - start


def _flags(stdout: str) -> dict[str, str]:
    """``{series name: its 'flagged timepoints' line}`` from the tables printed."""
    out, name = {}, None
    for line in stdout.splitlines():
        if line.startswith("== ") and line.endswith(" =="):
            name = line[3:-3]
        elif line.startswith("flagged timepoints:") and name is not None:
            out[name] = line.split(":", 1)[1].strip()
    return out


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess, float]:
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    done, seconds = _run(["demo", "--out", str(out)], module=True)
    return out, done, seconds


@pytest.mark.slow
@pytest.mark.cluster
def test_demo_end_to_end(demo_run: tuple[Path, subprocess.CompletedProcess, float]) -> None:
    out, done, seconds = demo_run
    assert done.returncode == 0, done.stderr
    assert seconds < 60
    plot = out / "profile.png"
    assert plot.stat().st_size > 10_000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {plot.resolve()}" in done.stdout
    flags = _flags(done.stdout)
    assert flags == {
        name: (f"T={SAMPLE.bad_timepoint} (blank)" if name == BAD else "none")
        for name in SAMPLE.series_names()
    }
    # no Bio-Formats / distributed log noise
    for noise in ("INFO", "WARN", "DEBUG", "distributed.", "Traceback"):
        assert noise not in done.stdout
        assert noise not in done.stderr


@pytest.mark.slow
@pytest.mark.cluster
def test_profile_on_an_existing_cluster(
    demo_run: tuple[Path, subprocess.CompletedProcess, float], tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    out, done, _ = demo_run
    assert done.returncode == 0, done.stderr
    (r0, c0), (r1, c1) = SAMPLE.line
    plot = tmp_path / "plots" / "two.png"
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=40,
    ) as cluster:
        result, seconds = _run(
            [
                "profile",
                str(out / "embryos.ome.tif"),
                "--series",
                "1",
                SAMPLE.series_names()[2],
                "--line",
                f"{r0},{c0},{r1},{c1}",
                "--linewidth",
                str(SAMPLE.line_width),
                "--scheduler",
                cluster.scheduler_address,
                "--plot",
                str(plot),
            ]
        )
    assert result.returncode == 0, result.stderr
    assert seconds < 60
    assert plot.stat().st_size > 10_000
    assert _flags(result.stdout) == {
        BAD: f"T={SAMPLE.bad_timepoint} (blank)",
        SAMPLE.series_names()[2]: "none",
    }


def test_info(tmp_path: Path, capsys) -> None:
    path = demo.write_sample(tmp_path, SAMPLE)
    assert main(["info", str(path)]) == 0
    printed = capsys.readouterr().out
    for name in SAMPLE.series_names():
        assert name in printed
    assert "16x2x4x96x256" in printed
    assert "bioformats_version: 7." in printed


def test_errors_are_messages_not_tracebacks(tmp_path: Path, capsys) -> None:
    assert main(["profile", str(tmp_path / "missing.lif"), "--line", "1,2,3,4"]) == 1
    err = capsys.readouterr().err
    assert "bfdask: error:" in err and "missing.lif" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["profile", "x.lif", "--line", "1,2,3"])
    assert exit_.value.code == 2
    assert "four numbers" in capsys.readouterr().err
