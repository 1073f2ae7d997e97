"""Checks a file must pass before Bio-Formats sees it, and the sizes it may claim after.

Bio-Formats trusts what a file says about itself. A TIFF whose chain of image file directories
(IFDs) loops back, a LIF claiming 10^8 tiles of a 1 KiB memory block, a named pipe: each makes
``setId`` run forever. An OME-XML that declares a DTD can copy a local file into the metadata.
And sizes that cannot be in the file (a flipped byte making a TIFF 1.4 million pixels wide, a
cut MRC read as 10^9 x 10^9 x 10^9) make bfdask build dask graphs that exhaust memory. So:

* :func:`stat_path` and :func:`require_regular_file`: what the path is (a missing file, a
  symlink loop, a name too long, a FIFO, a socket or a device) -- only regular files go on;
* :func:`check_contents`: by the file's first bytes, the checks of its format, in pure Python
  and with small reads (the TIFF IFD chain and its first IFD, here; the LIF header against its
  memory blocks, :mod:`bfdask.lifcheck`; the end of an ND2 file, its chunk map; a DTD in
  OME-XML text, :mod:`bfdask.safexml`).

Once Bio-Formats has read the metadata, :func:`bfdask.sizes.check_claimed_sizes` checks the
sizes it claims against the bytes of the file(s), before anything of the series' size is built.

Each raises a :class:`~bfdask.errors.BfdaskError` that names the file and says what is wrong.
Nothing here touches Java. A file cut short (a copy still running) is not refused here: its
missing planes are the reader's to report.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, BinaryIO

from . import lifcheck, nd2check, safexml
from .errors import (
    BfdaskError,
    BfdaskFileNotFoundError,
    CorruptFileError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from pathlib import Path


#: IFDs walked at most; beyond, the rest of a chain is left unchecked (Bio-Formats would take
#: minutes over it anyway, and the walk must stay cheap)
MAX_IFDS = 1 << 20
_XML_SUFFIXES = (".ome", ".xml", ".xlef", ".xlif", ".xlcf", ".xdce")
_INT_MAX = (1 << 31) - 1


# -- what the path is -----------------------------------------------------------------------


def stat_path(path: Path) -> os.stat_result:
    """``os.stat(path)`` (following symlinks), its failures made bfdask errors.

    Raises
    ------
    BfdaskFileNotFoundError
        No such file, a symlink loop, or a path component too long to exist.
    """
    try:
        return os.stat(path)
    except OSError as exc:
        raise _stat_error(path, exc) from None


def _stat_error(path: Path, exc: OSError) -> OSError:
    if exc.errno == errno.ELOOP:
        return BfdaskFileNotFoundError(
            f"{str(path)!r} cannot be opened: it is (or passes through) a symlink loop "
            "(too many levels of symbolic links). Point the link at the image file itself."
        )
    if exc.errno == errno.ENAMETOOLONG:
        longest = max(path.parts, key=lambda part: len(os.fsencode(part)))
        return BfdaskFileNotFoundError(
            f"No such file can exist: the path's name is too long for the file system (its "
            f"longest component, {longest[:40]!r}..., has {len(os.fsencode(longest))} bytes; "
            "most file systems allow 255 bytes per name and 4096 per path). Check the path: "
            f"{str(path)!r}"
        )
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return BfdaskFileNotFoundError(f"No such file: {str(path)!r}")
    return exc


def require_regular_file(path: Path, st: os.stat_result) -> None:
    """Refuse what is not a regular file (directories are refused by the caller).

    A FIFO is never opened here: opening one blocks until a writer comes.

    Raises
    ------
    UnsupportedFormatError
        A named pipe, socket, or character or block device.
    """
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return
    kinds = (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    kind = next((name for test, name in kinds if test(st.st_mode)), "not a regular file")
    raise UnsupportedFormatError(
        f"{str(path)!r} is {kind}, not a regular file: bfdask reads only regular files "
        "(reading a stream could block forever). Copy the data to a file and open that."
    )


# -- what the file says, before Bio-Formats reads it ----------------------------------------


def check_contents(path: str, st: os.stat_result) -> None:
    """Run the checks of the file's format on the regular file ``path`` (absolute).

    The result is kept per version of the file (path, size, times, inode), so that the
    several opens of one ``bfdask.open`` check it once.

    Raises
    ------
    CorruptFileError
        A structure that would make Bio-Formats loop or claim what the file cannot hold.
    UnsupportedFormatError
        OME-XML that declares a DTD or entities.
    """
    if path.lower().endswith(".fake"):  # Bio-Formats' generated images: the name is the spec
        return
    _check_version(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


@lru_cache(maxsize=64)
def _check_version(
    path: str, size: int, _mtime_ns: int, _ctime_ns: int, _inode: int, _device: int
) -> None:
    try:
        _check_by_format(path, size)
    except BfdaskError:
        raise
    except (OSError, struct.error):  # unreadable, or changed while read: the readers report it
        return


def _is_xml(path: str, head: bytes) -> bool:
    """An XML file by its name, or by its first character (after a BOM and blanks)."""
    return path.lower().endswith(_XML_SUFFIXES) or head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def _check_by_format(path: str, size: int) -> None:
    with open(path, "rb") as f:
        head = f.read(16)
        tiff = _tiff_format(head)
        if tiff is not None:
            check_tiff(path, f, tiff, size)
            return
    if lifcheck.is_lif(head) and path.lower().endswith(".lif"):
        lifcheck.check_lif(path, size)
    elif nd2check.is_nd2(head):
        check_nd2(path)
    elif _is_xml(path, head):
        safexml.check_file(path)


# -- TIFF -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TiffFormat:
    """Byte order and offset width of a TIFF (classic or BigTIFF)."""

    byteorder: str  # "<" or ">"
    big: bool

    @property
    def count(self) -> str:
        return self.byteorder + ("Q" if self.big else "H")

    @property
    def offset(self) -> str:
        return self.byteorder + ("Q" if self.big else "I")

    @property
    def entry_size(self) -> int:
        return 20 if self.big else 12

    def first_ifd(self, head: bytes) -> int:
        """The offset of IFD 0, from the file's first 16 bytes."""
        return int(struct.unpack_from(self.offset, head, 8 if self.big else 4)[0])


