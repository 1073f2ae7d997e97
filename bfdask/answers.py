"""Bio-Formats' answers about a file, kept on disk so that a later process need not ask again.

Opening a file asks Bio-Formats what it holds (each series' :class:`~bfdask.metadata.ImageSpec`,
the series names, the OME-XML) and reads a few planes both ways to verify a native plan
(:func:`bfdask.pixels.choose`). In a fresh process that means starting Java, loading
Bio-Formats' classes and ``setId``: seconds, for a job that may then read natively without
Java at all. Those answers only depend on the bytes of the files Bio-Formats read, the
Bio-Formats jar and the code that asked, so they are kept here, one small log per file, and a
later process opening the **same version** of the file gets them without starting Java:

* the key is checked on every recall: the :class:`~bfdask.files.FileStamp` (size, mtime,
  ctime, inode, device) of every file of the dataset (and of its folder when it has several,
  where a new companion file could change the answer), the Bio-Formats jar, a stamp of
  bfdask's own source files, the versions of the Python readers that verify a plan (numpy,
  tifffile, imagecodecs, nd2) and the ``allow-outside-files`` setting. A copy, an edit, a
  ``touch``, another jar or another bfdask makes a new log (the old one is replaced);
* answers are kept only for the version of the file they were read from, and only when they
  came without a warning: a file with damage found at open, or with OME fields Bio-Formats
  could not read, is asked again (and warns again) every time;
* a log that cannot be read (cut short, replaced meanwhile, another format) is ignored and
  replaced; only the value classes listed in :data:`_ALLOWED` load, each recalled answer is
  type-checked, and nothing from a log can make opening fail. The memo directory must be the
  user's own (``~/.cache`` by default): whoever can write there can choose the answers.

The logs live in ``<memo dir>/answers`` (the Bio-Formats Memoizer's directory,
:func:`bfdask.config.memo_dir`; ``BFDASK_MEMO_DIR=`` turns both off). Each process appends
what it learnt; the view a thread has loaded is kept in the handle cache
(:mod:`bfdask.handles`), so a file of thousands of series is read once, not per series.
No Java here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import logging
import os
import pickle
import sys
import tempfile
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config, handles
from .files import file_stamp

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

    from .files import FileStamp

log = logging.getLogger(__name__)

KIND = "answers"
#: bumped when what a log holds changes meaning
FORMAT = 3
#: a log larger than this is not read (and is replaced)
MAX_LOG_BYTES = 256 << 20
_PACKAGE = Path(__file__).resolve().parent
#: the Python packages whose versions can change a verified native plan
_READERS_PACKAGES = ("numpy", "tifffile", "imagecodecs", "nd2")

#: the classes a log may hold, by module (besides tuples, strings and numbers); the native
#: reader modules' own frozen layout dataclasses are added from :data:`_LAYOUT_MODULES`
_ALLOWED = {
    "bfdask.metadata": {"ImageSpec", "SeriesInfo"},
    "bfdask.files": {"FileStamp"},
    "bfdask.native": {"NativeRecipe"},
    "bfdask.damage": {"Damage"},
    "bfdask.pixels": {"Choice"},
}
_LAYOUT_MODULES = ("bfdask.lif", "bfdask.tiff", "bfdask.czisubblocks", "bfdask.nd2frames")


class _Unpickler(pickle.Unpickler):
    """Loads the classes of :data:`_ALLOWED` and the frozen dataclasses of the native reader
    modules (plain values, no code of their own at load), nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = name in _ALLOWED.get(module, ()) or module in _LAYOUT_MODULES
        if allowed:
            found = getattr(importlib.import_module(module), name, None)
            params = getattr(found, "__dataclass_params__", None)
            if isinstance(found, type) and params is not None and params.frozen:
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an answers log")


