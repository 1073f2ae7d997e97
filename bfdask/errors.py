"""Exceptions raised by bfdask.

Every error is a :class:`BfdaskError` and also the builtin a Python user would catch for the same
problem, so ``except FileNotFoundError`` works as well as ``except bfdask.BfdaskError``.
Messages name the file (and series or plane) and say what to do.
"""

from __future__ import annotations


class BfdaskError(Exception):
    """Base class of every bfdask error."""


class BfdaskFileNotFoundError(BfdaskError, FileNotFoundError):
    """The path does not exist."""


class UnsupportedFormatError(BfdaskError, ValueError):
    """Bio-Formats cannot read this path: a directory, an empty file or an unknown format."""


class CorruptFileError(BfdaskError, OSError):
    """The file was recognised but its pixels or structure cannot be read (truncated, damaged)."""


class SeriesIndexError(BfdaskError, IndexError):
    """The requested series or resolution does not exist in the file."""


class JavaMemoryError(BfdaskError, MemoryError):
    """The JVM ran out of heap; the message names the heap size and how to raise it."""


class OutputExistsError(BfdaskError, FileExistsError):
    """The output (e.g. an OME-Zarr store) exists and overwriting was not asked for."""


class JVMError(BfdaskError, RuntimeError):
    """The JVM cannot be started or used in this process (e.g. a forked child)."""


__all__ = [
    "BfdaskError",
    "BfdaskFileNotFoundError",
    "CorruptFileError",
    "JVMError",
    "JavaMemoryError",
    "OutputExistsError",
    "SeriesIndexError",
    "UnsupportedFormatError",
]
