"""Tables and plots of profile statistics over time, with the flagged timepoints.

One path for everybody: ``bfdask profile`` and ``bfdask demo`` print :func:`text`, save
:func:`table` and :func:`plot`; a notebook calls the same functions on the Dataset it computed.
Each takes *results*: a computed Dataset of :func:`bfdask.profile` (one series, or positions
along a ``P`` dim), a mapping of them by name (:func:`bfdask.profile_series`), or the
``(name, Dataset)`` pairs of :func:`split`; ``flagged`` (default: :func:`bfdask.bad_timepoints`
of each) and the statistics to show (default: those the Dataset holds).

>>> stats = bfdask.profile(data, line="auto", stats="min,max,slope").compute()
>>> report.table(stats)                                 # a row per position, time, channel
>>> report.plot(stats, path="profile.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .quality import bad_timepoints

if TYPE_CHECKING:
    import os

    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    #: what the functions here take: one Dataset, Datasets by name, or (name, Dataset) pairs
    Results = xr.Dataset | Mapping[str, xr.Dataset] | Sequence[tuple[str, xr.Dataset]]
#: the columns of :func:`table` besides the statistics
TABLE_COLUMNS = ("position", "channel", "time_s", "block")


def split(results: Results) -> list[tuple[str, xr.Dataset]]:
    """``(name, Dataset)`` per position or series, padded timepoints left out.

    A Dataset with a ``P`` dim gives one per position (named by its label); one without, one
    named by its ``series_name``; a mapping, one per key (a value with ``P`` splits further).
    """
    import xarray as xr

    if isinstance(results, xr.Dataset):
        pairs: list[tuple[str, xr.Dataset]] = [
            (str(results.attrs.get("series_name", "")), results)
        ]
    elif isinstance(results, Mapping):
        by_name = cast("Mapping[str, xr.Dataset]", results)
        pairs = [(str(name), ds) for name, ds in by_name.items()]
    else:
        pairs = list(results)
    out = []
    for name, ds in pairs:
        if "P" not in ds.dims:
            out.append((name, ds))
            continue
        for p in range(ds.sizes["P"]):
            one = ds.isel(P=p)
            if "time" in one.coords:
                keep = np.isfinite(np.asarray(one["time"].values, float))
                one = one.isel(T=np.nonzero(keep)[0])
            out.append((str(one["P"].values), one))
    return out


def flag(items: Sequence[tuple[str, xr.Dataset]]) -> dict[str, pd.DataFrame]:
    """:func:`bfdask.bad_timepoints` of each ``(name, Dataset)``, by name."""
    return {name: bad_timepoints(ds) for name, ds in items}


def statistics(ds: xr.Dataset) -> list[str]:
    """The statistics ``ds`` holds: those asked of :func:`bfdask.profile`, else min/max/mean."""
    names = ds.attrs.get("stats")
    if names is None:
        names = [name for name in ("min", "max", "mean") if name in ds]
    return [str(name) for name in names]


def _prepare(
    results: Results,
    flagged: Mapping[str, pd.DataFrame] | None,
    stats: Sequence[str] | None,
) -> tuple[list[tuple[str, xr.Dataset]], Mapping[str, pd.DataFrame], list[str]]:
    items = split(results)
    if flagged is None:
        flagged = flag(items)
    if stats is None:
        stats = statistics(items[0][1]) if items else []
    return items, flagged, list(stats)


def _times_s(ds: xr.Dataset) -> NDArray[Any]:
    """Seconds of each T: the stitched ``time`` coordinate, else ``T`` (s), else NaN."""
    if "time" in ds.coords and ds["time"].dims == ("T",):
        return np.asarray(ds["time"].values, dtype=float)
    if "T" in ds.coords and np.issubdtype(ds["T"].dtype, np.floating):
        return np.asarray(ds["T"].values, dtype=float)
    return np.full(ds.sizes.get("T", 1), np.nan)


def _blocks(ds: xr.Dataset) -> list[str]:
    """The acquisition block of each T: the stitched ``block`` coordinate, else the series."""
    if "block" in ds.coords and ds["block"].dims == ("T",):
        return [str(b) for b in ds["block"].values]
    return [str(ds.attrs.get("series_name", ""))] * ds.sizes.get("T", 1)


def _timepoints(ds: xr.Dataset) -> list[int]:
    """The label of each T in :func:`bfdask.bad_timepoints`' ``T`` column: the index along
    the stitched T (padding dropped), else the position along T."""
    if "time" in ds.coords and "T" in ds.coords:
        return [int(t) for t in ds["T"].values]
    return list(range(ds.sizes.get("T", 1)))


def _channels(ds: xr.Dataset) -> list[str]:
    return [str(c) for c in ds["C"].values] if "C" in ds.dims else [""]


def _value(ds: xr.Dataset, stat: str, t: int, c: int) -> float:
    """One statistic at timepoint ``t``, channel ``c`` (the largest over any other dim)."""
    pick = {"T": t, "C": c} if "C" in ds.dims else {"T": t}
    return float(ds[stat].isel(pick).values.max())


def table(
    results: Results,
    flagged: Mapping[str, pd.DataFrame] | None = None,
    stats: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The long table: one row per position (or series) × timepoint × channel.

    Parameters
    ----------
    results
        Computed statistics (see the module's docstring).
    flagged
        :func:`bfdask.bad_timepoints` by position; default: computed here.
    stats
        The statistic columns, in order; default: those of the first Dataset.

    Returns
    -------
    pandas.DataFrame
        Columns ``position``, ``channel``, ``time_s`` (s since the first acquisition, or the
        ``T`` coordinate), ``block``, one per statistic, ``bad``, ``reason``.
    """
    import pandas as pd

    items, flagged, stats = _prepare(results, flagged, stats)
    rows = []
    for name, ds in items:
        reasons = dict(zip(flagged[name]["T"], flagged[name]["reason"]))
        times, blocks, labels = _times_s(ds), _blocks(ds), _timepoints(ds)
        for i in range(ds.sizes.get("T", 1)):
            for c, channel in enumerate(_channels(ds)):
                row: dict[str, Any] = {
                    "position": name,
                    "channel": channel,
                    "time_s": float(times[i]),
                    "block": blocks[i],
                }
                for stat in stats:
                    row[stat] = _value(ds, stat, i, c)
                row["bad"] = labels[i] in reasons
                row["reason"] = reasons.get(labels[i], "")
                rows.append(row)
    table: pd.DataFrame = pd.DataFrame(rows, columns=[*TABLE_COLUMNS, *stats, "bad", "reason"])
    return table


