"""Where a series' pixels come from, and what opening found wrong with them.

Bio-Formats stays the authority on what a file contains (series, sizes, dimension order, plane
index). Where a native reader exists (:mod:`bfdask.native`: LIF, the TIFF family), opening
builds its plan for the series and **verifies** it: a few planes (first, last and some chosen
at random) read both ways must be byte for byte identical. :func:`choose` then picks the
source: the verified plan, or Bio-Formats (``pixels="auto"`` falls back for a layout with no
plan or a plan Bio-Formats contradicts; ``pixels="native"`` raises
:class:`~bfdask.errors.NativePixelsError` instead).

Whatever the source, damage found on the way -- planes past the end of a file cut short
(LIF memory blocks, TIFF strips, the MRC header), planes neither path decodes, a structure that
does not parse -- is warned and kept in the choice's :class:`~bfdask.damage.Damage`, which
makes those planes raise on either path: a fallback is never a way around damage.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import answers, config, czi, mrc, native, nd2check, readers, tiff, tiffcheck
from .damage import Damage, runs
from .errors import CorruptFileError, CorruptFileWarning, NativePixelsError, TruncatedFileWarning

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .metadata import ImageSpec
    from .native import NativeRecipe

log = logging.getLogger(__name__)

MODES = ("auto", "bioformats", "native")

#: planes compared with Bio-Formats besides the first and the last
RANDOM_PLANES = 3
#: at most this many bytes of each verified plane are compared (rows from the top)
VERIFY_BYTES = 32 << 20

LIF_FORMAT = "Leica Image File Format"
#: how the reason of a fallback to Bio-Formats begins
_NO_PLAN = "no native plan: "


@dataclass(frozen=True)
class Choice:
    """The pixel source chosen for one series: ``recipe`` None means Bio-Formats."""

    recipe: NativeRecipe | None
    reason: str
    verify_seconds: float = 0.0
    damage: Damage = field(default_factory=Damage)  # found at open; enforced on both paths

    @property
    def source(self) -> str:
        """``"native"`` or ``"bioformats"``."""
        return "bioformats" if self.recipe is None else "native"


def resolve_mode(pixels: str | None) -> str:
    """The pixel mode from the keyword, ``BFDASK_PIXELS`` or dask config ``bfdask.pixels``."""
    mode = str(config.get("bfdask.pixels", pixels) or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"pixels={mode!r} must be one of {', '.join(map(repr, MODES))}")
    return mode


# -- verification ---------------------------------------------------------------------------


def verify_planes(recipe: NativeRecipe) -> list[int]:
    """The plane indices compared with Bio-Formats: first, last, a few at random (seeded)."""
    count = recipe.size_z * recipe.size_c * recipe.size_t
    chosen = {0, count - 1}
    # seeded by what the file is, not where it lies: the same bytes verify the same way
    size = recipe.stamp.size if recipe.stamp is not None else 0
    rng = random.Random(f"{size}:{recipe.series}:{count}")
    others = range(1, count - 1)
    chosen.update(rng.sample(others, min(RANDOM_PLANES, len(others))))
    return sorted(chosen)


@dataclass
class Verdict:
    """What comparing a few planes both ways found (:func:`verify`)."""

    mismatch: str | None = None  # the plan and Bio-Formats disagree: the plan is not used
    compared: int = 0  # planes read both ways and found identical
    damaged: list[int] = field(default_factory=list)  # planes neither path can read
    notes: list[str] = field(default_factory=list)  # what the damaged planes showed


def _compare(spec: ImageSpec, recipe: NativeRecipe, index: int, y: tuple[int, int]) -> Verdict:
    """Read plane ``index`` (rows ``y``) through Bio-Formats and natively, and compare."""
    z, c, t = recipe.zct(index)
    reader = readers.get_reader(spec.path, spec.series, spec.resolution)
    if reader.plane_index(z, c, t) != index:
        return Verdict(f"plane {index}: Bio-Formats' index of (z={z}, c={c}, t={t}) differs")
    expected: NDArray[Any] | None = None
    java_error: CorruptFileError | None = None
    try:
        expected = reader.read_plane(
            index,
            y,
            (0, spec.size_x),
            np.dtype(spec.dtype),
            spec.little_endian,
            spec.samples,
            spec.interleaved,
        )
    except CorruptFileError as exc:
        java_error = exc
    try:
        got = native.read_block(
            recipe, (t, t + 1), (c, c + 1), (z, z + 1), y, (0, spec.size_x), count=False
        )[0, 0, 0]
    except CorruptFileError as exc:  # the file's bytes for this plane are not there or broken
        damaged = isinstance(exc, native.DamagedPlaneError)  # shown broken: not the plan's fault
        if expected is not None and expected.any() and not damaged:  # Bio-Formats reads it
            return Verdict(f"plane {index}: bfdask cannot read it ({exc}), Bio-Formats can")
        how = "fails too" if java_error is not None else "pads it with zeros"
        if damaged and java_error is None and expected is not None and expected.any():
            how = "reads past the damage"
        return Verdict(
            damaged=[index], notes=[f"plane {index} is damaged ({exc}); Bio-Formats {how}"]
        )
    except Exception as exc:  # any other failure of the native path: the plan is wrong
        return Verdict(f"plane {index}: native read failed: {type(exc).__name__}: {exc}")
    if java_error is not None:
        return Verdict(f"plane {index}: Bio-Formats cannot read it ({java_error}), bfdask can")
    assert expected is not None
    if got.shape != expected.shape or got.tobytes() != expected.tobytes():
        return Verdict(f"plane {index} (z={z}, c={c}, t={t}) differs from Bio-Formats'")
    return Verdict()


def verify(
    spec: ImageSpec, recipe: NativeRecipe, missing: NDArray[np.integer[Any]] | None = None
) -> Verdict:
    """Compare a few planes read natively with Bio-Formats' ``openBytes``.

    ``missing`` (:func:`missing_planes`) are left out: the last plane still in the file is
    compared instead of the last one. A plane that neither path can read (or that
    Bio-Formats pads with zeros where the plan finds it broken) is damage, not a mismatch.
    """
    row_bytes = spec.size_x * spec.samples * spec.itemsize
    rows = max(1, min(spec.size_y, VERIFY_BYTES // max(1, row_bytes)))
    y = (0, rows)
    planes = verify_planes(recipe)
    if missing is not None and missing.size:
        gone = set(missing.tolist())
        present = [i for i in range(spec.size_z * spec.size_c * spec.size_t) if i not in gone]
        if present:
            planes = sorted({i for i in planes if i not in gone} | {present[-1]})
        else:  # the file ends inside its first plane: compare the rows it still holds
            rows = min(rows, native.reader(recipe.reader).rows_in_file(recipe, 0))
            if rows == 0:  # nothing left to compare: every plane raises when read
                return Verdict(compared=0)
            planes, y = [0], (0, rows)
    verdict = Verdict()
    for index in planes:
        one = _compare(spec, recipe, index, y)
        if one.mismatch is not None:
            return one
        verdict.damaged += one.damaged
        verdict.notes += one.notes
        verdict.compared += 0 if one.damaged else 1
    return verdict


def _truncation_note(spec: ImageSpec, missing: NDArray[np.integer[Any]]) -> str:
    count = spec.size_z * spec.size_c * spec.size_t
    return (
        f"{spec.path!r} is truncated or damaged: {missing.size} of {count} planes of series "
        f"{spec.series} (plane {int(missing[0])} on) lie past its end "
        f"({os.path.getsize(spec.path)} bytes); the others read, and reading those "
        "raises CorruptFileError. Is the file still being copied?"
    )


def _lif_cut(spec: ImageSpec) -> str | None:
    """For a LIF series of any layout, a note if its memory block runs past the file's end."""
    from . import lif

    if spec.format != LIF_FORMAT or spec.resolution != 0:
        return None
    try:
        images = lif.layout(spec.path, spec.stamp)
    except (lif.LifLayoutError, CorruptFileError, OSError):
        return None  # damage in the structure is reported by the plan
    size = os.path.getsize(spec.path)
    if len(images) != spec.series_count or not images[spec.series].truncated(size):
        return None
    image = images[spec.series]
    return (
        f"{spec.path!r} is truncated: the data of series {spec.series} needs bytes "
        f"{image.offset}..{image.offset + image.extent}, the file ends at {size}; planes "
        "past the end raise CorruptFileError when read (Bio-Formats would return zeros). "
        "Is the file still being copied?"
    )


