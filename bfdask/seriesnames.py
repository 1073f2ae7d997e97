"""Which series a name or an index means: labels for repeated names, and resolving them.

Pure Python (no Java): :mod:`bfdask.metadata` asks Bio-Formats for the names and the count,
or :mod:`bfdask.answers` gives the ones kept from an earlier process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SeriesIndexError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def series_labels(names: Sequence[str]) -> list[str]:
    """One label per series that names it and no other: the one rule for repeated names.

    A name that only one series has is its label. Series that share a name (Leica files
    often call every series ``TileScan_001``) are numbered in file order: ``"TileScan_001
    (1)"``, ``"TileScan_001 (2)"``...; should that collide with another series' own name, the
    index is used: ``"TileScan_001 (series 7)"``. Every label opens its series
    (``bfdask.open(path, series=label)``); a repeated bare name is refused as ambiguous.
    """
    count: dict[str, int] = {}
    for name in names:
        count[name] = count.get(name, 0) + 1
    taken = {name for name in names if count[name] == 1}
    seen: dict[str, int] = {}
    out = []
    for index, name in enumerate(names):
        if count[name] == 1:
            out.append(name)
            continue
        seen[name] = seen.get(name, 0) + 1
        label = f"{name} ({seen[name]})"
        if label in taken:
            label = f"{name} (series {index})"
        taken.add(label)
        out.append(label)
    return out


def resolve(series: int | str, path: str, count: int, names: Callable[[], Sequence[str]]) -> int:
    """The index of ``series`` (an index, negative from the end, a name only one series has,
    or a label of :func:`series_labels`, also with ``/`` as ``:``) in the file ``path`` of
    ``count`` series, whose names ``names()`` gives (called only for a name).

    Raises
    ------
    SeriesIndexError
        No such series, or a name several series share (the message lists their labels).
    """
    if isinstance(series, str):
        all_names = list(names())
        labels = series_labels(all_names)
        for candidates in (labels, [label.replace("/", ":") for label in labels]):
            if series in candidates:
                return candidates.index(series)
        shared = [label for name, label in zip(all_names, labels, strict=True) if name == series]
        if shared:
            raise SeriesIndexError(
                f"{len(shared)} series of {path!r} are named {series!r}; say which: "
                f"{shared[:20]}{' ...' if len(shared) > 20 else ''} (or an index)."
            )
        raise SeriesIndexError(
            f"{path!r} has no series named {series!r}; its {len(all_names)} series are "
            f"{labels[:20]}{' ...' if len(labels) > 20 else ''}."
        )
    if not isinstance(series, int) or isinstance(series, bool):
        raise TypeError(f"series must be an int index or a str name, not {type(series).__name__}")
    if not -count <= series < count:
        raise SeriesIndexError(
            f"{path!r} has {count} series (0..{count - 1}, or -1..-{count} from the "
            f"end); series {series} does not exist. bfdask.list_series(path) lists them."
        )
    return series % count


def series_keys(names: Sequence[str], indices: Sequence[int]) -> list[str]:
    """Series names as dict keys; a repeated name gets its index appended (``"name #3"``)."""
    seen = {name: names.count(name) for name in names}
    return [name if seen[name] == 1 else f"{name} #{i}" for name, i in zip(names, indices)]
