"""Z projections folded in while the planes are read (issue #18): the same numbers, less memory.

``bfdask.profile(..., z="sum"|"max"|"mean")`` on an array as ``bfdask.open`` made it reads each
task's planes one at a time and folds them into the projection (``bfdask.projection``) instead
of reading the whole ``(Z, Y, X)`` stack first. The result must be bit for bit what numpy's
``stack.sum(axis=Z)`` gives, on both pixel paths, and a task must never hold the stack.
"""

from __future__ import annotations

import tracemalloc
from typing import TYPE_CHECKING

import numpy as np
import pytest
from shared_data import DATA, requires_data
from test_native import write_lif

import bfdask
from bfdask import projection
from bfdask.projected import project_z, source_of

if TYPE_CHECKING:
    from pathlib import Path

DTYPES = ["uint8", "uint16", "int16", "uint32", "int32", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", projection.HOWS)
def test_fold_gives_numpys_projection_bit_for_bit(dtype: str, how: str) -> None:
    rng = np.random.default_rng(5)
    for count in (1, 2, 9, 41):
        if dtype.startswith("float"):
            stack = (rng.standard_normal((count, 2, 31, 47)) * 1e3).astype(dtype)
        else:
            info = np.iinfo(dtype)
            stack = rng.integers(
                info.min, info.max, (count, 2, 31, 47), dtype=dtype, endpoint=True
            )
        want = getattr(stack, how)(axis=0)
        got = projection.fold(lambda z, s=stack: s[z].copy(), count, how)
        assert got.dtype == want.dtype
        assert got.tobytes() == want.tobytes(), (dtype, how, count)


def test_sums_of_16_bit_planes_accumulate_in_32_bits_only_where_exact() -> None:
    assert projection.accumulator(np.dtype("uint16"), "sum", 65537) == np.uint32
    assert projection.accumulator(np.dtype("uint16"), "sum", 65538) == np.uint64
    assert projection.accumulator(np.dtype("int16"), "mean", 65536) == np.int32
    assert projection.accumulator(np.dtype("uint16"), "max", 10**9) == np.uint16


@requires_data
@pytest.mark.parametrize("pixels", ["auto", "bioformats"])
@pytest.mark.parametrize(
    "name",
    [
        "imagej-tiff/neubias_xyzc_8bit_spheres.tif",
        "czi/CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi",
        "lif/LeicaLASX_xz-plane_example.lif",
    ],
)
def test_projected_array_equals_numpys_projection(name: str, pixels: str) -> None:
    data = bfdask.open(DATA / name, pixels=pixels)
    for how in projection.HOWS:
        folded = project_z(data, how)
        assert folded is not None and "Z" not in folded.dims
        want = getattr(data.values, how)(axis=data.dims.index("Z"))
        got = folded.values
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), how
        # a window is folded from the window's rows only, and still exactly
        window = folded.isel(Y=slice(3, 40), X=slice(5, 60)).values
        assert window.tobytes() == got[..., 3:40, 5:60].tobytes()
        # most of the width: whole rows read natively, the projection cropped once
        wide = folded.isel(Y=slice(3, 40), X=slice(1, -2)).values
        assert wide.tobytes() == got[..., 3:40, 1:-2].tobytes()


@requires_data
def test_an_array_changed_after_open_is_not_projected_this_way() -> None:
    data = bfdask.open(DATA / "imagej-tiff" / "neubias_xyzc_8bit_spheres.tif")
    assert project_z(data.isel(Z=slice(1, None)), "sum") is None  # a selection: the plain way
    assert project_z(data.isel(Z=0), "sum") is None  # no Z left


@requires_data
@pytest.mark.parametrize("how", projection.HOWS)
def test_profile_with_a_z_projection_is_unchanged(how: str) -> None:
    """The folded path (an array as opened) and the plain one (the same after a selection
    that keeps every plane) give the same statistics and profile to the last bit."""
    data = bfdask.open(DATA / "czi" / "CellDivision_T3_Z5_CH2_X240_Y170.czi")
    line = ((20, 15), (150, 220))
    kwargs = {"linewidth": 5, "z": how, "stats": ["min", "max", "mean"], "profiles": True}
    folded = bfdask.profile(data, *line, **kwargs).compute()
    everything = data.isel(T=list(range(data.sizes["T"])))  # no longer the array as opened
    assert project_z(everything, how) is None
    plain = bfdask.profile(everything, *line, **kwargs).compute()
    for name in folded.data_vars:
        assert folded[name].values.tobytes() == plain[name].values.tobytes(), name


