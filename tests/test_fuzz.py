"""Damaged and hostile files (issue #13): the seeded fuzz slice CI runs, and its engine's parts.

``test_fuzz_slice`` damages a dozen corpus files across formats (truncations, byte flips,
zeroed ranges...: four consecutive entries of ``benchmarks.fuzz.SCHEDULE`` each), reads each
damaged copy whole with ``pixels="auto"`` and ``"bioformats"`` in child processes under a time
limit and an address-space cap, and holds the result to a ratchet: no hang, no crash, only
bfdask errors, no silent disagreement between the modes -- ever; no silent wrong result outside
raw pixel bytes except the known open defects listed in ``tests/fuzz_known_defects.tsv``; and
no line of that file that now reads right (remove it: the list only shrinks). Its failure
prints the table and the lines to add or remove; ``python -m benchmarks fuzz --update-known``
rewrites the file from a slice run. The full campaign is ``python -m benchmarks fuzz``
(``benchmarks/RESULTS.md``, section 6). ``BFDASK_FUZZ_SEED`` / ``BFDASK_FUZZ_CASES`` change
the slice's seed and cases per file (the baseline applies to its own seed only).

The other tests check the engine without Java: seeded mutations, where the pixel bytes are,
the classification, the report section, and that a hanging or dying child is caught.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from shared_data import DATA, requires_data

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the benchmarks package sits beside bfdask
    sys.path.insert(0, str(REPO))

from benchmarks import fuzz  # noqa: E402

SEED = int(os.environ.get("BFDASK_FUZZ_SEED", str(fuzz.SLICE_SEED)))
CASES = int(os.environ.get("BFDASK_FUZZ_CASES", str(fuzz.SLICE_CASES)))


# -- the slice ------------------------------------------------------------------------------


@requires_data
@pytest.mark.slow  # 20-25 s on 2 idle cores, up to a minute on a loaded machine; CI runs it
def test_fuzz_slice() -> None:
    baseline = fuzz.read_known()  # before the run: a malformed file fails at once
    # the fixed folder: bfdask picks the planes it verifies at open from the file's path
    with fuzz.fixed_work(log=print) as work:
        cfg = fuzz.Config(
            work=work,
            seed=SEED,
            cases_per_file=CASES,
            originals=fuzz.corpus(ci=True),
            data=DATA,
            workers=2,
        )
        campaign = fuzz.run(cfg)
    held = fuzz.ratchet(campaign, baseline)
    report = f"{fuzz.summary(campaign)}\n\n{fuzz.ratchet_report(held)}"
    print(report)  # pytest -s shows the table even when everything passed
    assert len(cfg.originals) >= 12
    complete = not campaign.skipped and len(campaign.results) == CASES * len(cfg.originals)
    if not complete or any(len(r.modes) != len(fuzz.MODES) for r in campaign.results):
        pytest.fail(f"the slice did not run whole:\n{report}", pytrace=False)
    if held.failed:  # a hang, crash, foreign error, disagreement; a new or a fixed silent wrong
        pytest.fail(report, pytrace=False)


def test_the_known_defects_file_parses_and_matches_the_slice() -> None:
    """The committed baseline: its header, its seed and cases, its keys on the schedule."""
    text = fuzz.KNOWN_DEFECTS.read_text()
    assert "benchmarks/RESULTS.md, section 6" in text
    assert "python -m benchmarks fuzz --update-known" in text
    baseline = fuzz.read_known()
    assert (baseline.seed, baseline.cases) == (fuzz.SLICE_SEED, fuzz.SLICE_CASES)
    slice_keys = {o.key for o in fuzz.corpus(ci=True)}
    keys = [e.key for e in baseline.entries]
    assert len(keys) == len(set(keys)), "a line is listed twice"
    for entry in baseline.entries:
        key, _, index = entry.case.partition("#")
        assert entry.dataset == key in slice_keys, entry
        assert int(index) < baseline.cases and entry.mode in fuzz.MODES, entry


# -- mutations and byte ranges ----------------------------------------------------------------


def test_mutations_are_seeded_and_each_changes_the_file() -> None:
    data = bytes(random.Random(1).randbytes(20_000))
    original = fuzz.Original("x", "X", ("x.bin",))
    segments = [fuzz.Segment(1000, 15_000, "raw")]
    first = fuzz.make_cases(original, data, segments, 40, seed=5)
    again = fuzz.make_cases(original, data, segments, 40, seed=5)
    other = fuzz.make_cases(original, data, segments, 40, seed=6)
    assert [c.mutation for c in first] == [c.mutation for c in again]
    assert [c.mutation for c in first] != [c.mutation for c in other]
    kinds = {c.mutation.kind for c in first}
    assert kinds == {"truncate", "flip", "zero", "garble", "append", "append_head"}
    for case in first:
        damaged = case.mutation.apply(data)
        assert damaged != data, case.mutation.describe()
        if case.mutation.kind == "truncate":
            assert 0 < len(damaged) < len(data)
        if case.mutation.region == "pixels" and case.mutation.kind != "truncate":
            assert 1000 <= case.mutation.offset < 15_000
        if case.mutation.region == "structure":
            assert not 1000 <= case.mutation.offset < 15_000


def test_ranges_merge_complement_cover() -> None:
    assert fuzz.merge([(5, 9), (0, 2), (8, 12), (3, 3)]) == [(0, 2), (5, 12)]
    assert fuzz.complement([(0, 2), (5, 12)], 20) == [(2, 5), (12, 20)]
    assert fuzz.covered([(6, 8), (10, 12)], [(0, 2), (5, 12)])
    assert not fuzz.covered([(4, 6)], [(0, 2), (5, 12)])
    assert fuzz.changed_ranges(b"abcdef", b"abXdeY") == [(2, 3), (5, 6)]
    assert fuzz.changed_ranges(b"abc", b"ab") is None


def test_tiff_pixel_bytes_found_verified_and_excused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 60000, (4, 32, 48), dtype=np.uint16)
    raw_path = tmp_path / "raw.tif"
    tifffile.imwrite(raw_path, stack, photometric="minisblack")
    segments = fuzz.pixel_segments(raw_path, "tiff")
    assert {s.codec for s in segments} == {"raw"}
    data = raw_path.read_bytes()
    raw = fuzz.merge((s.start, s.stop) for s in segments)
    assert fuzz.verify_raw(raw, data, [stack]) == raw
    assert fuzz.verify_raw(raw, data, [stack[::-1, ::-1]]) == []  # not where the bytes are
    inside = bytearray(data)
    inside[raw[0][0] + 100] ^= 0x10
    assert fuzz.excuse(data, bytes(inside), raw, segments) == "raw"
    outside = bytearray(data)
    outside[2] ^= 0x10  # the TIFF header
    assert fuzz.excuse(data, bytes(outside), raw, segments) == ""
    assert fuzz.excuse(data, data[:-10], raw, segments) == ""  # a truncation: never
    start = raw[0][0]
    flipped = bytes(x ^ 0xFF for x in data[start - 4 : start + 4])  # 4 bytes before, 4 in
    across = data[: start - 4] + flipped + data[start + 4 :]
    assert fuzz.excuse(data, across, raw, segments) == "mixed"
    only = fuzz.raw_part(data, across, raw)
    assert fuzz.changed_ranges(data, only) == fuzz.intersect([(start - 4, start + 4)], raw)

    deflated = tmp_path / "deflate.tif"
    tifffile.imwrite(deflated, stack, photometric="minisblack", compression="zlib")
    coded = fuzz.pixel_segments(deflated, "tiff")
    assert {s.codec for s in coded} == {"deflate"}
    before = deflated.read_bytes()
    after = bytearray(before)
    after[coded[0].stop - 1] ^= 0xFF  # the zlib stream's checksum: decoding fails
    with pytest.raises(zlib.error):
        zlib.decompress(after[coded[0].start : coded[0].stop])
    assert fuzz.excuse(before, bytes(after), [], coded) == ""


def test_packbits_literal_flip_is_excused_a_run_header_is_not(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (16, 200), dtype=np.uint8)
    path = tmp_path / "packbits.tif"
    tifffile.imwrite(path, noise, compression="packbits")
    (segment,) = fuzz.pixel_segments(path, "tiff")
    assert segment.codec == "packbits"
    before = path.read_bytes()
    literal = bytearray(before)
    literal[segment.start + 5] ^= 0x01  # inside the first literal run: decodes the same size
    assert fuzz.excuse(before, bytes(literal), [], [segment]) == "codec"
    header = bytearray(before)
    header[segment.start] ^= 0x40  # the first run's length: decodes to another size
    assert fuzz.excuse(before, bytes(header), [], [segment]) == ""


# -- classification -------------------------------------------------------------------------


def _series(index: int = 0, **kw: object) -> dict[str, Any]:
    record: dict[str, Any] = {
        "index": index,
        "error": None,
        "warnings": [],
        "shape": [1, 1, 1, 4, 4],
        "dtype": "uint8",
        "pixels": "native",
        "partial": False,
        "digest": "d0",
        "equal": True,
    }
    record.update(kw)
    return record


def _obs(*series: dict[str, Any], count: int | None = None, **kw: object) -> dict[str, Any]:
    record: dict[str, Any] = {
        "error": None,
        "warnings": [],
        "series": list(series),
        "series_count": len(series) if count is None else count,
    }
    record.update(kw)
    return record


OURS = {"cls": "TruncatedFileWarning", "module": "bfdask.errors", "ours": True, "message": "cut"}
THEIRS = {"cls": "RuntimeWarning", "module": "numpy", "ours": False, "message": "nan"}
FOREIGN = {"cls": "KeyError", "module": "builtins", "ours": False, "stage": "read", "message": "x"}
CORRUPT = {
    "cls": "CorruptFileError",
    "module": "bfdask.errors",
    "ours": True,
    "stage": "read",
    "message": "plane 3",
}


def test_classify_every_outcome() -> None:
    ref = _obs(_series(0), _series(1))
    differs = {"equal": False, "ndiff": 3, "size": 16, "digest": "d1"}
    cases = [
        (_obs(_series(0), _series(1)), "", "identical"),
        (_obs(_series(0), _series(1, error=CORRUPT)), "", "error"),
        (_obs(error=dict(CORRUPT, stage="list"), count=None), "", "error"),
        (_obs(_series(0), _series(1, error=FOREIGN)), "", "foreign_error"),
        (_obs(_series(0), _series(1, **differs, warnings=[OURS])), "", "warned"),
        (_obs(_series(0), _series(1, **differs), warnings=[OURS]), "", "warned"),
        (_obs(_series(0), _series(1, **differs, warnings=[THEIRS])), "", "silent_wrong"),
        (_obs(_series(0), _series(1, **differs)), "raw", "silent_wrong_raw"),
        (_obs(_series(0), _series(1, **differs)), "codec", "silent_wrong_codec"),
        (_obs(_series(0), _series(1, **differs, alt_digest="d1")), "mixed", "silent_wrong_raw"),
        (_obs(_series(0), _series(1, **differs, alt_digest="d2")), "mixed", "silent_wrong"),
        (_obs(_series(0), _series(1, **differs, shape=[1, 1, 1, 2, 4])), "raw", "silent_wrong"),
        (_obs(_series(0)), "raw", "silent_wrong"),  # a series gone, silently
        (_obs(_series(0), warnings=[OURS]), "", "warned"),
        (_obs(_series(0), _series(1, error=CORRUPT), _series(2, equal=False)), "", "silent_wrong"),
        ({"internal": "Traceback...\nValueError: oops"}, "", "harness"),
    ]
    for obs, excused, expected in cases:
        outcome, detail = fuzz.classify(obs, ref, excused)
        assert outcome == expected, (obs, outcome, detail)
    assert fuzz.ALLOWED == {
        "identical",
        "error",
        "warned",
        "silent_wrong_raw",
        "silent_wrong_codec",
    }


def test_disagreement_only_between_silent_results() -> None:
    a = _obs(_series(0, digest="aa"))
    b = _obs(_series(0, digest="bb", pixels="bioformats"))
    assert "series 0" in fuzz.disagreement(a, b)
    assert fuzz.disagreement(a, _obs(_series(0, digest="aa"))) == ""
    assert fuzz.disagreement(a, _obs(_series(0, error=CORRUPT))) == ""
    assert fuzz.disagreement(a, _obs(_series(0, digest="bb", warnings=[OURS]))) == ""
    assert "series count" in fuzz.disagreement(a, _obs(_series(0, digest="aa"), _series(1)))


# -- the report -----------------------------------------------------------------------------


def test_results_section_replaced_in_place_and_kept_by_a_rewrite() -> None:
    doc = "# results\n\n## 5. Native\n\ntable\n\n## Plots\n\n![a](a.png)\n"
    section = f"{fuzz.SECTION_BEGIN}\n## 6. Fuzz\n\nfirst\n{fuzz.SECTION_END}\n"
    once = fuzz.with_section(doc, section)
    assert once.index("## 6. Fuzz") < once.index("## Plots")
    path_text = fuzz.with_section(fuzz._without_section(once), section.replace("first", "second"))
    assert path_text.count(fuzz.SECTION_BEGIN) == 1 and "second" in path_text
    rewritten = fuzz.keep_section(path_text, doc)  # the benchmark harness rewrote the file
    assert "second" in rewritten and rewritten.count(fuzz.SECTION_BEGIN) == 1
    assert fuzz.keep_section("no section", doc) == doc


# -- the ratchet ----------------------------------------------------------------------------


def _campaign(tmp_path: Path, outcomes: dict[tuple[int, str], str]) -> Any:
    """A campaign of 3 seeded cases of one dataset; (case index, mode) -> outcome."""
    original = fuzz.Original("x", "X", ("x.bin",))
    data = bytes(random.Random(2).randbytes(5000))
    cases = fuzz.make_cases(original, data, [fuzz.Segment(500, 4000, "raw")], 3, seed=13)
    campaign = fuzz.Campaign(fuzz.Config(work=tmp_path, seed=13, cases_per_file=3))
    for case in cases:
        result = fuzz.CaseResult(case, "")
        for mode in fuzz.MODES:
            outcome = outcomes.get((case.index, mode), "identical")
            result.modes[mode] = fuzz.ModeResult(outcome, f"{outcome} detail", 0.1)
        campaign.results.append(result)
    return campaign


def test_ratchet_passes_known_fails_new_fixed_stale_and_never_allowed(tmp_path: Path) -> None:
    today = _campaign(tmp_path, {(0, "auto"): "silent_wrong", (1, "bioformats"): "silent_wrong"})
    path = tmp_path / "known.tsv"
    assert "+x\tx#0\t" in fuzz.update_known(path, today)
    baseline = fuzz.read_known(path)
    assert [(e.case, e.mode) for e in baseline.entries] == [("x#0", "auto"), ("x#1", "bioformats")]
    assert (baseline.seed, baseline.cases) == (13, 3)
    held = fuzz.ratchet(today, baseline)
    assert not held.failed and len(held.known) == 2

    # one fixed (now an error), one new silent wrong, one hang
    later = _campaign(
        tmp_path,
        {(0, "auto"): "error", (1, "bioformats"): "silent_wrong", (2, "auto"): "silent_wrong"},
    )
    later.results[2].modes["bioformats"] = fuzz.ModeResult("hang", "no answer", 20.0)
    held = fuzz.ratchet(later, baseline)
    assert held.failed
    assert [(e.case, e.mode) for e in held.fixed] == [("x#0", "auto")]
    assert [(e.case, e.mode) for e in held.new] == [("x#2", "auto")]
    assert [(r.case.id, m, o) for r, m, o, _ in held.always] == [("x#2", "bioformats", "hang")]
    text = fuzz.ratchet_report(held, path)
    assert "NEVER ALLOWED" in text and "hang" in text
    new_line = next(line for line in text.splitlines() if line.startswith("+"))
    assert new_line.split("\t")[:5] == [
        "+x",
        "x#2",
        later.results[2].case.mutation.describe(),
        "auto",
        "silent_wrong",
    ]
    gone = next(line for line in text.splitlines() if line.startswith("-"))
    assert gone.split("\t")[1:4] == ["x#0", baseline.entries[0].mutation, "auto"]

    # a disagreement always fails, even with every silent wrong result listed
    agreed = _campaign(tmp_path, {(0, "auto"): "silent_wrong", (1, "bioformats"): "silent_wrong"})
    agreed.results[0].disagree = "series 0: pixels differ"
    assert fuzz.ratchet(agreed, baseline).always

    # a known silent wrong that now hangs is not "fixed": the hang fails, the line stays
    hung = _campaign(tmp_path, {(1, "bioformats"): "silent_wrong", (0, "auto"): "hang"})
    held = fuzz.ratchet(hung, baseline)
    assert held.always and not held.fixed and not held.new

    # another mutation under the same case id: stale; another seed: the baseline does not apply
    moved = fuzz.Baseline(13, 3, [dataclasses.replace(baseline.entries[0], mutation="flip@1")])
    assert fuzz.ratchet(today, moved).stale
    other_seed = fuzz.ratchet(today, fuzz.Baseline(7, 3, baseline.entries))
    assert other_seed.failed and len(other_seed.new) == 2 and "seed 7" in other_seed.note

    # fewer cases than the baseline's: lines of cases not run are neither fixed nor failing
    fewer = _campaign(tmp_path, {(0, "auto"): "silent_wrong"})
    fewer.results = fewer.results[:1]
    held = fuzz.ratchet(fewer, baseline)
    assert not held.failed and [e.case for e in held.not_run] == ["x#1"]


def test_known_defects_file_refuses_outcomes_that_always_fail(tmp_path: Path) -> None:
    path = tmp_path / "known.tsv"
    path.write_text("# seed: 13\nx\tx#0\ttruncate@5 (end)\tauto\thang\t\n")
    with pytest.raises(ValueError, match="hang"):
        fuzz.read_known(path)
    assert fuzz.read_known(tmp_path / "missing.tsv").entries == []


def test_fixed_work_folder_is_emptied_and_held_by_one_run_at_a_time(tmp_path: Path) -> None:
    root = tmp_path / "fuzz-work"
    root.mkdir()
    (root / "left-over").write_text("x")  # a previous run killed mid-way
    with fuzz.fixed_work(root) as work:
        assert work == root and not any(work.iterdir())
        (work / "cases").mkdir()
        with pytest.raises(TimeoutError, match="another fuzz run"):
            with fuzz.fixed_work(root, wait=0.2):
                pass
    assert not any(root.iterdir())
    with fuzz.fixed_work(root, wait=0.2) as again:  # released
        assert again == root


def test_close_handles_closes_bfdask_s_one_handle_cache() -> None:
    from bfdask import handles

    class Handle:
        closed = False

        def close(self) -> None:
            self.closed = True

    handle = handles.put(("fuzz-test", "/nowhere/x.tif"), Handle())
    fuzz._close_handles()
    assert handle.closed and handles.count("fuzz-test") == 0


# -- the child pool ---------------------------------------------------------------------------


def test_a_hanging_or_dying_child_is_caught_and_replaced(tmp_path: Path) -> None:
    cfg = fuzz.Config(work=tmp_path, workers=1, jvm=False, timeout=3.0, start_timeout=60.0)
    (tmp_path / "logs").mkdir()
    pool = fuzz.Pool(cfg, tmp_path / "logs")
    replies: dict[str, dict[str, Any]] = {}
    tasks: dict[str, dict[str, Any]] = {
        "hang": {"op": "sleep", "seconds": 60},
        "crash": {"op": "exit", "code": 3},
        "fine": {"op": "sleep", "seconds": 0},
        "bad": {"op": "nonsense"},
    }
    try:
        pool.run(tasks, tasks.__getitem__, replies.__setitem__, cfg.timeout)
    finally:
        pool.close()
    assert "hang" in replies["hang"] and "no answer in 3 s" in replies["hang"]["hang"]
    assert "crash" in replies["crash"] and "exit code 3" in replies["crash"]["crash"]
    assert replies["fine"] == {"slept": 0}
    assert "unknown request" in replies["bad"]["internal"]
    assert pool.restarts == 2
