"""Java exceptions as bfdask errors: the one place a Bio-Formats failure gets its Python class.

The hot and error-prone calls (``setId``, ``openBytes``) go through :func:`call_quietly`
(javabridge's own ``JavaException`` would print the Java stack trace to stderr first), and
:func:`translate_java_error` turns what Java threw into the bfdask error a user catches
(:class:`~bfdask.errors.JavaMemoryError`, :class:`~bfdask.errors.UnsupportedFormatError`...),
naming the file and what to do.
"""

from __future__ import annotations

from typing import Any

from . import bridge, jvm
from .bridge import JavaThrown
from .errors import (
    BfdaskError,
    BfdaskFileNotFoundError,
    CorruptFileError,
    JavaMemoryError,
    UnsupportedFormatError,
)

__all__ = ["JavaThrown", "call_quietly", "java_class_name", "translate_java_error"]


def call_quietly(obj: Any, name: str, signature: str, *args: Any) -> Any:
    """Call a Java method; a Java exception becomes :class:`JavaThrown`, with nothing printed."""
    return bridge.current().call_quietly(obj, name, signature, *args)


def _throwable(exc: BaseException) -> Any:
    """The Java exception object ``exc`` carries, or None for a Python exception."""
    thrown = getattr(exc, "throwable", None)  # JavaThrown, javabridge's JavaException
    if thrown is not None:
        return thrown
    loaded = bridge.loaded()
    if loaded is not None and isinstance(exc, loaded.java_exception):
        return exc  # JPype: the exception is the Java object
    return None


def java_class_name(exc: BaseException) -> str:
    """The Java class name of the exception ``exc`` carries (``""`` for a Python one)."""
    throwable = _throwable(exc)
    if throwable is None:
        return ""
    java = bridge.current()
    klass = java.call(throwable, "getClass", "()Ljava/lang/Class;")
    return str(java.call(klass, "getName", "()Ljava/lang/String;"))


def _java_message(exc: BaseException) -> str:
    throwable = _throwable(exc)
    if throwable is None:
        return str(exc)
    return str(bridge.current().call(throwable, "toString", "()Ljava/lang/String;"))


def translate_java_error(exc: BaseException, path: str, what: str) -> BfdaskError:
    """Turn a Java exception raised while doing ``what`` with ``path`` into a bfdask error."""
    name = java_class_name(exc)
    message = _java_message(exc)
    if name == "java.lang.OutOfMemoryError":
        heap = jvm.max_heap() or 0
        return JavaMemoryError(
            f"Java ran out of heap ({heap / 2**30:.2f} GiB) while {what} {path!r}. "
            "Raise it before the JVM starts: set BFDASK_MAX_HEAP=8G (or the dask config "
            "key 'bfdask.jvm.max-heap', or bfdask.start_jvm(max_heap='8G') first), or read "
            "smaller chunks. This process's JVM keeps running with its current heap."
        )
    if name == "loci.formats.UnknownFormatException":
        return UnsupportedFormatError(
            f"Bio-Formats cannot read {path!r}: unknown or unsupported format ({message}). "
            "Check the file type is one Bio-Formats supports, and that the file is complete."
        )
    if name in ("java.io.FileNotFoundException", "java.nio.file.NoSuchFileException"):
        return BfdaskFileNotFoundError(
            f"{path!r} (or a file it refers to) was not found: {message}"
        )
    if name.startswith("loci.formats.") and "Missing" in message:  # missing library for format
        return UnsupportedFormatError(f"Bio-Formats cannot read {path!r}: {message}")
    if what == "opening":
        return UnsupportedFormatError(
            f"Bio-Formats cannot read {path!r}: {message}. The file may be of a variant or "
            "version Bio-Formats 7 does not support, or truncated/damaged; check that it opens "
            "in Fiji or with Bio-Formats' showinf."
        )
    return CorruptFileError(
        f"Bio-Formats failed while {what} {path!r}: {message}. The file may be truncated or "
        "damaged; check it opens in Fiji/showinf."
    )


def java_exception() -> type[Exception]:
    """The bridge's exception class for Java exceptions (once the JVM runs)."""
    return bridge.current().java_exception
