"""bfdask.profile / profile_series / bad_timepoints against a plain numpy + skimage loop.

Pixels for the reference come from an independent reader where one exists (tifffile, readlif,
czifile), else from the file's documented content (Bio-Formats' fake format).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dask
import numpy as np
import pytest
import xarray as xr
from dask.array.utils import assert_eq
from dask.callbacks import Callback
from shared_data import DATA
from skimage.measure import profile_line

import bfdask
from bfdask import demo
from bfdask.geometry import SampledLine
from bfdask.sampling import BlockTask, LineSpec, profile_block, profile_plane
from bfdask.stats import StatsSpec

if TYPE_CHECKING:
    from pathlib import Path

LIF = DATA / "lif" / "xz-example.lif"
CZI = DATA / "czi" / "CellDivision_T3_Z5_CH2_X240_Y170.czi"

SMALL = demo.Sample(
    series=2,
    size_t=12,
    size_z=3,
    size_y=64,
    size_x=160,
    line=((25, 8), (38, 150)),
    line_width=7,
    bad_series=1,
    bad_timepoint=7,
)


def reference(pixels: np.ndarray, src, dst, *, z: str | None = "max", **kwargs) -> np.ndarray:
    """The user's loop: per T and C, project the stack (numpy) and profile it (skimage)."""
    out = []
    for t in range(pixels.shape[0]):
        per_c = []
        for c in range(pixels.shape[1]):
            stack = pixels[t, c]
            if z is None:
                per_c.append([profile_line(plane, src, dst, **kwargs) for plane in stack])
            else:
                plane = {"max": np.max, "mean": np.mean, "sum": np.sum}[z](stack, axis=0)
                per_c.append(profile_line(plane, src, dst, **kwargs))
        out.append(per_c)
    return np.asarray(out, dtype=np.float64)


def assert_matches(stats: xr.Dataset, expected: np.ndarray, *, exact: bool = True) -> None:
    prof = stats["profile"].values
    assert prof.shape == expected.shape
    check = np.testing.assert_array_equal if exact else np.testing.assert_allclose
    check(stats["min"].values, expected.min(axis=-1))
    check(stats["max"].values, expected.max(axis=-1))
    np.testing.assert_allclose(stats["mean"].values, expected.mean(axis=-1), rtol=1e-12)
    np.testing.assert_allclose(prof, expected, rtol=1e-12, atol=1e-9)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.write_sample(tmp_path_factory.mktemp("sample"), SMALL)


@pytest.fixture(scope="module")
def fake_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fake") / (
        "img&sizeX=300&sizeY=200&sizeZ=4&sizeC=2&sizeT=5&series=2&pixelType=uint16.fake"
    )
    path.touch()
    return path


def fake_pixels(shape: tuple[int, ...], series: int) -> np.ndarray:
    """Bio-Formats' fake content: value = x, except coded 10-px boxes in rows 0-9."""
    t_n, c_n, z_n, h, w = shape
    out = np.empty(shape, np.uint16)
    for t in range(t_n):
        for c in range(c_n):
            for z in range(z_n):
                plane = np.broadcast_to(np.arange(w, dtype=np.uint16), (h, w)).copy()
                no = z + z_n * (c + c_n * t)  # XYZCT
                for box, value in enumerate((series, no, z, c, t)):
                    plane[:10, box * 10 : (box + 1) * 10] = value
                out[t, c, z] = plane
    return out


LINES = {
    "horizontal": ((100, 5), (100, 290), 1),
    "diagonal-wide": ((3, 2), (190, 280), 5),
    "steep-fraction": ((10.5, 150.25), (195.7, 160.9), 3),
    "leaves-image": ((-20, 10), (150, 320), 3),
}


@pytest.mark.parametrize("line", list(LINES), ids=list(LINES))
@pytest.mark.parametrize("z", ["max", "mean", None])
def test_fake_matches_loop(fake_file: Path, line: str, z: str | None) -> None:
    src, dst, width = LINES[line]
    data = bfdask.open(fake_file, series=1)
    pixels = fake_pixels(data.shape, series=1)
    assert_eq(data.data, pixels)  # the reference is what Java made
    if line == "leaves-image":  # allowed (skimage allows it), but said
        with pytest.warns(UserWarning, match=r"src and dst outside the 200 x 300 image"):
            stats = bfdask.profile(data, src, dst, linewidth=width, z=z)
    else:
        stats = bfdask.profile(data, src, dst, linewidth=width, z=z)
    stats = stats.compute(scheduler="threads")
    assert_matches(stats, reference(pixels, src, dst, z=z, linewidth=width))
    assert stats["profile"].dims == ("T", "C", *(("Z",) if z is None else ()), "distance")
    assert stats["distance"].attrs["units"] == "px"


