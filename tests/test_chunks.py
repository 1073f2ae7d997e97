"""Chunk plans (pure Python): defaults, byte budget, Java's 2 GB array limit, user chunks."""

from __future__ import annotations

import pytest

from bfdask.chunks import JAVA_MAX_ARRAY, default_chunks, plan
from bfdask.metadata import ImageSpec


def spec(t=10, c=2, z=50, y=2048, x=2048, samples=1, dtype="uint16"):
    return ImageSpec(
        path="/x.fake", series=0, resolution=0, series_count=1, series_name="x", format="fake",
        size_t=t, size_c=c, size_z=z, size_y=y, size_x=x, samples=samples, dtype=dtype,
        pixel_type=dtype, dimension_order="XYZCT", little_endian=True, interleaved=False,
    )  # fmt: skip


def block_bytes(chunks, s):
    itemsize = 2 if s.dtype == "uint16" else 1
    n = itemsize
    for dim in chunks:
        n *= max(chunks[dim])
    return n


def test_whole_stack_per_timepoint_when_it_fits():
    s = spec(z=10, y=256, x=256)
    assert default_chunks(s, "128MiB") == {
        "T": (1,) * 10, "C": (2,), "Z": (10,), "Y": (256,), "X": (256,)
    }  # fmt: skip


@pytest.mark.parametrize("budget", ["16MiB", "64MiB", "128MiB", "1GiB"])
def test_split_along_z_to_fit_the_budget(budget):
    s = spec()  # 2 channels x 8 MiB planes x 50 Z = 800 MiB per timepoint
    chunks = default_chunks(s, budget)
    from dask.utils import parse_bytes

    assert block_bytes(chunks, s) <= parse_bytes(budget)
    assert chunks["Y"] == (2048,) and chunks["C"] == (2,)
    assert sum(chunks["Z"]) == 50


def test_tiles_when_one_plane_exceeds_the_budget():
    s = spec(z=3, y=4096, x=4096)  # 32 MiB planes, 64 MiB for both channels
    chunks = default_chunks(s, "16MiB")
    assert chunks["Z"] == (1, 1, 1)
    assert max(chunks["Y"]) < 4096 and chunks["X"] == (4096,)
    assert block_bytes(chunks, s) <= 16 << 20


def test_planes_above_javas_array_limit_are_always_tiled():
    s = spec(t=1, c=1, z=1, y=40000, x=40000)  # 3.2 GB plane
    for budget in ("128MiB", "8GiB"):
        chunks = default_chunks(s, budget)
        assert max(chunks["Y"]) * 40000 * 2 <= JAVA_MAX_ARRAY
    # even when the user asks for whole planes
    forced = plan(s, {"Y": -1, "X": -1}, "8GiB")
    assert max(forced["Y"]) * max(forced["X"]) * 2 <= JAVA_MAX_ARRAY


def test_user_chunks_override_by_name():
    s = spec(t=7, z=5, y=64, x=64)
    chunks = plan(s, {"T": 3, "Z": 1, "X": (32, 32)})
    assert chunks["T"] == (3, 3, 1) and chunks["Z"] == (1,) * 5 and chunks["X"] == (32, 32)
    assert plan(s, {"Z": -1})["Z"] == (5,)


def test_rgb_samples_cannot_be_split():
    s = spec(c=1, samples=3, dtype="uint8", y=64, x=64)
    assert default_chunks(s)["S"] == (3,)
    with pytest.raises(ValueError, match="cannot be split"):
        plan(s, {"S": 1})


def test_bad_chunks_argument():
    with pytest.raises(ValueError, match="dict by dimension name"):
        plan(spec(), (1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown dimension"):
        plan(spec(), {"W": 1})


def test_auto_alone_is_the_default_plan():
    """Issue #16: chunks="auto", as the xarray engine takes it."""
    s = spec(z=10, y=256, x=256)
    assert plan(s, "auto", "128MiB") == plan(s, None, "128MiB") == default_chunks(s, "128MiB")
    with pytest.raises(ValueError, match="dict by dimension name"):
        plan(s, "tiny")


def test_chunk_keys_follow_the_case_rule_of_dims():
    s = spec(z=10, y=256, x=256)
    assert plan(s, {"z": 1, "t": 2}) == plan(s, {"Z": 1, "T": 2})
    with pytest.raises(ValueError, match="twice"):
        plan(s, {"z": 1, "Z": 2})


@pytest.mark.parametrize("value", [0, (5, 0, 5), -2])
def test_a_zero_block_size_is_a_value_error(value):
    """Issue #16: chunks={"T": 0} was dask's ZeroDivisionError."""
    with pytest.raises(ValueError, match="positive number"):
        plan(spec(z=10, y=256, x=256), {"T": value})
