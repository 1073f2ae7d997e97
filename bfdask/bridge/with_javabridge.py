"""The javabridge implementation of :class:`bfdask.bridge.Bridge` (python-javabridge).

javabridge is the design's bridge: a C extension built against numpy 1.x. Its ``call`` family
converts arguments and results by JNI signature and raises ``JavaException`` (after printing
the Java stack trace, which :func:`bfdask.jvm` sends nowhere); the hot calls go through its JNI
environment object directly, with method ids looked up once per reader.
"""

from __future__ import annotations

import threading
import warnings
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import numpy as np

from . import JavaThrown

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray

    from . import PlaneReader


def _boxed(signature: str) -> bool:
    """Whether ``signature`` takes or returns a boxed Java value javabridge converts itself."""
    return any(box in signature for box in _BOXES) or "Ljava/lang/Object;" in signature


#: boxed types javabridge.call converts from and to Python values
_BOXES = ("Ljava/lang/Integer;", "Ljava/lang/Long", "Ljava/lang/Boolean;")


class JavabridgeBridge:
    """python-javabridge behind bfdask's bridge interface."""

    name = "javabridge"
    #: its copy of a Java array is always a new numpy array
    writes_into = False

    def __init__(self) -> None:
        with warnings.catch_warnings():
            # javabridge's C file predates numpy 1.26's larger ndarray struct; benign.
            warnings.filterwarnings("ignore", "numpy.ndarray size changed", RuntimeWarning)
            import javabridge

        self._jb = javabridge
        self.java_exception: type[Exception] = javabridge.JavaException
        #: argument types passed to JNI as they are (it converts them by the signature)
        self._plain = (str, bool, int, float, type(None), javabridge.JB_Object)

    def version(self) -> str:
        try:
            return package_version("python-javabridge")
        except PackageNotFoundError:  # pragma: no cover - a source checkout
            return "unknown"

    def class_path(self, bioformats_jar: Path) -> list[str]:
        return [*self._jb.JARS, str(bioformats_jar)]

    def start(self, libjvm: Path, class_path: list[str], options: list[str]) -> None:
        # javabridge's monitor thread inherits "daemon" from the thread that starts the VM: a
        # daemon monitor never holds the interpreter open at exit.
        errors: list[BaseException] = []

        def start() -> None:
            try:
                self._jb.start_vm(args=list(options), class_path=class_path)
                self._jb.detach()
            except BaseException as exc:
                errors.append(exc)

        starter = threading.Thread(target=start, name="bfdask-jvm-start", daemon=True)
        starter.start()
        starter.join()
        if errors:
            raise errors[0]

    def stop(self) -> None:
        self._jb.kill_vm()

    def attach(self) -> None:
        self._jb.attach()

    def detach(self) -> None:
        self._jb.detach()

    def can_call(self) -> bool:
        # a thread that is ending loses its JNI environment before its last callbacks run
        return self._jb.get_env() is not None

    def after_fork_in_child(self) -> None:
        # With no JNI environment for this thread, javabridge only queues the Java objects the
        # child frees instead of calling JNI (which would block forever at a safepoint).
        import javabridge._javabridge as native

        native.set_thread_local("env", None)

    def new(self, cls: str, signature: str, *args: Any) -> Any:
        return self._jb.make_instance(cls, signature, *args)

    def call(self, obj: Any, name: str, signature: str, *args: Any) -> Any:
        # javabridge.call spends ~25 us per call in Python (it asks each object result for
        # its class twice); bfdask's metadata makes ~50 calls per series. Plain arguments
        # (str, numbers, Java objects) and results go through the JNI environment directly.
        if not all(isinstance(a, self._plain) for a in args) or _boxed(signature):
            return self._jb.call(obj, name, signature, *args)
        env = self._jb.get_env()
        method = env.get_method_id(env.get_object_class(obj), name, signature)
        if method is None:
            raise self._jb.JavaException(env.exception_occurred())
        converted = [env.new_string_utf(a) if isinstance(a, str) else a for a in args]
        result = env.call_method(obj, method, *converted)
        thrown = env.exception_occurred()
        if thrown is not None:
            raise self._jb.JavaException(thrown)
        if result is None:
            return None
        returns = signature[signature.index(")") + 1 :]
        if returns == "Ljava/lang/String;":
            return env.get_string_utf(result)
        if returns == "[B":
            return env.get_byte_array_elements(result)
        return result

    def call_quietly(self, obj: Any, name: str, signature: str, *args: Any) -> Any:
        env = self._jb.get_env()
        method = env.get_method_id(env.get_object_class(obj), name, signature)
        converted = [env.new_string_utf(a) if isinstance(a, str) else a for a in args]
        result = env.call_method(obj, method, *converted)
        thrown = env.exception_occurred()
        if thrown is not None:
            env.exception_clear()
            raise JavaThrown(thrown)
        return result

    def static_call(self, cls: str, name: str, signature: str, *args: Any) -> Any:
        return self._jb.static_call(cls, name, signature, *args)

    def static_field(self, cls: str, name: str, signature: str) -> Any:
        return self._jb.get_static_field(cls, name, signature)

    def strings(self, array: Any) -> list[str]:
        env = self._jb.get_env()
        return [env.get_string_utf(s) for s in env.get_object_array_elements(array)]

    def byte_array(self, nbytes: int) -> Any:
        env = self._jb.get_env()
        try:
            return env.make_byte_array(np.zeros(nbytes, np.uint8))
        except MemoryError:
            if env.exception_occurred() is not None:
                env.exception_clear()  # else the next Java call in this thread fails too
            raise

    def plane_reader(self, reader: Any) -> PlaneReader:
        env = self._jb.get_env()
        open_bytes = env.get_method_id(env.get_object_class(reader), "openBytes", "(I[BIIII)[B")
        arrays = env.find_class("java/util/Arrays")
        fill = env.get_static_method_id(arrays, "fill", "([BIIB)V")

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
            env = self._jb.get_env()
            env.call_static_method(arrays, fill, buffer, tail, env.get_array_length(buffer), mark)
            env.call_method(reader, open_bytes, index, buffer, x, y, w, h)
            thrown = env.exception_occurred()
            if thrown is not None:
                env.exception_clear()
                raise JavaThrown(thrown)
            raw: NDArray[np.uint8] = env.get_byte_array_elements(buffer)  # a new array
            if into is None:
                return raw
            into[...] = raw
            return into

        return read