@pytest.mark.parametrize("z", ["max", "mean", "sum"])
def test_stack_split_over_z_blocks(fake_file: Path, z: str) -> None:
    data = bfdask.open(fake_file, series=1, chunks={"Z": 3})  # blocks of 3 and 1 planes
    assert len(data.data.chunks[2]) == 2
    pixels = fake_pixels(data.shape, series=1)
    src, dst, width = LINES["diagonal-wide"]
    stats = bfdask.profile(data, src, dst, linewidth=width, z=z).compute()
    assert_matches(stats, reference(pixels, src, dst, z=z, linewidth=width), exact=z != "mean")


@pytest.mark.parametrize("z", ["max", "sum"])
def test_ome_tiff_matches_tifffile_loop(sample: Path, z: str) -> None:
    import tifffile

    src, dst = SMALL.line
    with tifffile.TiffFile(sample) as tif:
        pixels = tif.series[1].asarray()
    data = bfdask.open(sample, series=1)
    stats = bfdask.profile(data, src, dst, linewidth=SMALL.line_width, z=z).compute()
    assert_matches(stats, reference(pixels, src, dst, z=z, linewidth=SMALL.line_width))
    # labeled: T in s from the file, channel names, distance in µm
    np.testing.assert_allclose(stats["T"].values, np.arange(SMALL.size_t) * SMALL.time_increment)
    assert list(stats["C"].values) == list(SMALL.channel_names)
    length = np.hypot(dst[0] - src[0], dst[1] - src[1]) * SMALL.physical_size
    assert stats["distance"].attrs["units"] == "µm"
    assert stats["distance"].values[-1] == pytest.approx(length)
    assert stats.attrs["series_name"] == SMALL.series_names()[1]


@pytest.mark.skipif(not LIF.exists(), reason="shared test data not present")
def test_real_lif_matches_readlif_loop() -> None:
    from readlif.reader import LifFile

    data = bfdask.open(LIF, series=0)  # 128x128, C2, T20 (XYCTZ)
    image = LifFile(str(LIF)).get_image(0)
    size_t, size_c = data.sizes["T"], data.sizes["C"]
    pixels = np.stack(
        [
            np.stack(
                [
                    np.asarray(image.get_plane(display_dims=(1, 3), c=c, requested_dims={4: t}))
                    for c in range(size_c)
                ]
            )[:, None]
            for t in range(size_t)
        ]
    )
    assert pixels.shape == data.shape
    src, dst = (10, 3), (120, 125)
    stats = bfdask.profile(data, src, dst, linewidth=3).compute()
    assert_matches(stats, reference(pixels, src, dst, linewidth=3))
    assert stats["distance"].attrs["units"] == "µm"
    assert stats.sizes["T"] == 20 and "T" in stats.coords
    assert bfdask.bad_timepoints(stats).empty  # a clean acquisition (a speck moves max only)


@pytest.mark.skipif(not CZI.exists(), reason="shared test data not present")
def test_real_czi_matches_czifile_loop() -> None:
    import czifile

    data = bfdask.open(CZI)  # T3 C2 Z5 170x240
    raw = czifile.imread(CZI)
    pixels = np.squeeze(raw)  # (T, C, Z, Y, X) for this file
    assert pixels.shape == data.shape
    src, dst = (20, 10), (150, 230)
    for z in ("max", None):
        stats = bfdask.profile(data, src, dst, linewidth=5, z=z).compute()
        assert_matches(stats, reference(pixels, src, dst, z=z, linewidth=5))
        assert bfdask.bad_timepoints(stats, window=3).empty


def test_micrometre_line_equals_pixel_line(sample: Path) -> None:
    data = bfdask.open(sample, series=0)
    (r0, c0), (r1, c1) = SMALL.line
    um = SMALL.physical_size
    by_px = bfdask.profile(data, (r0, c0), (r1, c1), linewidth=3).compute()
    by_um = bfdask.profile(
        data, (r0 * um, c0 * um), (r1 * um, c1 * um), linewidth=3, units="um"
    ).compute()
    np.testing.assert_allclose(by_um["profile"].values, by_px["profile"].values, atol=1e-6)