def test_a_task_never_holds_the_whole_stack(tmp_path: Path) -> None:
    """Reading a 48-plane stack and summing it, the folded task's peak memory stays a few
    planes; read whole, it would be the stack (the test fails if the fold is bypassed)."""
    z, y, x = 48, 128, 96
    path = write_lif(tmp_path / "stack.lif", t=1, z=z, c=1, y=y, x=x, dtype="uint16", seed=3)
    data = bfdask.open(path, chunks={"Z": -1})
    folded = project_z(data, "sum")
    assert folded is not None
    stack_bytes = z * y * x * 2
    folded.data.compute(scheduler="single-threaded")  # warm: readers, caches
    tracemalloc.start()
    try:
        got = folded.data.compute(scheduler="single-threaded")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < stack_bytes / 2, f"peak {peak} B for a {stack_bytes} B stack"
    assert got.tobytes() == data.values.sum(axis=2).tobytes()


def test_prefetch_asks_for_the_bytes_the_block_reads(tmp_path: Path) -> None:
    """The spans a LIF block is prefetched with hold exactly the rows it reads: the bytes
    there are the block's pixels; whole planes that follow each other are one request."""
    from bfdask import lif, native

    path = write_lif(tmp_path / "spans.lif", t=2, z=3, c=2, y=40, x=24, dtype="uint16", seed=4)
    data = bfdask.open(path)
    source = source_of(data)
    recipe = None if source is None else source.native
    assert recipe is not None and recipe.reader == "lif"
    planes = [recipe.plane_index(z, c, 1) for c in range(2) for z in range(3)]
    with open(path, "rb") as f:
        raw = f.read()
    for (offset, length), index in zip(lif.spans(recipe, planes, (5, 17)), planes, strict=True):
        z, c = planes.index(index) % 3, planes.index(index) // 3
        rows = np.frombuffer(raw[offset : offset + length], "<u2").reshape(12, 24)
        assert rows.tobytes() == data.values[1, c, z, 5:17].tobytes()
    whole = native._merged(lif.spans(recipe, planes, (0, 40)))
    assert whole == [(min(o for o, _ in whole), 2 * 3 * 2 * 40 * 24)]  # one time point
    assert len(native._merged(lif.spans(recipe, planes, (5, 17)))) == len(planes)


FOOTPRINT_LINES = [  # (src, dst, linewidth): steep, shallow, fractional, reversed, wide, short
    ((20, 15), (150, 220), 5),
    ((10.5, 150.25), (195.7, 160.9), 3),
    ((100, 5.5), (100.5, 290), 1),
    ((180, 250), (12, 40), 9),
    ((60, 60), (61, 61), 15),
]


@pytest.mark.parametrize("order", [None, 0, 1])
@pytest.mark.parametrize("line", FOOTPRINT_LINES, ids=[str(i) for i in range(5)])
def test_footprint_holds_every_pixel_the_samples_read(line: tuple, order: int | None) -> None:
    """Sampling a plane whose pixels outside the footprint are NaN gives the same profile as
    the whole plane: a single pixel missing (even one weighed 0) would make a NaN appear."""
    from bfdask.geometry import SampledLine
    from bfdask.sampling import LineSpec, footprint, profile_plane

    src, dst, width = line
    shape = (200, 300)
    plane = np.random.default_rng(5).random(shape) * 1000
    other = SampledLine((150, 30), (170, 280), 3)  # a second position's line: the union
    band = footprint([SampledLine(src, dst, width), other], shape, order)
    assert band is not None
    inside = np.zeros(shape[0] * shape[1], bool)
    inside[band.flat_index((0, shape[0]), (0, shape[1]))] = True
    assert band.size() == inside.sum() < plane.size / 4
    masked = np.where(inside.reshape(shape), plane, np.nan)
    for sampled in (SampledLine(src, dst, width), other):
        spec = LineSpec(sampled.src, sampled.dst, sampled.linewidth, order)
        got = profile_plane(masked, spec)
        assert np.isfinite(got).all()
        assert got.tobytes() == profile_plane(plane, spec).tobytes()


def test_footprint_is_none_where_it_would_not_be_exact() -> None:
    """Spline orders above 1 prefilter the whole plane, and samples at the edge may reflect:
    no footprint then (the whole crop is read)."""
    from bfdask.geometry import SampledLine
    from bfdask.sampling import footprint

    inside = SampledLine((20, 15), (150, 220), 5)
    assert footprint([inside], (200, 300), 3) is None
    assert footprint([SampledLine((1, 15), (150, 220), 5)], (200, 300), 1) is None
    assert footprint([SampledLine((20, 15), (198, 220), 1)], (200, 300), 1) is None
    assert footprint([SampledLine((0, 0), (0, 0), 1, reason="blank")], (200, 300), 1) is None
    assert footprint([inside], (200, 300), 1) is not None


