"""Whether a Nikon ND2 file ends as every complete ND2 file does (no Java here).

An ND2 file (version 2 and 3, the files NIS-Elements writes today) is a sequence of chunks,
each a 16-byte header (``0x0ABECEDA`` as uint32, the name's length as uint32, the data's length
as uint64), its name (ending in ``!``) and its data, chunks starting on 4096-byte boundaries.
It ends with a chunk map (the ``ND2 FILEMAP SIGNATURE NAME 0001!`` chunk: every chunk's name,
position and size) and, in its last 40 bytes, ``ND2 CHUNK MAP SIGNATURE 0000001!`` and the
position of that map. The image attributes (sizes, pixel type) are written just before the
map. A file cut short loses the map first: Bio-Formats then scans the file for chunks and, if
the attributes are gone too, guesses the sizes and the pixel type -- another shape, another
dtype, no error. :func:`inspect` tells such a file at open from a few small reads. Legacy
(JPEG 2000) ND2 files have no chunk map and are not checked.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

#: the format name Bio-Formats gives ND2 files
ND2_FORMAT = "Nikon ND2"
#: the first four bytes of every chunk (little-endian uint32 0x0ABECEDA)
CHUNK_MAGIC = 0x0ABECEDA
#: the last 40 bytes of a complete file: this signature and the chunk map's position (uint64)
MAP_SIGNATURE = b"ND2 CHUNK MAP SIGNATURE 0000001!"
#: the name of the chunk map's own chunk
MAP_NAME = b"ND2 FILEMAP SIGNATURE NAME 0001!"
#: the chunks that hold the image attributes (sizes, pixel type): version 3, version 2
ATTRIBUTES = (b"ImageAttributesLV!", b"ImageAttributes!")
#: chunks start on multiples of this
ALIGNMENT = 4096
_HEADER = struct.Struct("<IIQ")
_TAIL = struct.Struct("<32sQ")
#: chunks walked at most when the map is missing (far above any real file's count)
_MAX_CHUNKS = 10_000_000


@dataclass(frozen=True)
class Finding:
    """What the end of a damaged ND2 file shows.

    ``problem`` says what is wrong with the file's end; ``attributes`` is whether the chunk
    of image attributes (its sizes and pixel type) is still whole in the file; ``end`` is the
    byte where the last whole chunk ends.
    """

    problem: str
    attributes: bool
    end: int


def is_nd2(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts a chunked (version 2 or 3) ND2 file."""
    return len(head) >= 4 and struct.unpack_from("<I", head)[0] == CHUNK_MAGIC


def _chunk(f: BinaryIO, position: int, size: int) -> tuple[bytes, int] | None:
    """(name, end) of the chunk whose header is at ``position``; None if none starts there.

    The name is cut after its ``!``; ``end`` is the byte just past the chunk's data (it may
    lie past the end of the file).
    """
    if position < 0 or position + _HEADER.size > size:
        return None
    f.seek(position)
    magic, name_length, data_length = _HEADER.unpack(f.read(_HEADER.size))
    if magic != CHUNK_MAGIC or name_length > ALIGNMENT * 16:
        return None
    name = f.read(name_length)
    mark = name.find(b"!")
    name = name[: mark + 1] if mark >= 0 else name.rstrip(b"\0")
    return name, position + _HEADER.size + name_length + data_length


def _map_is_whole(f: BinaryIO, size: int) -> str:
    """What is wrong with the file's end ("" when it ends with its chunk map's signature and
    that map is in the file)."""
    if size < _TAIL.size:
        return "it is shorter than an ND2 file's end"
    f.seek(size - _TAIL.size)
    signature, position = _TAIL.unpack(f.read(_TAIL.size))
    if signature != MAP_SIGNATURE:
        return "its last bytes are not the chunk map's signature that ends every complete ND2"
    found = _chunk(f, position, size)
    if found is None or found[0] != MAP_NAME or found[1] > size:
        return f"the chunk map its last bytes point to (byte {position}) is not in the file"
    return ""


def _walk(f: BinaryIO, size: int) -> tuple[set[bytes], int]:
    """Follow the chunks from the start while they are whole: (their names, where the last
    whole one ends)."""
    names: set[bytes] = set()
    position, end = 0, 0
    for _ in range(_MAX_CHUNKS):
        found = _chunk(f, position, size)
        if found is None:  # the next chunk may start on the next boundary
            aligned = -(-position // ALIGNMENT) * ALIGNMENT
            found = _chunk(f, aligned, size) if aligned != position else None
        if found is None or found[1] > size:
            break
        names.add(found[0])
        end = found[1]
        position = end
    return names, end


def inspect(path: str) -> Finding | None:
    """Check the end of the ND2 file ``path``: None when it is whole (or not a chunked ND2).

    Reads the last 40 bytes and the chunk map's header; only when those are wrong, the chunk
    headers from the start (one small read per chunk).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if not is_nd2(f.read(4)):
            return None
        problem = _map_is_whole(f, size)
        if not problem:
            return None
        names, end = _walk(f, size)
    return Finding(problem, any(name in names for name in ATTRIBUTES), end)


def chunk_map(path: str) -> dict[bytes, tuple[int, int]]:
    """Every chunk the file's chunk map lists: name (with its ``!``) -> (position of its
    header, length of its data). Empty when the file does not end with a whole map."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if _map_is_whole(f, size):
            return {}
        f.seek(size - _TAIL.size)
        _, position = _TAIL.unpack(f.read(_TAIL.size))
        f.seek(position)
        _, name_length, data_length = _HEADER.unpack(f.read(_HEADER.size))
        f.seek(position + _HEADER.size + name_length)
        data = f.read(data_length)
    out: dict[bytes, tuple[int, int]] = {}
    at = 0
    while at < len(data):
        mark = data.find(b"!", at)
        if mark < 0 or mark + 17 > len(data):
            break
        name = data[at : mark + 1]
        if name == MAP_SIGNATURE:
            break
        out[name] = struct.unpack_from("<QQ", data, mark + 1)
        at = mark + 17
    return out


def describe(path: str, finding: Finding) -> str:
    """A sentence for a damaged ND2 file, saying what it means for its pixels."""
    size = os.path.getsize(path)
    where = f"{path!r} is truncated or damaged: {finding.problem} (the file has {size} bytes"
    if finding.end < size:
        where += f"; its chunks are whole up to byte {finding.end}"
    where += ")"
    if not finding.attributes:
        return (
            f"{where}, and its image attributes (sizes and pixel type, written near the end) "
            "are gone: Bio-Formats would guess another shape and pixel type. Is the file still "
            "being copied? If not, restore it from a good copy."
        )
    return (
        f"{where}; its image attributes are whole, so its sizes hold, but planes whose data "
        "is gone may come back as zeros (those raise CorruptFileError when read). Is the file "
        "still being copied?"
    )


__all__ = ["ND2_FORMAT", "Finding", "chunk_map", "describe", "inspect", "is_nd2"]
