"""The xarray engine "bioformats"."""

from __future__ import annotations

import numpy as np
import tifffile
import xarray as xr

import bfdask
from bfdask.backend import BioformatsBackendEntrypoint


def test_open_dataset_with_engine(tmp_path):
    source = np.arange(2 * 3 * 4 * 5, dtype="uint16").reshape(2, 3, 4, 5)
    path = tmp_path / "engine.ome.tif"
    tifffile.imwrite(path, source, ome=True, metadata={"axes": "TZYX"})
    ds = xr.open_dataset(path, engine="bioformats", chunks={})
    assert ds["image"].dims == ("T", "C", "Z", "Y", "X")
    np.testing.assert_array_equal(ds["image"].values[:, 0], source)
    assert ds["image"].encoding["preferred_chunks"]["T"] == 1
    # the engine and bfdask.open agree
    xr.testing.assert_identical(ds["image"].drop_encoding(), bfdask.open(path).rename("image"))


def test_guess_can_open_claims_only_bioformats_suffixes():
    entry = BioformatsBackendEntrypoint()
    assert entry.guess_can_open("x.lif") and entry.guess_can_open("a/b.CZI")
    assert entry.guess_can_open("x.ome.tif")
    assert not entry.guess_can_open("x.nc") and not entry.guess_can_open("plain.tif")