def test_skimage_options_pass_through(fake_file: Path) -> None:
    data = bfdask.open(fake_file, series=0).isel(T=slice(0, 2))
    pixels = fake_pixels(data.shape, series=0)
    src, dst = (150, 20), (60, 250)
    kwargs = {"linewidth": 4, "order": 0, "mode": "constant", "cval": 7.0, "reduce_func": np.max}
    stats = bfdask.profile(data, src, dst, **kwargs).compute()
    assert_matches(stats, reference(pixels, src, dst, **kwargs))
    spline = bfdask.profile(data, src, dst, order=3).compute()  # reads whole planes
    assert_matches(spline, reference(pixels, src, dst, order=3))


def test_selection_and_other_dim_orders(sample: Path) -> None:
    data = bfdask.open(sample, series=1, dims="TZYXC")
    src, dst = SMALL.line
    full = bfdask.profile(bfdask.open(sample, series=1), src, dst).compute()
    reordered = bfdask.profile(data, src, dst).compute()
    xr.testing.assert_allclose(reordered["max"], full["max"].transpose(*reordered["max"].dims))
    one = bfdask.profile(data.sel(C="GFP").isel(T=[2, 5]), src, dst).compute()
    assert one["max"].dims == ("T",)
    np.testing.assert_array_equal(one["max"].values, full["max"].sel(C="GFP").values[[2, 5]])


# -- where the work runs --------------------------------------------------------------------


class _OutputSizes(Callback):
    """Records the size of every task's result (threaded/sync schedulers)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[object, int] = {}
        self.starts = 0

    def _start(self, dsk: object) -> None:
        self.starts += 1

    def _posttask(self, key, result, dsk, state, id) -> None:
        self.sizes[key] = int(getattr(result, "nbytes", 0))


@pytest.mark.parametrize("line", ["horizontal", "diagonal-wide"])
def test_graph_one_task_per_block_no_pixel_outputs(tmp_path: Path, line: str) -> None:
    path = tmp_path / "g&sizeX=512&sizeY=512&sizeZ=6&sizeC=2&sizeT=8&pixelType=uint16.fake"
    path.touch()
    data = bfdask.open(path)
    n_blocks = data.data.npartitions
    src, dst, width = {
        "horizontal": ((100, 5), (100, 500), 1),
        "diagonal-wide": ((0, 0), (511, 511), 5),
    }[line]
    stats = bfdask.profile(data, src, dst, linewidth=width)
    (optimized,) = dask.optimize(stats)
    graph = dict(optimized.__dask_graph__())
    tasks = {key: task for key, task in graph.items() if type(task).__name__ == "Task"}
    names = {key[0] for key in tasks}
    heavy = [key for key in tasks if "bfdask-profile" in key[0]]
    # each block is read and profiled in one task; the rest are per-block reductions of profiles
    assert len(heavy) == n_blocks
    assert all("profile" in name for name in names if "bfdask" in name)  # no separate reads
    assert len(tasks) == n_blocks * 4  # profile + min, max, mean of each block's profile
    with _OutputSizes() as sizes:
        computed = stats.compute(scheduler="threads")
    plane = 512 * 512 * 2
    profile_bytes = computed["profile"].isel(T=0).nbytes
    per_task = {key: size for key, size in sizes.sizes.items() if "finalize" not in str(key)}
    assert len(per_task) >= n_blocks
    assert max(per_task.values()) <= profile_bytes < plane // 10  # profiles, never pixels
    assert max(sizes.sizes.values()) <= computed.nbytes  # the result, gathered at the end


@pytest.mark.parametrize(
    "chunks", [None, {"Y": 128}, {"Z": 2}], ids=["blocks", "tiles", "z-split"]
)
def test_table_leaves_no_alias_and_computes_alone(tmp_path: Path, chunks: dict | None) -> None:
    """The table a plan computes has no alias of a fused task (a cluster would run each as a
    task) and, with whole planes per block, one task per block under the table's own name;
    computed alone it gives the lazy Dataset's values (issue #18)."""
    pytest.importorskip("dask._task_spec")
    from bfdask._profile import compute_plans, plan_profile

    path = tmp_path / "g&sizeX=512&sizeY=512&sizeZ=6&sizeC=2&sizeT=4&pixelType=uint16.fake"
    path.touch()
    data = bfdask.open(path, chunks=chunks)
    for stats in (None, ["min", "max"]):
        plan = plan_profile(data, (100, 5), (300, 500), linewidth=3, z="max", stats=stats)
        (table,) = dask.optimize(plan.table.data)
        graph = dict(table.__dask_graph__())
        assert [type(node).__name__ for node in graph.values()].count("Alias") == 0
        ours = [key for key in graph if isinstance(key, tuple) and key[0] == table.name]
        assert len(ours) == table.npartitions == data.sizes["T"]
        if chunks is None:  # nothing else but the source object
            assert len(graph) == len(ours) + 1
        (computed,) = compute_plans(plan)
        xr.testing.assert_identical(computed, plan.dataset().compute(scheduler="threads"))


