"""The process's one Java virtual machine.

A process can start a JVM once and never again after it is stopped, and every thread that
calls Java must be attached first. This module hides both facts behind :func:`ensure`, on
whichever bridge :mod:`bfdask.bridge` chose (javabridge or JPype):

* the JVM starts lazily, under a lock, on the first call in a process;
* every calling thread is attached (as a Java daemon thread) and detached when it ends;
* the heap size and Bio-Formats' log level are resolved once, at start
  (keyword > ``BFDASK_*`` env var > dask config ``bfdask.jvm.*`` > a default from the machine);
* at interpreter exit, per-thread resources are released and the JVM is shut down, with a bound
  on the wait so that an exiting script never hangs on Java;
* a forked child of a process whose JVM runs gets a clear :class:`~bfdask.JVMError` (a JVM does
  not survive ``fork``; use ``spawn``, as dask.distributed does by default).

Importing this module starts nothing: xarray imports every backend at startup.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import bridge, config, jvmsignals, malloc
from .errors import JVMError
from .javafind import bioformats_jar, java_feature_version, java_home, libjvm_path, loaded_libjvm

if TYPE_CHECKING:
    from collections.abc import Callable

_MiB = 1 << 20
_GiB = 1 << 30

_lock = threading.Lock()
_local = threading.local()


class _State:
    """What this process knows about its JVM (one instance, module-private)."""

    def __init__(self) -> None:
        self.pid: int | None = None  # process that started the JVM
        self.java_home: Path | None = None
        self.libjvm: Path | None = None
        self.max_heap: int | None = None
        self.bioformats_jar: Path | None = None
        self.thread_exit_callbacks: list[Callable[[], None]] = []
        self.shutdown_callbacks: list[Callable[[], None]] = []


_state = _State()


# -- settings -------------------------------------------------------------------------------


def parse_size(value: str | int) -> int:
    """Parse a heap size like ``"4G"``, ``"512m"``, ``"2GiB"`` or a byte count into bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
    if not match:
        raise ValueError(f"Cannot parse heap size {value!r}; use e.g. '4G' or '512M'.")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * {"": 1, "k": 1 << 10, "m": _MiB, "g": _GiB, "t": 1 << 40}[unit])


def _memory_available() -> int:
    """Memory this process may use: the cgroup limit if set, else physical memory."""
    import psutil

    total = int(psutil.virtual_memory().total)
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def _worker_memory_limit() -> int | None:
    """The memory limit of the dask.distributed worker running this code, if any."""
    if "distributed" not in sys.modules:  # no worker without it (and importing it costs ~0.5 s)
        return None
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return None
    return int(limit) if limit else None


