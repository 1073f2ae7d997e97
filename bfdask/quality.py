"""Failed acquisitions: timepoints whose profile statistics break from their neighbours.

:func:`bad_timepoints` takes the (computed or lazy) Dataset of :func:`bfdask.profile` and
returns a table of flagged timepoints and why. Pure numpy/pandas on small arrays (a few
numbers per timepoint); runs on the client.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .line import LINE_STATUS

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    import xarray as xr
    from numpy.typing import NDArray

    #: per statistic: column labels, values (T, column), neighbour medians, robust z-scores
    _Scores = dict[str, tuple[list[str], NDArray[Any], NDArray[Any], NDArray[Any]]]

#: the reasons, most telling first: a frame gets the first that applies
REASONS = ("no_line", "blank", "low_signal", "saturated", "outlier")
COLUMNS = ["T", "time", "reason", "detail", "score"]


def bad_timepoints(
    stats: xr.Dataset,
    *,
    variables: Sequence[str] | None = None,
    window: int = 5,
    threshold: float = 6.0,
    min_change: float = 0.25,
    blank: float = 0.2,
    saturated: float = 0.5,
    low_signal: float | bool | None = None,
) -> pd.DataFrame:
    """Timepoints whose profile statistics break from their neighbours: failed acquisitions.

    A real change (a lesion deepening, then recovering) is gradual; a failed frame (the embryo
    moved or died, focus lost, the lamp flickered) jumps away from the frames around it. Per
    channel (and Z plane, for per-plane statistics) and per statistic in ``variables``, each
    value is compared with the median of its ``window - 1`` neighbours (the point excluded). A
    timepoint is flagged when, for any of them:

    * ``no_line``: no line was found in that frame (``line="auto"``: the statistics are NaN);
    * ``blank``: the value is below ``blank`` × the series' median (almost no fluorescence);
    * ``low_signal``: the frame's ``max`` (else the first of ``variables``) is far below the
      series' typical (median) maximum: below ``low_signal`` × it when given, else below a
      threshold derived from the data, ``min(0.5, 1 - 8 × s)`` with ``s`` the robust spread
      (1.4826 × MAD) of max / median over the series;
    * ``saturated``: more than ``saturated`` of the profile's samples sit at the data type's
      maximum (``stats.attrs["saturation"]``; integer data only);
    * ``outlier``: for *every* statistic of ``variables`` (same channel, same direction), the
      deviation from the neighbours' median exceeds ``threshold`` robust standard deviations
      (1.4826 × the median absolute deviation of all such residuals in the series) *and*
      ``min_change`` × that median. A failed frame shifts the whole profile; a bright speck
      crossing the line moves only its max, and a very regular series does not flag noise.

    The ``min`` statistic is left out by default: a lesion moves it on purpose.

    With a ``P`` dim (from :func:`bfdask.open_positions`) each position is a series of its own
    and the result has a ``position`` column first; timepoints whose ``time`` coordinate is NaN
    (padding of short positions) are never flagged.

    Parameters
    ----------
    stats
        A Dataset from :func:`profile` (computed or lazy; it is computed here), with a ``T``
        dim.
    variables
        Which statistics to test; default ``mean`` and ``max`` (those present, else every
        statistic of ``stats.attrs["stats"]`` but ``min``).
    window
        Odd number of timepoints around each one that define "its neighbours" (>= 3).
    threshold
        Robust z-score above which a deviation counts.
    min_change
        Smallest relative deviation from the neighbours that counts (0.25: 25 %).
    blank
        Fraction of the series' median below which a frame counts as blank.
    saturated
        Fraction of saturated profile samples above which a frame counts as saturated.
    low_signal
        Fraction of the typical maximum below which a frame counts as low signal; None (default)
        derives it from the data, False turns the rule off.

    Returns
    -------
    pandas.DataFrame
        One row per flagged timepoint, in time order, with columns ``T`` (index along T),
        ``time`` (the ``time`` or ``T`` coordinate, NaN if none), ``reason`` (``"no_line"``,
        ``"blank"``, ``"low_signal"``, ``"saturated"`` or ``"outlier"``, the first that
        applies), ``detail`` (which statistic, channel, value and expected value) and ``score``
        (robust z-score of the largest deviation; the fraction of the typical maximum for
        ``low_signal``). Empty (same columns) when nothing is flagged.

    Raises
    ------
    ValueError
        If ``stats`` has no ``T`` dim or lacks a statistic of ``variables``, or ``window`` < 3.
    """
    import pandas as pd

    from .schedulers import compute

    rules = _rules(stats, variables, window, threshold, min_change, blank, saturated, low_signal)
    (stats,) = compute(stats)
    with warnings.catch_warnings():
        # all-NaN columns (frames without a line, padding) are expected: no flag, no noise
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        if "P" not in stats.dims:
            return _one_series(stats, rules)
        frames = []
        for p in range(stats.sizes["P"]):
            one = stats.isel(P=p)
            found = _one_series(one, rules)
            label = str(one["P"].values) if "P" in one.coords else str(p)
            found.insert(0, "position", [label] * len(found))
            frames.append(found)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class _Rules:
    """The options of :func:`bad_timepoints`, checked."""

    variables: tuple[str, ...]
    window: int
    threshold: float
    min_change: float
    blank: float
    saturated: float
    low_signal: float | bool | None


def _rules(
    stats: xr.Dataset,
    variables: Sequence[str] | None,
    window: int,
    threshold: float,
    min_change: float,
    blank: float,
    saturated: float,
    low_signal: float | bool | None,
) -> _Rules:
    import xarray as xr

    if not isinstance(stats, xr.Dataset):
        raise TypeError(
            "bad_timepoints takes the Dataset of statistics that bfdask.profile returns "
            f"(e.g. bad_timepoints(bfdask.profile(data, line='auto'))), not a "
            f"{type(stats).__name__}."
        )
    if "T" not in stats.dims:
        raise ValueError("stats must have a 'T' dim (a time series from bfdask.profile)")
    if window < 3:
        raise ValueError(f"window must be >= 3 timepoints, not {window}")
    if variables is None:
        variables = [v for v in ("mean", "max") if v in stats] or [
            v for v in stats.attrs.get("stats", []) if v != "min" and v in stats
        ]
        if not variables:
            raise ValueError(
                f"stats has none of mean/max; pass variables= (it has {list(stats.data_vars)})"
            )
    missing = [v for v in variables if v not in stats]
    if missing:
        raise ValueError(f"stats has no variable(s) {missing}; it has {list(stats.data_vars)}")
    return _Rules(tuple(variables), window, threshold, min_change, blank, saturated, low_signal)


@dataclass
class _Flags:
    """The reason kept per timepoint: the most telling (:data:`REASONS` order), then the
    largest score."""

    found: dict[int, tuple[int, str, str, float]] = field(default_factory=dict)

    def note(self, t: int, reason: str, detail: str, score: float) -> None:
        old = self.found.get(t)
        new = (REASONS.index(reason), reason, detail, score)
        if old is None or new[0] < old[0] or (new[0] == old[0] and abs(score) > abs(old[3])):
            self.found[t] = new


def _one_series(stats: xr.Dataset, rules: _Rules) -> pd.DataFrame:
    """:func:`bad_timepoints` of one position (no ``P`` dim), padding left out."""
    import pandas as pd

    stats, real, times = _without_padding(stats)
    size_t = stats.sizes["T"]
    flags = _Flags()
    scores = _scores(stats, rules, ())
    _flag_blank(flags, scores, rules.blank)
    _flag_no_line(flags, stats, size_t)
    if rules.low_signal is not False and size_t >= 3:
        _flag_low_signal(flags, stats, rules)
    # frames flagged above are left out of everybody's neighbours (in a short series a dead
    # frame would make its neighbour jump)
    if flags.found:
        scores = _scores(stats, rules, sorted(flags.found))
    _flag_outliers(flags, scores, rules, size_t)
    _flag_saturated(flags, stats, rules.saturated, size_t)
    rows = [
        {"T": int(real[t]), "time": times[t], "reason": reason, "detail": detail, "score": score}
        for t, (_, reason, detail, score) in sorted(flags.found.items())
    ]
    table: pd.DataFrame = pd.DataFrame(rows, columns=COLUMNS)
    return table


def _without_padding(stats: xr.Dataset) -> tuple[xr.Dataset, NDArray[Any], NDArray[Any]]:
    """``stats`` without padded timepoints (``time`` NaN), their indices along the full T, and
    their times (the ``time`` or ``T`` coordinate, else NaN)."""
    full_t = stats.sizes["T"]
    if "time" in stats.coords and stats["time"].dims == ("T",):
        all_times = np.asarray(stats["time"].values, dtype=float)
        real = np.nonzero(np.isfinite(all_times))[0]
    else:
        all_times = (
            np.asarray(stats["T"].values, dtype=float)
            if "T" in stats.coords
            else np.full(full_t, np.nan)
        )
        real = np.arange(full_t)
    if real.size < full_t:
        stats = stats.isel(T=real)
    return stats, real, all_times[real]


def _neighbour_median(values: NDArray[Any], half: int) -> NDArray[Any]:
    """Median of the ``half`` values each side of every point, the point itself excluded."""
    out = np.full(values.shape, np.nan)
    for i in range(values.size):
        lo, hi = max(0, i - half), min(values.size, i + half + 1)
        around = np.concatenate([values[lo:i], values[i + 1 : hi]])
        around = around[np.isfinite(around)]
        if around.size:
            out[i] = np.median(around)
    return out


def _scores(stats: xr.Dataset, rules: _Rules, dead: Sequence[int]) -> _Scores:
    """Per statistic: (T, column) values, neighbour medians, robust z-scores; frames in
    ``dead`` (already flagged) are nobody's neighbour and do not count in the spread."""
    size_t = stats.sizes["T"]
    half = rules.window // 2
    out = {}
    for name in rules.variables:
        var = stats[name].transpose("T", ...)
        values = np.asarray(var.values, dtype=float).reshape(size_t, -1)
        masked = values.copy()
        masked[list(dead)] = np.nan
        expected = np.stack([_neighbour_median(v, half) for v in masked.T], axis=1)
        residual = values - expected
        spread_of = masked - expected
        scores = np.zeros_like(values)
        for column in range(values.shape[1]):
            r = spread_of[:, column]
            mad = np.nanmedian(np.abs(r - np.nanmedian(r))) if np.isfinite(r).any() else 0.0
            finite = np.isfinite(values[:, column]).any()
            level = np.nanmedian(values[:, column]) if finite else 1
            sigma = max(1.4826 * mad, 1e-12 * max(abs(level), 1.0))
            res = residual[:, column]
            scores[:, column] = np.where(np.isfinite(res), res / sigma, 0.0)
        out[name] = (_column_labels(var), values, expected, scores)
    return out


