"""The command line, end to end: ``bfdask demo`` and ``bfdask profile`` in subprocesses."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shared_data import DATA, requires_data

from bfdask import demo
from bfdask.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*Creating scratch directories.*:UserWarning")

SAMPLE = demo.Sample()
BAD = SAMPLE.series_names()[SAMPLE.bad_series]
POSITIONS = demo.PositionsSample()


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
def test_demo_end_to_end(demo_run: tuple[Path, subprocess.CompletedProcess, float]) -> None:
    out, done, seconds = demo_run
    assert done.returncode == 0, done.stderr
    assert seconds < 60
    plot = out / "profile.png"
    assert plot.stat().st_size > 10_000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {plot.resolve()}" in done.stdout
    # the stitched per-position tables: every block, the whole time course, the dead frame
    position, block, _ = POSITIONS.bad
    flags = _flags(done.stdout)
    assert flags == {
        p: (f"T={POSITIONS.bad_index()} (blank)" if p == position else "none")
        for p in POSITIONS.positions
    }
    for name, _, _ in POSITIONS.blocks:
        assert name in done.stdout
    assert "padded with NaN" in done.stderr  # Pos013 misses the last block, and says so
    table = _read_csv(out / "stats.csv")
    assert len(table) == sum(len(POSITIONS.timepoints(p)) for p in POSITIONS.positions) * 2
    flagged = [row for row in table if row["bad"] == "True"]
    assert [(r["position"], r["block"]) for r in flagged] == [(position, block)] * 2  # 2 channels
    # no progress bar in a log (stderr is a pipe here; issue #16), stdout only results, no
    # Bio-Formats / distributed log noise
    assert "Completed" not in done.stderr and "Completed" not in done.stdout
    for noise in ("INFO", "WARN", "DEBUG", "distributed.", "Traceback"):
        assert noise not in done.stdout
        assert noise not in done.stderr


def _read_csv(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows


@pytest.mark.slow
@pytest.mark.cluster
def test_profile_positions_auto_line_csv(tmp_path: Path) -> None:
    sample = demo.PositionsSample(bad=("Pos004", "22.5h to 41h pSCI", 2), size_z=2)
    path = demo.write_positions_sample(tmp_path, sample)
    out = tmp_path / "out" / "stats.csv"
    stats = "min,max,min_max_ratio,slope,missing"
    done, _ = _run(
        [  # --positions before the file (issue #16: it took the path as its pattern)
            *("profile", "--positions", str(path), "--line", "auto", "--stats", stats),
            *("--z", "sum", "--out", str(out), "--workers", "1"),
        ]
    )
    assert done.returncode == 0, done.stderr
    table = _read_csv(out)
    columns = ["position", "channel", "time_s", "block", *stats.split(","), "bad", "reason"]
    assert list(table[0]) == columns
    assert len(table) == (12 + 12 + 8) * 2  # position x timepoint x channel, no padding rows
    flagged = {
        (r["position"], r["block"], r["time_s"], r["reason"]) for r in table if r["bad"] == "True"
    }
    seconds = 22.5 * 3600 + 2 * sample.interval  # Pos004 is the first acquisition
    assert flagged == {("Pos004", "22.5h to 41h pSCI", str(seconds), "blank")}
    assert {r["position"] for r in table} == {"Pos004", "Pos008", "Pos013"}
    assert (out.with_suffix(".png")).stat().st_size > 10_000
    if importlib.util.find_spec("pyarrow") is not None:
        assert out.with_suffix(".parquet").exists()


@pytest.mark.slow
@pytest.mark.cluster
def test_profile_on_an_existing_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    path = demo.write_sample(tmp_path, SAMPLE)
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
                str(path),
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


@pytest.mark.slow
def test_errors_are_messages_not_tracebacks(tmp_path: Path, capsys) -> None:
    assert main(["profile", str(tmp_path / "missing.lif"), "--line", "1,2,3,4"]) == 1
    err = capsys.readouterr().err
    assert "bfdask: error:" in err and "missing.lif" in err and "Traceback" not in err
    assert main(["profile", str(tmp_path / "none.lif"), "--line", "auto", "--positions"]) == 1
    assert "none.lif" in capsys.readouterr().err


def test_bad_arguments_are_usage_errors(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["profile", "x.lif", "--line", "1,2,3"])
    assert exit_.value.code == 2
    assert "four numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["profile", "x.lif", "--line", "auto", "--stats", "min,median"])
    assert exit_.value.code == 2


def test_version_and_missing_positionals(capsys) -> None:
    """Issue #16: `bfdask --version`; a command without its file is a usage error."""
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("bfdask ")
    for argv in (["convert", "only.lif"], ["profile", "--line", "auto"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert "the following arguments are required" in capsys.readouterr().err


@requires_data
def test_bioformats_warnings_only_with_verbose(tmp_path: Path) -> None:
    """Issue #16: Bio-Formats' WARN lines stay off the terminal unless -v asks."""
    import os
    import shutil

    folder = tmp_path / "companion"
    shutil.copytree(DATA / "ome-tiff" / "ometiffjl_companion", folder)
    path = folder / "multifile-Z1.ome.tiff"
    env = {k: v for k, v in os.environ.items() if k != "BFDASK_LOG_LEVEL"}
    env["BFDASK_MEMO_DIR"] = ""  # a memoized open would not parse the file, nor warn
    quiet, loud = (
        subprocess.run(
            [*_command(), *flags, "info", str(path)],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )
        for flags in ([], ["-v"])
    )
    assert quiet.returncode == loud.returncode == 0
    assert "SamplesPerPixel mismatch" not in quiet.stderr
    assert "SamplesPerPixel mismatch" in loud.stderr  # the file does make Bio-Formats warn


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    """Issue #16: a bar on a terminal (a pseudo-terminal here), none in a log file."""
    import os
    import pty

    path = tmp_path / "bar&sizeX=32&sizeY=32&sizeT=4.fake"
    path.touch()
    argv = [*_command(), "convert", str(path), str(tmp_path / "tty.zarr")]
    leader, follower = pty.openpty()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=follower, timeout=180)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: all read
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert done.returncode == 0
    assert b"100% Completed" in seen
    log = tmp_path / "log.txt"
    with log.open("w") as err:
        argv[-1] = str(tmp_path / "log.zarr")
        logged = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, timeout=180)
    assert logged.returncode == 0
    assert "Completed" not in log.read_text()


