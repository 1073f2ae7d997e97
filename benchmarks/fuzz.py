"""``python -m benchmarks fuzz``: damaged and hostile files, read in child processes (issue #13).

A dozen real files of the shared corpus (LIF, OME-TIFF, TIFF, ImageJ, CZI, ND2, MRC, ICS, LSM,
SVS) are damaged in seeded ways -- truncated at many offsets, single bytes flipped, ranges zeroed
or overwritten with random bytes, garbage appended -- and each damaged copy is listed, opened
and read whole, series by series, with ``pixels="auto"`` and with ``pixels="bioformats"``, in a
long-lived child process (one JVM per child) under an address-space cap and a time limit per
(case, mode). Each result is compared with the original file's pixels and classified:

======================== ========================================================================
``identical``            every series as in the original, no warning
``error``                a :class:`bfdask.BfdaskError` was raised (listing, opening or reading)
``warned``               a warning of bfdask's own classes; the pixels may differ
``silent_wrong_raw``     pixels differ silently, but every damaged byte lies inside
                         uncompressed pixel bytes of the original: nothing can detect that
                         (allowed)
``silent_wrong_codec``   pixels differ silently, but every damaged byte lies inside
                         compressed pixel data that still decodes, without error, to as many
                         samples: a codec without a checksum (PackBits, LZW, JPEG, zstd without
                         its optional checksum) cannot tell either (allowed)
``silent_wrong``         series count, shape, dtype or pixels differ, with no bfdask error or
                         warning (a defect)
``foreign_error``        an exception that is not a :class:`bfdask.BfdaskError` (a defect)
``hang``                 no answer within the time limit (a defect)
``crash``                the child process died (a defect)
======================== ========================================================================

A case is also ``disagree`` (a defect) when both modes read a series without error or warning
and give different pixels. A series counts as warned by its own warnings (from ``open`` and
the read) and by those :func:`bfdask.list_series` gave for the file; a different series count
counts as warned by any warning of ours. Truncations and appended bytes are never "inside raw
pixel bytes": the file's end moved, and that must be noticed.

Where the pixel data is: strips/tiles of TIFF-family files (tifffile, with their compression),
the memory blocks of a LIF, the data after an MRC's header and extended header, CZI subblocks
(with their compression), ND2 ``ImageDataSeq`` chunks, an uncompressed ICS ``.ids``. Every raw
(uncompressed) range is checked against the original's pixels (sampled windows of it must
occur in them) and dropped if not, and compressed data is excused only when the damaged
segment still decodes to the same size (imagecodecs): a wrong range can only make the
campaign stricter. Damage is drawn from the ``header`` (first 512 bytes), the ``pixels``
(pixel data), the ``structure`` (everything else), ``any`` byte or the ``end``.

``tests/test_fuzz.py`` runs a bounded slice of the same engine in CI. Usage::

    python -m benchmarks fuzz                    # the full campaign: table into RESULTS.md
    python -m benchmarks fuzz --cases 8 --files lif-pr2729,mrc --no-write
    python -m benchmarks fuzz --write-case 'lif-pr2729#12' /tmp/case   # reproduce one case
    python -m benchmarks fuzz --update-known     # rerun the CI slice, rewrite its baseline

The CI slice (:data:`SLICE_SEED`, :data:`SLICE_CASES`, ``corpus(ci=True)``) is held to a
baseline of known open defects, ``tests/fuzz_known_defects.tsv`` (:func:`ratchet`): hangs,
crashes, foreign errors and disagreements always fail it; a silent wrong result fails it unless
the baseline lists it; a listed case that reads right now fails it too, until its line is
removed -- the list only shrinks.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import struct
import sys
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GiB = 1 << 30
MiB = 1 << 20

#: outcomes from best to worst; a case's outcome in one mode is the worst over its series
OUTCOMES = (
    "identical",
    "error",
    "warned",
    "silent_wrong_raw",
    "silent_wrong_codec",
    "silent_wrong",
    "foreign_error",
    "hang",
    "crash",
    "harness",  # the campaign's own code failed on this case (never expected)
)
ALLOWED = frozenset({"identical", "error", "warned", "silent_wrong_raw", "silent_wrong_codec"})
MODES = ("auto", "bioformats")
#: series read per file at most (a damaged header may claim thousands)
MAX_SERIES = 16
SECTION_BEGIN = "<!-- fuzz:begin -->"
SECTION_END = "<!-- fuzz:end -->"


def default_data() -> Path:
    """The shared corpus: ``$BFDASK_SHARED/data``, else ``../shared/data`` beside the repo."""
    shared = os.environ.get("BFDASK_SHARED")
    return (Path(shared) if shared else REPO.parent / "shared") / "data"


# -- the corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Original:
    """One corpus dataset to damage.

    Attributes
    ----------
    key
        Short unique name used in case ids (``key#index``).
    fmt
        Format label of the report's table.
    files
        The dataset's files, relative to the corpus folder; the first is the one opened.
    target
        Index in ``files`` of the file that is damaged (the others are copied unchanged).
    raw
        How to find its pixel data (:func:`pixel_segments`): ``tiff``, ``lif``, ``mrc``,
        ``czi``, ``nd2``, ``ids`` or ``none`` (unknown: no damage is excused).
    ci
        Part of the CI slice (small files only).
    """

    key: str
    fmt: str
    files: tuple[str, ...]
    target: int = 0
    raw: str = "none"
    ci: bool = True

    @property
    def open_name(self) -> str:
        return Path(self.files[0]).name

    @property
    def target_file(self) -> str:
        return self.files[self.target]


_COMPANION = "ome-tiff/ometiffjl_companion/"
CORPUS: tuple[Original, ...] = (
    Original("lif-pr2729", "LIF", ("lif/PR2729_frameOrderCombinedScanTypes.lif",), raw="lif"),
    Original("lif-xz", "LIF", ("lif/LeicaLASX_xz-plane_example.lif",), raw="lif", ci=False),
    Original("ome-tiff", "OME-TIFF", ("ome-tiff/qupath/cells-2z.ome.tif",), raw="tiff"),
    Original("ome-tiff-lzw", "OME-TIFF", ("ome-tiff/qupath/cells-2t.ome.tif",), raw="tiff"),
    Original("ome-tiff-tiny", "OME-TIFF", ("ome-tiff/ome-types_ome.tiff",), raw="tiff", ci=False),
    Original(
        "ome-companion",
        "OME-TIFF multi-file",
        (
            f"{_COMPANION}multifile.companion.ome",
            *(f"{_COMPANION}multifile-Z{i}.ome.tiff" for i in range(1, 6)),
        ),
        ci=False,
    ),
    Original("tiff", "TIFF", ("tiff/membrane_2d_timelapse.tif",), raw="tiff"),
    Original("tiff-packbits", "TIFF", ("tiff/mri.tif",), raw="tiff"),
    Original("tiff-deflate", "TIFF", ("tiff/openslide_boxes.tiff",), raw="tiff", ci=False),
    Original("imagej", "ImageJ", ("imagej-tiff/ijtiff_2ch_ij.tif",), raw="tiff"),
    Original(
        "imagej-zc", "ImageJ", ("imagej-tiff/neubias_xyzc_8bit_spheres.tif",), raw="tiff", ci=False
    ),
    Original("czi", "CZI", ("czi/nuc_small_new_red.czi",), raw="czi"),
    Original("czi-zstd", "CZI", ("czi/newCZI_compressed.czi",), raw="czi"),
    Original(
        "czi-5d", "CZI", ("czi/CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi",), raw="czi", ci=False
    ),
    Original("nd2", "ND2", ("nd2/example-zstack.nd2",), raw="nd2"),
    Original("mrc", "MRC", ("mrc/EMD-3001.map",), raw="mrc"),
    Original("ics-header", "ICS", ("ics/trui.ics", "ics/trui.ids"), target=0),
    Original("ics-data", "ICS", ("ics/trui.ics", "ics/trui.ids"), target=1, raw="ids", ci=False),
    Original("lsm", "LSM", ("lsm/test.lsm",), raw="tiff", ci=False),
    Original("svs", "SVS", ("svs/small.svs",), raw="tiff"),
)


def corpus(keys: Iterable[str] | None = None, *, ci: bool = False) -> tuple[Original, ...]:
    """Corpus entries by key (all when ``keys`` is empty), or the CI slice's."""
    wanted = [k for k in (keys or ()) if k]
    if wanted:
        by_key = {o.key: o for o in CORPUS}
        unknown = [k for k in wanted if k not in by_key]
        if unknown:
            raise ValueError(f"unknown corpus keys {unknown}; known: {sorted(by_key)}")
        return tuple(by_key[k] for k in wanted)
    return tuple(o for o in CORPUS if o.ci or not ci)


# -- byte ranges ------------------------------------------------------------------------------

Ranges = list[tuple[int, int]]  # sorted, disjoint [start, stop) byte ranges


def merge(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, disjoint union of ``[start, stop)`` ranges (empty ones dropped)."""
    out: Ranges = []
    for lo, hi in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def complement(ranges: Ranges, size: int) -> Ranges:
    """``[0, size)`` minus ``ranges``."""
    out: Ranges = []
    pos = 0
    for lo, hi in ranges:
        if lo > pos:
            out.append((pos, min(lo, size)))
        pos = max(pos, hi)
    if pos < size:
        out.append((pos, size))
    return [(a, b) for a, b in out if b > a]


def covered(inner: Ranges, outer: Ranges) -> bool:
    """Whether every byte of ``inner`` lies in ``outer`` (both merged)."""
    j = 0
    for lo, hi in inner:
        while j < len(outer) and outer[j][1] <= lo:
            j += 1
        if j == len(outer) or not (outer[j][0] <= lo and hi <= outer[j][1]):
            return False
    return True


def _pick(rng: random.Random, ranges: Ranges) -> int:
    """A byte offset drawn uniformly from ``ranges`` (non-empty)."""
    total = sum(hi - lo for lo, hi in ranges)
    k = rng.randrange(total)
    for lo, hi in ranges:
        if k < hi - lo:
            return lo + k
        k -= hi - lo
    raise AssertionError("unreachable")


# -- where the pixel bytes are (parsed here from each format's own structure) ------------------


@dataclass(frozen=True)
class Segment:
    """Pixel data at ``[start, stop)`` of a file: ``codec`` ``raw`` (uncompressed samples) or
    the compression (``lzw``, ``packbits``, ``deflate``, ``jpeg``, ``zstd``, ``zstd1``...);
    ``tables``: a TIFF JPEG page's shared tables."""

    start: int
    stop: int
    codec: str
    tables: bytes | None = None


TIFF_CODECS = {1: "raw", 5: "lzw", 7: "jpeg", 8: "deflate", 32946: "deflate", 32773: "packbits"}
CZI_CODECS = {0: "raw", 1: "jpeg", 2: "lzw", 4: "jpegxr", 5: "zstd", 6: "zstd1"}


def _tiff_segments(path: str) -> list[Segment]:
    """Strips/tiles of every page of the main IFD chain (tifffile)."""
    import tifffile

    out: list[Segment] = []
    with tifffile.TiffFile(path) as tf:
        for page in tf.pages:
            key = getattr(page, "keyframe", page)
            compression = int(key.compression)
            codec = TIFF_CODECS.get(compression, f"tiff-{compression}")
            tables = getattr(key, "jpegtables", None) if codec == "jpeg" else None
            out += [
                Segment(o, o + n, codec, tables)
                for o, n in zip(page.dataoffsets, page.databytecounts)
                if o and n
            ]
    return out


def _lif_segments(path: str) -> list[Segment]:
    """The data of every memory block (LIF memory blocks hold uncompressed pixels only).

    Parsed here, independently of :mod:`bfdask.lif`: an XML header block (int32 0x70, int32
    length, byte 0x2A, int32 characters, UTF-16 XML whose root has ``Version``), then memory
    blocks (int32 0x70, int32 length, byte 0x2A, data size as int64 -- int32 in version 1 --,
    byte 0x2A, int32 characters, the UTF-16 block id, the data).
    """
    data = Path(path).read_bytes()
    magic, _length, mark, nchars = struct.unpack_from("<IIBI", data, 0)
    if magic != 0x70 or mark != 0x2A:
        return []
    head = data[13 : 13 + min(2 * nchars, 4000)].decode("utf-16-le", errors="replace")
    version = re.search(r'Version="(\d+)"', head)
    wide = version is None or int(version.group(1)) >= 2
    pos = 13 + 2 * nchars
    out: list[Segment] = []
    while pos + 9 <= len(data):
        magic, _length, mark = struct.unpack_from("<IIB", data, pos)
        if magic != 0x70 or mark != 0x2A:
            break
        (size,) = struct.unpack_from("<Q" if wide else "<I", data, pos + 9)
        pos += 9 + (8 if wide else 4)
        mark, nchars = struct.unpack_from("<BI", data, pos)
        start = pos + 5 + 2 * nchars
        if mark != 0x2A or start + size > len(data):
            break
        if size:
            out.append(Segment(start, start + size, "raw"))
        pos = start + size
    return out


def _mrc_segments(path: str) -> list[Segment]:
    """From 1024 + NSYMBT (the extended header's length, int32 at byte 92) to the end."""
    with open(path, "rb") as f:
        head = f.read(1024)
        size = f.seek(0, 2)
    stamp = head[212]  # machine stamp: 0x44 little-endian, 0x11 big-endian
    (nsymbt,) = struct.unpack_from(">i" if stamp == 0x11 else "<i", head, 92)
    return [Segment(1024 + nsymbt, size, "raw")]


def _czi_segments(path: str) -> list[Segment]:
    """The pixel data of every ZISRAWSUBBLOCK segment.

    Segments: 16-byte id, int64 allocated size, int64 used size, then the data. A subblock's
    data: int32 metadata size, int32 attachment size, int64 data size, a directory entry
    ("DV", pixel type, file position, file part, compression int32, ...; 32 bytes + 20 per
    dimension), padded to 256 bytes, then metadata, then the pixel data.
    """
    out: list[Segment] = []
    data = Path(path).read_bytes()
    pos = 0
    while pos + 32 <= len(data):
        sid = data[pos : pos + 16].rstrip(b"\0")
        (allocated,) = struct.unpack_from("<q", data, pos + 16)
        body = pos + 32
        if sid == b"ZISRAWSUBBLOCK" and body + 48 <= len(data):
            meta, _attach, size = struct.unpack_from("<iiq", data, body)
            compression = struct.unpack_from("<i", data, body + 16 + 18)[0]
            ndim = struct.unpack_from("<i", data, body + 16 + 28)[0]
            start = body + max(256, 16 + 32 + 20 * ndim) + meta
            if 0 < size and start + size <= len(data):
                codec = CZI_CODECS.get(compression, f"czi-{compression}")
                out.append(Segment(start, start + size, codec))
        if allocated <= 0:
            break
        pos = body + allocated
    return out


def _nd2_segments(path: str) -> list[Segment]:
    """Pixels of ``ImageDataSeq|n!`` chunks (after their 8-byte timestamp).

    A chunk: uint32 magic 0x0ABECEDA, uint32 name length, uint64 data length, the name
    (padded), the data. (Compressed ND2 files would fail the pixel check of raw ranges.)
    """
    data = Path(path).read_bytes()
    magic = struct.pack("<I", 0x0ABECEDA)
    out: list[Segment] = []
    i = data.find(magic)
    while i >= 0:
        if i + 16 <= len(data):
            name_len, data_len = struct.unpack_from("<IQ", data, i + 4)
            if data[i + 16 : i + 16 + name_len].startswith(b"ImageDataSeq|"):
                start = i + 16 + name_len + 8
                stop = i + 16 + name_len + data_len
                if start < stop <= len(data):
                    out.append(Segment(start, stop, "raw"))
        i = data.find(magic, i + 4)
    return out


def _ids_segments(path: str) -> list[Segment]:
    """An uncompressed ``.ids`` holds pixels only (its ``.ics`` must say ``uncompressed``)."""
    ics = Path(path).with_suffix(".ics").read_text(errors="replace")
    if "compression\tuncompressed" not in ics:
        return []
    return [Segment(0, os.path.getsize(path), "raw")]


SEGMENT_FINDERS: dict[str, Callable[[str], list[Segment]]] = {
    "tiff": _tiff_segments,
    "lif": _lif_segments,
    "mrc": _mrc_segments,
    "czi": _czi_segments,
    "nd2": _nd2_segments,
    "ids": _ids_segments,
    "none": lambda path: [],
}


def pixel_segments(path: str | os.PathLike[str], kind: str) -> list[Segment]:
    """Where the pixel data of ``path`` lies (``[]`` when the file does not parse)."""
    try:
        return sorted(SEGMENT_FINDERS[kind](str(path)), key=lambda s: s.start)
    except Exception:
        return []


def _decoded_size(segment: Segment, data: bytes) -> int:
    """Bytes (or samples) ``data`` decodes to with the segment's codec; raises if it does not."""
    import imagecodecs

    codec = segment.codec
    if codec == "zstd1":  # CZI: a small header (its first byte is its length), then zstd
        data, codec = data[data[0] :], "zstd"
    decoders: dict[str, Callable[[bytes], Any]] = {
        "lzw": imagecodecs.lzw_decode,
        "packbits": imagecodecs.packbits_decode,
        "deflate": imagecodecs.zlib_decode,
        "zstd": imagecodecs.zstd_decode,
        "jpegxr": imagecodecs.jpegxr_decode,
        "jpeg": lambda d: imagecodecs.jpeg8_decode(d, tables=segment.tables),
    }
    out = decoders[codec](data)
    return int(getattr(out, "size", len(out)))


def undetectable_in_codec(
    changed: Ranges, segments: Sequence[Segment], before: bytes, after: bytes
) -> bool:
    """Whether every changed byte lies in compressed pixel data that still decodes, with no
    error, to as many samples as before: a codec without a checksum (PackBits, LZW, JPEG,
    zstd without its optional checksum) cannot tell, so no reader can."""
    coded = [s for s in segments if s.codec != "raw"]
    touched: dict[int, Segment] = {}
    for lo, hi in changed:
        hit = next((s for s in coded if s.start <= lo and hi <= s.stop), None)
        if hit is None:
            return False
        touched[hit.start] = hit
    if not touched:
        return False
    for s in touched.values():
        try:
            if _decoded_size(s, before[s.start : s.stop]) != _decoded_size(
                s, after[s.start : s.stop]
            ):
                return False
        except Exception:
            return False
    return True


def verify_raw(ranges: Ranges, data: bytes, pixels: Sequence[Any], seed: int = 0) -> Ranges:
    """The ranges whose bytes really are pixels: sampled windows must occur in ``pixels``.

    Each range gives up to four 32-byte windows; those of one or two distinct byte values say
    nothing and are skipped; one window not found in any array's bytes (native or byte-swapped
    order) drops the whole range.
    """
    hay = []
    for arr in pixels:
        hay.append(arr.tobytes())
        if arr.dtype.itemsize > 1:
            hay.append(arr.byteswap().tobytes())
    rng = random.Random(seed)
    kept: Ranges = []
    for lo, hi in ranges:
        width = min(32, hi - lo)
        good = True
        for _ in range(4):
            start = rng.randrange(lo, hi - width + 1)
            window = data[start : start + width]
            if len(set(window)) <= 2:
                continue
            if not any(window in h for h in hay):
                good = False
                break
        if good:
            kept.append((lo, hi))
    return merge(kept)


# -- mutations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One seeded damage to a file's bytes.

    ``kind``: ``truncate`` (keep ``offset`` bytes), ``flip`` (XOR the byte at ``offset`` with
    ``value``), ``zero`` (``length`` bytes from ``offset`` set to 0), ``garble`` (``length``
    random bytes from seed ``value`` written at ``offset``), ``append`` (``length`` random
    bytes from seed ``value`` added), ``append_head`` (the file's first ``length`` bytes added
    again). ``region`` says where ``offset`` was drawn: ``header`` (first 512 bytes),
    ``structure`` (outside raw pixel bytes), ``pixels`` (inside them), ``any``, ``end``.
    """

    kind: str
    region: str
    offset: int
    length: int = 0
    value: int = 0

    def apply(self, data: bytes) -> bytes:
        """The damaged bytes."""
        if self.kind == "truncate":
            return data[: self.offset]
        if self.kind == "append":
            return data + random.Random(self.value).randbytes(self.length)
        if self.kind == "append_head":
            return data + data[: self.length]
        out = bytearray(data)
        end = self.offset + self.length
        if self.kind == "flip":
            out[self.offset] ^= self.value
        elif self.kind == "zero":
            out[self.offset : end] = bytes(len(out[self.offset : end]))
        elif self.kind == "garble":
            out[self.offset : end] = random.Random(self.value).randbytes(
                len(out[self.offset : end])
            )
        else:
            raise ValueError(f"unknown mutation kind {self.kind!r}")
        return bytes(out)

    def describe(self) -> str:
        """Short text for tables, e.g. ``flip@1234^0x40 (header)``."""
        text = {
            "truncate": f"truncate@{self.offset}",
            "flip": f"flip@{self.offset}^{self.value:#04x}",
            "zero": f"zero[{self.offset}:+{self.length}]",
            "garble": f"garble[{self.offset}:+{self.length}]",
            "append": f"append {self.length} B",
            "append_head": f"append first {self.length} B",
        }[self.kind]
        return f"{text} ({self.region})"


def changed_ranges(before: bytes, after: bytes) -> Ranges | None:
    """Byte ranges of ``before`` that differ in ``after``; None when the length changed."""
    if len(before) != len(after):
        return None
    import numpy as np

    a = np.frombuffer(before, np.uint8)
    b = np.frombuffer(after, np.uint8)
    idx = np.flatnonzero(a != b)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    stops = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    return [(int(s), int(e)) for s, e in zip(starts, stops)]


#: (kind, region) cycled over the cases of each file from a seeded start: any four in a row
#: hold a truncation and a flip, so that even the CI slice's few cases per file vary
SCHEDULE: tuple[tuple[str, str], ...] = (
    ("truncate", "pixels"),
    ("flip", "header"),
    ("zero", "structure"),
    ("truncate", "structure"),
    ("flip", "structure"),
    ("append", "end"),
    ("truncate", "header"),
    ("flip", "pixels"),
    ("garble", "structure"),
    ("truncate", "end"),
    ("flip", "any"),
    ("zero", "pixels"),
    ("truncate", "any"),
    ("flip", "structure"),
    ("append_head", "end"),
    ("truncate", "structure"),
    ("flip", "header"),
    ("garble", "pixels"),
)


def _regions(size: int, pixels: Ranges) -> dict[str, Ranges]:
    structure = complement(pixels, size) or [(0, size)]
    return {
        "header": [(0, min(size, 512))],
        "structure": structure,
        "pixels": pixels or [(0, size)],
        "any": [(0, size)],
    }


def _draw(kind: str, region: str, data: bytes, pixels: Ranges, rng: random.Random) -> Mutation:
    size = len(data)
    if (region == "pixels" and not pixels) or (
        region == "structure" and not complement(pixels, size)
    ):
        region = "any"
    where = _regions(size, pixels)
    if kind == "truncate":
        if region == "end":
            offset = size - rng.choice([1, 2, 3, 4, 8, 16, 64, 512])
        else:
            offset = _pick(rng, where[region])
        return Mutation(kind, region, max(1, min(offset, size - 1)))
    if kind in ("append", "append_head"):
        length = rng.choice([1, 7, 64, 512, 4096, 65536])
        if kind == "append_head":
            length = min(length, size)
        return Mutation(kind, "end", size, length, rng.randrange(1 << 30))
    offset = _pick(rng, where[region])
    if kind == "flip":
        value = 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
        return Mutation(kind, region, offset, 1, value)
    length = rng.choice([1, 2, 4, 16, 64, 256, 4096])
    return Mutation(kind, region, offset, min(length, size - offset), rng.randrange(1 << 30))


def mutations(data: bytes, pixels: Ranges, n: int, rng: random.Random) -> list[Mutation]:
    """``n`` mutations of ``data`` along :data:`SCHEDULE`, each changing at least a byte
    where possible (a zeroed range of zeros is drawn again, up to 20 times).

    ``pixels``: where the pixel data lies (compressed or not); ``structure`` is the rest.
    """
    out: list[Mutation] = []
    start = rng.randrange(len(SCHEDULE))
    for i in range(n):
        kind, region = SCHEDULE[(start + i) % len(SCHEDULE)]
        for _ in range(20):
            mutation = _draw(kind, region, data, pixels, rng)
            if mutation.apply(data) != data:
                break
        out.append(mutation)
    return out


@dataclass(frozen=True)
class Case:
    """One damaged copy of a corpus dataset."""

    original: Original
    index: int
    mutation: Mutation

    @property
    def id(self) -> str:
        return f"{self.original.key}#{self.index}"


def make_cases(
    original: Original, data: bytes, segments: Sequence[Segment], n: int, seed: int
) -> list[Case]:
    """The ``n`` seeded cases of one dataset (same seed and segments, same cases).

    ``segments`` (the target's pixel data, compressed or not) decide the ``pixels`` and
    ``structure`` regions offsets are drawn from.
    """
    rng = random.Random(f"{seed}:{original.key}")
    pixels = merge((s.start, s.stop) for s in segments)
    return [Case(original, i, m) for i, m in enumerate(mutations(data, pixels, n, rng))]


def excuse(before: bytes, after: bytes, raw: Ranges, segments: Sequence[Segment]) -> str:
    """Why a silent pixel change of this damage could not be detected, or "".

    ``"raw"``: every changed byte lies in verified raw pixel bytes; ``"codec"``: every changed
    byte lies in compressed pixel data that still decodes to the same size
    (:func:`undetectable_in_codec`); ``"mixed"``: some changed bytes lie in raw pixel bytes,
    others elsewhere -- excused only if the result equals that of the raw part of the damage
    alone (:func:`raw_part`; the child reads both). Truncations and appended bytes are never
    excused.
    """
    changed = changed_ranges(before, after)
    if not changed:
        return ""
    if covered(changed, raw):
        return "raw"
    if undetectable_in_codec(changed, segments, before, after):
        return "codec"
    if intersect(changed, raw):
        return "mixed"
    return ""


def intersect(a: Ranges, b: Ranges) -> Ranges:
    """Bytes in both ``a`` and ``b`` (both merged)."""
    out: Ranges = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def raw_part(before: bytes, after: bytes, raw: Ranges) -> bytes:
    """``before`` with only the changes of ``after`` that lie in ``raw`` (same length)."""
    out = bytearray(before)
    for lo, hi in intersect(changed_ranges(before, after) or [], raw):
        out[lo:hi] = after[lo:hi]
    return bytes(out)


def write_case(case: Case, data_dir: Path, dest: Path, target: bytes | None = None) -> Path:
    """Copy the dataset into ``dest`` with the damaged target (or ``target`` as its bytes);
    return the path to open."""
    dest.mkdir(parents=True, exist_ok=True)
    for i, rel in enumerate(case.original.files):
        src = data_dir / rel
        out = dest / Path(rel).name
        if i == case.original.target:
            out.write_bytes(case.mutation.apply(src.read_bytes()) if target is None else target)
        else:
            shutil.copyfile(src, out)
    return dest / case.original.open_name


# -- the child process ----------------------------------------------------------------------


def _exc_info(exc: BaseException, stage: str) -> dict[str, Any]:
    from bfdask.errors import BfdaskError

    return {
        "cls": type(exc).__qualname__,
        "module": type(exc).__module__,
        "ours": isinstance(exc, BfdaskError),
        "stage": stage,
        "message": str(exc)[:400],
    }


def _warn_info(caught: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "cls": w.category.__qualname__,
            "module": w.category.__module__,
            "ours": w.category.__module__.split(".")[0] == "bfdask",
            "message": str(w.message)[:300],
        }
        for w in caught
    ]


def _digest(arr: Any) -> str:
    import numpy as np

    h = hashlib.sha1(f"{arr.shape}{arr.dtype.str}".encode())
    h.update(np.ascontiguousarray(arr).view(np.uint8).reshape(-1).data)
    return h.hexdigest()[:16]


def _read(data: Any, budget: int) -> tuple[Any, bool]:
    """All pixels of ``data``, or (over ``budget`` bytes) its corners: first/last T and Z,
    first channel, at most 256x256."""
    if data.nbytes <= budget:
        return data.values, False
    box: dict[str, Any] = {d: [0, -1] for d in ("T", "Z") if d in data.dims}
    box.update({d: slice(0, 256) for d in ("Y", "X") if d in data.dims})
    if "C" in data.dims:
        box["C"] = [0]
    return data.isel(box).values, True


def _observe_series(path: str, index: int, mode: str, budget: int) -> tuple[dict[str, Any], Any]:
    """Open and read one series; the record and the array (None on error)."""
    import warnings

    import bfdask

    record: dict[str, Any] = {"index": index, "error": None, "partial": False}
    arr = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stage = "open"
        try:
            data = bfdask.open(path, series=index, pixels=mode)
            record.update(
                shape=list(data.shape),
                dims="".join(map(str, data.dims)),
                dtype=str(data.dtype),
                pixels=data.attrs.get("pixels", ""),
                reason=str(data.attrs.get("pixels_reason", ""))[:200],
                attrs=sorted(map(str, data.attrs)),
            )
            stage = "read"
            arr, record["partial"] = _read(data, budget)
            record["digest"] = _digest(arr)
        except Exception as exc:
            record["error"] = _exc_info(exc, stage)
            arr = None
        record["warnings"] = _warn_info(caught)
    return record, arr


def observe(path: str, mode: str, budget: int) -> tuple[dict[str, Any], list[Any]]:
    """List and read every series of ``path`` in one pixel mode: a record and the arrays."""
    import warnings

    import bfdask

    out: dict[str, Any] = {"mode": mode, "error": None, "series": [], "series_count": None}
    arrays: list[Any] = []
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            infos = bfdask.list_series(path)
        except Exception as exc:
            out["error"] = _exc_info(exc, "list")
            infos = []
        out["warnings"] = _warn_info(caught)
    if out["error"] is None:
        out["series_count"] = len(infos)
    for i in range(min(len(infos), MAX_SERIES)):
        record, arr = _observe_series(path, i, mode, budget)
        out["series"].append(record)
        arrays.append(arr)
    out["seconds"] = time.perf_counter() - started
    return out, arrays


def _compare(out: dict[str, Any], arrays: list[Any], ref: list[Any]) -> None:
    """Add ``equal`` and ``ndiff`` (elements that differ, same shape only) to each series."""
    import numpy as np

    for record, arr in zip(out["series"], arrays):
        if arr is None:
            continue
        k = record["index"]
        record["equal"] = False
        if k >= len(ref) or record["partial"]:
            continue
        expected = ref[k]
        if arr.shape != expected.shape or arr.dtype != expected.dtype:
            continue
        record["equal"] = arr.tobytes() == expected.tobytes()
        if not record["equal"]:
            a = np.ascontiguousarray(arr).view(np.uint8).reshape(arr.size, -1)
            b = np.ascontiguousarray(expected).view(np.uint8).reshape(arr.size, -1)
            record["ndiff"] = int((a != b).any(axis=1).sum())
            record["size"] = int(arr.size)


def _close_handles() -> None:
    """Close every handle bfdask keeps -- Java readers and TiffFiles, in its one handle cache
    (:func:`bfdask.handles.close_all`) -- since each case is a new file. Closing a Java reader
    is a Java call: this thread is attached to the JVM first if it runs."""
    from bfdask import handles, jvm

    if jvm.is_running():
        jvm.ensure()
    handles.close_all()


def _load_ref(path: str, cache: dict[str, list[Any]]) -> list[Any]:
    import numpy as np

    if path not in cache:
        if len(cache) >= 4:
            cache.pop(next(iter(cache)))
        with np.load(path) as npz:
            cache[path] = [npz[f"s{i}"] for i in range(len(npz.files))]
    return cache[path]


def _reference(msg: dict[str, Any]) -> dict[str, Any]:
    """Read the undamaged dataset both ways; save the pixels; find and verify raw ranges."""
    import numpy as np

    result: dict[str, Any] = {}
    for mode in MODES:
        out, arrays = observe(msg["path"], mode, msg["budget"])
        result[mode] = out
        problems = [out["error"]] + [s["error"] for s in out["series"]]
        if (
            any(problems)
            or out["series_count"] != len(arrays)
            or any(s["partial"] for s in out["series"])
        ):
            result["failed"] = f"{mode}: {next((p for p in problems if p), 'partial read')}"
            return result
        if mode == "bioformats":
            np.savez(msg["ref"], **{f"s{i}": a for i, a in enumerate(arrays)})
            ref_arrays = arrays
    found = merge(tuple(r) for r in msg["raw"])
    kept = verify_raw(found, Path(msg["target"]).read_bytes(), ref_arrays)
    result["raw"] = kept
    result["raw_found"] = len(found)
    result["raw_dropped"] = len(found) - sum(
        1 for lo, hi in found if any(a <= lo and hi <= b for a, b in kept)
    )
    _close_handles()
    return result


def _case(msg: dict[str, Any], refs: dict[str, list[Any]]) -> dict[str, Any]:
    out, arrays = observe(msg["path"], msg["mode"], msg["budget"])
    _compare(out, arrays, _load_ref(msg["ref"], refs))
    if msg.get("alt"):  # the raw part of a mixed damage alone: what may be excused
        alt, _ = observe(msg["alt"], msg["mode"], msg["budget"])
        by_index = {s["index"]: s for s in alt["series"] if not s["error"]}
        for record in out["series"]:
            record["alt_digest"] = by_index.get(record["index"], {}).get("digest")
    _close_handles()
    errors = [out["error"]] + [s["error"] for s in out["series"]]
    # a foreign exception may leave Java or the allocator in a bad state: start afresh
    out["restart"] = any(e and not e["ours"] for e in errors)
    return out


def _child_setup(settings: dict[str, Any]) -> None:
    """Limits, environment and stderr of a fresh child, before bfdask is imported."""
    import faulthandler
    import resource
    import signal

    os.chdir(settings["cwd"])  # JVM crash logs (hs_err_pid*.log) land in the work folder
    log = os.open(settings["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    cap = int(settings["address_space"])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ.update(
        BFDASK_MEMO_DIR="",
        BFDASK_MAX_HEAP=settings["heap"],
        BFDASK_LOG_LEVEL="ERROR",
        BFDASK_PIXELS="auto",
    )


def _warm_up() -> None:
    """Start the JVM and load Bio-Formats' reader classes (seconds, once per child), so that
    the first case's time limit does not pay for them."""
    import bfdask

    bfdask.start_jvm()
    fake = Path("warm&sizeX=8&sizeY=8.fake")
    fake.touch()
    bfdask.open(fake).values  # noqa: B018 - computes
    _close_handles()


def _answer(msg: dict[str, Any], refs: dict[str, list[Any]]) -> dict[str, Any]:
    op = msg["op"]
    if op == "ref":
        return _reference(msg)
    if op == "case":
        return _case(msg, refs)
    if op == "sleep":  # for the engine's own tests: a hang
        time.sleep(msg["seconds"])
        return {"slept": msg["seconds"]}
    if op == "exit":  # for the engine's own tests: a crash
        os._exit(msg["code"])
    raise ValueError(f"unknown request {op!r}")


def child_main(conn: Connection, settings: dict[str, Any]) -> None:
    """The child's loop: start the JVM, then answer ``ref`` and ``case`` requests."""
    _child_setup(settings)
    import dask

    dask.config.set(scheduler="synchronous")  # warnings of tasks reach catch_warnings
    if settings.get("jvm", True):
        _warm_up()
    conn.send({"ready": os.getpid()})
    refs: dict[str, list[Any]] = {}
    while True:
        msg = conn.recv()
        if msg["op"] == "stop":
            return
        try:
            reply = _answer(msg, refs)
        except BaseException:
            reply = {"internal": traceback.format_exc()[-3000:]}
        conn.send(reply)


# -- classification (pure: parent side) -----------------------------------------------------


def _worst(outcomes: Iterable[str]) -> str:
    return max(outcomes, key=OUTCOMES.index, default="identical")


def _ours(warnings_: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in warnings_ if w["ours"]]


def _error_text(err: dict[str, Any]) -> str:
    return f"{err['module']}.{err['cls']} at {err['stage']}: {err['message']}"


def classify(obs: dict[str, Any], ref: dict[str, Any], excused: str = "") -> tuple[str, str]:
    """Outcome and detail of one (case, mode) from the child's record.

    Parameters
    ----------
    obs
        The child's record of the damaged file (``observe`` + ``equal``/``ndiff``).
    ref
        The same record of the undamaged file (``bioformats`` mode).
    excused
        ``"raw"``: every damaged byte lies inside verified raw pixel bytes; ``"codec"``: inside
        compressed pixel data that still decodes to as many samples; ``"mixed"``: partly in
        raw pixel bytes (see :func:`excuse`); ``""``: none. Excused damage that changes only
        pixel values (same series, shapes and dtypes) is ``silent_wrong_raw`` /
        ``silent_wrong_codec``; mixed damage is ``silent_wrong_raw`` when the series reads
        as with the raw part of the damage alone (``alt_digest``).
    """
    if "internal" in obs:
        return "harness", obs["internal"].strip().splitlines()[-1]
    if obs["error"]:
        err = obs["error"]
        return ("error" if err["ours"] else "foreign_error"), _error_text(err)
    file_warned = _ours(obs["warnings"])
    outcomes: list[tuple[str, str]] = []
    count, ref_count = obs["series_count"], ref["series_count"]
    any_warned = file_warned or any(_ours(s["warnings"]) for s in obs["series"])
    if count != ref_count:
        text = f"{count} series instead of {ref_count}"
        outcomes.append(("warned", text) if any_warned else ("silent_wrong", text))
    for s in obs["series"]:
        k = s["index"]
        expected = ref["series"][k] if k < len(ref["series"]) else None
        warned = file_warned + _ours(s["warnings"])
        outcomes.append(_series_outcome(s, expected, warned, excused, count == ref_count))
    worst = _worst(o for o, _ in outcomes)
    detail = "; ".join(t for o, t in outcomes if o == worst and t)
    return worst, detail


def _series_outcome(
    s: dict[str, Any],
    expected: dict[str, Any] | None,
    warned: list[dict[str, Any]],
    excused: str,
    count_ok: bool,
) -> tuple[str, str]:
    """Outcome and detail of one series (see :func:`classify`)."""
    k = s["index"]
    if s["error"]:
        err = s["error"]
        return ("error" if err["ours"] else "foreign_error"), f"series {k}: {_error_text(err)}"
    if s.get("equal"):
        return ("warned" if warned else "identical"), ""
    same_shape = expected is not None and [s["shape"], s["dtype"]] == [
        expected["shape"],
        expected["dtype"],
    ]
    if expected is None:
        what = "extra series"
    elif not same_shape:
        what = f"shape {s['shape']} {s['dtype']} instead of {expected['shape']} "
        what += str(expected["dtype"])
    else:
        what = f"{s.get('ndiff', '?')} of {s.get('size', '?')} pixels differ"
    text = f"series {k} ({s.get('pixels')}): {what}"
    if expected is not None:  # a damage flag in attrs, if bfdask adds one, is worth seeing
        new = sorted(set(s.get("attrs", ())) - set(expected.get("attrs", ())))
        text += f" (new attrs: {', '.join(new)})" if new else ""
    if warned:
        return "warned", f"{text}; {warned[0]['cls']}: {warned[0]['message']}"
    if same_shape and count_ok and excused in ("raw", "codec"):
        return f"silent_wrong_{excused}", text
    if same_shape and count_ok and excused == "mixed" and s.get("alt_digest") == s["digest"]:
        return "silent_wrong_raw", f"{text} (as with the raw part of the damage)"
    return "silent_wrong", text


def disagreement(auto: dict[str, Any], bioformats: dict[str, Any]) -> str:
    """Why the two modes disagree silently ("" if they agree or one raises or warns)."""
    if "internal" in auto or "internal" in bioformats or auto["error"] or bioformats["error"]:
        return ""
    quiet_a = not _ours(auto["warnings"])
    quiet_b = not _ours(bioformats["warnings"])
    if quiet_a and quiet_b and auto["series_count"] != bioformats["series_count"]:
        counts = auto["series_count"], bioformats["series_count"]
        return "series count auto {} vs bioformats {}".format(*counts)
    texts = []
    for a, b in zip(auto["series"], bioformats["series"]):
        silent = quiet_a and quiet_b and not _ours(a["warnings"]) and not _ours(b["warnings"])
        if silent and not a["error"] and not b["error"] and a["digest"] != b["digest"]:
            texts.append(
                f"series {a['index']}: auto ({a['pixels']}) {a['shape']} vs bioformats "
                f"{b['shape']}, pixels differ"
            )
    return "; ".join(texts)


# -- the parent: a pool of children -----------------------------------------------------------


@dataclass
class Config:
    """One campaign's settings."""

    work: Path
    seed: int = 13
    cases_per_file: int = 60
    originals: tuple[Original, ...] = CORPUS
    data: Path = field(default_factory=default_data)
    workers: int = 2
    timeout: float = 45.0  # s per (case, mode): above bfdask's own open bound (20 s + size)
    start_timeout: float = 120.0  # a child's JVM start
    address_space: int = 6 * GiB  # RLIMIT_AS of each child (a JVM reserves ~3.5 GiB)
    heap: str = "512M"
    budget: int = 64 * MiB  # bytes read per series at most (else corners only)
    jvm: bool = True  # start (and warm) each child's JVM before its first request


@dataclass
class ModeResult:
    outcome: str
    detail: str
    seconds: float
    pixels: str = ""


@dataclass
class CaseResult:
    case: Case
    excuse: str  # "raw", "codec" or "": see :func:`excuse`
    modes: dict[str, ModeResult] = field(default_factory=dict)
    disagree: str = ""

    def defects(self) -> list[tuple[str, str, str]]:
        """(mode, outcome, detail) of everything not allowed."""
        out = [(m, r.outcome, r.detail) for m, r in self.modes.items() if r.outcome not in ALLOWED]
        if self.disagree:
            out.append(("both", "disagree", self.disagree))
        return out


@dataclass
class Campaign:
    config: Config
    results: list[CaseResult] = field(default_factory=list)
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # original key -> why
    segments: dict[str, list[Segment]] = field(default_factory=dict)  # of each target file
    seconds: float = 0.0
    restarts: int = 0

    def defects(self) -> list[tuple[CaseResult, str, str, str]]:
        return [(r, *d) for r in self.results for d in r.defects()]


class _Child:
    """One child process and its pipe; ``task`` is what it is working on."""

    def __init__(self, ctx: Any, settings: dict[str, Any]) -> None:
        self.conn, child_conn = ctx.Pipe()
        self.log = Path(settings["log"])
        self.proc = ctx.Process(target=child_main, args=(child_conn, settings), daemon=True)
        self.proc.start()
        child_conn.close()
        self.task: Any = None
        self.timeout = 0.0
        self.deadline = float("inf")
        self.ready = False

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            self.kill()
            raise RuntimeError(f"fuzz child did not start within {timeout} s: {self.log_tail()}")
        try:
            self.conn.recv()
        except EOFError:
            raise RuntimeError(f"fuzz child died at start: {self.log_tail()}") from None
        self.ready = True

    def send(self, task: Any, msg: dict[str, Any], timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.conn.send(msg)

    def log_tail(self, n: int = 600) -> str:
        try:
            text = self.log.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""
        return " ".join(text.split())

    def dump_stacks(self) -> None:
        """Ask a hung child for its Python stacks (faulthandler on SIGUSR1) and its Java ones
        (the JVM's thread dump on SIGQUIT), into its log; it is killed afterwards anyway."""
        import signal

        for sig in (signal.SIGUSR1, signal.SIGQUIT):
            with contextlib.suppress(OSError):
                os.kill(self.proc.pid, sig)
                time.sleep(1.0)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        self.proc.join(10)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send({"op": "stop"})
        self.proc.join(5)
        if self.proc.is_alive():
            self.kill()


def stack_summary(dump: str, frames: int = 6) -> str:
    """The innermost frames of the main thread in a faulthandler dump, innermost first."""
    at = dump.rfind("Current thread")
    found = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', dump[at:] if at >= 0 else "")
    return " < ".join(f"{name} ({Path(f).name}:{line})" for f, line, name in found[:frames])


def java_summary(dump: str, frames: int = 5) -> str:
    """The innermost distinct Bio-Formats/ome-common frames of a JVM thread dump."""
    at = dump.rfind("Full thread dump")
    found = re.findall(r"at (loci\.[\w.$]+)\((\w+)\.java:(\d+)\)", dump[at:] if at >= 0 else "")
    out: list[str] = []
    for method, _file, line in found:
        frame = f"{'.'.join(method.split('.')[-2:])}:{line}"
        if frame not in out:
            out.append(frame)
        if len(out) == frames:
            break
    return " < ".join(out)


class Pool:
    """Children answering requests in parallel, each request under a time limit."""

    def __init__(self, cfg: Config, logs: Path) -> None:
        self.cfg = cfg
        self.ctx = multiprocessing.get_context("spawn")
        self.logs = logs
        self.started = 0
        self.restarts = 0
        self.children = [self._spawn() for _ in range(max(1, cfg.workers))]
        for child in self.children:
            child.wait_ready(cfg.start_timeout)

    def _spawn(self) -> _Child:
        self.started += 1
        settings = {
            "cwd": str(self.logs),
            "log": str(self.logs / f"child-{self.started}.log"),
            "address_space": self.cfg.address_space,
            "heap": self.cfg.heap,
            "jvm": self.cfg.jvm,
        }
        return _Child(self.ctx, settings)

    def _replace(self, child: _Child) -> None:
        child.kill()
        self.restarts += 1
        fresh = self._spawn()
        fresh.wait_ready(self.cfg.start_timeout)
        self.children[self.children.index(child)] = fresh

    def run(
        self,
        tasks: Iterable[Any],
        request: Callable[[Any], dict[str, Any]],
        done: Callable[[Any, dict[str, Any]], None],
        timeout: float,
    ) -> None:
        """Send every task's request to a free child; call ``done(task, reply)``.

        A child that does not answer in ``timeout`` s is killed (reply ``{"hang": ...}``), one
        that dies gives ``{"crash": ...}``; either is replaced by a fresh child.
        """
        queue = deque(tasks)
        while queue or any(c.task is not None for c in self.children):
            for child in list(self.children):
                if child.task is None and queue:
                    task = queue.popleft()
                    try:
                        child.send(task, request(task), timeout)
                    except OSError:  # it died between two requests: a fresh one does it
                        child.task = None
                        self._replace(child)
                        queue.appendleft(task)
            busy = [c for c in self.children if c.task is not None]
            soonest = min(c.deadline for c in busy)
            wait(
                [c.conn for c in busy] + [c.proc.sentinel for c in busy],
                max(0.0, soonest - time.monotonic()),
            )
            for child in busy:
                self._collect(child, done)

    def _collect(self, child: _Child, done: Callable[[Any, dict[str, Any]], None]) -> None:
        task = child.task
        reply: dict[str, Any] | None = None
        try:
            if child.conn.poll():
                reply = child.conn.recv()
        except (EOFError, OSError):
            reply = None
            child.proc.join(5)
        if reply is None and not child.proc.is_alive():
            code = child.proc.exitcode
            reply = {"crash": f"child exit code {code}: {child.log_tail()}"}
        elif reply is None and time.monotonic() > child.deadline:
            child.dump_stacks()
            dump = child.log_tail(200_000)
            where = stack_summary(dump)
            java = java_summary(dump)
            where += f"; Java: {java}" if java else ""
            reply = {"hang": f"no answer in {child.timeout:.0f} s; stuck in {where}"}
        if reply is None:
            return
        child.task = None
        child.deadline = float("inf")
        if "crash" in reply or "hang" in reply or reply.get("restart"):
            self._replace(child)
        done(task, reply)

    def close(self) -> None:
        for child in self.children:
            child.stop()


def _reference_phase(
    cfg: Config, pool: Pool, work: Path, campaign: Campaign, log: Callable[[str], None]
) -> None:
    """Read each undamaged dataset in a child: reference pixels, verified raw ranges."""
    refs = work / "refs"
    refs.mkdir(parents=True, exist_ok=True)

    def request(original: Original) -> dict[str, Any]:
        folder = refs / original.key
        folder.mkdir(exist_ok=True)
        for rel in original.files:
            shutil.copyfile(cfg.data / rel, folder / Path(rel).name)
        segments = pixel_segments(cfg.data / original.target_file, original.raw)
        campaign.segments[original.key] = segments
        return {
            "op": "ref",
            "path": str(folder / original.open_name),
            "target": str(folder / Path(original.target_file).name),
            "raw": [(s.start, s.stop) for s in segments if s.codec == "raw"],
            "ref": str(refs / f"{original.key}.npz"),
            "budget": cfg.budget,
        }

    def done(original: Original, reply: dict[str, Any]) -> None:
        why = reply.get("failed") or reply.get("internal") or reply.get("crash")
        why = why or reply.get("hang")
        if why:
            campaign.skipped[original.key] = str(why)[:500]
            log(f"reference {original.key}: SKIPPED ({campaign.skipped[original.key]})")
            return
        reply["ref_path"] = str(refs / f"{original.key}.npz")
        reply["raw"] = merge(tuple(r) for r in reply["raw"])
        campaign.references[original.key] = reply
        agree = [s["digest"] for s in reply["auto"]["series"]] == [
            s["digest"] for s in reply["bioformats"]["series"]
        ]
        reply["modes_agree"] = agree
        codecs = Counter(s.codec for s in campaign.segments[original.key])
        log(
            f"reference {original.key}: {reply['bioformats']['series_count']} series, "
            f"segments {dict(codecs)}, raw ranges {len(reply['raw'])} ({reply['raw_dropped']} "
            f"of {reply['raw_found']} failed the pixel check), "
            f"pixels={','.join(s['pixels'] for s in reply['auto']['series'])}"
            + ("" if agree else ", auto and bioformats DISAGREE on the original")
        )

    pool.run(cfg.originals, request, done, cfg.start_timeout)


def _case_phase(
    cfg: Config, pool: Pool, work: Path, campaign: Campaign, log: Callable[[str], None]
) -> None:
    """Every (case, mode) in a child; results classified into ``campaign.results``."""
    cases_dir = work / "cases"
    cases: list[CaseResult] = []
    for original in cfg.originals:
        ref = campaign.references.get(original.key)
        if ref is None:
            continue
        data = (cfg.data / original.target_file).read_bytes()
        segments = campaign.segments[original.key]
        raw = ref["raw"]
        for case in make_cases(original, data, segments, cfg.cases_per_file, cfg.seed):
            damaged = case.mutation.apply(data)
            cases.append(CaseResult(case, excuse(data, damaged, raw, segments)))
    campaign.results = cases
    paths: dict[str, Path] = {}
    pending: Counter[str] = Counter()
    replies: dict[str, dict[str, dict[str, Any]]] = {}
    tasks = [(r, mode) for r in cases for mode in MODES]
    started = time.monotonic()
    finished = 0

    def request(task: tuple[CaseResult, str]) -> dict[str, Any]:
        result, mode = task
        cid = result.case.id
        original = result.case.original
        ref = campaign.references[original.key]
        folder = cases_dir / cid.replace("#", "_")
        if cid not in paths:
            paths[cid] = write_case(result.case, cfg.data, folder / "damaged")
            pending[cid] = len(MODES)
            if result.excuse == "mixed":
                before = (cfg.data / original.target_file).read_bytes()
                only_raw = raw_part(before, result.case.mutation.apply(before), ref["raw"])
                write_case(result.case, cfg.data, folder / "raw-part", only_raw)
        alt = folder / "raw-part" / original.open_name
        return {
            "op": "case",
            "path": str(paths[cid]),
            "alt": str(alt) if result.excuse == "mixed" else None,
            "mode": mode,
            "ref": ref["ref_path"],
            "budget": cfg.budget,
        }

    def done(task: tuple[CaseResult, str], reply: dict[str, Any]) -> None:
        nonlocal finished
        result, mode = task
        cid = result.case.id
        ref = campaign.references[result.case.original.key]["bioformats"]
        if "hang" in reply or "crash" in reply:
            kind = "hang" if "hang" in reply else "crash"
            result.modes[mode] = ModeResult(kind, reply[kind][:1500], cfg.timeout)
        else:
            outcome, detail = classify(reply, ref, result.excuse)
            detail = detail.replace(f"{cases_dir}/", "")  # paths inside the scratch folder
            pixels = ",".join(sorted({s.get("pixels", "") for s in reply.get("series", [])}))
            result.modes[mode] = ModeResult(outcome, detail, reply.get("seconds", 0.0), pixels)
            replies.setdefault(cid, {})[mode] = reply
        pending[cid] -= 1
        if pending[cid] == 0:
            shutil.rmtree(paths.pop(cid).parent.parent, ignore_errors=True)
            both = replies.pop(cid, {})
            if len(both) == len(MODES):
                result.disagree = disagreement(both["auto"], both["bioformats"])
        finished += 1
        if finished % 100 == 0:
            log(f"{finished}/{len(tasks)} (case, mode) done, {time.monotonic() - started:.0f} s")

    pool.run(tasks, request, done, cfg.timeout)


def run(cfg: Config, log: Callable[[str], None] | None = None) -> Campaign:
    """Run a campaign: references, then every (case, mode); nothing is written but ``work``."""
    log = log or (lambda msg: None)
    started = time.monotonic()
    campaign = Campaign(cfg)
    work = cfg.work
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    pool = Pool(cfg, logs)
    log(f"{cfg.workers} child process(es) ready")
    try:
        _reference_phase(cfg, pool, work, campaign, log)
        log(f"references done; {len(campaign.references)} datasets")
        _case_phase(cfg, pool, work, campaign, log)
    finally:
        pool.close()
    campaign.restarts = pool.restarts
    campaign.seconds = time.monotonic() - started
    return campaign


# -- the report ----------------------------------------------------------------------------


def _md_table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return (str(value).replace("|", "\\|").replace("\n", " ") or "-") if value != 0 else "0"

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def counts_table(campaign: Campaign) -> str:
    """Counts of (case, mode) outcomes per dataset and in total, plus ``disagree`` cases."""
    shown = [o for o in OUTCOMES if o != "harness"]
    if any(m.outcome == "harness" for r in campaign.results for m in r.modes.values()):
        shown.append("harness")
    columns = ["dataset", "format", "cases", *shown, "disagree"]
    rows: list[list[Any]] = []
    total: Counter[str] = Counter()
    for original in campaign.config.originals:
        results = [r for r in campaign.results if r.case.original.key == original.key]
        if not results:
            continue
        c = Counter(m.outcome for r in results for m in r.modes.values())
        c["disagree"] = sum(1 for r in results if r.disagree)
        c["cases"] = len(results)
        total.update(c)
        rows.append(
            [original.key, original.fmt, c["cases"], *(c[o] for o in shown), c["disagree"]]
        )
    rows.append(["**total**", "", total["cases"], *(total[o] for o in shown), total["disagree"]])
    return _md_table(columns, rows)


def kinds_table(campaign: Campaign) -> str:
    """Outcomes per mutation kind (both modes together)."""
    shown = [o for o in OUTCOMES if o != "harness"]
    by_kind: dict[str, Counter[str]] = {}
    for r in campaign.results:
        c = by_kind.setdefault(r.case.mutation.kind, Counter())
        c.update(m.outcome for m in r.modes.values())
        c["disagree"] += bool(r.disagree)
    rows = [[k, *(c[o] for o in shown), c["disagree"]] for k, c in sorted(by_kind.items())]
    return _md_table(["mutation", *shown, "disagree"], rows)


def defects_table(campaign: Campaign, limit: int | None = None) -> str:
    """Every (case, mode) that is not allowed: what to fix."""
    rows = []
    for r, mode, outcome, detail in campaign.defects():
        rows.append(
            [
                r.case.id,
                r.case.original.files[r.case.original.target],
                r.case.mutation.describe(),
                mode,
                outcome,
                detail[:400],
            ]
        )
    more = ""
    if limit is not None and len(rows) > limit:
        more = f"\n... and {len(rows) - limit} more\n"
        rows = rows[:limit]
    return (
        _md_table(["case", "file damaged", "mutation", "mode", "outcome", "detail"], rows) + more
    )


def summary(campaign: Campaign) -> str:
    """Plain-text summary for a terminal or an assertion message."""
    lines = [
        f"fuzz: seed {campaign.config.seed}, {len(campaign.results)} cases x {len(MODES)} modes "
        f"in {campaign.seconds:.0f} s ({campaign.restarts} child restarts)",
        counts_table(campaign),
        kinds_table(campaign),
    ]
    for key, why in campaign.skipped.items():
        lines.append(f"SKIPPED {key}: {why}")
    defects = campaign.defects()
    lines.append(f"{len(defects)} defects")
    if defects:
        lines.append(defects_table(campaign))
    return "\n".join(lines)


def corpus_table(campaign: Campaign) -> str:
    """The damaged datasets: file, size, where the pixel data is."""
    rows = []
    for original in campaign.config.originals:
        ref = campaign.references.get(original.key)
        if ref is None:
            continue
        segments = campaign.segments.get(original.key, [])
        codecs = Counter(s.codec for s in segments)
        where = ", ".join(f"{n} {c}" for c, n in sorted(codecs.items())) or "not located"
        raw = sum(hi - lo for lo, hi in ref["raw"])
        size = (campaign.config.data / original.target_file).stat().st_size
        rows.append(
            [
                original.key,
                original.target_file,
                f"{size:,}",
                ref["bioformats"]["series_count"],
                ",".join(sorted({s["pixels"] for s in ref["auto"]["series"]})),
                where,
                f"{raw:,}",
            ]
        )
    columns = ["dataset", "file damaged", "bytes", "series", "auto reads", "pixel data"]
    return _md_table([*columns, "raw pixel bytes (verified)"], rows)


def section(campaign: Campaign) -> str:
    """The RESULTS.md section, between its markers."""
    cfg = campaign.config
    defects = campaign.defects()
    excused = Counter(
        m.outcome
        for r in campaign.results
        for m in r.modes.values()
        if m.outcome.startswith("silent_wrong_")
    )
    command = f"python -m benchmarks fuzz --seed {cfg.seed} --cases {cfg.cases_per_file}"
    if {o.key for o in cfg.originals} != {o.key for o in CORPUS}:
        command += f" --files {','.join(o.key for o in cfg.originals)}"
    text = [
        SECTION_BEGIN,
        "## 6. Fuzz: damaged and hostile files",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in "
        f"{campaign.seconds / 60:.1f} min ({cfg.workers} child processes, "
        f"{campaign.restarts} restarted). `tests/test_fuzz.py` runs a slice of it in CI "
        f"(seed {SLICE_SEED}, {SLICE_CASES} cases per dataset, the small datasets), held to the "
        "slice's known open defects in `tests/fuzz_known_defects.tsv`: any other defect, or a "
        "listed one that reads right now, fails it (`python -m benchmarks fuzz --update-known` "
        "rewrites that list).",
        "",
        f"{len(campaign.results)} damaged copies of {len(campaign.references)} corpus datasets "
        "(truncated, bytes flipped, ranges zeroed or garbled, garbage appended; seeded), each "
        'listed, opened and read whole with `pixels="auto"` and `"bioformats"` in a child '
        f"process (address space capped at {cfg.address_space / GiB:.0f} GiB, Java heap "
        f"{cfg.heap}, {cfg.timeout:.0f} s per case and mode) and compared with the original's "
        "pixels. Counts are of (case, mode) pairs; `disagree` counts cases. Allowed: "
        "`identical`, `error` (a `BfdaskError`), `warned` (a warning of bfdask's), "
        "`silent_wrong_raw` (every damaged byte inside uncompressed pixel bytes: pixels change "
        "and nothing can tell) and `silent_wrong_codec` (every damaged byte inside compressed "
        "pixel data that still decodes to the same size: PackBits, LZW, JPEG and zstd carry no "
        "checksum). Everything else is a defect; `benchmarks/fuzz.py` defines each class.",
        "",
        "### The datasets",
        "",
        corpus_table(campaign),
        "### Outcomes per dataset",
        "",
        counts_table(campaign),
        "### Outcomes per mutation",
        "",
        kinds_table(campaign),
        f"**{len(defects)} defects** (silent wrong results outside raw pixel bytes, hangs, "
        "crashes, non-bfdask exceptions, silent disagreements); allowed, undetectable: "
        f"{excused['silent_wrong_raw']} silent changes inside raw pixel bytes, "
        f"{excused['silent_wrong_codec']} inside checksum-less compressed data.",
        "",
    ]
    for key, why in campaign.skipped.items():
        text += [f"Skipped `{key}`: its undamaged file did not read: {why}", ""]
    notes = [
        f"`{k}`: auto and bioformats disagree on the undamaged file"
        for k, ref in campaign.references.items()
        if not ref.get("modes_agree", True)
    ]
    text += [f"{n}." for n in notes] + ([""] if notes else [])
    if defects:
        text += [
            "### Every defect",
            "",
            "Reproduce one with `python -m benchmarks fuzz --write-case CASE DIR` (same seed "
            "and cases); with DIR `/tmp/bfdask-fuzz/cases/<CASE, # as _>/damaged`, the path "
            "the campaign read it from, bfdask verifies the same planes at open.",
            "",
            defects_table(campaign),
        ]
    text.append(SECTION_END)
    return "\n".join(text) + "\n"


def update_results(path: Path, text: str) -> None:
    """Put the fuzz section ``text`` into ``path`` in place of the previous one."""
    old = path.read_text() if path.exists() else "# bfdask benchmark results\n"
    path.write_text(with_section(_without_section(old), text))


def keep_section(old: str, new: str) -> str:
    """``new`` (a rewritten RESULTS.md) with the fuzz section of ``old`` carried over."""
    section = _section_of(old)
    if not section or SECTION_BEGIN in new:
        return new
    return with_section(new, section)


def with_section(doc: str, section: str) -> str:
    """``doc`` with ``section`` inserted before its ``## Plots`` (else at its end)."""
    section = section.strip("\n") + "\n"
    at = doc.find("\n## Plots")
    if at < 0:
        return doc.rstrip("\n") + "\n\n" + section
    return doc[: at + 1] + section + "\n" + doc[at + 1 :]


def _section_of(doc: str) -> str:
    start, stop = doc.find(SECTION_BEGIN), doc.find(SECTION_END)
    return doc[start : stop + len(SECTION_END)] if 0 <= start < stop else ""


def _without_section(doc: str) -> str:
    section = _section_of(doc)
    if not section:
        return doc
    at = doc.index(section)
    return doc[:at].rstrip("\n") + "\n\n" + doc[at + len(section) :].lstrip("\n")


def to_json(campaign: Campaign) -> dict[str, Any]:
    """Every case's result as plain data."""
    return {
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in dataclasses.asdict(campaign.config).items()
            if k != "originals"
        },
        "seconds": campaign.seconds,
        "skipped": campaign.skipped,
        "cases": [
            {
                "id": r.case.id,
                "file": r.case.original.target_file,
                "mutation": dataclasses.asdict(r.case.mutation),
                "excuse": r.excuse,
                "disagree": r.disagree,
                "modes": {m: dataclasses.asdict(v) for m, v in r.modes.items()},
            }
            for r in campaign.results
        ],
    }


# -- a fixed scratch folder: the same case is the same path in every run ---------------------

#: where a campaign writes its damaged copies unless told otherwise (``--work``): always the
#: same path, because bfdask's open-time check picks the planes it compares with Bio-Formats
#: from the file's path (``bfdask.pixels.verify_planes``). A copy under a fresh temporary
#: folder may be checked on other planes and come out otherwise -- warned in one run, silently
#: wrong in the next -- which a baseline of known defects cannot hold.
FIXED_WORK = Path("/tmp/bfdask-fuzz")


@contextlib.contextmanager
def fixed_work(
    root: Path = FIXED_WORK, wait: float = 1800.0, log: Callable[[str], None] | None = None
) -> Iterator[Path]:
    """``root``, emptied, for one campaign at a time: a lock file beside it makes a second
    run wait (up to ``wait`` s) for the first. Emptied again at the end. Falls back to
    ``root-<uid>`` when another user owns ``root``."""
    import fcntl

    def claim(folder: Path) -> Any:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(folder)
        return open(folder.with_name(folder.name + ".lock"), "a")

    try:
        lock = claim(root)
    except PermissionError:
        root = root.with_name(f"{root.name}-{os.getuid()}")
        lock = claim(root)
    with lock:
        deadline = time.monotonic() + wait
        said = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"another fuzz run held {root} for {wait:.0f} s; pass another --work "
                        "(cases may then verify other planes: see FIXED_WORK)"
                    ) from None
                if not said and log is not None:
                    log(f"waiting for another fuzz run to finish with {root}")
                    said = True
                time.sleep(1.0)
        try:
            _empty(root)
            yield root
        finally:
            _empty(root)
            fcntl.flock(lock, fcntl.LOCK_UN)


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# -- the CI slice's ratchet: known open defects -------------------------------------------

#: the CI slice (``tests/test_fuzz.py``): its seed and cases per dataset, on ``corpus(ci=True)``
SLICE_SEED = 13
SLICE_CASES = 4
#: the slice's known open defects: the baseline :func:`ratchet` holds a slice run to
KNOWN_DEFECTS = REPO / "tests" / "fuzz_known_defects.tsv"
KNOWN_COLUMNS = ("dataset", "case", "mutation", "mode", "outcome", "detail")
#: outcomes a baseline may list; every other defect (hang, crash, foreign_error, disagree,
#: harness) always fails the slice
BASELINED = frozenset({"silent_wrong"})

_KNOWN_HEADER = """\
# Known open defects of the fuzz CI slice: the baseline of the ratchet in
# tests/test_fuzz.py::test_fuzz_slice (issue #13).
#
# Each line is one (case, mode) of the slice -- seed {seed}, {cases} cases per dataset, the
# datasets of benchmarks.fuzz.corpus(ci=True) -- that reads silently wrong (silent_wrong)
# and is a known, still open defect. The slice fails on
#   * any hang, crash, foreign_error or disagree: always (they are never listed here);
#   * any silent_wrong (case, mode) not listed here: a regression or a new defect;
#   * any line here whose (case, mode) now reads right or raises/warns: fixed, remove it.
# So this list only shrinks. A line's key is case + mutation + mode (the seeded schedule
# gives a case id the same mutation); the detail column is for reading, never compared.
#
# The full campaign's open defects (all datasets, 60 cases each) are in
# benchmarks/RESULTS.md, section 6 ("Fuzz: damaged and hostile files").
#
# Regenerate from a slice run:  python -m benchmarks fuzz --update-known
# Reproduce one case at the path the slice reads it from (bfdask picks the planes it verifies
# at open from the path, so elsewhere a case may come out otherwise):
#   python -m benchmarks fuzz --write-case 'imagej#1' /tmp/bfdask-fuzz/cases/imagej_1/damaged
#
# seed: {seed}
# cases: {cases}
"""


@dataclass(frozen=True)
class Known:
    """One line of the known-defects baseline: a (case, mode) that reads silently wrong."""

    dataset: str
    case: str
    mutation: str
    mode: str
    outcome: str
    detail: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.case, self.mutation, self.mode, self.outcome)

    def line(self) -> str:
        cells = [self.dataset, self.case, self.mutation, self.mode, self.outcome, self.detail]
        return "\t".join(" ".join(c.split()) for c in cells)


@dataclass
class Baseline:
    """The known-defects file: its seed and cases per dataset, and its lines."""

    seed: int = SLICE_SEED
    cases: int = SLICE_CASES
    entries: list[Known] = field(default_factory=list)


def known_of(campaign: Campaign) -> list[Known]:
    """The campaign's defects a baseline may list (silent_wrong), in table order."""
    return [
        Known(
            r.case.original.key, r.case.id, r.case.mutation.describe(), mode, outcome, detail[:200]
        )
        for r, mode, outcome, detail in campaign.defects()
        if outcome in BASELINED
    ]


def read_known(path: Path = KNOWN_DEFECTS) -> Baseline:
    """Parse a known-defects file (a missing file is an empty baseline)."""
    base = Baseline()
    if not path.exists():
        return base
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if line.startswith("#"):
            meta = re.match(r"#\s*(seed|cases):\s*(\d+)\s*$", line)
            if meta:
                setattr(base, meta.group(1), int(meta.group(2)))
            continue
        cells = line.split("\t")
        if tuple(cells[: len(KNOWN_COLUMNS)]) == KNOWN_COLUMNS:
            continue  # the column header
        if len(cells) < 5:
            raise ValueError(f"{path}:{n}: expected {len(KNOWN_COLUMNS)} tab-separated columns")
        dataset, case, mutation, mode, outcome = cells[:5]
        detail = cells[5] if len(cells) > 5 else ""
        entry = Known(dataset, case, mutation, mode, outcome, detail)
        if entry.outcome not in BASELINED:
            raise ValueError(
                f"{path}:{n}: outcome {entry.outcome!r} cannot be a known defect (only "
                f"{', '.join(sorted(BASELINED))}; the others always fail)"
            )
        base.entries.append(entry)
    return base


def known_text(entries: Iterable[Known], seed: int = SLICE_SEED, cases: int = SLICE_CASES) -> str:
    """The known-defects file for ``entries``."""
    lines = [_KNOWN_HEADER.format(seed=seed, cases=cases).rstrip("\n"), "\t".join(KNOWN_COLUMNS)]
    lines += [e.line() for e in entries]
    return "\n".join(lines) + "\n"


@dataclass
class Ratchet:
    """A slice run held to a baseline (:func:`ratchet`)."""

    always: list[tuple[CaseResult, str, str, str]]  # never allowed: hang, crash, foreign...
    new: list[Known]  # silent_wrong not in the baseline: a regression or a new defect
    fixed: list[Known]  # baseline lines whose (case, mode) ran and is allowed now
    stale: list[Known]  # baseline lines whose case ran with another mutation
    known: list[Known]  # baseline lines still silent_wrong (expected)
    not_run: list[Known]  # baseline lines of cases this run did not make
    note: str = ""  # why the baseline was not applied, if it was not
    now: dict[tuple[str, str, str, str], str] = field(default_factory=dict)  # fixed: outcome

    @property
    def failed(self) -> bool:
        return bool(self.always or self.new or self.fixed or self.stale)


def ratchet(campaign: Campaign, baseline: Baseline) -> Ratchet:
    """Compare a run with the known-defects baseline.

    Not allowed (:attr:`Ratchet.failed`): any defect outside :data:`BASELINED` (hang, crash,
    foreign_error, harness, disagree); any silent_wrong (case, mode) the baseline does not
    list; any baseline line whose (case, mode) ran and came out allowed (fixed); any line
    whose case ran with another mutation (the schedule changed). A baseline made with another
    seed does not apply: every silent_wrong is then new.
    """
    cfg = campaign.config
    always = [d for d in campaign.defects() if d[2] not in BASELINED]
    found = known_of(campaign)
    note = ""
    entries = baseline.entries
    if baseline.seed != cfg.seed:
        note = (
            f"the baseline is for seed {baseline.seed}, this run used seed {cfg.seed}: it does "
            "not apply, every silent wrong result counts"
        )
        entries = []
    listed = {e.key for e in entries}
    new = [k for k in found if k.key not in listed]
    found_keys = {k.key for k in found}
    ran = {r.case.id: r for r in campaign.results}
    fixed: list[Known] = []
    stale: list[Known] = []
    known: list[Known] = []
    not_run: list[Known] = []
    for e in entries:
        r = ran.get(e.case)
        if r is None:
            not_run.append(e)
        elif r.case.mutation.describe() != e.mutation:
            stale.append(e)
        elif e.key in found_keys:
            known.append(e)
        elif e.mode in r.modes and r.modes[e.mode].outcome in ALLOWED:
            fixed.append(e)
        # else: now another defect (a hang...): in ``always``; the line stays until it is fixed
    now = {e.key: ran[e.case].modes[e.mode].outcome for e in fixed}
    return Ratchet(always, new, fixed, stale, known, not_run, note, now)


def ratchet_report(result: Ratchet, path: Path = KNOWN_DEFECTS) -> str:
    """What the ratchet found, and exactly which lines of ``path`` to add or remove."""
    name = _shown(path)
    out = [
        f"ratchet against {name}: {len(result.known)} known open defects still open, "
        f"{len(result.new)} new, {len(result.fixed)} fixed, {len(result.stale)} stale, "
        f"{len(result.always)} never allowed (hang, crash, foreign_error, disagree)"
        + (
            f"; {len(result.not_run)} lines not run (fewer cases or datasets)"
            if result.not_run
            else ""
        )
    ]
    if result.note:
        out.append(f"NOTE: {result.note}")
    if result.always:
        out.append(
            "\nNEVER ALLOWED -- fix these (a baseline cannot list them):\n"
            + _md_table(
                ["case", "mutation", "mode", "outcome", "detail"],
                [
                    [r.case.id, r.case.mutation.describe(), m, o, d[:300]]
                    for r, m, o, d in result.always
                ],
            )
        )
    if result.new:
        out.append(
            f"\nNEW silent wrong results (a regression, or a new defect) -- fix them; only if "
            f"one is a known open defect, add its line to {name}:\n"
            + "\n".join("+" + e.line() for e in result.new)
        )
    if result.fixed:
        by_outcome: dict[str, list[str]] = {}
        for e in result.fixed:
            by_outcome.setdefault(result.now.get(e.key, "?"), []).append(f"{e.case} {e.mode}")
        out.append(
            f"\nFIXED -- these now read right, raise or warn; remove their lines from {name}:\n"
            + "\n".join("-" + e.line() for e in result.fixed)
            + "\n"
            + "\n".join(f"(now {o}: {', '.join(ids)})" for o, ids in sorted(by_outcome.items()))
        )
    if result.stale:
        out.append(
            f"\nSTALE -- the case now has another mutation (the schedule changed); remove "
            f"these lines from {name}:\n" + "\n".join("-" + e.line() for e in result.stale)
        )
    if result.failed:
        out.append(
            "\nTo rewrite the whole baseline from a slice run (after checking the above): "
            "python -m benchmarks fuzz --update-known"
        )
    return "\n".join(out)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def update_known(path: Path, campaign: Campaign) -> str:
    """Rewrite ``path`` from ``campaign`` (a slice run); return the lines added and removed."""
    old = read_known(path)
    entries = known_of(campaign)
    path.write_text(known_text(entries, campaign.config.seed, campaign.config.cases_per_file))
    before = {e.key for e in old.entries}
    after = {e.key for e in entries}
    lines = [f"wrote {_shown(path)}: {len(entries)} known open defects"]
    lines += ["+" + e.line() for e in entries if e.key not in before]
    lines += ["-" + e.line() for e in old.entries if e.key not in after]
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks fuzz", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--seed", type=int, default=None, help=f"default {SLICE_SEED}")
    ap.add_argument(
        "--cases",
        type=int,
        default=None,
        help=f"cases per dataset (default 60; {SLICE_CASES} with --update-known)",
    )
    ap.add_argument("--files", default="", help="comma-separated corpus keys (default: all)")
    ap.add_argument("--ci", action="store_true", help="only the CI slice's datasets")
    ap.add_argument("--workers", type=int, default=2, help="child processes (default 2)")
    ap.add_argument(
        "--timeout", type=float, default=45.0, help="s per case and mode (above the open bound)"
    )
    ap.add_argument("--out", type=Path, default=HERE, help="folder of RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="print only; RESULTS.md untouched")
    ap.add_argument("--json", type=Path, default=None, help="also write every case here")
    ap.add_argument(
        "--work",
        type=Path,
        default=None,
        help=f"scratch folder (default {FIXED_WORK}, one run at a time: see FIXED_WORK)",
    )
    ap.add_argument(
        "--write-case",
        nargs=2,
        metavar=("CASE", "DIR"),
        default=None,
        help="write the damaged dataset of case CASE (e.g. 'mrc#3') into DIR and exit",
    )
    ap.add_argument(
        "--update-known",
        nargs="?",
        type=Path,
        const=KNOWN_DEFECTS,
        default=None,
        metavar="TSV",
        help="run the CI slice (its datasets, seed and cases) and rewrite its known-defects "
        f"baseline (default {_shown(KNOWN_DEFECTS)}) from it; RESULTS.md untouched",
    )
    args = ap.parse_args(argv)
    if args.update_known is not None:
        if args.files:
            ap.error("--update-known runs the CI slice's datasets: drop --files")
        args.ci, args.no_write = True, True
    if args.seed is None:
        args.seed = SLICE_SEED
    if args.cases is None:
        args.cases = SLICE_CASES if args.update_known is not None else 60
    return args


def _write_one(case_id: str, dest: Path, seed: int, cases: int, data: Path) -> int:
    """Rebuild one case (raw ranges found again, as the campaign did) and write it."""
    key, _, index = case_id.partition("#")
    (original,) = corpus([key])
    target = data / original.target_file
    segments = pixel_segments(target, original.raw)
    all_cases = make_cases(
        original, target.read_bytes(), segments, max(cases, int(index) + 1), seed
    )
    case = all_cases[int(index)]
    path = write_case(case, data, dest)
    print(f"{case.id}: {case.mutation.describe()} of {original.target_file}; open {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks fuzz``: run the campaign, print it, write its RESULTS.md section."""
    args = _parse(argv)
    data = default_data()
    if args.write_case:
        return _write_one(
            args.write_case[0], Path(args.write_case[1]), args.seed, args.cases, data
        )
    if not (data / "MANIFEST.tsv").is_file():
        print(f"the shared corpus is not at {data} (set BFDASK_SHARED)", file=sys.stderr)
        return 2
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    started = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {msg}", flush=True)

    with contextlib.ExitStack() as stack:
        work = args.work or stack.enter_context(fixed_work(log=log))
        cfg = Config(
            work=work,
            seed=args.seed,
            cases_per_file=args.cases,
            originals=corpus(args.files.split(","), ci=args.ci),
            data=data,
            workers=args.workers,
            timeout=args.timeout,
        )
        campaign = run(cfg, log)
    print(summary(campaign))
    if args.json:
        args.json.write_text(json.dumps(to_json(campaign), indent=1))
    if args.update_known is not None:
        if campaign.skipped:  # their lines would be dropped: keep the file as it is
            print(f"not written: datasets skipped {sorted(campaign.skipped)}", file=sys.stderr)
            return 1
        print(update_known(args.update_known, campaign))
        never = [d for d in campaign.defects() if d[2] not in BASELINED]
        if never:
            print(
                f"{len(never)} defects no baseline can hold (hang, crash, foreign_error, "
                "disagree): the slice still fails on them",
                file=sys.stderr,
            )
            return 1
        return 0
    if not args.no_write:
        update_results(args.out / "RESULTS.md", section(campaign))
        log(f"wrote the fuzz section of {args.out / 'RESULTS.md'}")
    return 1 if campaign.defects() else 0


if __name__ == "__main__":
    sys.exit(main())