def _describe(scores: _Scores, name: str, t: int, column: int) -> str:
    labels, values, expected, _ = scores[name]
    level = np.nanmedian(values[:, column])
    return (
        f"{name}{labels[column]} = {values[t, column]:.4g}, neighbours "
        f"{expected[t, column]:.4g}, series median {level:.4g}"
    )


def _flag_blank(flags: _Flags, scores: _Scores, blank: float) -> None:
    for name, (_, values, _, z) in scores.items():
        level = np.nanmedian(values, axis=0)
        for t, column in zip(*np.nonzero((level > 0) & (values < blank * level))):
            flags.note(int(t), "blank", _describe(scores, name, t, column), float(z[t, column]))


def _flag_no_line(flags: _Flags, stats: xr.Dataset, size_t: int) -> None:
    if "line_status" not in stats:
        return
    status_var = stats["line_status"]
    if "T" not in status_var.dims:  # one line per position: it applies to every frame
        status_var = status_var.expand_dims(T=size_t)
    status = np.asarray(status_var.transpose("T", ...).values, float)
    status = status.reshape(size_t, -1)
    for t in np.nonzero(np.nan_to_num(status, nan=0.0).max(axis=1) > 0)[0]:
        code = int(np.nanmax(status[t]))
        text = LINE_STATUS.get(code, "no line")
        if "line_reason" in stats.coords and stats["line_reason"].ndim == 0:
            text = str(stats["line_reason"].values) or text
        flags.note(int(t), "no_line", text, np.inf)