def test_info_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    fake = tmp_path / "pipe&sizeX=16&sizeY=16&series=400.fake"
    fake.touch()
    script = f"{sys.executable} -m bfdask info --json '{fake}' | head -c 10"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("{")
    assert "Broken pipe" not in result.stderr and "Traceback" not in result.stderr


def test_cli_defaults_name_the_librarys_own() -> None:
    """The CLI's defaults are the library's own objects (one definition each)."""
    from bfdask import cli, positions, stats

    assert cli.DEFAULT_PATTERN is positions.DEFAULT_PATTERN
    assert cli.BUILTINS is stats.BUILTINS
    assert set(cli.STATS.split(",")) <= set(stats.BUILTINS)


def test_commands_compute_on_threads_unless_asked_for_a_cluster() -> None:
    """Issue #18: on one machine threads beat a LocalCluster (no worker starts, nothing sent
    between processes; benchmarks/RESULTS.md, "The user's job"), so that is the default."""
    from bfdask.cli import _parser
    from bfdask.commands import client

    for command in (["demo"], ["profile", "x.lif", "--line", "auto"]):
        args = _parser().parse_args(command)
        assert args.workers is None and args.scheduler is None
        with client(args.scheduler, workers=args.workers) as connected:
            assert connected is None  # dask's threads in this process
    assert _parser().parse_args(["demo", "--workers", "2"]).workers == 2
