"""Time metadata, the same way for every file that records it (issue #16): ``T`` in seconds,
``attrs["time_increment"]`` (TimeIncrement, else the planes' DeltaT) and
``attrs["acquisition_date"]`` (ISO 8601), shown by ``bfdask info``."""

from __future__ import annotations

import datetime
import subprocess
import sys

import numpy as np
import pytest
from shared_data import DATA, MAKE_LIF, requires_data, requires_make_lif

import bfdask
from bfdask import demo, info

#: make_lif's size options for a tiny file
SMALL = ("--y", "8", "--x", "8", "--quiet")


def assert_time(data, step: float) -> None:
    assert data.attrs["time_increment"] == pytest.approx(step, rel=1e-6)
    datetime.datetime.fromisoformat(data.attrs["acquisition_date"])  # ISO 8601
    assert data["T"].attrs["units"] == "s"
    np.testing.assert_allclose(np.diff(data["T"].values), step, rtol=1e-6)


@requires_data
def test_a_lif_with_plane_delta_t_has_its_frame_interval():
    """The shared LIF records DeltaT per plane, no TimeIncrement: the step comes from DeltaT."""
    data = bfdask.open(DATA / "lif" / "PR2729_frameOrderCombinedScanTypes.lif")
    assert_time(data, float(np.diff(data["T"].values)[0]))
    assert data.attrs["acquisition_date"].startswith("2017-01-30T")


@requires_make_lif
def test_a_make_lif_file_has_its_frame_interval(tmp_path):
    path = tmp_path / "timed.lif"
    subprocess.run(
        [sys.executable, str(MAKE_LIF), str(path), *("--series", "1", "--t", "3"), *SMALL],
        check=True,
    )
    assert_time(bfdask.open(path), 2.0)


def test_the_demo_ome_tiff_has_its_frame_interval(tmp_path):
    sample = demo.PositionsSample()
    path = demo.write_positions_sample(tmp_path, sample)
    data = bfdask.open(path, series=0)
    assert_time(data, sample.interval)


def test_a_single_timepoint_has_no_frame_interval(fake):
    data = bfdask.open(fake("one", sizeX=8, sizeY=8))
    assert "time_increment" not in data.attrs


def test_info_shows_the_time_step(tmp_path):
    path = demo.write_positions_sample(tmp_path, demo.PositionsSample())
    described = info.describe(path)
    assert described["series"][0]["time_increment"] == demo.PositionsSample().interval
    assert described["series"][0]["acquisition_date"]
    text = info.format_file(described)
    assert "Δt (s)" in text and f"{demo.PositionsSample().interval:.4g}" in text
