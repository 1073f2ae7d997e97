"""What an OME-Zarr conversion may remove when it replaces a store: never one of its inputs.

``bfdask convert STORE/in.ome.tif STORE --overwrite`` once deleted its own input (it lay in the
store being replaced) and then failed. Before removing anything, the conversion lists every
file it reads (all files of each dataset) and refuses a store that holds one, or that is a
symbolic link.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import OutputExistsError

if TYPE_CHECKING:
    from pathlib import Path


def check_replaceable(out: Path, inputs: list[str]) -> None:
    """Refuse to remove ``out`` if it is a symbolic link or holds (or is) one of ``inputs``.

    ``inputs`` and ``out`` are compared with symbolic links resolved, so an input reached
    through a link into the store counts as inside it.

    Raises
    ------
    OutputExistsError
        What is wrong, and what to do instead.
    """
    if out.is_symlink():
        raise OutputExistsError(
            f"{str(out)!r} is a symbolic link (to {os.path.realpath(out)!r}); overwrite=True "
            "never removes a store through a link. Pass the store's real path to replace it, "
            "or remove the link yourself."
        )
    store = os.path.realpath(out)
    for name in inputs:
        real = os.path.realpath(name)
        if os.path.commonpath([store, real]) == store:
            raise OutputExistsError(
                f"{str(out)!r} holds {name!r}, an input of this conversion; overwrite=True "
                "would delete it. Write to another store, or move the input out of it first."
            )


def input_files(data_or_path: Any) -> list[str]:
    """Every file a conversion of ``data_or_path`` reads: all files of each dataset (Bio-Formats'
    used files), found from a path or from the ``path`` attribute of arrays and tree nodes."""
    import xarray as xr

    if isinstance(data_or_path, xr.DataTree):
        paths = [data_or_path.attrs.get("path")]
        for node in data_or_path.subtree:
            paths.append(node.attrs.get("path"))
            if "image" in node.data_vars:
                paths.append(node["image"].attrs.get("path"))
    elif isinstance(data_or_path, xr.DataArray | xr.Dataset):
        paths = [data_or_path.attrs.get("path")]
    else:
        paths = [os.fspath(data_or_path)]
    files: list[str] = []
    for path in dict.fromkeys(p for p in paths if isinstance(p, str) and p):
        files += [path, *dataset_files(path)]
    return files


def dataset_files(path: str) -> list[str]:
    """Bio-Formats' used files of the dataset ``path`` opens (empty if it cannot be opened)."""
    from . import metadata, readers
    from .errors import BfdaskError

    try:
        return metadata.used_files(readers.get_reader(readers.check_path(path)))
    except (BfdaskError, OSError, ValueError):
        return []