def _nd2_cut(path: str) -> str | None:
    """For an ND2 file, a note if it does not end with its chunk map (cut short); a file cut
    before its image attributes never gets here (:func:`bfdask.precheck.check_nd2`)."""
    try:
        finding = nd2check.inspect(path)
    except (OSError, ValueError):
        return None
    return None if finding is None else nd2check.describe(path, finding)


@dataclass
class _Plan:
    """Everything opening learnt about one series' pixels (internal to :func:`choose`)."""

    recipe: NativeRecipe | None = None
    problem: str | None = None  # why the recipe is not used
    level: int = logging.INFO  # how loudly to log ``problem``
    missing: NDArray[np.integer[Any]] = field(default_factory=lambda: np.empty(0, np.int64))
    compared: int = 0  # planes found identical both ways
    zero_planes_missing: bool = False
    truncation: list[str] = field(default_factory=list)  # TruncatedFileWarning
    damage: list[str] = field(default_factory=list)  # CorruptFileWarning


def _plan(spec: ImageSpec) -> _Plan:
    """Build and verify the native plan of ``spec`` and collect the damage it shows."""
    plan = _Plan()
    try:
        recipe = native.plan(spec)
        plan.missing = native.reader(recipe.reader).missing_planes(recipe)
        verdict = verify(spec, recipe, plan.missing)
    except NativePixelsError as exc:  # no plan for this layout: expected, e.g. any CZI
        plan.problem = str(exc)
    except CorruptFileError as exc:  # damage found while planning: never papered over
        plan.problem = str(exc)
        plan.damage.append(
            f"{exc}; its pixels come from Bio-Formats, which may pad damaged parts with zeros"
        )
    else:
        if verdict.mismatch is not None:  # Bio-Formats contradicts the plan: it is not used
            plan.problem, plan.level = verdict.mismatch, logging.WARNING
            plan.damage.append(
                f"bfdask's reading of {spec.path!r} series {spec.series} disagrees with "
                f"Bio-Formats' ({verdict.mismatch}): the file may be damaged; its pixels come "
                "from Bio-Formats"
            )
            plan.missing = np.empty(0, np.int64)  # a plan Bio-Formats contradicts says nothing
        else:
            plan.recipe, plan.compared = recipe, verdict.compared
            if plan.missing.size:
                plan.truncation.append(_truncation_note(spec, plan.missing))
            plan.damage += verdict.notes
            plan.missing = np.union1d(plan.missing, verdict.damaged).astype(np.int64)
    if plan.recipe is None:
        _extent_without_plan(spec, plan)
    if not plan.truncation and tiffcheck.is_tiff(spec.path):  # any TIFF-based format (LSM, SVS..)
        note = tiffcheck.structure_note(spec.path, spec.stamp)  # (a file cut short: said already)
        if note is not None:
            plan.damage.append(note)
    return plan


