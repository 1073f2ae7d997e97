"""OME-Zarr conversion: :func:`to_ome_zarr` and ``bfdask convert``.

Writes OME-NGFF 0.4 (zarr format 2, ``/`` chunk keys) in the bioformats2raw layout that
OME-Zarr readers (ome-zarr-py, napari, Fiji/MoBIE, OMERO) understand for multi-image files::

    OUT.zarr/.zattrs             {"bioformats2raw.layout": 3}
    OUT.zarr/OME/.zattrs         {"series": ["0", "1", ...]}  paths of the images, file order
    OUT.zarr/OME/METADATA.ome.xml  the converted series' OME-XML (Image i <-> series[i])
    OUT.zarr/<i>/.zattrs         "multiscales" (axes t,c,z,y,x with units, scale per level),
                                 "omero" (channel names, colours, display windows)
    OUT.zarr/<i>/0, /1, ...      full resolution, then each level 2x smaller in Y and X

``<i>`` is the series' index in the file. Pixels go from the dask tasks that read them straight
into the store: each task reads one block (the chunk plan of :func:`bfdask.open`) and writes
the zarr chunks inside it (one plane, at most ``tile`` x ``tile`` pixels each), so blocks never
share a chunk (no locks) and nothing but ``None`` and per-channel minima/maxima come back to
the client. Pyramid levels are computed from those same blocks (2x2 means), so the
file is read once. With a ``distributed`` client active the workers write; the store must be a
path every worker sees.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import OutputExistsError
from .ngffmeta import ImageGroup, group_attrs
from .pyramid import halve
from .store import check_replaceable, input_files

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    import dask.array as da
    import xarray as xr

#: largest Y/X edge of one zarr chunk (bioformats2raw's default tile size)
TILE = 1024


def to_ome_zarr(
    data_or_path: str | os.PathLike[str] | xr.DataArray | xr.DataTree,
    store: str | os.PathLike[str],
    *,
    series: Sequence[int | str] | None = None,
    pyramid: int = 0,
    tile: int = TILE,
    overwrite: bool = False,
    progress: bool = False,
    compression_level: int = 5,
) -> list[str]:
    """Write series of a Bio-Formats file (or bfdask arrays) to one OME-Zarr store.

    Parameters
    ----------
    data_or_path
        A file path (its series are opened with :func:`bfdask.open`), a DataArray (one image;
        dims among ``T, C, Z, Y, X, S``, missing ones added with size 1) or a DataTree from
        :func:`bfdask.open_all` (one image per node with an ``image`` variable).
    store
        Directory to create (``OUT.zarr``). It must be reachable at the same path by every
        dask worker that writes.
    series
        For a path: indices or names of the series to write (default: all).
    pyramid
        Number of extra resolution levels, each half the previous one in Y and X (2x2 mean).
    tile
        Largest Y/X size of one zarr chunk. Chunks are one (T, C, Z) plane and always lie
        inside one read block.
    overwrite
        Replace ``store`` if it exists and is a zarr store (default: raise
        :class:`OutputExistsError`). Any other existing path is never removed, nor a store
        that holds a file of the input (any file of its dataset), nor a symbolic link.
    progress
        Show a progress bar: ``distributed.progress`` when a distributed client is active,
        else ``dask.diagnostics.ProgressBar``.
    compression_level
        Blosc/zstd level (0 = no compression, up to 9).

    Returns
    -------
    list of str
        The image group paths written (``"0"``, ``"1"``, ...), in file order.

    Raises
    ------
    OutputExistsError
        ``store`` exists and ``overwrite`` is False, or it is not a zarr store, holds an input
        file or is a symbolic link (a ``FileExistsError``). Nothing was removed.
    ValueError
        A pyramid too deep for an image (a level would have no pixels), a bad ``tile`` or
        ``pyramid``, or an input that is not a bfdask image.
    FileNotFoundError, UnsupportedFormatError, SeriesIndexError
        As for :func:`bfdask.open`.
    """
    if not isinstance(pyramid, int) or pyramid < 0:
        raise ValueError(f"pyramid must be an int >= 0 (extra levels), not {pyramid!r}")
    if not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be a positive int (pixels), not {tile!r}")
    if not isinstance(compression_level, int) or not 0 <= compression_level <= 9:
        raise ValueError(f"compression_level must be an int 0..9, not {compression_level!r}")
    out = Path(store).absolute()
    images, ome_xml = _images(data_or_path, series, tile)
    levels = {image.group: _pyramid(image, pyramid, tile) for image in images}
    if os.path.lexists(out):  # a dangling symbolic link too
        if not overwrite:
            raise OutputExistsError(
                f"{str(out)!r} exists; choose a new store or pass overwrite=True "
                "(bfdask convert --overwrite)."
            )
        check_replaceable(out, input_files(data_or_path))
        if not (out / ".zgroup").is_file() and not (out / "zarr.json").is_file():
            raise OutputExistsError(
                f"{str(out)!r} exists and is not a zarr store; overwrite=True replaces only "
                "zarr stores. Choose another path."
            )
        shutil.rmtree(out)

    import dask.array as da
    import numcodecs
    import zarr

    root = zarr.open_group(str(out), mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    ome = root.create_group("OME")
    ome.attrs["series"] = [image.group for image in images]
    if ome_xml is not None:
        (out / "OME" / "METADATA.ome.xml").write_text(ome_xml, encoding="utf-8")
    compressor = numcodecs.Blosc(
        cname="zstd", clevel=compression_level, shuffle=numcodecs.Blosc.SHUFFLE
    )
    sources: list[da.Array] = []
    targets: list[Any] = []
    stats = []
    for image in images:
        group = root.create_group(image.group)
        for level, array in enumerate(levels[image.group]):
            target = group.create_array(
                str(level),
                shape=array.shape,
                chunks=_zarr_chunks(array, tile),
                dtype=array.dtype,
                compressors=compressor,
                chunk_key_encoding={"name": "v2", "separator": "/"},
                fill_value=0,
            )
            sources.append(array)
            targets.append(target)
        group.attrs.update(group_attrs(image, len(levels[image.group]), window=None))
        stats.append(
            da.stack([image.array.min(axis=(0, 2, 3, 4)), image.array.max(axis=(0, 2, 3, 4))])
        )
    write = da.store(sources, targets, lock=False, compute=False, return_stored=False)
    _, *ranges = _compute([write, *stats], progress)
    for image, window in zip(images, ranges):  # display windows from the data just written
        root[image.group].attrs.update(group_attrs(image, len(levels[image.group]), window=window))
    return [image.group for image in images]


# -- inputs -------------------------------------------------------------------------------------


def _images(
    data_or_path: Any, series: Sequence[int | str] | None, tile: int
) -> tuple[list[ImageGroup], str | None]:
    """The images to write, and the OME-XML for ``OME/METADATA.ome.xml`` (None if unknown)."""
    import xarray as xr

    if isinstance(data_or_path, xr.DataTree):
        nodes = [n for n in data_or_path.subtree if "image" in n.data_vars]
        if not nodes:
            raise ValueError("The DataTree has no node with an 'image' variable to write.")
        images = [_from_dataarray(n["image"], str(i), tile) for i, n in enumerate(nodes)]
        if len({image.group for image in images}) < len(images):  # not one file's series
            for position, image in enumerate(images):
                image.group = str(position)
        return images, None
    if isinstance(data_or_path, xr.DataArray):
        image = _from_dataarray(data_or_path, "0", tile)
        xml = data_or_path.attrs.get("ome_xml")
        return [image], xml if isinstance(xml, str) else None
    if isinstance(data_or_path, xr.Dataset):
        raise ValueError(
            "to_ome_zarr takes a path, a DataArray or a DataTree; for a Dataset from "
            "xr.open_dataset(engine='bioformats') pass ds['image']."
        )
    return _from_path(data_or_path, series, tile)


def _from_path(
    path: str | os.PathLike[str], series: Sequence[int | str] | None, tile: int
) -> tuple[list[ImageGroup], str]:
    from . import metadata, pixels
    from .array import open_spec

    specs = metadata.read_specs(path)
    if series is None:
        chosen = list(range(len(specs)))
    else:
        reader_path = specs[0].path
        chosen = [metadata.read_spec(reader_path, s).series for s in series]
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"series {list(series)!r} names a series twice.")
    images = []
    for index in chosen:
        spec = specs[index]
        choice = pixels.choose(spec)  # the native path where verified, as bfdask.open does
        array = open_spec(spec, choice=choice)
        aligned = _aligned_read_chunks(array.data, tile)
        if aligned:  # re-plan the reads so that zarr chunks never straddle two blocks
            array = open_spec(spec, chunks=aligned, choice=choice)
        images.append(_from_dataarray(array, str(index), tile))
    document = metadata.OmeXml(metadata.file_ome_xml(path))
    return images, document.subset(chosen)


def _from_dataarray(data: xr.DataArray, group: str, tile: int) -> ImageGroup:
    import dask.array as da

    dims = [str(d) for d in data.dims]
    unknown = set(dims) - set("TCZYXS")
    if unknown:
        raise ValueError(
            f"Cannot write dims {sorted(unknown)} to OME-Zarr: an image has dims among "
            "T, C, Z, Y, X and S (RGB samples), as bfdask.open gives them."
        )
    for dim in "TCZYX":
        if dim not in data.dims:
            data = data.expand_dims(dim)
    order = [d for d in "TCZYXS" if d in data.dims]
    data = data.transpose(*order)
    if not isinstance(data.data, da.Array):  # numpy, or the engine's lazily indexed array:
        data = data.chunk({"T": 1})  # tasks read it, a timepoint each (as bfdask.open's plan)
    array = data.data
    channels = [str(c) for c in data["C"].values] if "C" in data.coords else []
    if len(channels) != data.sizes["C"]:
        channels = [f"C{i}" for i in range(data.sizes["C"])]
    if "S" in data.dims:  # RGB: samples become channels, (T, C, S, Z, Y, X) -> (T, C*S, ...)
        samples = data.sizes["S"]
        array = da.moveaxis(array, 5, 2).rechunk({2: samples})
        array = array.reshape((array.shape[0], -1, *array.shape[3:]))
        names = "RGB" if samples == 3 else [str(s) for s in range(samples)]
        channels = [f"{c}:{s}" for c in channels for s in names]
    aligned = _aligned_read_chunks(array, tile)
    if aligned:
        array = array.rechunk({"TCZYX".index(d): n for d, n in aligned.items()})
    attrs = data.attrs
    scale = {
        "T": _positive(attrs.get("time_increment")) or _step(data, "T", "s"),
        "Z": _positive(attrs.get("physical_size_z")) or _step(data, "Z", "µm"),
        "Y": _positive(attrs.get("physical_size_y")) or _step(data, "Y", "µm"),
        "X": _positive(attrs.get("physical_size_x")) or _step(data, "X", "µm"),
    }
    name = str(attrs.get("series_name") or data.name or f"image {group}")
    if "series" in attrs and isinstance(attrs["series"], int | np.integer):
        group = str(int(attrs["series"]))
    return ImageGroup(group=group, name=name, array=array, channels=channels, scale=scale)


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _step(data: xr.DataArray, dim: str, unit: str) -> float | None:
    """The mean coordinate step along ``dim`` if it has a coordinate in ``unit``."""
    if dim not in data.coords or data[dim].attrs.get("units") != unit or data.sizes[dim] < 2:
        return None
    values = np.asarray(data[dim].values, dtype=float)
    return _positive((values[-1] - values[0]) / (len(values) - 1))


# -- chunks and levels ------------------------------------------------------------------------


def _zarr_chunk(blocks: tuple[int, ...], dim: str, tile: int) -> int:
    """One plane in T, C, Z; at most ``tile`` and at most the first block in Y, X."""
    return 1 if dim in "TCZ" else max(1, min(tile, blocks[0]))


def _zarr_chunks(array: da.Array, tile: int) -> tuple[int, ...]:
    return tuple(_zarr_chunk(b, d, tile) for b, d in zip(array.chunks, "TCZYX"))


def _aligned_read_chunks(array: da.Array, tile: int) -> dict[str, int]:
    """Block sizes, by dim, that make every block a whole number of zarr chunks (empty if the
    blocks already are): a split Y/X keeps its block size rounded down to a multiple of the
    zarr chunk."""
    out = {}
    for dim, blocks in zip("TCZYX", array.chunks):
        step = _zarr_chunk(blocks, dim, tile)
        if all(stop % step == 0 for stop in np.cumsum(blocks[:-1])):
            continue
        out[dim] = max(step, blocks[0] // step * step)
    return out


def _pyramid(image: ImageGroup, extra: int, tile: int) -> list[da.Array]:
    """Level 0 and ``extra`` levels, each a 2x2 mean of the previous one in Y and X."""
    levels = [image.array]
    for level in range(1, extra + 1):
        previous = levels[-1]
        if previous.shape[3] < 2 or previous.shape[4] < 2:
            raise ValueError(
                f"pyramid={extra} is too deep for image {image.name!r} "
                f"({image.array.shape[3]}x{image.array.shape[4]} px): level {level} would have "
                "no pixels. Ask for fewer levels."
            )
        smaller = halve(previous)
        for axis in (3, 4):  # split planes: merge halved blocks back to whole tiles
            blocks = smaller.chunks[axis]
            if len(blocks) > 1 and blocks[0] < tile:
                smaller = smaller.rechunk({axis: tile})
        aligned = _aligned_read_chunks(smaller, tile)
        if aligned:
            smaller = smaller.rechunk({"TCZYX".index(d): n for d, n in aligned.items()})
        levels.append(smaller)
    return levels


# -- running ------------------------------------------------------------------------------------


def _compute(items: list[Any], progress: bool) -> list[Any]:
    """Compute ``items`` together (shared blocks are read once) on the active scheduler: a
    distributed client's workers if one is active, else dask's default (threads)."""
    from .schedulers import active_client, compute

    client = active_client()
    if client is not None:
        futures = client.compute(items)
        if progress:
            from .progress import wait

            wait(futures)
        return list(client.gather(futures))
    if progress:
        from .progress import local

        with local():
            return list(compute(*items))
    return list(compute(*items))


# -- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bfdask convert``."""
    from .commands import series_argument

    # optional for argparse only: bfdask.cli takes them back from a --series written before
    # them (`convert --series 1 in.lif out.zarr`); missing, they are a usage error there
    parser.add_argument("path", type=Path, nargs="?", help="any file Bio-Formats reads")
    parser.add_argument("out", type=Path, nargs="?", help="the OME-Zarr store to write (OUT.zarr)")
    parser.add_argument(
        "--series",
        type=series_argument,
        nargs="+",
        metavar="S",
        help="series indices or names (default: all)",
    )
    parser.add_argument(
        "--pyramid", type=int, default=0, metavar="N", help="extra levels, each 2x smaller (0)"
    )
    parser.add_argument(
        "--tile", type=int, default=TILE, help=f"largest Y/X edge of a zarr chunk ({TILE})"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running dask scheduler whose workers write (default: local threads)",
    )


def run(args: argparse.Namespace) -> int:
    """``bfdask convert``: write the store with a progress bar, then say what was written."""
    options = {
        "series": args.series,
        "pyramid": args.pyramid,
        "tile": args.tile,
        "overwrite": args.overwrite,
        "progress": True,
    }
    from .commands import client

    start = time.perf_counter()
    with client(args.scheduler):  # the workers write; without a scheduler, local threads
        groups = to_ome_zarr(args.path, args.out, **options)
    seconds = time.perf_counter() - start
    print(
        f"wrote {len(groups)} image(s) ({', '.join(groups)}) with {args.pyramid + 1} "
        f"level(s) to {args.out.absolute()} in {seconds:.1f} s"
    )
    return 0
