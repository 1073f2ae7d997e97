"""Whether a Zeiss CZI holds every byte its own directory names (no Java here).

A CZI is a sequence of segments, each a 32-byte header (16-byte ASCII id such as
``ZISRAWFILE``, allocated and used size as int64) and its data. The file header segment at 0
gives the position of the subblock directory (``ZISRAWDIRECTORY``), whose entries give the
position of each subblock (``ZISRAWSUBBLOCK``: one plane or tile of pixels, compressed or not).
Bio-Formats pads a subblock the file no longer holds with zeros, silently; reading the
directory first tells a file cut short (or a directory that points nowhere) at open. Each
subblock also starts with a copy of its directory entry, which Bio-Formats decodes it by: a copy
that no longer matches the directory (a damaged compression or pixel type) is damage too.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

CZI_FORMAT = "Zeiss CZI"
SEGMENT_HEADER = 32
#: bytes of a directory entry before its dimension entries, and of each dimension entry
_ENTRY = 32
_DIMENSION = 20
#: bytes of a subblock's header (sizes, its directory entry, padding) before its metadata
_SUBBLOCK_HEADER = 256
#: a bound on directory entries, far above any real file (a damaged count reads no further)
_MAX_ENTRIES = 10_000_000


@dataclass(frozen=True)
class Extent:
    """What the directory names and what the file holds."""

    subblocks: int  # entries in the directory
    missing: int  # subblocks whose segment runs past the end of the file (or is not one)
    first_missing: int  # file position of the first of those (-1: none)
    problem: str  # the directory itself cannot be read ("" when it can)
    #: subblocks whose own header contradicts their directory entry (-1: none)
    mismatched: int = 0
    first_mismatched: int = -1


def _segment(f: BinaryIO, position: int, size: int) -> tuple[bytes, int] | None:
    """(id, used size) of the segment at ``position``; None if its header is not there."""
    if position < 0 or position + SEGMENT_HEADER > size:
        return None
    f.seek(position)
    header = f.read(SEGMENT_HEADER)
    if len(header) < SEGMENT_HEADER:
        return None
    ident, _allocated, used = struct.unpack("<16sqq", header)
    return ident.rstrip(b"\0"), used


def extent(path: str) -> Extent:
    """Check the CZI ``path``'s directory and the subblocks it names against its size."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = _segment(f, 0, size)
        if head is None or head[0] != b"ZISRAWFILE":
            return Extent(0, 0, -1, "no CZI file header")
        f.seek(SEGMENT_HEADER)
        fields = f.read(80)
        if len(fields) < 60:
            return Extent(0, 0, -1, "the file header is cut short")
        (directory,) = struct.unpack_from("<q", fields, 52)
        found = _segment(f, directory, size)
        if found is None or found[0] != b"ZISRAWDIRECTORY":
            problem = f"its subblock directory (byte {directory}) is not in the file"
            return Extent(0, 0, -1, problem)
        start = directory + SEGMENT_HEADER
        f.seek(start)
        (count,) = struct.unpack("<i", f.read(4))
        if not 0 <= count <= _MAX_ENTRIES:
            return Extent(0, 0, -1, f"its subblock directory claims {count} entries")
        f.seek(start + 128)
        table = f.read(min(found[1], size - start) - 128)
        return _subblocks(f, table, count, size)


@dataclass(frozen=True)
class Entry:
    """One directory entry: where a subblock is and what its pixels are."""

    position: int  # of the subblock's segment header
    pixel_type: int
    compression: int
    #: each dimension: (name, start, size, stored size), e.g. ("Z", 3, 1, 1)
    dims: tuple[tuple[str, int, int, int], ...]
    length: int  # bytes of the entry (its copy in the subblock header has the same)

    def dim(self, name: str) -> tuple[int, int, int]:
        """(start, size, stored size) of dimension ``name``; (0, 1, 1) if absent."""
        for dim, start, size, stored in self.dims:
            if dim == name:
                return start, size, stored
        return 0, 1, 1


