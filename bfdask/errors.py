"""Exceptions raised by bfdask.

Every error is a :class:`BfdaskError` and also the builtin a Python user would catch for the same
problem, so ``except FileNotFoundError`` works as well as ``except bfdask.BfdaskError``.
Messages name the file (and series or plane) and say what to do.
"""

from __future__ import annotations


class BfdaskError(Exception):
    """Base class of every bfdask error."""

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from the class and its args, so that it crosses process boundaries intact:
        # dask.distributed (through tblib) otherwise calls MemoryError.__new__ on
        # JavaMemoryError, fails, and hands the client a bare Exception instead.
        return (type(self), self.args, self.__dict__ or None)


class BfdaskFileNotFoundError(BfdaskError, FileNotFoundError):
    """The path does not exist."""


class UnsupportedFormatError(BfdaskError, ValueError):
    """Bio-Formats cannot read this path: a directory, an empty file or an unknown format."""


class NativePixelsError(UnsupportedFormatError):
    """``pixels="native"`` was asked but this series has no verified native pixel plan."""


class CorruptFileError(BfdaskError, OSError):
    """The file was recognised but its pixels or structure cannot be read (truncated, damaged)."""


class FileChangedError(BfdaskError, OSError):
    """The file changed on disk (size or modification time) after it was opened.

    Reading on would mix pixels of two versions of the file; open it again to read the new one.
    """


class SeriesIndexError(BfdaskError, IndexError):
    """The requested series or resolution does not exist in the file."""


class JavaMemoryError(BfdaskError, MemoryError):
    """The JVM ran out of heap; the message names the heap size and how to raise it."""


class OutsideDatasetError(BfdaskError, PermissionError):
    """A dataset names a file outside the opened file's folder: bfdask refuses to read it.

    A ``PermissionError`` (an ``OSError``): the files may well exist and be readable, but reading
    them is not allowed unless the user opts in (``BFDASK_ALLOW_OUTSIDE_FILES=1``, dask config
    ``bfdask.reader.allow-outside-files``).
    """


class OutputExistsError(BfdaskError, FileExistsError):
    """The output (e.g. an OME-Zarr store) exists and overwriting was not asked for."""


class PositionMismatchError(BfdaskError, ValueError):
    """Series to be stitched into one array differ in shape, channels or data type."""


class JVMError(BfdaskError, RuntimeError):
    """The JVM cannot be started or used in this process (e.g. a forked child)."""


class UnmatchedSeriesWarning(UserWarning):
    """Series whose names the positions pattern does not match (they are left out)."""


class PaddedPositionsWarning(UserWarning):
    """Positions with fewer timepoints than the longest were padded with NaN."""


class CorruptFileWarning(UserWarning):
    """Opening found damage in the file (``attrs["damage"]`` says what): the damaged planes
    raise :class:`CorruptFileError` when read, the others read normally."""


class TruncatedFileWarning(CorruptFileWarning):
    """The file ends before some of its planes: those raise :class:`CorruptFileError` when
    read, the others read normally (e.g. a file still being copied)."""


__all__ = [
    "BfdaskError",
    "BfdaskFileNotFoundError",
    "CorruptFileError",
    "CorruptFileWarning",
    "FileChangedError",
    "JVMError",
    "JavaMemoryError",
    "NativePixelsError",
    "OutputExistsError",
    "OutsideDatasetError",
    "PaddedPositionsWarning",
    "PositionMismatchError",
    "SeriesIndexError",
    "TruncatedFileWarning",
    "UnmatchedSeriesWarning",
    "UnsupportedFormatError",
]
