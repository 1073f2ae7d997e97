"""Java exceptions as bfdask errors: the one place a Bio-Formats failure gets its Python class.

javabridge's own ``JavaException`` prints the Java stack trace to the process's stderr; the
hot and error-prone calls (``setId``, ``openBytes``) go through :func:`call_quietly` instead,
and :func:`translate_java_error` turns what Java threw into the bfdask error a user catches
(:class:`~bfdask.errors.JavaMemoryError`, :class:`~bfdask.errors.UnsupportedFormatError`...),
naming the file and what to do.
"""

from __future__ import annotations

from typing import Any

from . import jvm
from .errors import (
    BfdaskError,
    BfdaskFileNotFoundError,
    CorruptFileError,
    JavaMemoryError,
    UnsupportedFormatError,
)


class JavaThrown(Exception):
    """A Java exception caught and cleared by bfdask itself (``.throwable`` is the object).

    javabridge's own ``JavaException`` prints the Java stack trace to the process's stderr;
    the hot and error-prone calls (``setId``, ``openBytes``) use :func:`call_quietly` instead.
    """

    def __init__(self, throwable: Any) -> None:
        super().__init__("Java exception")
        self.throwable = throwable


def call_quietly(obj: Any, name: str, signature: str, *args: Any) -> Any:
    """Call a Java method; a Java exception becomes :class:`JavaThrown`, with nothing printed."""
    import javabridge

    env = javabridge.get_env()
    method = env.get_method_id(env.get_object_class(obj), name, signature)
    converted = [env.new_string_utf(a) if isinstance(a, str) else a for a in args]
    result = env.call_method(obj, method, *converted)
    thrown = env.exception_occurred()
    if thrown is not None:
        env.exception_clear()
        raise JavaThrown(thrown)
    return result


def java_class_name(exc: BaseException) -> str:
    throwable = getattr(exc, "throwable", None)
    if throwable is None:
        return ""
    import javabridge

    klass = javabridge.call(throwable, "getClass", "()Ljava/lang/Class;")
    return str(javabridge.call(klass, "getName", "()Ljava/lang/String;"))


def _java_message(exc: BaseException) -> str:
    throwable = getattr(exc, "throwable", None)
    if throwable is None:
        return str(exc)
    import javabridge

    text = javabridge.call(throwable, "toString", "()Ljava/lang/String;")
    return str(text)


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


def javabridge_exception() -> type[Exception]:
    """javabridge's exception class (javabridge is importable once the JVM runs)."""
    import javabridge

    java_exception: type[Exception] = javabridge.JavaException
    return java_exception
