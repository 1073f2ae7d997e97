"""Bio-Formats' answers kept across processes (:mod:`bfdask.answers`, issue #18).

A second process opening the same version of a file gets the same labeled array, warns the
same warnings, and starts no JVM; a changed file, a log cut short or a hostile log costs
time, never a wrong answer. Every run is a real child process with a real JVM.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from shared_data import DATA, MAKE_LIF, requires_data, requires_make_lif

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [requires_make_lif, pytest.mark.slow]

CHILD = r"""
import json, sys, warnings
import bfdask
from bfdask import answers, jvm
path, mode = sys.argv[1], sys.argv[2]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    data = bfdask.open(path)
    names = [s.name for s in bfdask.list_series(path)]
    out = {"names": names, "dims": list(data.dims), "shape": list(data.shape),
           "ome": data.attrs["ome_xml"], "source": data.attrs.get("pixels")}
    if mode == "sum":
        out["sum"] = int(data.sum().compute())
        out["bioformats_sum"] = None
    elif mode == "both":
        out["sum"] = int(data.sum().compute())
        out["bioformats_sum"] = int(bfdask.open(path, pixels="bioformats").sum().compute())
ours = {w.category.__name__ for w in caught if w.category.__module__.startswith("bfdask")}
out["warnings"] = sorted(ours)
out["jvm"] = jvm.is_running()
print(json.dumps(out))
"""


def _make_lif(path: Path, seed: int = 5, **sizes: int) -> Path:
    spec = importlib.util.spec_from_file_location("make_lif_for_answers", MAKE_LIF)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    shape = {"series": 2, "t": 2, "z": 3, "c": 2, "y": 40, "x": 32, **sizes}
    lif = module.Spec(*shape.values(), "uint16", "markfind", seed, None)
    module.write_lif(str(path), lif, verbose=False)
    return path


def _child(path: Path, memo: Path, mode: str = "sum") -> dict[str, Any]:
    env = {**os.environ, "BFDASK_MEMO_DIR": str(memo)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), mode],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _log(memo: Path) -> Path:
    logs = list((memo / "answers").glob("*.pickle"))
    assert len(logs) == 1, logs
    return logs[0]


def test_second_process_starts_no_jvm_and_gets_the_same_array(tmp_path: Path) -> None:
    lif, memo = _make_lif(tmp_path / "a.lif"), tmp_path / "memo"
    first = _child(lif, memo, "both")
    assert first["jvm"] and first["sum"] == first["bioformats_sum"]
    second = _child(lif, memo)
    assert not second["jvm"], "the answers were asked again"
    assert {k: v for k, v in second.items() if k != "jvm"} == {
        k: v for k, v in first.items() if k != "jvm"
    } | {"bioformats_sum": None}


def test_a_changed_file_is_asked_again(tmp_path: Path) -> None:
    lif, memo = _make_lif(tmp_path / "a.lif"), tmp_path / "memo"
    first = _child(lif, memo)
    st = lif.stat()
    os.utime(lif, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same bytes
    assert _child(lif, memo)["jvm"]
    # rewritten in place with other pixels, size and mtime restored (as `touch -r` does)
    rewritten = _make_lif(tmp_path / "b.lif", seed=6)
    assert rewritten.stat().st_size == st.st_size
    with open(lif, "r+b") as f:
        f.write(rewritten.read_bytes())
    os.utime(lif, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = _child(lif, memo, "both")
    assert again["jvm"] and again["sum"] == again["bioformats_sum"] != first["sum"]


@requires_data
def test_a_damaged_file_is_asked_again_and_warns_again(tmp_path: Path) -> None:
    """Damage found at open is never kept: every open verifies and warns again."""
    whole = (DATA / "tiff" / "stuck.tif").read_bytes()  # 3 planes; half of it: plane 2 cut
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole[: len(whole) // 2])
    memo = tmp_path / "memo"
    first, second = _child(cut, memo, "open"), _child(cut, memo, "open")
    assert "TruncatedFileWarning" in first["warnings"]
    assert second["warnings"] == first["warnings"]
    assert second["jvm"], "the damaged file's choice was kept"


def test_a_log_cut_short_or_garbled_is_ignored(tmp_path: Path) -> None:
    lif, memo = _make_lif(tmp_path / "a.lif"), tmp_path / "memo"
    first = _child(lif, memo)
    log = _log(memo)
    log.write_bytes(log.read_bytes()[: log.stat().st_size // 2])
    assert _child(lif, memo)["sum"] == first["sum"]
    log.write_bytes(b"\x80\x04not a pickle at all")
    again = _child(lif, memo)
    assert again["sum"] == first["sum"] and again["jvm"]
    assert not _child(lif, memo)["jvm"], "the garbled log was not replaced"


class _Hostile:
    """Unpickles by calling ``os.system``: an answers log must never run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_log_runs_nothing(tmp_path: Path) -> None:
    lif, memo = _make_lif(tmp_path / "a.lif"), tmp_path / "memo"
    first = _child(lif, memo)
    log, marker = _log(memo), tmp_path / "ran"
    with open(log, "ab") as f:  # a record after the real ones
        f.write(pickle.dumps((("names",), _Hostile(marker)), protocol=4))
    assert _child(lif, memo)["sum"] == first["sum"]
    log.write_bytes(pickle.dumps(_Hostile(marker), protocol=4))
    assert _child(lif, memo)["sum"] == first["sum"]
    assert not marker.exists(), "unpickling an answers log ran code"