def save_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> list[Path]:
    """Write ``frame`` as CSV to ``path`` (its directory created) and, when pyarrow is
    installed, as Parquet beside it (``.parquet``); return the files written."""
    csv = Path(path)
    csv.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv, index=False)
    written = [csv]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    frame.to_parquet(csv.with_suffix(".parquet"), index=False)
    return [*written, csv.with_suffix(".parquet")]


def text(
    results: Results,
    flagged: Mapping[str, pd.DataFrame] | None = None,
    stats: Sequence[str] | None = None,
) -> str:
    """The whole time course of every position as text: per position a ``== name ==`` line, a
    row per timepoint and channel (T, time in h, block, channel, statistics, the reason of a
    flagged timepoint) and a ``flagged timepoints:`` line; a blank line after each."""
    items, flagged, stats = _prepare(results, flagged, stats)
    return "".join(_text_one(name, ds, stats, flagged[name]) + "\n" for name, ds in items)


def _text_one(name: str, ds: xr.Dataset, stats: Sequence[str], flagged: pd.DataFrame) -> str:
    reasons = dict(zip(flagged["T"], flagged["reason"]))
    times, blocks, labels = _times_s(ds), _blocks(ds), _timepoints(ds)
    head = f"{'T':>4} {'time (h)':>9} {'block':<20} {'channel':<8}" + "".join(
        f" {stat[:13]:>13}" for stat in stats
    )
    lines = [f"== {name} =="]
    why = _line_reason(ds)
    if why:  # line="auto" found no line: the statistics are NaN, here is why
        lines.append(f"no line found: {why}")
    lines.append(head)
    for i in range(ds.sizes.get("T", 1)):
        t = labels[i]
        for c, channel in enumerate(_channels(ds)):
            row = f"{t:>4} {times[i] / 3600:>9.2f} {blocks[i][:20]:<20} {channel[:8]:<8}"
            row += "".join(f" {_value(ds, stat, i, c):>13.4g}" for stat in stats)
            if t in reasons and c == 0:
                row += f"   <- {reasons[t]}"
            lines.append(row)
    if len(flagged):
        listed = ", ".join(f"T={t} ({r})" for t, r in zip(flagged["T"], flagged["reason"]))
        lines.append(f"flagged timepoints: {listed}")
    else:
        lines.append("flagged timepoints: none")
    return "\n".join(lines) + "\n"