def default_max_heap() -> int:
    """Heap for a new JVM when nothing is configured.

    On a dask worker with a memory limit: a quarter of that limit (at least 512 MiB), since the
    heap lives inside the worker's memory. Elsewhere: an eighth of the available memory, between
    1 and 8 GiB -- enough for the metadata of very large files, and never Java's own guess of a
    quarter of the machine, which starves pixel buffers and other workers.
    """
    worker_limit = _worker_memory_limit()
    if worker_limit:
        return heap_for_worker(worker_limit)
    return min(max(_GiB, _memory_available() // 8), 8 * _GiB)


def heap_for_worker(memory_limit: int) -> int:
    """Heap for a dask worker with ``memory_limit`` bytes: a quarter of it, at least 512 MiB."""
    return max(512 * _MiB, int(memory_limit) // 4)


def _resolve_max_heap(keyword: str | int | None) -> int:
    value = config.get("bfdask.jvm.max-heap", keyword)
    heap = default_max_heap() if value in (None, "") else parse_size(value)
    if heap < 64 * _MiB:
        raise ValueError(f"A Java heap of {heap} bytes is too small for Bio-Formats; use >= 64M.")
    return heap


# -- lifecycle ------------------------------------------------------------------------------


class _Attachment:
    """Lives in a thread's ``threading.local``; when the thread ends, it detaches the thread.

    CPython clears a thread's locals in that thread as it exits, so ``__del__`` runs there and
    can release the thread's Java resources (readers) before ``DetachCurrentThread``.
    """

    def __init__(self) -> None:
        bridge.current().attach()
        self.pid = os.getpid()

    def __del__(self) -> None:
        if self.pid != os.getpid():
            return
        try:
            for callback in list(_state.thread_exit_callbacks):
                callback()
            bridge.current().detach()
        except Exception:  # pragma: no cover - interpreter teardown
            pass


def is_running() -> bool:
    """Whether this process has started its JVM."""
    return _state.pid == os.getpid()


def ensure(max_heap: str | int | None = None) -> None:
    """Start this process's JVM if needed and attach the calling thread to it.

    Cheap after the first call in a thread (one attribute lookup). Call it before any Java call.

    Parameters
    ----------
    max_heap
        Java heap size (``"4G"``, ``"512M"`` or bytes) used if this call starts the JVM.
        Overrides ``BFDASK_MAX_HEAP`` and the dask config key ``bfdask.jvm.max-heap``. Once the
        JVM runs its heap is fixed: a different value then only warns (``RuntimeWarning``).

    Raises
    ------
    JVMError
        If this is a forked child of a process whose JVM was running, or Java cannot start.
    """
    if max_heap is not None and is_running():
        _warn_if_heap_differs(max_heap)
    if getattr(_local, "attachment", None) is not None and _state.pid == os.getpid():
        return
    with _lock:
        if _state.pid is None:
            _start(max_heap)
        else:
            check_not_forked()
    _local.attachment = _Attachment()


def check_not_forked() -> None:
    """Raise :class:`~bfdask.JVMError` in a forked child of a process whose JVM was running
    (where no Java can be called); do nothing elsewhere. Cheap: opening a series whose pixels
    Bio-Formats must read calls it, so that such a child fails at open, not in a task."""
    if _state.pid is not None and _state.pid != os.getpid():
        raise JVMError(
            f"This process (pid {os.getpid()}) was forked from pid {_state.pid}, whose JVM "
            "was already running; a JVM cannot be used after fork. Start worker processes "
            "with the 'spawn' method (dask.distributed's default) or create them before "
            "the first bfdask call."
        )


def _warn_if_heap_differs(max_heap: str | int) -> None:
    wanted = parse_size(max_heap)
    if _state.max_heap is not None and wanted != _state.max_heap:
        warnings.warn(
            f"This process's JVM already runs with a {_state.max_heap / 2**30:.2f} GiB heap; "
            f"max_heap={max_heap!r} cannot change it (a JVM's heap is fixed when it starts, "
            "and a process can start only one JVM). Set BFDASK_MAX_HEAP or the dask config "
            "key 'bfdask.jvm.max-heap' before the first bfdask call, or restart the process "
            "(on a cluster: bfdask.JVMPlugin(max_heap=...) before any task runs).",
            RuntimeWarning,
            stacklevel=3,
        )


def _after_fork_in_child() -> None:
    """In a forked child: never touch the parent's JVM, which has no threads here.

    A Java object freed in the child would call JNI and block forever at a JVM safepoint;
    the bridge makes sure it does not.
    """
    bridge.current().after_fork_in_child()
    if getattr(_local, "attachment", None) is not None:
        _local.attachment.pid = None  # its __del__ must not detach from the parent's JVM
        _local.attachment = None


def _quiet_flags(feature: int) -> list[str]:
    """JVM flags that silence warnings a user cannot act on, for the Java versions that know
    them (an unknown flag stops older JVMs from starting)."""
    flags = []
    if feature >= 21:
        flags.append("--enable-native-access=ALL-UNNAMED")  # JNI use by the bridge
    if feature >= 23:
        flags.append("--sun-misc-unsafe-memory-access=allow")  # Kryo, used by the Memoizer
    return flags


#: No XML parser of Bio-Formats may read a DTD: an external entity copies a local file into
#: the metadata, nested entities expand without bound (DESIGN.md). Bio-Formats' jar bundles
#: Apache Xerces and registers it for JAXP, and Xerces ignores the JDK's jdk.xml.* and
#: javax.xml.access* settings; naming the JDK's own parsers makes them apply. DTDs are then
#: ignored outright (Java >= 22; an undeclared entity is an error), and on older Java
#: external DTDs and entities are refused and expansion is bounded.
_XML_SAFETY = (
    "-Djavax.xml.parsers.DocumentBuilderFactory="
    "com.sun.org.apache.xerces.internal.jaxp.DocumentBuilderFactoryImpl",
    "-Djavax.xml.parsers.SAXParserFactory="
    "com.sun.org.apache.xerces.internal.jaxp.SAXParserFactoryImpl",
    "-Djdk.xml.dtd.support=ignore",
    "-Djavax.xml.accessExternalDTD=",
    "-Djavax.xml.accessExternalSchema=",
    "-Djdk.xml.entityExpansionLimit=10000",
    "-Djdk.xml.maxGeneralEntitySizeLimit=1000000",
    "-Djdk.xml.maxParameterEntitySizeLimit=1000000",
    "-Djdk.xml.totalEntitySizeLimit=10000000",
)


def _start(max_heap: str | int | None) -> None:
    """Start the JVM (caller holds ``_lock``)."""
    malloc.tune_for_planes()  # before the JVM allocates: its threads use the same malloc
    home = java_home()
    libjvm = libjvm_path(home)
    heap = _resolve_max_heap(max_heap)
    already = loaded_libjvm()
    if already is not None and already.resolve() != libjvm.resolve():
        # Importing javabridge (or bioformats, or starting JPype elsewhere) loads the libjvm of
        # $JAVA_HOME or of the `java` on PATH. A second libjvm in one process crashes it: use
        # the one that is there.
        warnings.warn(
            f"{already} was loaded before bfdask started Java (javabridge or bioformats was "
            f"imported first, or Java was started), so bfdask uses it instead of {libjvm}. "
            "Import bfdask first, or "
            "set JAVA_HOME, to choose the Java.",
            RuntimeWarning,
            stacklevel=3,
        )
        libjvm, home = already, already.parents[2]
    else:
        # javabridge's extension links "libjvm.so" by a RUNPATH fixed when it was built, and
        # its __init__ loads $JAVA_HOME's. Loading the chosen libjvm first, globally, and
        # pointing JAVA_HOME at it makes both reuse it.
        ctypes.CDLL(str(libjvm), mode=ctypes.RTLD_GLOBAL)
        os.environ.setdefault("JAVA_HOME", str(home))

    # The bridge is imported only now: importing javabridge maps a libjvm of its own choice.
    java = bridge.load()
    jar = bioformats_jar()
    class_path = java.class_path(jar)
    options = [
        "-Xss8m",
        f"-Xmx{heap // _MiB}m",
        "-Djava.awt.headless=true",
        *_quiet_flags(java_feature_version(home)),
        *_XML_SAFETY,
    ]
    try:
        java.start(libjvm, class_path, options)
    except BaseException as exc:
        raise JVMError(f"Could not start Java from {libjvm} ({java.name}): {exc}") from exc
    jvmsignals.save()  # the JVM's fault handlers, reinstated at exit if replaced meanwhile
    _state.pid = os.getpid()
    os.register_at_fork(after_in_child=_after_fork_in_child)
    _state.java_home = home
    _state.libjvm = libjvm
    _state.max_heap = heap
    _state.bioformats_jar = jar
    atexit.register(_shutdown)
    _local.attachment = _Attachment()
    _set_log_level(str(config.get("bfdask.jvm.log-level") or "WARN"))
    _silence_java_stderr()


def _set_log_level(level: str) -> None:
    """Set Bio-Formats' (logback) root log level; silence per-series OME enum chatter."""
    java = bridge.current()
    level = level.upper()
    java.static_call("loci/common/DebugTools", "setRootLevel", "(Ljava/lang/String;)V", level)
    if level in ("WARN", "ERROR", "OFF"):
        # Real LIF/CZI headers print two WARN lines per series ("Unknown Immersion value");
        # ImageReader logs an ERROR per failed format probe of a file it cannot read, which
        # bfdask reports as UnsupportedFormatError anyway.
        quiet = {
            "ome.xml.model.enums.handlers": "ERROR",
            "loci.formats.FormatTools": "ERROR",
            "loci.formats.ImageReader": "OFF",
            # a damaged TIFF logs one ERROR per bad IFD entry (dozens) before it fails, and
            # bfdask raises an error naming the file for it anyway
            "loci.formats.tiff.TiffParser": "OFF",
        }
        level_class = "ch/qos/logback/classic/Level"
        for name, quiet_level in quiet.items():
            logger = java.static_call(
                "org/slf4j/LoggerFactory",
                "getLogger",
                "(Ljava/lang/String;)Lorg/slf4j/Logger;",
                name,
            )
            value = java.static_field(level_class, quiet_level, f"L{level_class};")
            java.call(logger, "setLevel", f"(L{level_class};)V", value)


def _silence_java_stderr() -> None:
    """Send Java's System.err to nowhere, and System.out to the process's stderr.

    javabridge prints the stack trace of every Java exception it converts (ExceptionDescribe)
    before Python sees it; bfdask turns those exceptions into Python errors carrying the Java
    message, so the traces are noise in a user's terminal. Bio-Formats' own logging (logback's
    console appender writes to System.out, at ``bfdask.jvm.log-level``) goes to stderr, so
    that it never mixes into a program's output (``bfdask info --json > f.json``).
    """
    java = bridge.current()
    fd_err = java.static_field("java/io/FileDescriptor", "err", "Ljava/io/FileDescriptor;")
    err_file = java.new("java/io/FileOutputStream", "(Ljava/io/FileDescriptor;)V", fd_err)
    to_stderr = java.new("java/io/PrintStream", "(Ljava/io/OutputStream;Z)V", err_file, True)
    java.static_call("java/lang/System", "setOut", "(Ljava/io/PrintStream;)V", to_stderr)

    nowhere = java.static_call(
        "java/io/OutputStream", "nullOutputStream", "()Ljava/io/OutputStream;"
    )
    stream = java.new("java/io/PrintStream", "(Ljava/io/OutputStream;)V", nowhere)
    java.static_call("java/lang/System", "setErr", "(Ljava/io/PrintStream;)V", stream)


def at_thread_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` in each attached thread as it ends, before it is detached."""
    if callback not in _state.thread_exit_callbacks:
        _state.thread_exit_callbacks.append(callback)


def at_shutdown(callback: Callable[[], None]) -> None:
    """Run ``callback`` (attached) when the interpreter exits, before the JVM stops."""
    if callback not in _state.shutdown_callbacks:
        _state.shutdown_callbacks.append(callback)


def _shutdown(timeout: float = 3.0) -> None:
    """atexit: release Java resources, then stop the JVM, waiting at most ``timeout`` seconds."""
    if _state.pid != os.getpid():
        return
    # Before any Java runs: a faulthandler.disable() since the start (pytest's plugin does
    # one at unconfigure) took the JVM's SIGSEGV handler, which its stop needs (jvmsignals).
    jvmsignals.restore()
    java = bridge.current()
    try:
        ensure()
        for callback in list(_state.shutdown_callbacks):
            callback()
    except Exception:  # pragma: no cover - best effort at exit
        pass
    attachment = getattr(_local, "attachment", None)
    if attachment is not None:
        attachment.pid = None  # we detach here, not in __del__
        _local.attachment = None
        java.detach()
    killer = threading.Thread(target=java.stop, name="bfdask-jvm-stop", daemon=True)
    killer.start()
    killer.join(timeout)


# -- facts ----------------------------------------------------------------------------------


def info() -> dict[str, Any]:
    """Describe this process's JVM (starting it if needed).

    Returns
    -------
    dict
        ``bridge`` (``"javabridge"`` or ``"jpype"``), ``bridge_version``, ``java_version``,
        ``java_vendor``, ``java_home``, ``libjvm`` (the library actually mapped into this
        process), ``libjvm_expected`` (the one bfdask chose), ``max_heap`` (bytes, as Java
        reports it), ``max_heap_requested`` (bytes), ``bioformats_version``,
        ``bioformats_jar``, ``pid``.
    """
    ensure()
    java = bridge.current()

    def prop(name: str) -> str:
        value: str = java.static_call(
            "java/lang/System", "getProperty", "(Ljava/lang/String;)Ljava/lang/String;", name
        )
        return value

    runtime = java.static_call("java/lang/Runtime", "getRuntime", "()Ljava/lang/Runtime;")
    return {
        "bridge": java.name,
        "bridge_version": java.version(),
        "java_version": prop("java.version"),
        "java_vendor": prop("java.vendor"),
        "java_home": str(_state.java_home),
        "libjvm": str(loaded_libjvm()),
        "libjvm_expected": str(_state.libjvm),
        "max_heap": int(java.call(runtime, "maxMemory", "()J")),
        "max_heap_requested": _state.max_heap,
        "bioformats_version": java.static_field(
            "loci/formats/FormatTools", "VERSION", "Ljava/lang/String;"
        ),
        "bioformats_jar": str(_state.bioformats_jar),
        "pid": os.getpid(),
    }


def max_heap() -> int | None:
    """The heap size (bytes) this process's JVM was started with, or None if not started."""
    return _state.max_heap if is_running() else None