def test_memo_dir_off_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bfdask import answers, config
    from bfdask.files import file_stamp

    monkeypatch.setenv("BFDASK_MEMO_DIR", "")
    assert config.memo_dir() is None
    lif = str(_make_lif(tmp_path / "a.lif"))
    answers.remember(lif, {("names",): ("x",)}, file_stamp(lif), used_files=lambda: [lif])
    assert answers.recall(lif, ("names",), lambda v: True) is None
    assert not list(tmp_path.rglob("*.pickle"))


# -- the log itself, in this process ------------------------------------------------------------


def _plain_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BFDASK_MEMO_DIR", str(tmp_path / "memo"))
    data = tmp_path / "plain.bin"
    data.write_bytes(b"x" * 100)
    return str(data)


def test_answers_are_kept_only_for_the_version_they_were_read_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bfdask import answers
    from bfdask.files import file_stamp

    path = _plain_file(tmp_path, monkeypatch)
    then = file_stamp(path)
    os.utime(path, ns=(0, 10**9))  # the file changed after its answers were read
    answers.remember(path, {("names",): ("a",)}, then, used_files=lambda: [path])
    assert answers.recall(path, ("names",), lambda v: True) is None
    answers.remember(path, {("names",): ("b",)}, file_stamp(path), used_files=lambda: [path])
    assert answers.recall(path, ("names",), lambda v: True) == ("b",)


def test_a_recalled_value_of_the_wrong_kind_is_not_an_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bfdask import answers
    from bfdask.files import file_stamp

    path = _plain_file(tmp_path, monkeypatch)
    answers.remember(path, {("names",): 42}, file_stamp(path), used_files=lambda: [path])
    assert answers.recall(path, ("names",), lambda v: v == 42) == 42
    assert answers.recall(path, ("names",), lambda v: isinstance(v, tuple)) is None


def test_an_append_never_lands_in_a_log_replaced_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bfdask import answers
    from bfdask.files import file_stamp

    path = _plain_file(tmp_path, monkeypatch)
    answers.remember(path, {("names",): ("a",)}, file_stamp(path), used_files=lambda: [path])
    held = answers._current(path)
    assert held is not None
    where = held.where
    other = answers._start(where, ("another key",))  # another process replaced the log
    before = where.read_bytes()
    answers._append(held, {("xml",): "<OME/>"})
    assert where.read_bytes() == before and other.records == {}


def test_a_log_with_a_key_of_another_shape_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older format's key (or a forged one) costs one miss, then a new log holds."""
    from bfdask import answers
    from bfdask.files import file_stamp

    path = _plain_file(tmp_path, monkeypatch)
    where = answers._log_path(path)
    assert where is not None
    answers._start(where, (2, "code", "jar", False, ((path, file_stamp(path)),)))
    assert answers.recall(path, ("names",), lambda v: True) is None
    answers.remember(path, {("names",): ("a",)}, file_stamp(path), used_files=lambda: [path])
    assert answers.recall(path, ("names",), lambda v: True) == ("a",)