def _extent_without_plan(spec: ImageSpec, plan: _Plan) -> None:
    """What the file's structure says is missing where no native plan reads it: a LIF's
    memory blocks (any layout), an MRC's header, a CZI's subblock directory, an ND2's end."""
    note: str | None = None
    if spec.format == LIF_FORMAT:
        note = _lif_cut(spec)
    elif spec.format == czi.CZI_FORMAT:
        note = czi.damage_note(spec.path)
        header = czi.header_note(spec.path)  # the pixels decode otherwise: not zeros
        if header is not None:
            plan.damage.append(header)
    elif spec.format == nd2check.ND2_FORMAT:
        note = _nd2_cut(spec.path)
    elif spec.format == mrc.MRC_FORMAT:
        plane_bytes = spec.size_y * spec.size_x * spec.samples * spec.itemsize
        count = spec.size_z * spec.size_c * spec.size_t
        plan.missing = mrc.missing_planes(spec.path, plane_bytes, count)
        if plan.missing.size:
            plan.truncation.append(_truncation_note(spec, plan.missing))
        surplus = mrc.surplus_note(spec.path, plane_bytes, count)
        if surplus is not None:
            plan.damage.append(surplus)
        return
    if note is not None:  # which planes is not known: those Bio-Formats pads with zeros raise
        plan.truncation.append(note)
        plan.zero_planes_missing = True


def _segment_map(spec: ImageSpec, plan: _Plan) -> NativeRecipe | None:
    """The TIFF page map whose compressed strips or tiles the Bio-Formats path decodes once
    more (``Damage.segments``), or None: a verified plan's, else for a TIFF-based format with
    no native reader (SVS...) an unverified map, which only says which strips to check."""
    recipe = plan.recipe
    if recipe is None:
        if plan.level != logging.INFO or spec.resolution != 0 or not tiffcheck.is_tiff(spec.path):
            return None  # contradicted by Bio-Formats, a sub-resolution, not a TIFF
        try:
            recipe = tiff.plan(spec)
        except Exception:  # no map for this layout (or a structure that does not parse)
            return None
    if recipe.reader != "tiff" or not tiff.compressed(recipe):
        return None
    return recipe


