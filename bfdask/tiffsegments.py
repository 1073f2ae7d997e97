"""Whether a TIFF image's compressed strips or tiles decode to exactly the bytes they hold.

LZW, PackBits and JPEG carry no checksum, and a deflate stream cut short still inflates to a
prefix. A damaged strip or tile usually decodes to more or fewer bytes than its rows hold, or
not at all: tifffile then trims or reshapes it and Bio-Formats pads it with zeros, both without
a word. :func:`page_problem` decodes each segment a block needs once more and says when one does
not come out at its size, so both pixel paths raise instead (:func:`bfdask.tiff.check_planes`).
Damage that decodes to the right size cannot be told from pixels, as in raw pixel bytes.

No Java here; ``imagecodecs`` decodes (through tifffile's table of codecs).
"""

from __future__ import annotations

import importlib.util
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .native import Window

#: imagecodecs (a test extra, and what tifffile decodes LZW, JPEG, zstd... with) is installed
_HAVE_CODECS = importlib.util.find_spec("imagecodecs") is not None
#: compression codes stored uncompressed: nothing to decode
_RAW = {1}
#: byte-stream codecs (LZW, deflate, PackBits, LZMA, zstd): the decoded length is checked;
#: image codecs (JPEG and the like) are decoded by tifffile, which checks the shape
_BYTE_CODECS = {5, 8, 32946, 32773, 34925, 50000}


def _grid(page: Any) -> tuple[int, int, int, int]:
    """(segment height, segment width, segments across, segments down) of one sample plane."""
    height, width = int(page.imagelength), int(page.imagewidth)
    if page.is_tiled:
        tile_h, tile_w = int(page.tilelength), int(page.tilewidth)
        return tile_h, tile_w, math.ceil(width / tile_w), math.ceil(height / tile_h)
    rows = min(int(page.rowsperstrip) or height, height)
    return rows, width, 1, math.ceil(height / rows)


def _wanted(page: Any, window: Window | None) -> list[int]:
    """Indices of the segments that hold pixels of ``window`` (all when None)."""
    count = len(page.dataoffsets)
    if window is None:
        return list(range(count))
    seg_h, seg_w, across, down = _grid(page)
    (y0, y1), (x0, x1) = window
    per_plane = across * down
    out = []
    for k in range(count):
        within = k % per_plane if per_plane else k
        row, col = divmod(within, across)
        top, left = row * seg_h, col * seg_w
        if top < y1 and top + seg_h > y0 and left < x1 and left + seg_w > x0:
            out.append(k)
    return out


def _sizes(page: Any, index: int) -> tuple[int, ...]:
    """The byte counts segment ``index`` may decode to (a writer may fill the last strip)."""
    samples = int(page.samplesperpixel) if page.planarconfig == 1 else 1
    bits = int(page.bitspersample)
    seg_h, seg_w, _, down = _grid(page)
    row_bytes = math.ceil(seg_w * samples * bits / 8)
    full = seg_h * row_bytes * int(getattr(page, "tiledepth", 1) or 1)
    if page.is_tiled:
        return (full,)
    strip = index % down
    rows = min(seg_h, int(page.imagelength) - strip * seg_h)
    return (rows * row_bytes, full)


def page_problem(page: Any, window: Window | None = None) -> str | None:
    """What is wrong with the compressed segments of ``page`` (a tifffile page of an open
    file) that hold ``window``'s pixels, or None: each is read and decoded, and must decode
    without an error to the bytes its rows hold.

    Pages stored uncompressed, segments not written (offset or count 0) and bit depths that
    are not one number are not checked here.
    """
    from tifffile import TIFF

    try:
        compression = int(page.compression)
        wanted = _wanted(page, window)
    except (TypeError, ValueError, ZeroDivisionError) as exc:  # a tag of the wrong kind
        return f"its tags that say how its data is stored cannot be read ({exc})"
    if compression in _RAW or not isinstance(page.bitspersample, int) or not _HAVE_CODECS:
        return None  # nothing to decode (or, without imagecodecs, nothing to decode with)
    decompress = TIFF.DECOMPRESSORS[compression] if compression in _BYTE_CODECS else None
    fh = page.parent.filehandle
    kind = "tile" if page.is_tiled else "strip"
    for k in wanted:
        offset, count = int(page.dataoffsets[k]), int(page.databytecounts[k])
        if not offset or not count:
            continue
        fh.seek(offset)
        data = fh.read(count)
        try:
            if decompress is None:  # tifffile raises where it cannot shape the result
                page.decode(data, k, jpegtables=getattr(page, "jpegtables", None))
                continue
            size = len(decompress(data))
        except Exception as exc:  # a codec's own error: the data is broken
            return f"its {kind} {k} does not decode ({type(exc).__name__}: {exc})"
        sizes = _sizes(page, k)
        if size not in sizes:
            return (
                f"its {kind} {k} decodes to {size} bytes, not the {sizes[0]} its pixels hold "
                "(the compressed data is damaged)"
            )
    return None