def test_profile_block_is_pure_numpy() -> None:
    block = np.arange(2 * 3 * 20 * 30, dtype=np.uint16).reshape(2, 3, 20, 30)
    line = SampledLine(src=(2, 1), dst=(17, 28), linewidth=3)
    task = BlockTask(
        lines=(line,),
        p_axis=None,
        each=False,
        c_axis=None,
        line_channel=0,
        linewidth=None,
        z="max",
        order=1,
        mode="reflect",
        cval=0.0,
        reduce_func=None,
        stats=StatsSpec((), ()),
        scale=(1.0, 1.0),
        n_profile=32,  # the samples skimage takes along this line
    )
    out = profile_block(block, task)
    expected = [profile_line(block[i].max(0), (2, 1), (17, 28), linewidth=3) for i in range(2)]
    np.testing.assert_array_equal(out, np.asarray(expected))


# -- all series ----------------------------------------------------------------------------


def test_profile_series_one_compute(sample: Path) -> None:
    src, dst = SMALL.line
    with _OutputSizes() as counter:
        results = bfdask.profile_series(sample, src, dst, linewidth=SMALL.line_width)
    assert counter.starts == 1  # one graph for every series
    assert list(results) == SMALL.series_names()
    for index, (name, stats) in enumerate(results.items()):
        single = bfdask.profile(
            bfdask.open(sample, series=index), src, dst, linewidth=SMALL.line_width
        ).compute()
        xr.testing.assert_identical(stats["max"], single["max"])
        assert stats.attrs["series_name"] == name
    lazy = bfdask.profile_series(sample, src, dst, series=[SMALL.series_names()[1]], compute=False)
    assert list(lazy) == [SMALL.series_names()[1]]
    assert dask.is_dask_collection(lazy[SMALL.series_names()[1]])
    with pytest.raises(TypeError, match=r"^profile\(\) got an unexpected keyword .*'bogus'"):
        bfdask.profile_series(sample, src, dst, bogus=1)


def test_bfdask_profile_stays_callable() -> None:
    """Once every submodule is imported, no public name of the package is a module (a module
    ``bfdask.profile`` would shadow the function ``bfdask.profile``)."""
    import importlib
    import pkgutil
    import types

    for module in pkgutil.walk_packages(bfdask.__path__, "bfdask."):
        if module.name.endswith("__main__"):  # runs the command line
            continue
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as exc:  # an optional dependency (e.g. a Java bridge)
            if (exc.name or "").startswith("bfdask"):
                raise
    shadowed = [n for n in bfdask.__all__ if isinstance(getattr(bfdask, n), types.ModuleType)]
    assert not shadowed
    assert callable(bfdask.profile) and callable(bfdask.profile_series)
    assert bfdask.profile.__doc__ and "profile_line" in bfdask.profile.__doc__


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"z": "median"}, "z must be"), ({"linewidth": 0}, "linewidth"), ({"units": "mm"}, "units")],
)
def test_bad_arguments(fake_file: Path, kwargs: dict, match: str) -> None:
    data = bfdask.open(fake_file)
    with pytest.raises(ValueError, match=match):
        bfdask.profile(data, (1, 1), (5, 5), **kwargs)


def test_micrometres_need_pixel_size(fake_file: Path) -> None:
    with pytest.raises(ValueError, match="physical"):
        bfdask.profile(bfdask.open(fake_file), (1, 1), (5, 5), units="um")


# -- failed acquisitions ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_stats(sample: Path) -> dict[str, xr.Dataset]:
    return bfdask.profile_series(sample, *SMALL.line, linewidth=SMALL.line_width)


def test_bad_timepoints_finds_the_blank_frame(sample_stats: dict[str, xr.Dataset]) -> None:
    bad = bfdask.bad_timepoints(sample_stats[SMALL.series_names()[SMALL.bad_series]])
    assert bad["T"].tolist() == [SMALL.bad_timepoint]
    assert bad["reason"].tolist() == ["blank"]
    assert bad["time"].tolist() == [SMALL.bad_timepoint * SMALL.time_increment]


def test_bad_timepoints_no_false_positive_with_lesion(sample_stats: dict[str, xr.Dataset]) -> None:
    clean = sample_stats[SMALL.series_names()[0]]
    # the lesion really is there: the minimum drops by more than half, then recovers
    low = clean["min"].sel(C="GFP").values
    assert low.min() < 0.5 * low[0] and low[-1] > 0.8 * low[0]
    bad = bfdask.bad_timepoints(clean)
    assert bad.empty, bad
    assert list(bad.columns) == ["T", "time", "reason", "detail", "score"]


