"""Text as Excel stores it in a workbook's XML. XML 1.0 cannot hold most control characters
(U+0001-U+001F but tab and line feed, and U+FFFE, U+FFFF, lone surrogates); Excel writes each
as _xHHHH_ (its code in hex), and a carriage return too (XML would read it as a line feed).
Text that holds such a sequence itself has its underscore written _x005F_, so that reading
back gives the text exactly. Shared strings are read here too, exactly: openpyxl drops every
"x005F_" and leaves the other escapes as they are."""

from __future__ import annotations

import html
import re
from xml.sax.saxutils import escape

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_LITERAL = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def escape_text(s: str) -> str:
    """Text for a <v> or <t> element: _xHHHH_ escapes, then XML's own (& < >)."""
    if "_x" in s:
        s = _LITERAL.sub("_x005F_", s)
    s = _FORBIDDEN.sub(lambda m: f"_x{ord(m.group(0)):04X}_", s)
    return escape(s)


def unescape_text(s: str) -> str:
    """The inverse of escape_text's _xHHHH_ step (XML's entities already decoded)."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), s) if "_x" in s else s


def cell_text(raw: str) -> str:
    """A <v> or <t> element's content, as it is in the file, as the text it stands for."""
    return unescape_text(html.unescape(raw) if "&" in raw else raw)


_SI = re.compile(rb"<(?:\w+:)?si\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?si>)", re.S)
_PHONETIC = re.compile(rb"<(?:\w+:)?rPh\b.*?</(?:\w+:)?rPh>", re.S)
_T = re.compile(rb"<(?:\w+:)?t\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?t>)", re.S)


def shared_strings(xml: bytes) -> list[str]:
    """A sharedStrings part's texts, in order: each item's text runs (its phonetic guides
    left out), entities and _xHHHH_ escapes decoded."""
    out = []
    for si in _SI.finditer(xml):
        body = _PHONETIC.sub(b"", si.group(1) or b"")
        raw = b"".join(t.group(1) or b"" for t in _T.finditer(body)).decode("utf-8")
        out.append(cell_text(raw))
    return out


_RELATION = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")


def shared_strings_part(z) -> str | None:
    """The zip member of a workbook's shared strings (from its relationships), if any."""
    import posixpath

    try:
        rels = z.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return None
    for m in _RELATION.finditer(rels):
        attrs = dict(re.findall(rb'(\w+)="([^"]*)"', m.group(0)))
        if attrs.get(b"Type", b"").endswith(b"/sharedStrings"):
            target = attrs.get(b"Target", b"").decode()
            if target.startswith("/"):
                return target.lstrip("/")
            return posixpath.normpath(posixpath.join("xl", target))
    return None


def exact_strings(path, strings: list[str]) -> None:
    """Put the exact texts (shared_strings) in openpyxl's list of a workbook's shared strings,
    in place, where it holds escapes it did not decode."""
    import zipfile

    if not strings or not any("_x" in s for s in strings if isinstance(s, str)):
        return
    with zipfile.ZipFile(path) as z:
        part = shared_strings_part(z)
        if part is None or part not in z.NameToInfo:
            return
        exact = shared_strings(z.read(part))
    if len(exact) == len(strings):
        strings[:] = exact
