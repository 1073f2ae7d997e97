"""The OME-NGFF 0.4 attributes of one image group that ``bfdask convert`` writes.

``multiscales``: axes t, c, z, y, x (with units where the image has physical steps) and one
scale per pyramid level; ``omero``: channel labels, colours and display windows. Pure: an
:class:`ImageGroup` in, plain dicts out (:mod:`bfdask.convert` writes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import dask.array as da
    from numpy.typing import NDArray

NGFF_VERSION = "0.4"
#: channel colours cycled by the omero block (first channel green, as Fiji does for 2+)
_COLOURS = ("00FF00", "FF00FF", "00FFFF", "FF0000", "0000FF", "FFFF00", "FFFFFF")
_UNITS = {"T": "second", "Z": "micrometer", "Y": "micrometer", "X": "micrometer"}


@dataclass
class ImageGroup:
    """One image group to write: a TCZYX dask array and its labels (:mod:`bfdask.convert`)."""

    group: str
    name: str
    array: da.Array  # (T, C, Z, Y, X); RGB samples folded into C
    channels: list[str]
    scale: dict[str, float | None]  # physical step per T/Z/Y/X (s, µm), None if unknown


def group_attrs(image: ImageGroup, n_levels: int, window: NDArray[Any] | None) -> dict[str, Any]:
    """The image group's ``multiscales`` and ``omero`` attributes (NGFF 0.4)."""
    axes: list[dict[str, str]] = []
    for dim in "TCZYX":
        axis = {"name": dim.lower(), "type": {"T": "time", "C": "channel"}.get(dim, "space")}
        if dim != "C" and image.scale[dim] is not None:
            axis["unit"] = _UNITS[dim]
        axes.append(axis)
    base = [image.scale["T"] or 1.0, 1.0, image.scale["Z"] or 1.0]
    datasets = [
        {
            "path": str(level),
            "coordinateTransformations": [
                {
                    "type": "scale",
                    "scale": [
                        *base,
                        (image.scale["Y"] or 1.0) * 2**level,
                        (image.scale["X"] or 1.0) * 2**level,
                    ],
                }
            ],
        }
        for level in range(n_levels)
    ]
    multiscale: dict[str, Any] = {
        "version": NGFF_VERSION,
        "name": image.name,
        "axes": axes,
        "datasets": datasets,
    }
    if n_levels > 1:
        multiscale["type"] = "mean"
        multiscale["metadata"] = {
            "description": "each level the 2x2 mean of the previous one in y and x "
            "(integers rounded half up; an odd last row or column dropped)",
            "method": "bfdask.pyramid.halve",
        }
    return {"multiscales": [multiscale], "omero": _omero(image, window)}


def _omero(image: ImageGroup, window: NDArray[Any] | None) -> dict[str, Any]:
    dtype = np.dtype(image.array.dtype)
    low, high = (
        (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)) if dtype.kind in "iu" else (0, 1)
    )
    channels = []
    for c, label in enumerate(image.channels):
        start, end = (low, high) if window is None else (float(window[0][c]), float(window[1][c]))
        if dtype.kind == "f":  # no fixed range: the data's
            low_c, high_c = start, end
        else:
            low_c, high_c = low, high
        channels.append(
            {
                "label": label,
                "color": "FFFFFF" if len(image.channels) == 1 else _COLOURS[c % len(_COLOURS)],
                "active": True,
                "coefficient": 1.0,
                "family": "linear",
                "inverted": False,
                "window": {"min": low_c, "max": high_c, "start": start, "end": end},
            }
        )
    return {
        "name": image.name,
        "version": NGFF_VERSION,
        "channels": channels,
        "rdefs": {
            "model": "color" if len(channels) > 1 else "greyscale",
            "defaultT": 0,
            "defaultZ": image.array.shape[2] // 2,
        },
    }