def _series(values: np.ndarray, profile_top: float | None = None) -> xr.Dataset:
    t = np.arange(values.size)
    stats = xr.Dataset(
        {name: ("T", values * factor) for name, factor in (("mean", 1.0), ("max", 1.5))},
        coords={"T": t * 60.0},
    )
    if profile_top is not None:
        stats["profile"] = (("T", "distance"), np.repeat((values * 1.5)[:, None], 10, axis=1))
        stats.attrs["saturation"] = profile_top
    return stats


def test_bad_timepoints_outlier_and_saturation() -> None:
    rng = np.random.default_rng(1)
    trend = np.linspace(1000, 800, 30) + rng.normal(0, 10, 30)
    jumped = trend.copy()
    jumped[12] *= 0.55  # dim, but above the blank threshold: an outlier
    bad = bfdask.bad_timepoints(_series(jumped))
    assert bad["T"].tolist() == [12] and bad["reason"].tolist() == ["outlier"]
    assert bad["score"].iloc[0] < -6

    saturated = trend.copy()
    saturated[20] = 4095 / 1.5  # the whole profile clipped at 12-bit max
    bad = bfdask.bad_timepoints(_series(saturated, profile_top=4095))
    assert bad["T"].tolist() == [20] and bad["reason"].tolist() == ["saturated"]

    assert bfdask.bad_timepoints(_series(trend, profile_top=4095)).empty
    speck = _series(trend)
    speck["max"][5] *= 3  # one bright speck on the line: max jumps, mean does not
    assert bfdask.bad_timepoints(speck).empty
    assert bfdask.bad_timepoints(speck, variables=["max"])["T"].tolist() == [5]
    with pytest.raises(ValueError, match="'T' dim"):
        bfdask.bad_timepoints(_series(trend).isel(T=0))


def test_rgb_samples_profile_separately(tmp_path: Path) -> None:
    path = tmp_path / "rgb&sizeX=64&sizeY=48&sizeZ=2&sizeC=3&rgb=3&sizeT=3&pixelType=uint8.fake"
    path.touch()
    data = bfdask.open(path)
    assert data.dims[-1] == "S"
    stats = bfdask.profile(data, (5, 2), (40, 60), linewidth=3).compute()
    assert stats["profile"].dims == ("T", "C", "S", "distance")
    pixels = data.values
    for s in range(3):
        expected = reference(pixels[..., s], (5, 2), (40, 60), linewidth=3)
        np.testing.assert_array_equal(stats["profile"].values[:, :, s], expected)


@pytest.mark.slow  # 1 728 skimage profiles per dtype: 4-9 s each
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "bool"])
def test_cached_sample_points_give_skimages_profile_exactly(dtype: str) -> None:
    """bfdask computes a line's sample points once; the profile must still be skimage's."""
    rng = np.random.default_rng(11)
    plane = (rng.random((70, 90)) * 4000).astype(dtype)
    lines = [((5.0, 3.0), (60.0, 85.0)), ((65.5, 2.25), (4.0, 40.0)), ((30, 80), (30, 5))]
    lines += [((-6.0, -4.5), (75.0, 96.0)), ((0, 0), (0, 89))]  # beyond and along the edges
    lines += [((35, 45), (35 + 30 * np.sin(a), 45 + 30 * np.cos(a))) for a in np.linspace(0, 3, 7)]
    orders = [0, None] if dtype == "bool" else [0, 1, 3, None]
    for src, dst in lines:
        for linewidth in (1, 2, 9):
            for order in orders:
                for mode in ("reflect", "constant", "nearest", "wrap"):
                    for reduce_func in (None, np.max, lambda v: float(np.median(v))):
                        spec = LineSpec(src, dst, linewidth, order, mode, 7.0, reduce_func)
                        kwargs = {"linewidth": linewidth, "order": order, "mode": mode}
                        if reduce_func is not None:
                            kwargs["reduce_func"] = reduce_func
                        expected = profile_line(plane, src, dst, cval=7.0, **kwargs)
                        np.testing.assert_array_equal(profile_plane(plane, spec), expected)


def test_bad_timepoints_says_what_it_takes(fake_file: Path) -> None:
    with pytest.raises(TypeError, match=r"Dataset of statistics that bfdask.profile returns"):
        bfdask.bad_timepoints(bfdask.open(fake_file))
