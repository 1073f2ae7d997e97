"""Bio-Formats' answers about a file, kept on disk so that a later process need not ask again.

Opening a file asks Bio-Formats what it holds (each series' :class:`~bfdask.metadata.ImageSpec`,
the series names, the OME-XML) and reads a few planes both ways to verify a native plan
(:func:`bfdask.pixels.choose`). In a fresh process that means starting Java, loading
Bio-Formats' classes and ``setId``: seconds, for a job that may then read natively without
Java at all. Those answers only depend on the bytes of the files Bio-Formats read, the
Bio-Formats jar and bfdask's own code, so they are kept here, one small log per file, and a
later process opening the **same version** of the file gets them without starting Java:

* the key is checked on every recall: the :class:`~bfdask.files.FileStamp` (size, mtime,
  ctime, inode, device) of every file of the dataset, the Bio-Formats jar's size and mtime,
  a stamp of bfdask's own source files, and the ``allow-outside-files`` setting. A copy, an
  edit, a ``touch``, another jar or another bfdask makes a new log (the old one is replaced);
* warnings an answer came with (damage found at open, unreadable OME fields) are kept with
  it and raised again on every recall, so a memoized open warns exactly as the first did;
* a log that cannot be read (cut short, another format, foreign classes) is ignored and
  replaced: it can cost time, never an answer; only bfdask's own plain value classes load.

The logs live in ``<memo dir>/answers`` (the Bio-Formats Memoizer's directory,
:func:`bfdask.config.memo_dir`; ``BFDASK_MEMO_DIR=`` turns both off). Each process appends
what it learnt; the view a process has loaded is kept in the handle cache
(:mod:`bfdask.handles`), so a file of thousands of series is read once, not per series.
No Java here.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config, handles
from .files import file_stamp

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

log = logging.getLogger(__name__)

KIND = "answers"
#: bumped when what a log holds changes meaning
FORMAT = 1
_PACKAGE = Path(__file__).resolve().parent

#: builtins a log may hold besides bfdask's frozen dataclasses (see :class:`_Unpickler`)
_BUILTINS = {"frozenset", "set", "complex", "slice"}


class _Unpickler(pickle.Unpickler):
    """Loads bfdask's frozen dataclasses (specs, recipes, damage: plain values) and a few
    builtins, nothing else: no code runs while a log is read."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _BUILTINS:
            return super().find_class(module, name)
        if module.startswith("bfdask.") and name.isidentifier():
            found = super().find_class(module, name)
            params = getattr(found, "__dataclass_params__", None)
            if isinstance(found, type) and params is not None and params.frozen:
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an answers log")


def _dumps(item: tuple[Hashable, Warned]) -> bytes | None:
    """One record as bytes; None if it would not load again (then it is not kept)."""
    blob = pickle.dumps(item, protocol=4)
    try:
        _Unpickler(io.BytesIO(blob)).load()
    except Exception as exc:
        log.debug("answer %s not kept: %s", item[0], exc)
        return None
    return blob


@dataclass(frozen=True)
class Warned:
    """A recalled answer and the warnings it came with: ``(category name, message)`` pairs."""

    value: Any
    warned: tuple[tuple[str, str], ...] = ()

    def rewarn(self, stacklevel: int = 3) -> Any:
        """Raise the kept warnings again (bfdask's categories, else ``UserWarning``); return
        the answer."""
        from . import errors

        for category_name, message in self.warned:
            category = getattr(errors, category_name, UserWarning)
            if not (isinstance(category, type) and issubclass(category, Warning)):
                category = UserWarning
            warnings.warn(message, category, stacklevel=stacklevel)
        return self.value


# -- the key ----------------------------------------------------------------------------------