def choose(spec: ImageSpec, pixels: str | None = None) -> Choice:
    """Pick the pixel source of ``spec``: a verified native recipe, or Bio-Formats.

    Whatever the source, opening asks the file's structure (LIF memory blocks, TIFF strips)
    where each plane lies and compares a few planes both ways; damage found there is warned
    (:class:`~bfdask.errors.TruncatedFileWarning`, :class:`~bfdask.errors.CorruptFileWarning`)
    and kept in the choice's :class:`~bfdask.damage.Damage`, which makes the damaged planes
    raise when read on either path. A fallback to Bio-Formats is for a layout with no native
    plan, never a way around damage.

    Parameters
    ----------
    spec
        The series, as Bio-Formats describes it.
    pixels
        ``"auto"`` (default: native where a plan exists and verifies, else Bio-Formats),
        ``"bioformats"`` or ``"native"``; None reads ``BFDASK_PIXELS`` / ``bfdask.pixels``.

    Raises
    ------
    NativePixelsError
        With ``pixels="native"``, when the series has no plan or it fails verification.
    """
    mode = resolve_mode(pixels)
    name = ("choice", spec.series, mode)
    kept = None
    if spec.resolution == 0:
        kept = answers.recall(spec.path, name, lambda v: _is_kept_choice(v, spec))
    if kept is not None:  # chosen for this spec of this file version
        recalled: Choice = kept[1]
        _log_choice(spec, recalled, kept[2])
        return recalled
    started = time.perf_counter()
    plan = _plan(spec)
    seconds = time.perf_counter() - started
    for note in plan.truncation:
        warnings.warn(note, TruncatedFileWarning, stacklevel=3)
    for note in plan.damage:
        warnings.warn(note, CorruptFileWarning, stacklevel=3)
    choice = _decide(spec, mode, plan, seconds)
    _log_choice(spec, choice, plan.level)
    if spec.resolution == 0 and not (plan.truncation or plan.damage):  # damage: ask again
        answers.remember(spec.path, {name: (spec, choice, plan.level)}, spec.stamp)
    return choice


def _is_kept_choice(value: Any, spec: ImageSpec) -> bool:
    """Whether ``value`` is a kept ``(spec, choice, log level)`` of this very ``spec``."""
    return (
        isinstance(value, tuple)
        and len(value) == 3
        and value[0] == spec
        and isinstance(value[1], Choice)
        and isinstance(value[2], int)
        and (value[1].recipe is None or value[1].recipe.series == spec.series)
    )


def _log_choice(spec: ImageSpec, choice: Choice, level: int) -> None:
    """Log the pixel source chosen (a fallback to Bio-Formats at the plan's level)."""
    where = f"{spec.path!r} series {spec.series}"
    if choice.recipe is not None:
        log.debug(
            "native pixels for %s: %s (%.1f ms)", where, choice.reason, choice.verify_seconds * 1e3
        )
    elif choice.reason.startswith(_NO_PLAN):
        log.log(level, "Bio-Formats pixels for %s: %s", where, choice.reason[len(_NO_PLAN) :])


def _decide(spec: ImageSpec, mode: str, plan: _Plan, seconds: float) -> Choice:
    """:func:`choose`'s decision, once the plan is built and its damage warned."""
    where = f"{spec.path!r} series {spec.series}"
    damage = Damage(
        missing=runs(plan.missing.tolist()),
        zero_planes_missing=plan.zero_planes_missing,
        notes=tuple(plan.truncation + plan.damage),
    )
    recipe = plan.recipe
    if recipe is None or mode == "bioformats":  # native reads check their strips themselves
        damage = dataclasses.replace(damage, segments=_segment_map(spec, plan))
    if recipe is not None and mode != "bioformats":
        how = native.reader(recipe.reader).describe(recipe)
        reason = f"{how}, verified against Bio-Formats on {plan.compared} plane(s)"
        if plan.compared == 0:
            reason = f"{how}; no plane left to verify against Bio-Formats: every one is damaged"
        return Choice(recipe, reason, seconds, damage)
    if mode == "bioformats":
        return Choice(None, "pixels='bioformats' was asked", seconds, damage)
    if mode == "native":
        raise NativePixelsError(
            f"pixels='native' was asked for {where}, but it has no verified native plan: "
            f"{plan.problem}. Use pixels='auto' (falls back to Bio-Formats) or 'bioformats'."
        )
    return Choice(None, f"{_NO_PLAN}{plan.problem}", seconds, damage)


def describe(path: str | os.PathLike[str], pixels: str | None = None) -> list[dict[str, Any]]:
    """Which pixel source each series of ``path`` uses, and why (for ``bfdask info``).

    Returns
    -------
    list of dict
        One per series: ``series`` (index), ``name``, ``pixels`` (``"native"`` or
        ``"bioformats"``), ``reason``, ``verify_ms``.
    """
    from .metadata import read_spec

    checked = readers.check_path(path)
    count = readers.get_reader(checked).series_count
    out = []
    for index in range(count):
        spec = read_spec(checked, index)
        choice = choose(spec, pixels)
        out.append(
            {
                "series": index,
                "name": spec.series_name,
                "pixels": choice.source,
                "reason": choice.reason,
                "verify_ms": round(choice.verify_seconds * 1e3, 2),
            }
        )
    return out
