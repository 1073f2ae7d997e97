"""Statistics computed in the tasks against plain numpy on a plain scikit-image loop."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile
import xarray as xr
from scipy.ndimage import gaussian_filter1d
from skimage.measure import profile_line

import bfdask
from bfdask import demo
from bfdask.geometry import LINE_FIELDS
from bfdask.positions import PaddedPositionsWarning
from bfdask.stats import parse_stats

if TYPE_CHECKING:
    from pathlib import Path

SMALL = demo.PositionsSample(
    blocks=(("Pre lesion 2x", 2, 0.0), ("22.5h to 41h pSCI", 3, 22.5)),
    absent=(),
    bad=("Pos008", "22.5h to 41h pSCI", 1),
    size_z=3,
)
ALL = ["min", "max", "mean", "min_max_ratio", "slope", "missing"]
#: a user statistic that pickles by reference (workers import numpy, not the tests)
P90 = functools.partial(np.percentile, q=90)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.write_positions_sample(tmp_path_factory.mktemp("stats"), SMALL)


@pytest.fixture(scope="module")
def data(sample: Path) -> xr.DataArray:
    return bfdask.open_positions(sample)


def reference_profiles(sample: Path, data: xr.DataArray, stats: xr.Dataset) -> np.ndarray:
    """The user's loop: tifffile pixels, sum over Z, skimage's profile_line along the line
    bfdask found; shape (P, T, C, N) (N differs per position: a list of arrays)."""
    with tifffile.TiffFile(sample) as tif:
        series = [s.asarray() for s in tif.series]
    out = []
    for p in range(data.sizes["P"]):
        src = (float(stats["line_row0"][p]), float(stats["line_col0"][p]))
        dst = (float(stats["line_row1"][p]), float(stats["line_col1"][p]))
        width = int(stats["linewidth"][p])
        stack = np.concatenate([series[i] for i in dict.fromkeys(data["series"].values[p])])
        out.append(
            np.asarray(
                [
                    [
                        profile_line(stack[t, c].sum(axis=0), src, dst, linewidth=width)
                        for c in range(stack.shape[1])
                    ]
                    for t in range(stack.shape[0])
                ]
            )
        )
    return out


def numpy_stats(prof: np.ndarray, step: float, n: int = 5, sigma: float = 0.0) -> dict[str, float]:
    smooth = gaussian_filter1d(prof, sigma, mode="nearest") if sigma else prof
    lo, hi = int(np.argmin(smooth)), int(np.argmax(smooth))
    baseline = np.mean(np.r_[prof[:n], prof[-n:]])
    return {
        "min": prof.min(),
        "max": prof.max(),
        "mean": prof.mean(),
        "min_max_ratio": prof.min() / prof.max(),
        "slope": abs(smooth[hi] - smooth[lo]) / (abs(hi - lo) * step),
        "missing": np.sum(np.maximum(baseline - prof, 0)),
    }


@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_builtins_equal_numpy_on_a_skimage_loop(
    sample: Path, data: xr.DataArray, sigma: float
) -> None:
    stats = bfdask.profile(
        data,
        line="auto",
        z="sum",
        stats=ALL,
        profiles=True,
        slope_sigma=sigma,
        baseline_n=4,
    ).compute(scheduler="threads")
    assert set(ALL) <= set(stats.data_vars)
    assert stats["min"].dims == ("P", "T", "C")
    refs = reference_profiles(sample, data, stats)
    for p, ref in enumerate(refs):
        # the line was found near the tube the sample drew
        (r0, c0), (r1, c1) = SMALL.lines[p]
        found = stats[["line_row0", "line_col0", "line_row1", "line_col1"]].isel(P=p)
        ends = np.array(
            [[found["line_row0"], found["line_col0"]], [found["line_row1"], found["line_col1"]]],
            float,
        )
        truth = np.array([[r0, c0], [r1, c1]], float)
        err = min(np.abs(ends - truth).max(), np.abs(ends[::-1] - truth).max())
        assert err < 3
        assert float(stats["line_measured_width"][p]) == pytest.approx(
            SMALL.line_width / 2.5 * 2.3548, rel=0.2
        )
        step = float(stats["line_step"][p])
        length = np.hypot(ends[1, 0] - ends[0, 0], ends[1, 1] - ends[0, 1]) * SMALL.physical_size
        assert step == pytest.approx(length / (ref.shape[-1] - 1))
        n = ref.shape[-1]
        np.testing.assert_allclose(stats["profile"].values[p, :, :, :n], ref, rtol=1e-12)
        assert np.isnan(stats["profile"].values[p, :, :, n:]).all()
        for t in range(ref.shape[0]):
            for c in range(ref.shape[1]):
                expected = numpy_stats(ref[t, c], step, n=4, sigma=sigma)
                for name in ALL:
                    assert float(stats[name][p, t, c]) == pytest.approx(
                        expected[name], rel=1e-10
                    ), (name, p, t, c)


def test_profiles_travel_only_if_asked(data: xr.DataArray) -> None:
    stats = bfdask.profile(data, line="auto", stats="min,max")
    assert "profile" not in stats
    assert set(stats.data_vars) >= {"min", "max", "line_width", "line_status"}
    assert "mean" not in stats


def _user_callable_stats(data: xr.DataArray) -> xr.Dataset:
    return bfdask.profile(
        data, line="auto", z="sum", stats={"p90": P90, "high": "max"}, profiles=True
    )


def test_user_callable_on_threads(data: xr.DataArray) -> None:
    threaded = _user_callable_stats(data).compute(scheduler="threads")
    prof = threaded["profile"].values
    expected = np.nanpercentile(prof, 90, axis=-1)  # the NaN tail pads shorter lines
    np.testing.assert_allclose(threaded["p90"].values, expected, rtol=1e-12)
    np.testing.assert_array_equal(threaded["high"].values, np.nanmax(prof, axis=-1))


@pytest.mark.slow
@pytest.mark.cluster
def test_user_callable_on_a_cluster_as_on_threads(data: xr.DataArray) -> None:
    distributed = pytest.importorskip("distributed")
    lazy = _user_callable_stats(data).drop_vars("profile")
    threaded = lazy.compute(scheduler="threads")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_cluster = client.compute(lazy).result()
    xr.testing.assert_identical(on_cluster["p90"], threaded["p90"])
    xr.testing.assert_identical(on_cluster["high"], threaded["high"])


def test_bad_timepoints_flags_the_dead_frame_per_position(data: xr.DataArray) -> None:
    stats = bfdask.profile(data, line="auto", z="sum", stats="min,max,mean").compute()
    bad = bfdask.bad_timepoints(stats)
    position = SMALL.bad[0]
    assert bad[["position", "T"]].values.tolist() == [[position, SMALL.bad_index()]]
    assert bad["reason"].iloc[0] == "blank"
    assert list(bad.columns) == ["position", "T", "time", "reason", "detail", "score"]


def test_low_signal_rule() -> None:
    rng = np.random.default_rng(2)
    values = 1000 + rng.normal(0, 10, 20)
    values[7] = 400  # 40 % of typical: above the blank rule (20 %), far below typical
    values[12] = (
        800  # 80 %: within reach of real biology for a derived threshold? no: noise is 1 %
    )
    stats = xr.Dataset({"max": ("T", values)}, coords={"T": np.arange(20) * 60.0})
    bad = bfdask.bad_timepoints(stats, variables=["max"], threshold=1e9)  # outlier rule off
    assert bad["T"].tolist() == [7] and bad["reason"].tolist() == ["low_signal"]
    assert "40%" in bad["detail"].iloc[0]
    assert bfdask.bad_timepoints(stats, variables=["max"], threshold=1e9, low_signal=0.85)[
        "T"
    ].tolist() == [7, 12]
    assert bfdask.bad_timepoints(stats, variables=["max"], threshold=1e9, low_signal=False).empty


def test_parse_stats_errors() -> None:
    assert parse_stats("min, max").names == ("min", "max")
    assert parse_stats(["slope", P90.func]).names == ("slope", "percentile")
    with pytest.raises(ValueError, match="unknown statistic 'median'"):
        parse_stats("min,median")
    with pytest.raises(ValueError, match="cannot name"):
        parse_stats([lambda p: 1.0])
    with pytest.raises(ValueError, match="repeat"):
        parse_stats(["min", "min"])


def test_padded_positions_give_nan_and_are_not_flagged(tmp_path: Path) -> None:
    sample = demo.PositionsSample(
        blocks=(("Pre lesion 2x", 2, 0.0), ("22.5h to 41h pSCI", 3, 22.5)),
        absent=(("Pos013", "22.5h to 41h pSCI"),),
        bad=("Pos004", "Pre lesion 2x", 9),  # no dead frame
        size_z=2,
    )
    path = demo.write_positions_sample(tmp_path, sample)
    with pytest.warns(PaddedPositionsWarning):
        data = bfdask.open_positions(path)
    stats = bfdask.profile(data, line="auto", stats="max").compute()
    assert (
        np.isnan(stats["max"].values[2, 2:]).all()
        and np.isfinite(stats["max"].values[2, :2]).all()
    )
    assert bfdask.bad_timepoints(stats).empty


def test_dead_frame_is_nobodys_neighbour() -> None:
    # a short stitched series (2 + 4 timepoints, as measured on a sample): with max alone, the
    # last frame's only neighbours were the dead frame and one other -- it looked like a jump
    values = np.array([4623.0, 4600, 4396, 4411, 362, 4416])
    stats = xr.Dataset({"max": ("T", values)}, coords={"T": np.arange(6) * 1800.0})
    bad = bfdask.bad_timepoints(stats, variables=["max"])
    assert bad["T"].tolist() == [4] and bad["reason"].tolist() == ["blank"]


def test_statistics_run_in_the_reading_task(tmp_path: Path) -> None:
    import dask
    from dask.callbacks import Callback

    path = tmp_path / "g&sizeX=400&sizeY=300&sizeZ=3&sizeC=2&sizeT=6&pixelType=uint16.fake"
    path.touch()
    data = bfdask.open(path)
    blocks = data.data.npartitions
    stats = bfdask.profile(
        data, (20, 5), (280, 390), linewidth=3, stats=["min", "slope", np.median]
    )
    (optimized,) = dask.optimize(stats)
    graph = dict(optimized.__dask_graph__())
    tasks = [key for key, task in graph.items() if type(task).__name__ == "Task"]
    heavy = [key for key in tasks if "bfdask-stats" in key[0]]
    assert len(heavy) == blocks  # one task reads and reduces each block
    assert not [key for key in tasks if key[0].startswith("bfdask-") and key not in heavy]
    assert len(tasks) == blocks * 4  # + one pick per statistic; no profile unless asked

    class Sizes(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.largest = 0

        def _posttask(self, key, result, dsk, state, id) -> None:
            if "finalize" not in str(key):  # the gathered result itself
                self.largest = max(self.largest, int(getattr(result, "nbytes", 0)))

    with Sizes() as sizes:
        computed = stats.compute(scheduler="threads")
    assert sizes.largest <= 2 * 3 * 8  # per block: 2 channels x 3 statistics, float64
    assert set(computed.data_vars) == {"min", "slope", "median", *LINE_FIELDS, "line_width"}
    assert computed["min"].dims == ("T", "C") and computed["line_measured_width"].dims == ()
