"""The JPype implementation of :class:`bfdask.bridge.Bridge` (JPype1 wheels, numpy 2).

JPype exposes Java classes as Python classes and picks overloads from the argument types.
bfdask's calls carry JNI signatures, so arguments are cast to exactly the Java types the
signature names (``int`` vs ``long``) and results converted as javabridge converts them
(``String`` to ``str``, primitives to Python numbers): both bridges return the same values.

Pixels: after ``openBytes`` into the reused Java ``byte[]``, the array's buffer protocol view
(JPype pins or copies the Java array while the view lives) is copied straight into the
destination (a plane of the block) and released at once: a view kept alive would keep serving
the bytes of the plane it was taken on. (A direct ``java.nio.ByteBuffer`` over the block's
memory looked like one copy fewer but costs ~0.8 ms per plane on freshly allocated blocks.)
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import numpy as np

from . import JavaThrown

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from numpy.typing import NDArray

    from . import PlaneReader


@functools.lru_cache(maxsize=512)
def _parse(signature: str) -> tuple[tuple[str, ...], str]:
    """JNI ``"(I[BLjava/lang/String;)V"`` -> (``("I", "[B", "Ljava/lang/String;")``, ``"V"``)."""
    params: list[str] = []
    i = 1
    while signature[i] != ")":
        start = i
        while signature[i] == "[":
            i += 1
        i = signature.index(";", i) + 1 if signature[i] == "L" else i + 1
        params.append(signature[start:i])
    return tuple(params), signature[i + 1 :]


class JPypeBridge:
    """JPype1 behind bfdask's bridge interface."""

    name = "jpype"
    #: the Java array's view is copied straight into the destination
    writes_into = True

    def __init__(self) -> None:
        import jpype

        self._jpype = jpype
        self.java_exception: type[Exception] = jpype.JException
        self._casts: dict[str, Callable[[Any], Any]] = {
            "Z": jpype.JBoolean,
            "B": jpype.JByte,
            "C": jpype.JChar,
            "S": jpype.JShort,
            "I": jpype.JInt,
            "J": jpype.JLong,
            "F": jpype.JFloat,
            "D": jpype.JDouble,
        }

    def version(self) -> str:
        try:
            return package_version("JPype1")
        except PackageNotFoundError:  # pragma: no cover - a source checkout
            return str(self._jpype.__version__)

    def class_path(self, bioformats_jar: Path) -> list[str]:
        return [str(bioformats_jar)]

    def start(self, libjvm: Path, class_path: list[str], options: list[str]) -> None:
        self._jpype.startJVM(str(libjvm), *options, classpath=class_path, convertStrings=False)
        self._thread = self._class("java/lang/Thread")
        _unhook_java_gc()

    def stop(self) -> None:
        # JPype stops the JVM in its own atexit handler (it must run in the main thread).
        return None

    def attach(self) -> None:
        self._thread.attachAsDaemon()

    def detach(self) -> None:
        self._thread.detach()

    def can_call(self) -> bool:
        return bool(self._jpype.isJVMStarted())

    def after_fork_in_child(self) -> None:
        # The child's Java proxies would release their references through JNI when freed;
        # the JVM did not survive the fork. bfdask refuses any further Java use there
        # (bfdask.jvm.ensure raises JVMError), and JPype's own exit handler is disarmed.
        import jpype.config

        jpype.config.onexit = False

    # -- calls ------------------------------------------------------------------------------

    def _class(self, cls: str) -> Any:
        return _jclass(self._jpype, cls.replace("/", "."))

    def _args(self, signature: str, args: tuple[Any, ...]) -> list[Any]:
        params, _ = _parse(signature)
        out = []
        for kind, value in zip(params, args, strict=True):
            cast = self._casts.get(kind)
            if cast is not None:
                value = cast(value)
            elif kind == "Ljava/lang/String;" and isinstance(value, str):
                value = self._jpype.JString(value)
            out.append(value)
        return out

    @staticmethod
    def _result(signature: str, value: Any) -> Any:
        """``value`` as javabridge returns it for the result type of ``signature``."""
        kind = signature[signature.index(")") + 1 :]
        if kind == "V" or value is None:
            return None
        if kind == "Ljava/lang/String;":
            return str(value)
        if kind == "Z":
            return bool(value)
        if kind in ("F", "D"):
            return float(value)
        if kind in ("B", "S", "I", "J"):
            return int(value)
        return value  # a Java object (or char): the proxy itself

    def new(self, cls: str, signature: str, *args: Any) -> Any:
        return self._class(cls)(*self._args(signature, args))

    def call(self, obj: Any, name: str, signature: str, *args: Any) -> Any:
        return self._result(signature, getattr(obj, name)(*self._args(signature, args)))

    def call_quietly(self, obj: Any, name: str, signature: str, *args: Any) -> Any:
        # Raised outside the handler: no Java object in any bfdask error's context chain
        # (distributed pickles that chain to send an error from a worker to the client).
        try:
            return self.call(obj, name, signature, *args)
        except self._jpype.JException as exc:
            thrown = exc
        raise JavaThrown(thrown)

    def static_call(self, cls: str, name: str, signature: str, *args: Any) -> Any:
        method = getattr(self._class(cls), name)
        return self._result(signature, method(*self._args(signature, args)))

    def static_field(self, cls: str, name: str, signature: str) -> Any:
        return self._result("()" + signature, getattr(self._class(cls), name))

    def strings(self, array: Any) -> list[str]:
        return [str(s) for s in array]

    def byte_array(self, nbytes: int) -> Any:
        try:
            return self._jpype.JArray(self._jpype.JByte)(nbytes)
        except self._jpype.JException as exc:
            if "OutOfMemoryError" not in str(exc.getClass().getName()):
                raise
            message = str(exc)
        raise MemoryError(message)  # outside the handler: no Java object in its context

    def plane_reader(self, reader: Any) -> PlaneReader:
        jpype = self._jpype
        open_bytes = reader.openBytes
        fill = self._class("java/util/Arrays").fill
        j_int, j_byte = jpype.JInt, jpype.JByte

        def read(
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
            nbytes = len(buffer)
            fill(buffer, j_int(tail), j_int(nbytes), j_byte(mark))
            thrown = None
            try:
                open_bytes(index, buffer, x, y, w, h)
            except jpype.JException as exc:
                thrown = exc
            if thrown is not None:  # raised outside the handler: no Java object in its context
                raise JavaThrown(thrown)
            out = np.empty(nbytes, np.uint8) if into is None else into
            with memoryview(buffer) as view:  # released before the next openBytes
                np.copyto(out, np.frombuffer(view, np.uint8))
            return out

        return read


@functools.lru_cache(maxsize=256)
def _jclass(jpype: Any, name: str) -> Any:
    return jpype.JClass(name)


def _unhook_java_gc() -> None:
    """Stop JPype from calling Java's ``System.gc()`` from Python's garbage collector.

    JPype hooks ``gc.callbacks`` and runs a full Java collection whenever the process's
    resident memory grows past its watermark, so that Python objects holding Java objects
    (and back) are freed together. Reading planes into new numpy blocks grows that memory by
    design: the full collections then land in the middle of the reads and halve their speed
    (measured: 96-139 MB/s with the hook, 179-200 MB/s without, javabridge 203-215 MB/s on the
    same file). bfdask builds no such cross-language cycles (no Java proxies of Python
    objects), so Java's own collector is enough.
    """
    import gc

    try:
        import _jpype
    except ImportError:  # pragma: no cover - JPype without its extension cannot have started
        return
    hook = getattr(_jpype, "_collect", None)
    gc.callbacks[:] = [callback for callback in gc.callbacks if callback != hook]
