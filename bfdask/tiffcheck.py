"""What a TIFF's own structure says is damaged, where Bio-Formats reads past it silently.

Bio-Formats opens a TIFF whose chain of images breaks early, whose images lack a required tag,
whose strips overlap or whose ImageJ/OME description is damaged, and shows fewer images or
another shape without a word. :func:`structure_note` reads the structure once (tifffile's IFD
walk, no pixels) and says what is wrong, for every TIFF-based format (OME-TIFF, ImageJ, LSM,
SVS...) on both pixel paths.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from . import safexml
from .tiff import data_end

if TYPE_CHECKING:
    from .files import FileStamp

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: what tifffile logs when a TIFF's chain of images or a tag list is broken
_BROKEN = ("invalid page offset", "corrupted tag list", "suspicious number of tags")


class _Log(logging.Handler):
    """Collects what tifffile logs while it walks a file."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def is_tiff(path: str) -> bool:
    """Whether ``path`` starts like a TIFF (any byte order, classic or BigTIFF)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in TIFF_MAGIC
    except OSError:
        return False


@lru_cache(maxsize=32)
def structure_note(path: str, stamp: FileStamp | None = None) -> str | None:
    """A sentence when the TIFF's own structure is broken in a way Bio-Formats reads past
    silently (it then shows fewer images, or another shape); None when it looks whole.
    Cached per file version (``stamp``): every series of a file asks.

    Checked: the chain of image directories (a pointer past the end of the file or into
    garbage ends it early), every image's required tags (width, height, where its data lies),
    and the first image's description (OME-XML that no longer parses, ImageJ or OME metadata
    with zeroed bytes, ImageJ metadata whose lines or counts are damaged, or whose images
    differ in size).
    """
    import tifffile

    log = _Log()
    logger = logging.getLogger("tifffile")
    logger.addHandler(log)
    size = os.path.getsize(path)
    try:
        with tifffile.TiffFile(path) as tif:
            count = len(tif.pages)  # walks the whole chain
            first = tif.pages[0] if count else None
            description = getattr(first, "description", "") or ""
            pages = list(tif.pages)  # once: each pass over tif.pages parses every IFD again
            past_end = [i for i, page in enumerate(pages) if data_end(page) > size]
            lacking = [i for i, page in enumerate(pages) if not _has_required_tags(page)]
            shapes = [_page_shape(page) for page in pages]
            strips = _strip_note(pages)
    except Exception as exc:  # tifffile cannot read the structure Bio-Formats opened
        return f"{path!r} is damaged: its TIFF structure cannot be read ({exc})"
    finally:
        logger.removeHandler(log)
    said = [m.split("> ", 1)[-1] for m in log.messages]
    if any(key in m for m in said for key in _BROKEN):
        return (
            f"{path!r} is truncated or damaged: its chain of images breaks after image "
            f"{count - 1} ({said[0]}); Bio-Formats shows only the images before the break, "
            "so the shape may differ from the original's"
        )
    if said:  # any other complaint: a tag of the wrong type, pointing past the end...
        return f"{path!r} is damaged: its TIFF structure is not sound ({said[0]})"
    imagej = re.search(r"^images=(\d+)$", description, re.MULTILINE)
    if description.startswith("ImageJ=") and imagej and 1 < count < int(imagej[1]):
        return (
            f"{path!r} is truncated or damaged: its ImageJ metadata describes "
            f"{int(imagej[1])} images, its chain of images holds {count}; Bio-Formats may "
            "read it with another shape"
        )
    if past_end:
        return (
            f"{path!r} is truncated or damaged: the data of {len(past_end)} of its {count} "
            f"images (from image {past_end[0]}) runs past its end ({size} bytes); Bio-Formats "
            "pads what is missing"
        )
    if lacking:
        return (
            f"{path!r} is damaged: {len(lacking)} of its {count} images (from image "
            f"{lacking[0]}) lack a tag every TIFF image has (its width, height or where its "
            "data lies); Bio-Formats may leave them out or read them with another shape"
        )
    if strips is not None:
        return f"{path!r} is damaged: {strips}"
    if description.startswith("ImageJ="):
        note = _imagej_note(path, description, shapes)
        if note is not None:
            return note
    return _description_note(path, description)


def _strip_note(pages: Any) -> str | None:
    """What is wrong with where the strips (or tiles) of a TIFF's images lie, or None.

    A strip of 0 bytes at a real offset (its byte count zeroed), and two strips of which one
    starts inside the other (an offset or a byte count changed): a writer never makes either
    (strips shared whole, as deduplicated tiles are, are fine).
    """
    all_offsets: list[int] = []
    all_counts: list[int] = []
    lengths: list[int] = []
    for i, page in enumerate(pages):
        if len(page.dataoffsets) != len(page.databytecounts):
            return (
                f"image {i} has {len(page.dataoffsets)} strip offsets but "
                f"{len(page.databytecounts)} byte counts"
            )
        all_offsets.extend(page.dataoffsets)
        all_counts.extend(page.databytecounts)
        lengths.append(len(page.dataoffsets))
    offset = np.asarray(all_offsets, np.int64)
    count = np.asarray(all_counts, np.int64)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    empty = np.flatnonzero((count == 0) & (offset != 0))
    if empty.size:
        image = int(owner[empty[0]])
        return (
            f"{empty.size} strip(s) or tile(s) of its images (from image {image}) hold 0 bytes "
            "at a real offset (their byte counts are zeroed): the pixels read from them are "
            "not the file's"
        )
    keep = count > 0
    pairs = np.unique(np.stack([offset[keep], count[keep]], axis=1), axis=0)
    if len(pairs) < 2:
        return None
    overlap = np.flatnonzero(pairs[1:, 0] < pairs[:-1, 0] + pairs[:-1, 1])
    if not overlap.size:
        return None
    start = int(pairs[overlap[0] + 1, 0])
    image = int(owner[np.flatnonzero(offset == start)[0]])
    return (
        f"the strips or tiles of its images overlap ({overlap.size} of them, e.g. one of image "
        f"{image} starts at byte {start}, inside the one at byte {int(pairs[overlap[0], 0])}): "
        "an offset or byte count is damaged, and Bio-Formats reads what those bytes hold"
    )


#: tags every TIFF image directory has: ImageWidth, ImageLength, and where its data lies
#: (StripOffsets, TileOffsets, or an old-style JPEG's JPEGInterchangeFormat)
_WIDTH, _LENGTH, _DATA = 256, 257, (273, 324, 513)


def _has_required_tags(page: Any) -> bool:
    """Whether a tifffile page has the tags without which no TIFF image can be read."""
    tags = page.tags
    return _WIDTH in tags and _LENGTH in tags and any(tag in tags for tag in _DATA)


def _page_shape(page: Any) -> tuple[int, int, int, int]:
    """(height, width, samples, bits) of a tifffile page."""
    return (
        int(page.imagelength),
        int(page.imagewidth),
        int(page.samplesperpixel),
        int(page.bitspersample),
    )


#: an ImageJ description's lines: ``key=value``, the key a name
_IMAGEJ_LINE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*=")
#: the keys of an ImageJ description that say how many images there are, and how they divide
_IMAGEJ_COUNTS = ("images", "channels", "slices", "frames")


def _imagej_note(
    path: str, description: str, shapes: list[tuple[int, int, int, int]]
) -> str | None:
    """A sentence when an ImageJ description (or the images it describes) is visibly damaged:
    a line that is not ``key=value``, a count that is not a number, channels x slices x frames
    other than the images it states, or images of different sizes (ImageJ writes one size)."""
    where = f"{path!r} is damaged: its ImageJ metadata"
    after = "; Bio-Formats may read the images with another shape"
    counts: dict[str, int] = {}
    for line in description.rstrip("\0 \n").split("\n")[1:]:
        if not line.strip():
            continue
        if _IMAGEJ_LINE.match(line) is None:
            return f"{where} has a damaged line ({line[:40]!r}){after}"
        key, value = line.split("=", 1)
        if key in _IMAGEJ_COUNTS:
            if not value.strip().isdigit() or int(value) < 1:
                return f"{where} says {key}={value[:20]!r}, not a count{after}"
            counts[key] = int(value)
    images = counts.get("images", 0)
    stated = [counts[key] for key in _IMAGEJ_COUNTS[1:] if key in counts]
    samples = shapes[0][2] if shapes else 1
    product = 1
    for n in stated:
        product *= n
    if images > 1 and stated and product not in (images, images * samples):
        parts = ", ".join(f"{key}={counts[key]}" for key in _IMAGEJ_COUNTS if key in counts)
        return f"{where} does not add up ({parts}){after}"
    odd = [i for i, shape in enumerate(shapes) if shape != shapes[0]]
    if odd:
        return (
            f"{path!r} is damaged: image {odd[0]} of its ImageJ stack is "
            f"{shapes[odd[0]][1]} x {shapes[odd[0]][0]} pixels of {shapes[odd[0]][2]} x "
            f"{shapes[odd[0]][3]} bits, the first {shapes[0][1]} x {shapes[0][0]} of "
            f"{shapes[0][2]} x {shapes[0][3]} (ImageJ writes every image alike){after}"
        )
    return None


def _description_note(path: str, description: str) -> str | None:
    """A sentence when the first image's metadata text is visibly damaged."""
    text = description.rstrip("\0 \n")
    head = text[:4096]
    is_ome = text.lstrip().startswith("<?xml") or "<OME" in head or "/Schemas/OME/" in head
    if "\0" in text and (is_ome or text.startswith("ImageJ=")):
        return (
            f"{path!r} is damaged: the metadata in its first image's description has zeroed "
            "bytes; Bio-Formats may read the images with another shape"
        )
    if is_ome:
        try:
            safexml.fromstring(text)
        except ET.ParseError as exc:
            return (
                f"{path!r} is damaged: its OME-XML does not parse ({exc}); Bio-Formats reads "
                "it as a plain TIFF, with another shape than the OME metadata describes"
            )
    return None
