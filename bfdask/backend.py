"""xarray engine ``"bioformats"``: ``xr.open_dataarray(path, engine="bioformats")``.

A thin adapter over :func:`bfdask.open`; importing it starts no JVM (xarray imports every
installed engine when it looks one up).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from xarray.backends import BackendEntrypoint

# Suffixes no other common engine claims; "bioformats" never guesses .tif/.nc/.zarr files.
_SUFFIXES = (
    ".lif", ".czi", ".nd2", ".lsm", ".oib", ".oif", ".ims", ".vsi", ".ics", ".ids", ".dv",
    ".r3d", ".stk", ".zvi", ".lei", ".mvd2", ".svs", ".ndpi", ".scn", ".fake", ".ome.tif",
    ".ome.tiff", ".companion.ome", ".mrc", ".map",
)  # fmt: skip


class BioformatsBackendEntrypoint(BackendEntrypoint):
    """Open one series of a Bio-Formats file as a Dataset with a single variable, lazily."""

    description = "Any Bio-Formats file (LIF, CZI, ND2, OME-TIFF...) through bfdask"
    url = "https://github.com/bfdask/bfdask"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "series", "resolution", "dims")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[Any],
        *,
        drop_variables: str | Iterable[str] | None = None,
        series: int | str = 0,
        resolution: int = 0,
        dims: str = "TCZYX",
    ) -> Any:
        from . import open as bf_open

        data = bf_open(os.fspath(filename_or_obj), series=series, resolution=resolution, dims=dims)
        # chunks are chosen by xarray's `chunks=` argument; hand it ours as the preference
        name = "image"
        dataset = data.to_dataset(name=name)
        dataset[name].encoding["preferred_chunks"] = dict(
            zip(data.dims, (c[0] for c in data.chunks or ()))
        )
        if drop_variables:
            dataset = dataset.drop_vars(drop_variables)
        return dataset

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            name = os.fspath(filename_or_obj).lower()
        except TypeError:
            return False
        return name.endswith(_SUFFIXES)
