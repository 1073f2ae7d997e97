"""OME-Zarr (NGFF 0.4) back in: a store :func:`bfdask.to_ome_zarr` wrote, or any NGFF image, as
the same labeled DataArray :func:`bfdask.open` gives for a file, read lazily through zarr.

Two layouts are read: bioformats2raw's (``{"bioformats2raw.layout": 3}`` at the root, one image
group per series, listed in ``OME/.zattrs`` ``"series"``), which ``bfdask convert`` writes, and a
single NGFF image (``multiscales`` at the root). Level 0 of the image becomes a dask array of
the store's own chunks; its ``axes`` become the dims (missing ones of ``TCZYX`` added with size
1), the level's ``scale`` and the axes' units the coordinates (µm, s), ``omero`` channel labels
the ``C`` coordinate. No Java is involved: zarr reads the store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SeriesIndexError, UnsupportedFormatError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import xarray as xr

#: NGFF space and time units -> the factor to µm or s (the units bfdask's coordinates use)
_TO_UM = {"nanometer": 1e-3, "micrometer": 1.0, "millimeter": 1e3, "centimeter": 1e4}
_TO_S = {"millisecond": 1e-3, "second": 1.0, "minute": 60.0, "hour": 3600.0}


def is_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory holding a zarr group (format 2 or 3)."""
    folder = Path(path)
    try:
        return folder.is_dir() and any(
            (folder / name).is_file() for name in (".zattrs", ".zgroup", "zarr.json")
        )
    except OSError:  # a name too long, a loop...: not a store; opening it says what is wrong
        return False


def _attrs(group: Any) -> dict[str, Any]:
    attrs = dict(group.attrs)
    return dict(attrs.get("ome", attrs))  # NGFF 0.5 nests its keys under "ome"


