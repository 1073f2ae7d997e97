"""What a file's own structure says is missing or damaged, whatever then reads its pixels.

Opening a series asks the file's structure where each plane's bytes lie (a LIF's memory
blocks, a TIFF's strips) and reads a few planes both ways (:mod:`bfdask.pixels`). What that
finds -- planes past the end of a file cut short, planes that cannot be decoded, a series whose
memory block is cut where bfdask cannot map planes -- is kept here, travels with every task
(a few numbers), and is enforced on **both** pixel paths: a damaged plane is a
:class:`~bfdask.errors.CorruptFileError` whether bfdask or Bio-Formats reads it, never the
zeros Bio-Formats pads it with. No Java here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import CorruptFileError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    from numpy.typing import NDArray

    from .native import NativeRecipe, Window


def runs(indices: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted plane indices as half-open ``(start, stop)`` runs (a truncation is one run)."""
    out: list[list[int]] = []
    for index in sorted({int(i) for i in indices}):
        if out and out[-1][1] == index:
            out[-1][1] = index + 1
        else:
            out.append([index, index + 1])
    return tuple((start, stop) for start, stop in out)


@dataclass(frozen=True)
class Damage:
    """Damage known at open for one series (empty: none found).

    ``missing`` are runs of Bio-Formats plane indices whose bytes are not in the file or do
    not decode; ``zero_planes_missing`` says the series' data is cut short where bfdask cannot
    tell which planes survive (a plane Bio-Formats returns as all zeros is one it padded);
    ``notes`` says what was found (warned at open, kept in ``attrs["damage"]``).
    """

    missing: tuple[tuple[int, int], ...] = ()
    zero_planes_missing: bool = False
    notes: tuple[str, ...] = ()
    #: a TIFF page map of a series Bio-Formats reads whose pages are compressed: each plane's
    #: strips or tiles are decoded once more and must come out at their size
    #: (:func:`bfdask.tiff.check_planes`), which Bio-Formats does not check
    segments: NativeRecipe | None = None

    def __bool__(self) -> bool:
        """Whether reading the series has anything to check (damage found, or segments)."""
        return bool(self.missing or self.zero_planes_missing or self.notes or self.segments)

    def is_missing(self, index: int) -> bool:
        """Whether plane ``index`` is known to be missing or damaged."""
        return any(start <= index < stop for start, stop in self.missing)

    def check_plane(self, index: int, path: str, series: int) -> None:
        """Raise :class:`CorruptFileError` if plane ``index`` is known to be missing."""
        if self.is_missing(index):
            raise CorruptFileError(
                f"Reading plane {index} of series {series} of {path!r} failed: the file's "
                "structure, checked when it was opened, shows this plane's bytes missing or "
                "damaged (see the data's attrs['damage']). Is the file complete?"
            )

    def check_segments(self, indices: Sequence[int], window: Window) -> None:
        """Raise :class:`CorruptFileError` if a compressed strip or tile of these planes
        that holds ``window`` does not decode to its size (TIFF pages only)."""
        if self.segments is not None:
            from . import tiff

            tiff.check_planes(self.segments, indices, window)

    def check_read(self, plane: NDArray[Any], index: int, path: str, series: int) -> None:
        """Raise if ``plane``, as Bio-Formats read it, is the zeros it pads missing data with."""
        if self.zero_planes_missing and not plane.any():
            raise CorruptFileError(
                f"Reading plane {index} of series {series} of {path!r} failed: the series' "
                "data is cut short (the file is truncated) and Bio-Formats returned this "
                "plane as all zeros, which is how it pads planes past the end of the file. "
                "bfdask cannot tell it from a real all-zero plane of this layout."
            )