def _dumps(item: tuple[Hashable, Any]) -> bytes | None:
    """One record as bytes; None if it would not load again (then it is not kept)."""
    blob = pickle.dumps(item, protocol=4)
    try:
        _Unpickler(io.BytesIO(blob)).load()
    except Exception as exc:
        log.debug("answer %s not kept: %s", item[0], exc)
        return None
    return blob


# -- the key ----------------------------------------------------------------------------------


@functools.cache
def _code_stamp() -> str:
    """A digest of bfdask's own source files (names, sizes, mtimes) and of the versions of
    the readers that verify native plans: new code, new answers. Once per process."""
    digest = hashlib.sha1(str(FORMAT).encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        st = path.stat()
        digest.update(f"{path.relative_to(_PACKAGE)}:{st.st_size}:{st.st_mtime_ns};".encode())
    for package in _READERS_PACKAGES:
        try:
            version = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{package}={version};".encode())
    digest.update(sys.version.encode())
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
    """What must be unchanged for kept answers to hold; None if a file has no stamp.

    The files' stamps, and their folders' when there are several (a companion file added or
    removed changes a multi-file dataset)."""
    files = sorted(set(files))
    names = list(files)
    if len(names) > 1:
        names += sorted({os.path.dirname(name) for name in names})
    stamps: list[tuple[str, FileStamp]] = []
    for name in names:
        stamp = file_stamp(name)
        if stamp is None:
            return None
        stamps.append((name, stamp))
    jar = _jar_stamp()
    if jar is None:
        return None
    outside = bool(config.flag("bfdask.reader.allow-outside-files"))
    return (FORMAT, _code_stamp(), jar, outside, tuple(sorted(set(files))), tuple(stamps))


def _files_of(key: tuple[Any, ...]) -> list[str]:
    """The dataset's files a key stamps (not the folders it adds)."""
    return list(key[4])


def _log_path(path: str) -> Path | None:
    """Where the log of ``path`` is (None: memoization off)."""
    directory = config.memo_dir()
    return None if directory is None else _log_in(directory, path)


@functools.lru_cache(maxsize=4096)
def _log_in(directory: Path, path: str) -> Path:
    """The log of ``path`` in the memo directory ``directory`` (named by a hash of the path)."""
    name = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return directory / "answers" / f"{name}.pickle"


# -- one file's log ---------------------------------------------------------------------------


class _Log:
    """What one file's log says, as loaded by this thread (a handle of :mod:`bfdask.handles`).

    ``size`` and ``inode`` are the log's when read: a log grown by another process is read
    again, and one replaced meanwhile (a new inode) is another log.
    """

    def __init__(
        self, where: Path, key: tuple[Any, ...], records: dict[Hashable, Any], st: os.stat_result
    ) -> None:
        self.where = where
        self.key = key
        self.records = records
        self.size = st.st_size
        self.inode = (st.st_dev, st.st_ino)

    def holds(self, st: os.stat_result) -> bool:
        """Whether this view is still the log whose stat is ``st``."""
        return (st.st_size, (st.st_dev, st.st_ino)) == (self.size, self.inode)

    def close(self) -> None:
        """Nothing is held open."""


def _read(where: Path) -> _Log | None:
    """Load a log; None if it is missing, too large or its head does not parse (a cut tail
    is dropped)."""
    try:
        with open(where, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size > MAX_LOG_BYTES:
                return None
            data = f.read()
    except OSError:
        return None
    stream = io.BytesIO(data)
    try:
        head = _Unpickler(stream).load()
    except Exception:
        return None
    if not (isinstance(head, tuple) and len(head) == 2 and head[0] == "bfdask-answers"):
        return None
    if not isinstance(head[1], tuple) or not head[1]:
        return None
    records: dict[Hashable, Any] = {}
    while stream.tell() < len(data):
        try:
            item = _Unpickler(stream).load()
        except Exception:  # a record cut short by a crash: what came before holds
            break
        if isinstance(item, tuple) and len(item) == 2:
            records[item[0]] = item[1]
    return _Log(where, head[1], records, st)


def _current(path: str) -> _Log | None:
    """The log of ``path`` whose key still holds (loaded once per thread), else None."""
    where = _log_path(path)
    if where is None:
        return None
    try:
        st = where.stat()
    except OSError:
        return None
    held: _Log | None = handles.get((KIND, path), lambda h: h.where == where and h.holds(st))
    if held is None:
        held = _read(where)
        if held is None:
            return None
        handles.put((KIND, path), held)
    try:
        holds = held.key[0] == FORMAT and held.key == _key(_files_of(held.key))
    except Exception:  # a key of another shape (an older format, a forged log)
        holds = False
    return held if holds else None


def recall(path: str, name: Hashable, check: Callable[[Any], bool]) -> Any:
    """The answer ``name`` (e.g. ``("spec", 0)``) kept for this version of ``path`` if
    ``check(answer)`` holds, else None. Never raises.

    Parameters
    ----------
    path
        The file as :func:`bfdask.readers.check_path` returns it (absolute, resolved).
    name
        Which answer.
    check
        Whether a loaded value is of the kind asked for (a log is data, not trusted code).
    """
    try:
        held = _current(path)
        if held is None or name not in held.records:
            return None
        value = held.records[name]
        return value if check(value) else None
    except Exception as exc:  # a memo must never break opening
        log.debug("answers of %s unreadable: %s", path, exc)
        return None


def remember(
    path: str,
    answers: dict[Hashable, Any],
    stamp: FileStamp | None,
    used_files: Callable[[], list[str]] | None = None,
) -> None:
    """Keep ``answers``, read from the version ``stamp`` of ``path``. Never raises.

    Parameters
    ----------
    path
        The file (as for :func:`recall`).
    answers
        By name, the plain values to keep.
    stamp
        The file's stamp when the answers were read (a reader's, a spec's): if the file is
        another version now, nothing is kept.
    used_files
        The dataset's files as Bio-Formats lists them: given, a log is started (or replaced)
        when none holds for this version or its files differ; without it, answers are only
        added to a log that holds.
    """
    where = _log_path(path)
    if where is None or not answers or stamp is None or file_stamp(path) != stamp:
        return
    try:
        held = _current(path)
        if used_files is not None:
            files = sorted({path, *used_files()})
            if held is None or _files_of(held.key) != files:
                key = _key(files)
                if key is None or dict(key[-1]).get(path) != stamp:
                    return
                held = _start(where, key)
                handles.put((KIND, path), held)
        if held is None:
            return
        _append(held, {n: a for n, a in answers.items() if held.records.get(n) != a})
    except Exception as exc:
        log.debug("answers of %s not kept: %s", path, exc)


def _append(held: _Log, new: dict[Hashable, Any]) -> None:
    """Append ``new`` to the log ``held`` views, unless it was replaced meanwhile."""
    blobs = {name: _dumps((name, answer)) for name, answer in new.items()}
    kept = {name: new[name] for name, blob in blobs.items() if blob is not None}
    if not kept:
        return
    blob = b"".join(blob for blob in blobs.values() if blob is not None)
    with open(held.where, "ab") as f:  # one write of whole records: appends do not interleave
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) != held.inode:
            return  # replaced by another process since we read it: not ours to add to
        f.write(blob)
        f.flush()
        after = os.fstat(f.fileno())
    if after.st_size == held.size + len(blob):  # nobody else wrote meanwhile: keep our view
        held.records.update(kept)
        held.size = after.st_size


def _start(where: Path, key: tuple[Any, ...]) -> _Log:
    """A new log holding only its key, replacing any old one atomically."""
    where.parent.mkdir(parents=True, exist_ok=True)
    head = pickle.dumps(("bfdask-answers", key), protocol=4)
    fd, temporary = tempfile.mkstemp(prefix=f".{where.name}.", dir=where.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
        os.replace(temporary, where)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return _Log(where, key, {}, where.stat())