def _tiff_format(head: bytes) -> TiffFormat | None:
    if len(head) < 16 or head[:2] not in (b"II", b"MM"):
        return None
    byteorder = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack_from(byteorder + "H", head, 2)
    if version == 42:
        return TiffFormat(byteorder, False)
    if version == 43 and struct.unpack_from(byteorder + "H", head, 4)[0] == 8:
        return TiffFormat(byteorder, True)
    return None


def check_tiff(path: str, f: BinaryIO, tiff: TiffFormat, size: int) -> None:
    """Walk the IFD chain as Bio-Formats does, and check the first IFD.

    Raises
    ------
    CorruptFileError
        The chain comes back to an IFD it has passed (Bio-Formats would loop forever), or the
        first IFD claims an uncompressed image its own strips cannot hold.
    UnsupportedFormatError
        The first IFD's ImageDescription is XML that declares a DTD.
    """
    f.seek(0)
    first = tiff.first_ifd(f.read(16))
    offsets = walk_ifds(path, f, tiff, size, first)
    if offsets:
        _check_first_ifd(path, f, tiff, offsets[0], size)


def _next_offset(tiff: TiffFormat, previous: int, value: int, size: int) -> int:
    """The next IFD's offset as Bio-Formats' TiffParser computes it.

    In a classic TIFF larger than 2 GiB, an offset below the previous one is taken to have
    wrapped at 4 GiB.
    """
    if tiff.big or size <= _INT_MAX:
        return value
    value |= previous & ~0xFFFFFFFF
    if 0 < value < previous:
        value += 1 << 32
    return value


def walk_ifds(path: str, f: BinaryIO, tiff: TiffFormat, size: int, first: int) -> list[int]:
    """The offsets of the chain of IFDs, following it as Bio-Formats does (while an offset is
    inside the file), with one small read per IFD.

    Raises
    ------
    CorruptFileError
        An IFD's next-IFD pointer leads back to an IFD already in the chain.
    """
    count_size = struct.calcsize(tiff.count)
    offset_size = struct.calcsize(tiff.offset)
    seen: dict[int, int] = {}
    offset = first
    while 0 < offset and offset + count_size <= size and len(seen) < MAX_IFDS:
        if offset in seen:
            raise CorruptFileError(
                f"{path!r} is damaged: the pointer after IFD {len(seen) - 1} (image directory "
                f"{len(seen) - 1} of this TIFF) leads back to IFD {seen[offset]} at byte "
                f"{offset}, so its chain of images never ends (Bio-Formats would read it "
                "forever). The file cannot be read as it is; restore it from a good copy."
            )
        seen[offset] = len(seen)
        f.seek(offset)
        (entries,) = struct.unpack(tiff.count, f.read(count_size))
        pointer = offset + count_size + entries * tiff.entry_size
        if pointer + offset_size > size:
            break
        f.seek(pointer)
        (value,) = struct.unpack(tiff.offset, f.read(offset_size))
        offset = _next_offset(tiff, offset, value, size)
    return list(seen)


@dataclass(frozen=True)
class _Entry:
    tag: int
    type: int
    count: int
    value: bytes  # the raw value field (inline value or offset)


_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}
_TYPE_FORMATS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 16: "Q"}


