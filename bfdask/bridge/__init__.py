"""The one door to Java: which bridge this process uses, and the few calls bfdask makes.

bfdask talks to Bio-Formats through one of two bridges, with the same small interface
(:class:`Bridge`):

* **javabridge** (:mod:`bfdask.bridge.with_javabridge`): the design's bridge, python-javabridge
  (built from source against numpy 1.x); what ``ci/setup.sh`` installs and tests.
* **JPype** (:mod:`bfdask.bridge.with_jpype`): JPype1 wheels, numpy 2, any current Python.

:func:`choose` picks one: the setting ``bfdask.jvm.bridge`` (env ``BFDASK_BRIDGE``) if it names
one, else javabridge where it imports, else JPype. :mod:`bfdask.jvm` loads the chosen bridge when
it starts Java (:func:`load`); from then on :func:`current` returns it. Only this package and
:mod:`bfdask.readers` make Java calls; everything above them works the same on both bridges.

Calls name Java classes with slashes and give JNI signatures (``"(I)V"``), as javabridge does:
JPype uses the signature to convert arguments and results exactly (``int`` vs ``long``,
``String`` results as ``str``), so both bridges return the same Python values.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Protocol

from .. import config
from ..errors import JVMError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    from numpy.typing import NDArray

#: the bridges bfdask knows, in the order ``"auto"`` tries them
NAMES = ("javabridge", "jpype")


class JavaThrown(Exception):
    """A Java exception caught and cleared by bfdask (``.throwable`` is the Java object).

    javabridge's own ``JavaException`` prints the Java stack trace to the process's stderr;
    the hot and error-prone calls (``setId``, ``openBytes``) use :meth:`Bridge.call_quietly`,
    which raises this instead on both bridges.
    """

    def __init__(self, throwable: Any) -> None:
        super().__init__("Java exception")
        self.throwable = throwable

    def __reduce__(self) -> tuple[object, ...]:
        # A Java object cannot leave its process (a dask worker pickles errors, with their
        # context, for the client): the copy carries no throwable.
        return (type(self), (None,))


class PlaneReader(Protocol):
    """``openBytes`` of one Java reader into a Java ``byte[]``, as fast as the bridge allows."""

    def __call__(
        self,
        buffer: Any,
        index: int,
        x: int,
        y: int,
        w: int,
        h: int,
        mark: int,
        tail: int,
        into: NDArray[np.uint8] | None = None,
    ) -> NDArray[np.uint8]:
        """Fill ``buffer[tail:]`` with ``mark``, call ``openBytes(index, buffer, x, y, w, h)``
        and return the buffer's bytes: copied into ``into`` (a writable, contiguous uint8
        array of the buffer's length) if given, else into a new array. A Java exception
        raises :class:`JavaThrown`."""
        ...


class Bridge(Protocol):
    """What bfdask needs from a Python-Java bridge (one instance per process)."""

    #: ``"javabridge"`` or ``"jpype"``
    name: str
    #: the bridge's exception class for Java exceptions raised by :meth:`call`
    java_exception: type[Exception]
    #: whether :meth:`plane_reader` copies a plane straight into ``into`` (else through a
    #: new array of its own, which a caller may then keep instead)
    writes_into: bool

    def version(self) -> str:
        """The bridge package's version."""
        ...

    def class_path(self, bioformats_jar: Path) -> list[str]:
        """Java class path: the Bio-Formats jar plus what the bridge itself needs."""
        ...

    def start(self, libjvm: Path, class_path: list[str], options: list[str]) -> None:
        """Start the JVM (once per process) from ``libjvm`` with ``options`` (``-X...``)."""
        ...

    def stop(self) -> None:
        """Stop the JVM (at interpreter exit)."""
        ...

    def attach(self) -> None:
        """Attach the calling thread to the JVM (as a daemon thread)."""
        ...

    def detach(self) -> None:
        """Detach the calling thread from the JVM."""
        ...

    def can_call(self) -> bool:
        """Whether the calling thread may call Java now (not in a thread's last teardown)."""
        ...

    def after_fork_in_child(self) -> None:
        """In a forked child: make sure nothing touches the parent's JVM."""
        ...

    def new(self, cls: str, signature: str, *args: Any) -> Any:
        """``new cls(args)`` using the constructor of JNI ``signature``."""
        ...

    def call(self, obj: Any, name: str, signature: str, *args: Any) -> Any:
        """Call method ``name`` of ``obj``; Java exceptions raise :attr:`java_exception`."""
        ...

    def call_quietly(self, obj: Any, name: str, signature: str, *args: Any) -> Any:
        """Like :meth:`call`, but a Java exception raises :class:`JavaThrown`, unprinted."""
        ...

    def static_call(self, cls: str, name: str, signature: str, *args: Any) -> Any:
        """Call static method ``name`` of class ``cls``."""
        ...

    def static_field(self, cls: str, name: str, signature: str) -> Any:
        """The value of static field ``name`` of class ``cls``."""
        ...

    def strings(self, array: Any) -> list[str]:
        """A Java ``String[]`` as a Python list."""
        ...

    def byte_array(self, nbytes: int) -> Any:
        """A new Java ``byte[nbytes]``; :class:`MemoryError` if Java's heap cannot hold it
        (the Java error cleared, so the thread can go on calling Java)."""
        ...

    def plane_reader(self, reader: Any) -> PlaneReader:
        """The fastest ``openBytes`` into a buffer for the Java reader ``reader``."""
        ...