@functools.cache
def _code_stamp() -> str:
    """A digest of bfdask's own source files (names, sizes, mtimes): new code, new answers.
    Computed once per process (a constant of the code that runs)."""
    digest = hashlib.sha1(str(FORMAT).encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        st = path.stat()
        digest.update(f"{path.relative_to(_PACKAGE)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()


def _jar_stamp() -> tuple[str, int, int] | None:
    """The Bio-Formats jar bfdask would use (path, size, mtime); None when there is none."""
    return _jar_stamp_of(str(config.get("bfdask.jvm.bioformats-jar") or ""))


@functools.lru_cache(maxsize=4)
def _jar_stamp_of(configured: str) -> tuple[str, int, int] | None:
    """:func:`_jar_stamp` for one setting of ``bfdask.jvm.bioformats-jar``, found once per
    process (finding the jar costs 0.5 ms, and a process loads one jar anyway)."""
    from .javafind import bioformats_jar

    try:
        jar = bioformats_jar()
        st = jar.stat()
    except Exception:  # no jar: nothing can be answered, nothing kept
        return None
    return (str(jar), st.st_size, st.st_mtime_ns)


def _key(files: Iterable[str]) -> tuple[Any, ...] | None:
    """What must be unchanged for kept answers to hold; None if a file has no stamp."""
    stamps = []
    for name in sorted(set(files)):
        stamp = file_stamp(name)
        if stamp is None:
            return None
        stamps.append((name, stamp))
    jar = _jar_stamp()
    if jar is None:
        return None
    outside = bool(config.flag("bfdask.reader.allow-outside-files"))
    return (FORMAT, _code_stamp(), jar, outside, tuple(stamps))


def _log_path(path: str) -> Path | None:
    """Where the log of ``path`` is (None: memoization off)."""
    directory = config.memo_dir()
    return None if directory is None else _log_in(directory, path)


@functools.lru_cache(maxsize=4096)
def _log_in(directory: Path, path: str) -> Path:
    name = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return directory / "answers" / f"{name}.pickle"


# -- one file's log ---------------------------------------------------------------------------


class _Log:
    """What one file's log says, as loaded by this thread (a handle of :mod:`bfdask.handles`).

    ``size`` is the log's length when read; a log grown by another process is read again.
    """

    def __init__(
        self, where: Path, key: tuple[Any, ...], records: dict[Hashable, Warned], size: int
    ) -> None:
        self.where = where
        self.key = key
        self.records = records
        self.size = size

    def close(self) -> None:
        """Nothing is held open."""


def _read(where: Path) -> _Log | None:
    """Load a log; None if it is missing or its head does not parse (a cut tail is dropped)."""
    try:
        data = where.read_bytes()
    except OSError:
        return None
    stream = io.BytesIO(data)
    try:
        head = _Unpickler(stream).load()
    except Exception:
        return None
    if not (isinstance(head, tuple) and len(head) == 2 and head[0] == "bfdask-answers"):
        return None
    records: dict[Hashable, Warned] = {}
    while stream.tell() < len(data):
        try:
            name, answer = _Unpickler(stream).load()
        except Exception:  # a record cut short by a crash: what came before holds
            break
        if isinstance(answer, Warned):
            records[name] = answer
    return _Log(where, head[1], records, len(data))


def _current(path: str) -> _Log | None:
    """The log of ``path`` whose key still holds (loaded once per thread), else None."""
    where = _log_path(path)
    if where is None:
        return None
    try:
        size = where.stat().st_size
    except OSError:
        return None
    held: _Log | None = handles.get((KIND, path), lambda h: h.size == size and h.where == where)
    if held is None:
        held = _read(where)
        if held is None:
            return None
        handles.put((KIND, path), held)
    files = [name for name, _ in held.key[-1]] if held.key else []
    if held.key != _key(files):
        return None
    return held


def recall(path: str, name: Hashable) -> Warned | None:
    """The answer ``name`` (e.g. ``("spec", 0)``) kept for this version of ``path``, or None."""
    try:
        held = _current(path)
    except Exception as exc:  # a memo must never break opening
        log.debug("answers of %s unreadable: %s", path, exc)
        return None
    return None if held is None else held.records.get(name)


def remember(
    path: str,
    answers: dict[Hashable, Warned],
    used_files: Callable[[], list[str]] | None = None,
) -> None:
    """Keep ``answers`` for this version of ``path``.

    A new log (none yet, or one whose key no longer holds) is only started when
    ``used_files`` (the dataset's files, as Bio-Formats lists them) is given: the key stamps
    each of them. Without it, answers are only added to a log that holds. Failures to write
    are logged, never raised.
    """
    where = _log_path(path)
    if where is None or not answers:
        return
    try:
        held = _current(path)
        if held is None:
            if used_files is None:
                return
            key = _key([path, *used_files()])
            if key is None:
                return
            held = _start(where, key)
            handles.put((KIND, path), held)
        blobs = {
            name: _dumps((name, answer))
            for name, answer in answers.items()
            if held.records.get(name) != answer
        }
        new = {name: answers[name] for name, blob in blobs.items() if blob is not None}
        if not new:
            return
        blob = b"".join(blob for blob in blobs.values() if blob is not None)
        with open(where, "ab") as f:  # one write of whole records: appends do not interleave
            f.write(blob)
            f.flush()
            size = os.fstat(f.fileno()).st_size
        if size == held.size + len(blob):  # nobody else wrote meanwhile: keep our view
            held.records.update(new)
            held.size = size
    except Exception as exc:
        log.debug("answers of %s not kept: %s", path, exc)


def _start(where: Path, key: tuple[Any, ...]) -> _Log:
    """A new log holding only its key, replacing any old one atomically."""
    where.parent.mkdir(parents=True, exist_ok=True)
    head = pickle.dumps(("bfdask-answers", key), protocol=4)
    temporary = where.with_name(f"{where.name}.{os.getpid()}.tmp")
    temporary.write_bytes(head)
    os.replace(temporary, where)
    return _Log(where, key, {}, len(head))
