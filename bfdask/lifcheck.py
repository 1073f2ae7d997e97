"""What a LIF's header claims about its images, against what its memory blocks declare.

A LIF header is XML: each image element gives its dimensions (number of elements, byte
increments) and channels, and names the memory block that holds its pixels. A damaged or
crafted header can claim 10^8 tiles or 50 000 channels of a 1 KiB block, and Bio-Formats then
lists them all (for minutes, or forever). :func:`check_lif` refuses such a file before
Bio-Formats sees it (:mod:`bfdask.precheck` calls it). No Java here.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import lif, safexml
from .errors import CorruptFileError

if TYPE_CHECKING:
    from collections.abc import Iterator


def is_lif(head: bytes) -> bool:
    """Whether a file's first bytes are a LIF's (its first memory marker, then the XML's)."""
    return len(head) >= 13 and head[0] == lif.LIF_MAGIC and head[8] == lif.LIF_MEM


@dataclass(frozen=True)
class LifClaim:
    """What one image element of a LIF header says about its pixels."""

    name: str
    block_id: str
    sizes: tuple[tuple[int, int, int], ...]  # (DimID, NumberOfElements, BytesInc)
    channels: tuple[tuple[int, int], ...]  # (BytesInc, bytes per sample)

    @property
    def nbytes(self) -> int:
        """Bytes of all its pixels: every dimension x every channel's sample size."""
        return math.prod(n for _, n, _ in self.sizes) * sum(b for _, b in self.channels)

    @property
    def span(self) -> int:
        """Bytes from its first to its last byte, by its byte increments."""
        last = max(self.channels, default=(0, 1))
        return sum((n - 1) * abs(inc) for _, n, inc in self.sizes) + last[0] + last[1]

    def describe(self) -> str:
        names = {1: "X", 2: "Y", 3: "Z", 4: "T", 10: "tiles"}
        dims = " x ".join(f"{names.get(d, f'dim{d}')} {n}" for d, n, _ in self.sizes)
        return f"{dims} x {len(self.channels)} channel(s)"


def lif_claims(root: ET.Element) -> Iterator[LifClaim]:
    """Every image element of a parsed LIF header, with or without data (Bio-Formats makes
    series of both). Elements whose numbers do not parse are left to Bio-Formats."""
    for element in root.iter("Element"):
        description = element.find("./Data/Image/ImageDescription")
        if description is None:
            continue
        memory = element.find("./Memory")
        try:
            sizes = tuple(
                (
                    int(d.get("DimID", "0")),
                    int(d.get("NumberOfElements", "1")),
                    int(d.get("BytesInc", "0")),
                )
                for d in description.findall("./Dimensions/DimensionDescription")
            )
            channels = tuple(
                (int(c.get("BytesInc", "0")), max(1, -(-int(c.get("Resolution", "8")) // 8)))
                for c in description.findall("./Channels/ChannelDescription")
            )
        except ValueError:
            continue
        block = "" if memory is None else memory.get("MemoryBlockID", "")
        yield LifClaim(element.get("Name", ""), block, sizes, channels)


def check_lif(path: str, size: int) -> None:
    """Refuse a LIF whose images claim more bytes than their memory blocks declare, or whose
    blocks claim to end far beyond the file.

    A last block cut short by the end of the file is fine (a copy still running): only what a
    block declares counts, and a block may end up to the file's size again past its end.
    Structures lif.py cannot read are left to the readers.

    Raises
    ------
    CorruptFileError
        Names the file, the image (series) and the numbers.
    """
    try:
        xml, after = lif.read_header(path)
        root = safexml.fromstring(lif.without_attachments(xml))
        version = int(root.get("Version", "2"))
        blocks = lif.memory_blocks(path, after, version)
    except safexml.UnsafeXMLError:
        raise safexml.dtd_error(path, "its LIF header") from None
    except (ET.ParseError, ValueError, OSError):  # damage the readers report (lif.py's errors)
        return
    for block_id, (start, nbytes) in blocks.items():
        if start + nbytes > 2 * size:
            raise CorruptFileError(
                f"{path!r} is damaged: its memory block {block_id!r} claims {nbytes} bytes "
                f"from byte {start}, more than twice the file's {size} bytes. Its header "
                "cannot be right (if the file is still being copied, wait for the copy to end)."
            )
    for claim in lif_claims(root):
        room = blocks.get(claim.block_id, (0, 0))[1] or size
        worst = max(claim.nbytes, claim.span)
        if worst > room:
            raise CorruptFileError(
                f"{path!r} is damaged: image {claim.name!r} claims {claim.describe()} "
                f"({worst} bytes), but its memory block {claim.block_id!r} holds {room} bytes. "
                "Its header's sizes cannot be right; Bio-Formats would try to list them all. "
                "Restore the file from a good copy, or open it in LAS X."
            )