def _line_reason(ds: xr.Dataset) -> str:
    """Why ``line="auto"`` found no line for this position (``""`` when it found one)."""
    if "line_reason" not in ds.coords or ds["line_reason"].ndim != 0:
        return ""
    return str(ds["line_reason"].values)


def plot(
    results: Results,
    flagged: Mapping[str, pd.DataFrame] | None = None,
    stats: Sequence[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """One panel per position: each statistic (scaled to its largest value) against time over
    all blocks (first channel), block boundaries dashed, flagged timepoints in red.

    Parameters
    ----------
    results, flagged, stats
        As for :func:`table`.
    path
        Also write the figure there as PNG (its directory is created).

    Returns
    -------
    matplotlib.figure.Figure
        Drawn without pyplot (no global figure, any backend; a notebook shows it).
    """
    from matplotlib.figure import Figure

    items, flagged, stats = _prepare(results, flagged, stats)
    n = max(1, len(items))
    cols = min(3, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(5 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, (name, ds) in zip(axes.flat, items):
        _panel(ax, name, ds, stats, flagged.get(name))
    for ax in list(axes.flat)[len(items) :]:
        ax.set_visible(False)
    # one legend for the figure, above the panels: a legend inside each panel hid the data
    # and the block names
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=max(1, len(names)), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


def _panel(
    ax: Any, name: str, ds: xr.Dataset, stats: Sequence[str], bad: pd.DataFrame | None
) -> None:
    hours = _times_s(ds) / 3600
    if not np.isfinite(hours).any():
        hours = np.arange(ds.sizes.get("T", 1), dtype=float)
    channel = {"C": 0} if "C" in ds.dims else {}
    blocks = _blocks(ds)
    # one line per acquisition block: the gap between blocks (hours without imaging) is not
    # drawn as if the statistic changed steadily across it
    starts = [0, *(i for i in range(1, len(blocks)) if blocks[i] != blocks[i - 1])]
    segments = [slice(a, b) for a, b in zip(starts, [*starts[1:], len(blocks)])]
    for i, stat in enumerate(stats):
        values = np.asarray(ds[stat].isel(channel).values, dtype=float)
        top = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
        for k, part in enumerate(segments):
            ax.plot(
                hours[part],
                values[part] / (top or 1.0),
                ".-",
                color=f"C{i}",
                label=stat if k == 0 else None,
                ms=3,
            )
    for i in range(1, len(blocks)):
        if blocks[i] != blocks[i - 1]:
            edge = (hours[i - 1] + hours[i]) / 2
            ax.axvline(edge, color="0.5", ls="--", lw=1)
            ax.annotate(
                f" {blocks[i]}",
                (edge, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                color="0.3",
                rotation=90,
                va="bottom",
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
            )
    labels = _timepoints(ds)
    if bad is not None:
        for t, reason in zip(bad["T"], bad["reason"]):
            i = labels.index(t)
            ax.axvline(hours[i], color="red", alpha=0.35, lw=6)
            ax.annotate(
                f" T={t}: {reason}",
                (hours[i], 0.97),
                xycoords=("data", "axes fraction"),
                color="red",
                ha="left",
                va="top",
                fontsize=8,
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
            )
    channel_name = f" ({ds['C'].values[0]})" if "C" in ds.dims else ""
    ax.set_title(f"{name}{channel_name}", fontsize=9)
    ax.set_xlabel("time since first acquisition (h)")
    ax.set_ylabel("statistic / its largest value")
