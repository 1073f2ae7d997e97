"""The one way bfdask parses XML in Python: no DTD, hence no entity of any kind.

A document type declaration is where every XML entity attack starts: an external entity
(``<!ENTITY x SYSTEM "file:///etc/passwd">``) copies a local file into the text, nested internal
entities ("billion laughs") expand without bound. No file a microscope writes declares one (OME,
LIF and TIFF XML use only the five predefined entities), so :func:`fromstring` refuses any
document that declares a DTD, before a single entity is declared, let alone expanded.

The check runs expat (the parser :mod:`xml.etree.ElementTree` uses) over the prolog only, stopping
at the root element, where a DTD can no longer appear; the document is then parsed by
ElementTree's C parser at full speed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from xml.parsers import expat

from .errors import UnsupportedFormatError

if TYPE_CHECKING:
    from collections.abc import Iterable

#: how much of the document expat reads per step while looking for the root element
_STEP = 1 << 16


class UnsafeXMLError(ET.ParseError):
    """The document declares a DTD or entities, which bfdask never resolves nor expands.

    A :class:`xml.etree.ElementTree.ParseError`, so code that handles unparsable XML handles
    this too.
    """


class _DoctypeFound(Exception):
    """Raised from an expat handler: the prolog declares a DTD (or an entity)."""


class _RootReached(Exception):
    """Raised from an expat handler: the root element starts, the prolog is over."""


def _doctype(*_args: object) -> None:
    raise _DoctypeFound


def _root(*_args: object) -> None:
    raise _RootReached


def _chunks(text: str | bytes) -> Iterable[str | bytes]:
    for start in range(0, len(text), _STEP):
        yield text[start : start + _STEP]


def scan_prolog(chunks: Iterable[str | bytes]) -> bool | None:
    """Whether the XML document fed as ``chunks`` declares a DTD, reading only its prolog.

    Returns
    -------
    bool or None
        True: a ``<!DOCTYPE`` (or an entity declaration) comes before the root element.
        False: the root element starts and no DTD came before it.
        None: expat could not read the prolog (not XML, or malformed), or it ended first.
    """
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _doctype
    parser.EntityDeclHandler = _doctype
    parser.StartElementHandler = _root
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _DoctypeFound:
        return True
    except _RootReached:
        return False
    except expat.ExpatError:
        return None
    return None


def check(text: str | bytes) -> None:
    """Raise :class:`UnsafeXMLError` if ``text`` declares a DTD (reads only the prolog).

    A prolog expat cannot read is left for :func:`xml.etree.ElementTree.fromstring` to report.
    """
    if scan_prolog(_chunks(text)):
        raise UnsafeXMLError(
            "the XML declares a DTD (<!DOCTYPE ...>) or entities; bfdask never resolves nor "
            "expands them (they can read local files or expand without bound)"
        )


def fromstring(text: str | bytes) -> ET.Element:
    """Parse ``text`` like :func:`xml.etree.ElementTree.fromstring`, refusing any DTD.

    Raises
    ------
    UnsafeXMLError
        The document declares a DTD or an entity (a subclass of ``ET.ParseError``).
    xml.etree.ElementTree.ParseError
        The document is not well-formed XML.
    """
    check(text)
    return ET.fromstring(text)


__all__ = ["UnsafeXMLError", "check", "fromstring", "scan_prolog"]


# -- XML files and text in files, before Bio-Formats parses them ----------------------------

#: bytes read at a time when looking for a DTD before an XML file's root element
_XML_STEP = 1 << 16
#: marks of a DTD or entity declaration, in the encodings OME-XML text comes in
DTD_MARKS = tuple(
    mark.encode(codec)
    for mark in ("<!DOCTYPE", "<!ENTITY")
    for codec in ("utf-8", "utf-16-le", "utf-16-be")
)


def dtd_error(path: str, where: str) -> UnsupportedFormatError:
    """The error for OME-XML in ``path`` (at ``where``) that declares a DTD or entities."""
    return UnsupportedFormatError(
        f"{path!r}: its OME-XML ({where}) declares a DTD/entities; bfdask does not resolve "
        "them (an entity can copy a local file into the metadata, or expand without bound). "
        "No microscope writes one: remove the <!DOCTYPE ...> declaration, or rewrite the "
        "metadata, e.g. with tifffile."
    )


def declares_dtd(text: bytes) -> bool:
    """Whether XML ``text`` declares a DTD, as far as can be told.

    Text without a DTD mark is clean. With one, expat reads the prolog: a DTD before the root
    element counts, and so does a prolog expat cannot read (Java's parser may be more lenient);
    a mark after the root element starts is only text.
    """
    if not any(mark in text for mark in DTD_MARKS):
        return False
    return scan_prolog([text]) is not False


def check_file(path: str) -> None:
    """Refuse an XML file (``.ome``, ``.companion.ome``, ``.xml``...) that declares a DTD.

    Reads only what comes before the root element (where a DTD must be), in steps.

    Raises
    ------
    UnsupportedFormatError
        The file declares a DTD or entities.
    """
    with open(path, "rb") as f:
        found = scan_prolog(iter(lambda: f.read(_XML_STEP), b""))
        if found is None:  # expat could not tell: look for the marks themselves
            f.seek(0)
            head = f.read(1 << 20)
            found = any(mark in head for mark in DTD_MARKS)
    if found:
        raise dtd_error(path, "the file's XML")
