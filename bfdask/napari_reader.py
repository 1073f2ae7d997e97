"""The napari reader plugin (npe2, manifest ``bfdask/napari.yaml``): drop a file Bio-Formats
reads into napari and it opens lazily through bfdask.

Layers: the file's **first series**, one image layer per channel (``channel_axis``), each named
after its channel and coloured (one channel grey; several green, magenta, cyan...), ``scale``
from the physical sizes (µm, s) and axis labels ``T, Z, Y, X`` (``S`` for RGB stays in the
data). Pixels are the dask array of :func:`bfdask.open`: napari reads the planes it shows. The
other series of a multi-series file are listed in each layer's ``metadata["series"]``; open one
with ``viewer.add_image(bfdask.open(path, series=i))`` or from the console. Each layer's
``metadata["bfdask"]`` holds the DataArray's attrs (path, series name, format, pixel source),
``metadata["ome_xml"]`` the series' OME-XML.

Nothing here imports napari: the reader returns plain layer-data tuples.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

#: file name endings the manifest offers bfdask for (Bio-Formats reads many more: open those
#: with bfdask.open); kept in step with napari.yaml by tests/test_napari.py
SUFFIXES = (
    ".lif", ".czi", ".nd2", ".ome.tif", ".ome.tiff", ".lsm", ".ims", ".oib", ".oif", ".vsi",
    ".svs", ".ndpi", ".scn", ".dv", ".ics", ".ids", ".mrc", ".lei", ".zvi", ".stk", ".fake",
)  # fmt: skip

#: colormaps of several channels, in order (one channel: gray)
COLORMAPS = ("green", "magenta", "cyan", "red", "blue", "yellow", "gray")

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """npe2 ``get_reader``: :func:`read` for a file bfdask should open, else None."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    name = os.fspath(path).lower()
    if not name.endswith(SUFFIXES) or os.path.isdir(name):
        return None
    return read


def read(path: str | list[str]) -> list[LayerData]:
    """The layers of ``path``'s first series (see the module docstring).

    Raises
    ------
    bfdask.BfdaskError
        As :func:`bfdask.open` does (napari shows the message).
    """
    from .array import open_series
    from .metadata import list_series

    if isinstance(path, list):
        (path,) = path
    data = open_series(path, 0)
    listing = [f"{s.index}: {s.name} {s.shape}" for s in list_series(path)]
    channels = [str(c) for c in data["C"].values]
    colormaps = ["gray"] if len(channels) == 1 else [
        COLORMAPS[i % len(COLORMAPS)] for i in range(len(channels))
    ]  # fmt: skip
    dims = [str(d) for d in data.dims if d not in ("C", "S")]  # the dims of each layer
    scale = [_step(data, d) for d in dims]
    attrs = {k: v for k, v in data.attrs.items() if k != "ome_xml"}
    metadata = {"bfdask": attrs, "ome_xml": data.attrs.get("ome_xml"), "series": listing}
    units = {"T": "s", "Z": "µm", "Y": "µm", "X": "µm"}
    options: dict[str, Any] = {
        "channel_axis": data.dims.index("C"),
        "name": [f"{data.attrs['series_name']} {c}" for c in channels],
        "colormap": colormaps,
        "blending": "additive",
        "scale": scale,
        "axis_labels": dims,
        "units": [units[d] if d in data.coords else "pixel" for d in dims],
        "metadata": metadata,
        "rgb": "S" in data.dims,
    }
    return [(data.data, options, "image")]


def _step(data: Any, dim: str) -> float:
    """The coordinate step along ``dim`` (µm or s), 1 where the file records none."""
    if dim not in data.coords or data.sizes[dim] < 2:
        key = {"Z": "physical_size_z", "Y": "physical_size_y", "X": "physical_size_x"}.get(dim)
        value = data.attrs.get(key) if key else data.attrs.get("time_increment")
        return float(value) if value else 1.0
    values = data[dim].values.astype(float)
    step = (values[-1] - values[0]) / (len(values) - 1)
    return float(step) if step > 0 else 1.0
