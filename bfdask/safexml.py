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