def images(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The images of the store: ``(group path, name)`` in series order.

    Raises
    ------
    UnsupportedFormatError
        The store holds no NGFF image.
    """
    import zarr

    root = zarr.open_group(str(path), mode="r")
    attrs = _attrs(root)
    if "multiscales" in attrs:  # a single image
        return [("", str(attrs["multiscales"][0].get("name") or Path(path).stem))]
    if "bioformats2raw.layout" in attrs:
        try:
            groups = [str(g) for g in _attrs(root["OME"])["series"]]
        except KeyError:  # no OME group: the numbered groups, in order
            groups = sorted((k for k in root.group_keys() if k.isdigit()), key=int)
        return [
            (g, str(_attrs(root[g])["multiscales"][0].get("name") or f"image {g}")) for g in groups
        ]
    raise UnsupportedFormatError(
        f"{str(path)!r} is a zarr store but holds no OME-NGFF image (no 'multiscales' and no "
        "'bioformats2raw.layout' at its root); open its arrays with zarr or xarray."
    )


def _select(path: str, found: list[tuple[str, str]], series: int | str) -> tuple[int, str, str]:
    """The index, group and name of ``series`` (an index, negative from the end, or a name)."""
    names = [name for _, name in found]
    if isinstance(series, str):
        matches = [i for i, name in enumerate(names) if name == series]
        if len(matches) != 1:
            raise SeriesIndexError(
                f"{path!r} has {'no' if not matches else len(matches)} image(s) named "
                f"{series!r}; its images: {names}."
            )
        index = matches[0]
    else:
        index = int(series)
        if not -len(found) <= index < len(found):
            raise SeriesIndexError(
                f"{path!r} has {len(found)} image(s) (0..{len(found) - 1}); image {series} does "
                "not exist."
            )
        index %= len(found)
    group, name = found[index]
    return index, group, name


def open_image(
    path: str | os.PathLike[str],
    series: int | str = 0,
    resolution: int = 0,
    *,
    chunks: Mapping[str, Any] | str | None = None,
    dims: str | None = None,
) -> xr.DataArray:
    """Image ``series`` of the OME-Zarr store ``path`` as a lazy labeled DataArray.

    Parameters
    ----------
    path
        The store (a directory).
    series
        Index of the image (negative from the end) or its name (multiscales ``name``).
    resolution
        Level of its multiscale pyramid (0: full resolution).
    chunks
        Dask chunks by dim name (any case) to rechunk to; default the store's own chunks.
    dims
        Order of the dims, a permutation of ``"TCZYX"`` (default).

    Returns
    -------
    xarray.DataArray
        Dims ``TCZYX`` (or as asked), coords ``T`` (s), ``Z``/``Y``/``X`` (µm) where the store
        records units, ``C`` the channel labels; ``attrs`` ``path``, ``series``,
        ``series_name``, ``format`` (``"OME-NGFF"``), ``pixels`` (``"zarr"``), the physical
        sizes and ``time_increment``.

    Raises
    ------
    UnsupportedFormatError
        Not an NGFF store, or axes bfdask cannot map onto ``TCZYX``.
    SeriesIndexError
        No such image.
    """
    import dask.array as da
    import xarray as xr
    import zarr

    where = os.fspath(path)
    index, group, name = _select(where, images(where), series)
    root = zarr.open_group(where, mode="r")
    image = root[group] if group else root
    attrs = _attrs(image)
    multiscale = attrs["multiscales"][0]
    axes = [(str(a["name"]).upper(), a.get("unit")) for a in multiscale["axes"]]
    names = [a for a, _ in axes]
    if not set(names) <= set("TCZYX") or len(set(names)) != len(names):
        raise UnsupportedFormatError(
            f"{where!r} image {group or name!r} has axes {names}; bfdask maps t, c, z, y, x only."
        )
    levels = multiscale["datasets"]
    if not 0 <= resolution < len(levels):
        raise SeriesIndexError(
            f"{where!r} image {name!r} has {len(levels)} resolution level(s); resolution "
            f"{resolution} does not exist."
        )
    level = levels[resolution]
    data = da.from_zarr(image[level["path"]])
    scale = _scale(level, multiscale, len(axes))
    missing = [d for d in "TCZYX" if d not in names]
    array = data.reshape((*data.shape, *([1] * len(missing)))) if missing else data
    order = [*names, *missing]
    array = da.transpose(array, [order.index(d) for d in "TCZYX"])
    units = dict(axes)
    steps = dict(zip(names, scale))
    coords: dict[str, Any] = {}
    result_attrs: dict[str, Any] = {
        "path": where,
        "series": int(group) if group.isdigit() else index,
        "series_name": name,
        "format": "OME-NGFF",
        "pixels": "zarr",
        "resolution": resolution,
        "pixels_reason": f"level {resolution} ({level['path']}) of the NGFF image, read by zarr",
    }
    for dim, table, unit_name, key in (
        ("T", _TO_S, "s", "time_increment"),
        ("Z", _TO_UM, "µm", "physical_size_z"),
        ("Y", _TO_UM, "µm", "physical_size_y"),
        ("X", _TO_UM, "µm", "physical_size_x"),
    ):
        factor = table.get(str(units.get(dim)))
        if dim not in steps or factor is None:
            continue
        step = steps[dim] * factor
        coords[dim] = xr.Variable(dim, np.arange(array.shape["TCZYX".index(dim)]) * step)
        coords[dim].attrs["units"] = unit_name
        result_attrs[key] = step
    labels = [str(c.get("label", "")) for c in attrs.get("omero", {}).get("channels", [])]
    size_c = array.shape[1]
    coords["C"] = xr.Variable(
        "C",
        np.asarray(labels if len(labels) == size_c else [f"C{i}" for i in range(size_c)], object),
    )
    out = xr.DataArray(array, dims=tuple("TCZYX"), coords=coords, attrs=result_attrs, name=name)
    if dims is not None:
        wanted = dims.upper()
        if sorted(wanted) != sorted("TCZYX"):
            raise ValueError(f"dims={dims!r} must name each of TCZYX exactly once.")
        out = out.transpose(*wanted)
    if isinstance(chunks, str):
        if chunks.lower() != "auto":
            raise ValueError(f"chunks must be a dict by dimension name or 'auto', not {chunks!r}")
    elif chunks is not None:
        out = out.chunk({str(k).upper(): v for k, v in chunks.items()})
    return out


def _scale(level: Mapping[str, Any], multiscale: Mapping[str, Any], n: int) -> list[float]:
    """The scale of a level: its own ``scale`` transformation times the multiscale's."""
    scale = [1.0] * n
    for transforms in (level.get("coordinateTransformations", []),
                       multiscale.get("coordinateTransformations", [])):  # fmt: skip
        for transform in transforms:
            if transform.get("type") == "scale":
                scale = [a * float(b) for a, b in zip(scale, transform["scale"], strict=True)]
    return scale