_current: Bridge | None = None


def setting() -> str:
    """The configured bridge: ``"auto"``, ``"javabridge"`` or ``"jpype"``.

    Raises
    ------
    ValueError
        The setting names no bridge bfdask knows.
    """
    value = str(config.get("bfdask.jvm.bridge") or "auto").strip().lower()
    if value not in ("auto", *NAMES):
        raise ValueError(
            f"Unknown Java bridge {value!r} (setting 'bfdask.jvm.bridge', env BFDASK_BRIDGE): "
            "use 'auto', 'javabridge' or 'jpype'."
        )
    return value


def installed() -> list[str]:
    """The bridges whose package is installed (found on disk; nothing is imported)."""
    modules = {"javabridge": "javabridge", "jpype": "jpype"}
    return [name for name in NAMES if importlib.util.find_spec(modules[name]) is not None]


def load(name: str | None = None) -> Bridge:
    """Import the bridge ``name`` (default: :func:`setting`) and make it :func:`current`.

    ``"auto"`` takes javabridge where it imports (it fails beside numpy 2), else JPype.
    Called by :mod:`bfdask.jvm` as it starts Java, after the chosen ``libjvm`` is loaded.

    Raises
    ------
    JVMError
        No bridge can be imported; the message says what to install.
    """
    global _current
    if _current is not None:
        return _current
    wanted = setting() if name is None else name
    candidates = NAMES if wanted == "auto" else (wanted,)
    failures = []
    for candidate in candidates:
        try:
            _current = _import(candidate)
            return _current
        except ImportError as exc:
            failures.append(f"{candidate}: {exc}")
    raise JVMError(
        "No Java bridge can be imported ("
        + "; ".join(failures)
        + "). Install one: `pip install JPype1` (numpy 2, any current Python) or "
        "`pip install 'bfdask[javabridge]'` (python-javabridge, numpy<2, needs a compiler)."
    )


def _import(name: str) -> Bridge:
    """The bridge ``name``; :class:`ImportError` (whatever the package raised) if unusable."""
    try:
        if name == "javabridge":
            from .with_javabridge import JavabridgeBridge

            return JavabridgeBridge()
        from .with_jpype import JPypeBridge

        return JPypeBridge()
    except ImportError:
        raise
    except Exception as exc:  # javabridge beside numpy 2: ValueError("dtype size changed")
        raise ImportError(f"{type(exc).__name__}: {exc}") from exc


def current() -> Bridge:
    """The bridge of this process's JVM (loading the configured one if Java has not started:
    every Java call goes through :func:`bfdask.jvm.ensure` first, which starts it)."""
    return _current if _current is not None else load()


def loaded() -> Bridge | None:
    """The bridge of this process, or None before Java starts (loads nothing)."""
    return _current