def _flag_low_signal(flags: _Flags, stats: xr.Dataset, rules: _Rules) -> None:
    size_t = stats.sizes["T"]
    name = "max" if "max" in stats else rules.variables[0]
    var = stats[name].transpose("T", ...)
    values = np.asarray(var.values, dtype=float).reshape(size_t, -1)
    labels = _column_labels(var)
    for column in range(values.shape[1]):
        v = values[:, column]
        finite = v[np.isfinite(v)]
        level = float(np.median(finite)) if finite.size else float("nan")
        if not level > 0:
            continue
        ratio = v / level
        if rules.low_signal is None or rules.low_signal is True:
            r = ratio[np.isfinite(ratio)]
            spread = 1.4826 * float(np.median(np.abs(r - np.median(r))))
            cut = min(0.5, 1.0 - 8.0 * spread)
        else:
            cut = float(rules.low_signal)
        for t in np.nonzero(np.nan_to_num(ratio, nan=np.inf) < cut)[0]:
            detail = (
                f"{name}{labels[column]} = {v[t]:.4g}, {ratio[t]:.0%} of the series' typical "
                f"{level:.4g} (threshold {cut:.0%})"
            )
            flags.note(int(t), "low_signal", detail, float(ratio[t]))


def _flag_outliers(flags: _Flags, scores: _Scores, rules: _Rules, size_t: int) -> None:
    """An outlier moves every tested statistic the same way (a failed frame shifts the whole
    profile; one bright speck moves only the max)."""
    variables = rules.variables
    for t in range(size_t):
        for column in range(scores[variables[0]][1].shape[1]):
            signs = set()
            for name in variables:
                _, values, expected, z = scores[name]
                change = abs(values[t, column] - expected[t, column])
                if not (
                    abs(z[t, column]) > rules.threshold
                    and np.isfinite(expected[t, column])
                    and change > rules.min_change * abs(expected[t, column])
                ):
                    break
                signs.add(np.sign(z[t, column]))
            else:
                if len(signs) == 1:
                    strength = {v: abs(scores[v][3][t, column]) for v in variables}
                    name = max(strength, key=strength.__getitem__)
                    score = float(scores[name][3][t, column])
                    flags.note(t, "outlier", _describe(scores, name, t, column), score)


def _flag_saturated(flags: _Flags, stats: xr.Dataset, saturated: float, size_t: int) -> None:
    top = stats.attrs.get("saturation")
    if top is None or "profile" not in stats:
        return
    prof = stats["profile"].transpose("T", ...)
    clipped = np.asarray(prof.values >= top, dtype=float)
    clipped = clipped.reshape(size_t, -1, prof.sizes["distance"])
    fractions = clipped.mean(axis=-1)
    for t in range(size_t):
        worst = float(fractions[t].max()) if fractions[t].size else 0.0
        if worst > saturated:
            flags.note(t, "saturated", f"{worst:.0%} of the profile at {top:g}", np.inf)


def _column_labels(var: xr.DataArray) -> list[str]:
    """A label per non-T combination of ``var``'s dims, e.g. ``"[C=GFP]"``."""
    others = [d for d in var.dims if d != "T"]
    if not others:
        return [""]
    values = [
        [str(v) for v in (var[d].values if d in var.coords else range(var.sizes[d]))]
        for d in others
    ]
    return [
        "[" + ", ".join(f"{d}={v}" for d, v in zip(others, combo)) + "]"
        for combo in itertools.product(*values)
    ]