def directory(path: str) -> list[Entry]:
    """The entries of the CZI's subblock directory (raises ``ValueError`` on a directory
    that cannot be read: :func:`extent` says what is wrong with it)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(SEGMENT_HEADER + 52)
        (position,) = struct.unpack("<q", f.read(8))
        found = _segment(f, position, size)
        if found is None or found[0] != b"ZISRAWDIRECTORY":
            raise ValueError("no subblock directory")
        f.seek(position + SEGMENT_HEADER)
        (count,) = struct.unpack("<i", f.read(4))
        if not 0 <= count <= _MAX_ENTRIES:
            raise ValueError(f"a directory of {count} entries")
        f.seek(position + SEGMENT_HEADER + 128)
        table = f.read(found[1] - 128)
    entries, at = [], 0
    for _ in range(count):
        pixel_type, where = struct.unpack_from("<iq", table, at + 2)
        compression = struct.unpack_from("<i", table, at + 18)[0]
        (ndims,) = struct.unpack_from("<i", table, at + 28)
        if not 0 <= ndims <= 64:
            raise ValueError("a damaged directory entry")
        dims = []
        for k in range(ndims):
            name, start, length = struct.unpack_from("<4sii", table, at + _ENTRY + k * _DIMENSION)
            (stored,) = struct.unpack_from("<i", table, at + _ENTRY + k * _DIMENSION + 16)
            dims.append((name.rstrip(b"\0").decode("ascii", "replace"), start, length, stored))
        length = _ENTRY + ndims * _DIMENSION
        entries.append(Entry(where, pixel_type, compression, tuple(dims), length))
        at += length
    return entries


def data_span(f: BinaryIO, entry: Entry) -> tuple[int, int]:
    """(file position, bytes) of the pixel data of ``entry``'s subblock (its segment header,
    the sizes of its parts, its entry and padding, then its metadata come first)."""
    f.seek(entry.position + SEGMENT_HEADER)
    metadata, _attachment, data = struct.unpack("<iiq", f.read(16))
    header = max(_SUBBLOCK_HEADER, 16 + entry.length)
    return entry.position + SEGMENT_HEADER + header + metadata, data


def _pixel_fields(entry: bytes) -> tuple[bytes, ...]:
    """The fields of a directory entry (``DV``) that say how its pixels decode: the schema,
    pixel type, compression and each dimension's name, start, size and stored size (not the
    file position, nor a dimension's start coordinate)."""
    fields = [entry[0:6], entry[18:22], entry[28:32]]
    for at in range(_ENTRY, len(entry) - _DIMENSION + 1, _DIMENSION):
        fields += [entry[at : at + 12], entry[at + 16 : at + 20]]
    return tuple(fields)


def _subblock_matches(f: BinaryIO, position: int, used: int, entry: bytes) -> bool:
    """Whether the subblock at ``position`` says of itself what its directory entry says.

    A subblock starts (after its segment header) with the sizes of its metadata, attachment
    and data, then a copy of its directory entry; a damaged copy makes Bio-Formats decode
    the pixels with another compression, type or size, without an error.
    """
    f.seek(position + SEGMENT_HEADER)
    head = f.read(16 + len(entry))
    if len(head) < 16 + len(entry):
        return False
    metadata, attachment, data = struct.unpack_from("<iiq", head)
    if min(metadata, attachment, data) < 0:
        return False
    header = max(_SUBBLOCK_HEADER, 16 + len(entry))
    if header + metadata + attachment + data > used:
        return False
    return _pixel_fields(head[16:]) == _pixel_fields(entry)


def _subblocks(f: BinaryIO, table: bytes, count: int, size: int) -> Extent:
    """Check each directory entry's subblock segment: in the file, and its header the same
    as the entry."""
    missing, first, at = 0, -1, 0
    mismatched, first_mismatched = 0, -1
    for _ in range(count):
        if at + _ENTRY > len(table):
            return Extent(count, missing, first, "its subblock directory is cut short")
        position = struct.unpack_from("<q", table, at + 6)[0]
        dimensions = struct.unpack_from("<i", table, at + 28)[0]
        if not 0 <= dimensions <= 64:
            return Extent(count, missing, first, "a directory entry is damaged")
        entry = table[at : at + _ENTRY + dimensions * _DIMENSION]
        at += _ENTRY + dimensions * _DIMENSION
        segment = _segment(f, position, size)
        if (
            segment is None
            or segment[0] != b"ZISRAWSUBBLOCK"
            or position + SEGMENT_HEADER + segment[1] > size
        ):
            missing += 1
            first = position if first < 0 else min(first, position)
        elif not _subblock_matches(f, position, segment[1], entry):
            mismatched += 1
            first_mismatched = position if first_mismatched < 0 else first_mismatched
    return Extent(count, missing, first, "", mismatched, first_mismatched)


def damage_note(path: str) -> str | None:
    """A sentence for a CZI that misses bytes its directory names (None: all there)."""
    try:
        found = extent(path)
    except (OSError, struct.error) as exc:
        return f"{path!r} is damaged: its CZI structure cannot be read ({exc})"
    if found.problem:
        return (
            f"{path!r} is truncated or damaged: {found.problem}; Bio-Formats may return "
            "zeros for pixels it cannot find"
        )
    if found.missing:
        return (
            f"{path!r} is truncated or damaged: {found.missing} of its {found.subblocks} "
            f"subblocks (from byte {found.first_missing}) are not in the file "
            f"({os.path.getsize(path)} bytes); Bio-Formats returns zeros for their pixels. "
            "Is the file still being copied?"
        )
    return None


def header_note(path: str) -> str | None:
    """A sentence for a CZI whose subblocks' own headers contradict its directory (None:
    they agree, or the directory cannot be read, which :func:`damage_note` says)."""
    try:
        found = extent(path)
    except (OSError, struct.error):
        return None
    if not found.mismatched:
        return None
    return (
        f"{path!r} is damaged: {found.mismatched} of its {found.subblocks} subblocks (from "
        f"byte {found.first_mismatched}) have a header that contradicts the file's subblock "
        "directory (their compression, pixel type or sizes); Bio-Formats decodes their "
        "pixels by the damaged header, so they may be wrong. Restore the file from a good copy."
    )