def _read_entries(f: BinaryIO, tiff: TiffFormat, offset: int, size: int) -> dict[int, _Entry]:
    """The entries of the IFD at ``offset`` by tag (the first of a repeated tag)."""
    count_size = struct.calcsize(tiff.count)
    f.seek(offset)
    (entries,) = struct.unpack(tiff.count, f.read(count_size))
    raw = f.read(max(0, min(entries * tiff.entry_size, size - offset - count_size)))
    layout = tiff.byteorder + ("HHQ" if tiff.big else "HHI")
    head = struct.calcsize(layout)
    out: dict[int, _Entry] = {}
    for start in range(0, len(raw) - tiff.entry_size + 1, tiff.entry_size):
        tag, kind, count = struct.unpack_from(layout, raw, start)
        out.setdefault(tag, _Entry(tag, kind, count, raw[start + head : start + tiff.entry_size]))
    return out


def _entry_bytes(f: BinaryIO, tiff: TiffFormat, entry: _Entry, size: int) -> bytes:
    """The value bytes of ``entry`` (inline, or read from its offset; b"" if out of file)."""
    nbytes = _TYPE_SIZES.get(entry.type, 1) * entry.count
    if nbytes <= len(entry.value):
        return entry.value[:nbytes]
    (where,) = struct.unpack(tiff.offset, entry.value)
    if where + nbytes > size:
        return b""
    f.seek(where)
    return f.read(nbytes)


def _entry_ints(f: BinaryIO, tiff: TiffFormat, entry: _Entry | None, size: int) -> list[int]:
    if entry is None or entry.type not in _TYPE_FORMATS:
        return []
    data = _entry_bytes(f, tiff, entry, size)
    code = _TYPE_FORMATS[entry.type]
    count = len(data) // struct.calcsize(code)
    return list(
        struct.unpack(f"{tiff.byteorder}{count}{code}", data[: count * struct.calcsize(code)])
    )


def _check_first_ifd(path: str, f: BinaryIO, tiff: TiffFormat, offset: int, size: int) -> None:
    entries = _read_entries(f, tiff, offset, size)
    description = entries.get(270)
    if description is not None:
        text = _entry_bytes(f, tiff, description, size)
        if safexml.declares_dtd(text):
            raise safexml.dtd_error(path, "the ImageDescription of its first IFD")
    _check_strips(path, f, tiff, entries, size)


def _check_strips(
    path: str, f: BinaryIO, tiff: TiffFormat, entries: dict[int, _Entry], size: int
) -> None:
    """An uncompressed first image must fit in the bytes its own strips (or tiles) declare,
    unless those fit in the file (then it is only cut short: the reader's to report)."""

    def value(tag: int, default: int) -> int:
        values = _entry_ints(f, tiff, entries.get(tag), size)
        return max(values) if values else default

    if value(259, 1) != 1:  # compressed: nothing to compare with
        return
    width, length = value(256, 0), value(257, 0)
    samples, bits = value(277, 1), value(258, 1)
    tiled = 322 in entries and 323 in entries
    counts = _entry_ints(f, tiff, entries.get(325 if tiled else 279), size)
    held = sum(counts)
    if tiled:
        tile_w, tile_h = value(322, 1) or 1, value(323, 1) or 1
        width, length = -(-width // tile_w) * tile_w, -(-length // tile_h) * tile_h
    needed = (width * bits + 7) // 8 * length * samples
    if held <= 0 or needed <= held or needed <= size:
        return
    raise CorruptFileError(
        f"{path!r} is damaged: its first image claims {width} x {length} pixels of "
        f"{samples} x {bits} bits, uncompressed: {needed} bytes, but its "
        f"{'tiles' if tiled else 'strips'} hold {held} bytes and the file has {size}. Its "
        "header's sizes cannot be right (a flipped byte?); restore it from a good copy."
    )


# -- ND2 ------------------------------------------------------------------------------------


def check_nd2(path: str) -> None:
    """Refuse an ND2 file cut short before its image attributes (see :mod:`bfdask.nd2check`).

    A file that lost only its end (the chunk map) but keeps its attributes is left to the
    readers: its sizes hold, and opening warns that it is cut short.

    Raises
    ------
    CorruptFileError
        The file does not end with its chunk map, and its image attributes (sizes, pixel
        type) are not whole: Bio-Formats would guess another shape and pixel type.
    """
    finding = nd2check.inspect(path)
    if finding is not None and not finding.attributes:
        raise CorruptFileError(nd2check.describe(path, finding))


__all__ = [
    "MAX_IFDS",
    "TiffFormat",
    "check_contents",
    "check_nd2",
    "check_tiff",
    "require_regular_file",
    "stat_path",
    "walk_ifds",
]
