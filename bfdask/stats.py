"""Statistics of an intensity profile: the built-ins the user's analysis needs, and their own.

Pure numpy on one 1-D profile; :func:`bfdask.profile` runs them inside its dask tasks, so only
the numbers travel. Built-ins (by name in ``stats=``):

* ``min``, ``max``, ``mean`` of the profile;
* ``min_max_ratio``: min / max;
* ``slope``: ``|Δintensity / Δdistance|`` between the positions of the minimum and the maximum
  (after optional Gaussian smoothing of ``slope_sigma`` samples), distance in the profile's
  units (µm when the pixel size is known, else px);
* ``missing``: the fluorescence missing under a baseline, ``sum(max(baseline - profile, 0))``
  over the samples; the baseline is the mean of the first and last ``baseline_n`` samples, or
  the ``baseline`` given.

A user statistic is any callable taking the 1-D profile (float64 numpy array) and returning a
number; on a cluster it must be picklable (a module-level function).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: the statistics known by name
BUILTINS = ("min", "max", "mean", "min_max_ratio", "slope", "missing")

#: what ``stats=`` accepts: names and callables, or a mapping name -> name/callable
StatsArg = str | Callable[..., Any] | Iterable[str | Callable[..., Any]] | Mapping[str, Any]


@dataclass(frozen=True)
class StatsSpec:
    """Which statistics to compute and their options (small, picklable: travels to tasks)."""

    names: tuple[str, ...]
    #: a function of the profile, a built-in under another name, or None: the built-in ``name``
    funcs: tuple[Callable[[NDArray[Any]], Any] | _Builtin | None, ...]
    slope_sigma: float = 0.0
    baseline_n: int = 5
    baseline: float | None = None


def parse_stats(
    stats: StatsArg,
    *,
    slope_sigma: float = 0.0,
    baseline_n: int = 5,
    baseline: float | None = None,
) -> StatsSpec:
    """Turn ``stats=`` into a :class:`StatsSpec`.

    ``stats`` may be a comma-separated string (``"min,max,slope"``), a list of names and
    callables (a callable is named by its ``__name__``), or a mapping of output names to names
    or callables.

    Raises
    ------
    ValueError
        An unknown name, a repeated name, or no statistic at all.
    TypeError
        An item that is neither a name nor a callable.
    """
    if isinstance(stats, str):
        items: list[tuple[str, Any]] = [
            (s.strip(), s.strip()) for s in stats.split(",") if s.strip()
        ]
    elif isinstance(stats, Mapping):
        items = list(stats.items())
    elif callable(stats):
        items = [(_name_of(stats), stats)]
    else:
        items = [(item if isinstance(item, str) else _name_of(item), item) for item in stats]
    if not items:
        raise ValueError(f"stats names no statistic; choose from {BUILTINS} or pass callables")
    names: list[str] = []
    funcs: list[Callable[[NDArray[Any]], Any] | _Builtin | None] = []
    for name, item in items:
        if isinstance(item, str):
            if item not in BUILTINS:
                raise ValueError(
                    f"unknown statistic {item!r}; built-ins are {', '.join(BUILTINS)} (or pass a "
                    "function of the 1-D profile)"
                )
            funcs.append(None if name == item else _Builtin(item))
        elif callable(item):
            funcs.append(item)
        else:
            raise TypeError(f"a statistic must be a name or a callable, not {item!r}")
        names.append(str(name))
    if len(set(names)) != len(names):
        raise ValueError(f"statistic names repeat: {names}")
    if int(baseline_n) != baseline_n or baseline_n < 1:
        raise ValueError(f"baseline_n must be a whole number of samples >= 1, not {baseline_n!r}")
    if slope_sigma < 0:
        raise ValueError(f"slope_sigma must be >= 0 samples, not {slope_sigma!r}")
    return StatsSpec(
        tuple(names),
        tuple(funcs),
        float(slope_sigma),
        int(baseline_n),
        None if baseline is None else float(baseline),
    )


def _name_of(func: Any) -> str:
    name = getattr(func, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError(
            f"cannot name the statistic {func!r}: pass it in a mapping, stats={{'name': func}}"
        )
    return str(name)


@dataclass(frozen=True)
class _Builtin:
    """A built-in statistic under another output name (``stats={"low": "min"}``)."""

    name: str


def slope(profile: NDArray[Any], step: float = 1.0, sigma: float = 0.0) -> float:
    """``|Δintensity / Δdistance|`` between the minimum and the maximum of ``profile``.

    ``step`` is the distance between samples; ``sigma`` (samples) smooths first (Gaussian).
    NaN if the profile is flat (minimum and maximum at the same sample) or not finite.
    """
    values = np.asarray(profile, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        return math.nan
    if sigma > 0:
        from scipy.ndimage import gaussian_filter1d

        values = gaussian_filter1d(values, sigma, mode="nearest")
    low, high = int(np.argmin(values)), int(np.argmax(values))
    if low == high:
        return math.nan
    return float(abs((values[high] - values[low]) / ((high - low) * step)))


def missing(profile: NDArray[Any], n: int = 5, baseline: float | None = None) -> float:
    """Fluorescence missing under the baseline: ``sum(max(baseline - profile, 0))``.

    The baseline is ``baseline`` if given, else the mean of the first and last ``n`` samples.
    """
    values = np.asarray(profile, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        return math.nan
    if baseline is None:
        ends = np.concatenate([values[:n], values[-n:]])
        baseline = float(ends.mean())
    return float(np.clip(baseline - values, 0.0, None).sum())


def _builtin(name: str, values: NDArray[Any], spec: StatsSpec, step: float) -> float:
    if values.size == 0 or not np.isfinite(values).all():
        return math.nan
    if name == "min":
        return float(values.min())
    if name == "max":
        return float(values.max())
    if name == "mean":
        return float(values.mean())
    if name == "min_max_ratio":
        top = float(values.max())
        return float(values.min()) / top if top != 0 else math.nan
    if name == "slope":
        return slope(values, step, spec.slope_sigma)
    if name == "missing":
        return missing(values, spec.baseline_n, spec.baseline)
    raise ValueError(f"unknown statistic {name!r}")  # parse_stats prevents this


def compute_stats(profile: NDArray[Any], spec: StatsSpec, step: float = 1.0) -> NDArray[Any]:
    """Every statistic of ``spec`` on one 1-D profile, as float64 (NaN profile: NaN for the
    built-ins; a user function sees the profile as it is).

    ``step`` is the distance between samples (for ``slope``).
    """
    values = np.asarray(profile, dtype=np.float64)
    out = np.empty(len(spec.names), np.float64)
    for i, (name, func) in enumerate(zip(spec.names, spec.funcs)):
        if func is None:
            out[i] = _builtin(name, values, spec, step)
        elif isinstance(func, _Builtin):
            out[i] = _builtin(func.name, values, spec, step)
        else:
            out[i] = float(func(values))
    return out