@pytest.mark.parametrize("how", projection.HOWS)
def test_a_footprint_projection_is_numpys_inside_and_zero_outside(
    tmp_path: Path, how: str
) -> None:
    """Only the footprint's pixels are folded: there the values are numpy's projection, bit
    for bit; elsewhere zero (the array is the profile's intermediate, named apart from the
    projection a user gets)."""
    from bfdask.geometry import SampledLine
    from bfdask.sampling import footprint

    path = write_lif(tmp_path / "band.lif", t=2, z=6, c=2, y=64, x=80, dtype="uint16", seed=6)
    data = bfdask.open(path)
    band = footprint([SampledLine((10, 8), (50, 70), 3)], (64, 80), 1)
    assert band is not None
    banded, plain = project_z(data, how, band), project_z(data, how)
    assert banded is not None and plain is not None
    assert banded.data.name != plain.data.name
    inside = np.zeros(64 * 80, bool)
    inside[band.flat_index((0, 64), (0, 80))] = True
    inside = inside.reshape(64, 80)
    expected = getattr(data.values, how)(axis=2)
    for window in (banded, banded.isel(Y=slice(5, 60), X=slice(3, 77))):  # the profile's crop
        got = window.values
        want = expected[..., : got.shape[-2], : got.shape[-1]]
        mask = inside[: got.shape[-2], : got.shape[-1]]
        if window is not banded:
            want, mask = expected[..., 5:60, 3:77], inside[5:60, 3:77]
        assert got.dtype == want.dtype
        assert got[..., mask].tobytes() == want[..., mask].tobytes()
        assert not got[..., ~mask].any()


@pytest.mark.parametrize("how", projection.HOWS)
def test_positions_are_projected_series_by_series_where_read(tmp_path: Path, how: str) -> None:
    """``open_positions``' joined array, unchanged, is projected per series as each block is
    read, joined the same way: numpy's projection of the joined array, bit for bit. A
    selection of it, or positions padded with NaN, are not (the plain way then)."""
    import warnings

    from test_positions import SERIES, write

    path = write(tmp_path / "even.ome.tif", SERIES[1:])  # two positions, 2 + 3 timepoints each
    data = bfdask.open_positions(path)
    assert data.attrs["padded"] == {}
    folded = project_z(data, how)
    assert folded is not None and folded.dims == ("P", "T", "C", "Y", "X")
    want = getattr(data.values, how)(axis=3)
    got = folded.values
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    assert folded["time"].equals(data["time"])
    assert project_z(data.isel(P=[1, 0]), how) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        padded = bfdask.open_positions(write(tmp_path / "short.ome.tif", SERIES))
    assert padded.attrs["padded"] and project_z(padded, how) is None


@pytest.mark.parametrize("z_mismatch", ["pad", "crop"])
@pytest.mark.parametrize("how", projection.HOWS)
def test_stitched_stacks_fitted_in_z_are_projected_as_fitted(
    tmp_path: Path, how: str, z_mismatch: str
) -> None:
    """Series whose Z stacks differ, stitched with ``z_mismatch="pad"`` (zeros after the short
    stacks) or ``"crop"`` (the central planes of the long ones), fold exactly the stack the
    joined array holds: numpy's projection of it, bit for bit (a max or mean over padded
    zeros included)."""
    from test_positions import SERIES, write

    shapes = {0: (2, 5, 12, 10), 3: (2, 2, 12, 10)}  # Z 5 and 2; the others 3
    path = write(tmp_path / "fitted.ome.tif", SERIES[1:], shapes)
    data = bfdask.open_positions(path, z_mismatch=z_mismatch)
    assert data.sizes["Z"] == (5 if z_mismatch == "pad" else 2)
    folded = project_z(data, how)
    assert folded is not None
    want = getattr(data.values, how)(axis=3)
    got = folded.values
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


@pytest.mark.parametrize("how", ["max", "sum"])
def test_a_profile_of_positions_folds_each_series(tmp_path: Path, how: str) -> None:
    """``bfdask profile --positions``' own call: every series in the graph is read folded
    (a projecting source), and the statistics are those of the plain way to the last bit."""
    from test_positions import SERIES, write

    from bfdask.array import BlockSource

    data = bfdask.open_positions(write(tmp_path / "even.ome.tif", SERIES[1:]))
    kwargs = {"linewidth": 1, "z": how, "stats": ["min", "max", "mean"], "profiles": True}
    folded = bfdask.profile(data, (2, 2), (8, 6), **kwargs)
    graph = dict(folded["min"].data.__dask_graph__())
    sources = [getattr(v, "value", v) for v in graph.values()]
    sources = [s for s in sources if isinstance(s, BlockSource)]
    assert len(sources) == 4 and all(s.project == how and s.footprint for s in sources)
    plain = bfdask.profile(data.isel(T=list(range(data.sizes["T"]))), (2, 2), (8, 6), **kwargs)
    folded, plain = folded.compute(), plain.compute()
    for name in folded.data_vars:
        assert folded[name].values.tobytes() == plain[name].values.tobytes(), name
