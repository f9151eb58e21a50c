"""Cell styles for a sheet excelnet adds to a user's workbook: the styles XlsxWriter wrote for
it (bold headers, number formats) merged into the workbook's own styles.xml.

A cell's style is an index into styles.xml's cellXfs, whose entries point into its fonts,
fills, borders and number formats. Each style the new sheet uses is appended to the user's
lists (or found there, from an earlier run: the same bytes) and the sheet's s="…" indices are
renumbered. The user's styles.xml is only inserted into, never rewritten: its other bytes stay.
"""

from __future__ import annotations

import re

_SECTIONS = {"numFmts": b"numFmt", "fonts": b"font", "fills": b"fill", "borders": b"border"}
_ID_OF = {b"fontId": "fonts", b"fillId": "fills", b"borderId": "borders"}


def _section(xml: bytes, name: str) -> re.Match | None:
    return re.search(
        rb"<%s\b([^>]*?)(?:/>|>(.*?)</%s>)" % (name.encode(), name.encode()), xml, re.S
    )


def _children(inner: bytes | None, tag: bytes) -> list[bytes]:
    if not inner:
        return []
    pattern = rb"<%s\b[^>]*?/>|<%s\b(?:[^>]*[^/])?>.*?</%s>" % (tag, tag, tag)
    return re.findall(pattern, inner, re.S)


def _add(xml: bytes, name: str, tag: bytes, element: bytes) -> tuple[bytes, int]:
    """`element` in section `name` of styles.xml: its index, appended if it is not there."""
    found = _section(xml, name)
    items = _children(found.group(2) if found else None, tag)
    if element in items:
        return xml, items.index(element)
    count = b' count="%d"' % (len(items) + 1)
    if found is None or found.group(2) is None:  # no section yet, or an empty one
        new = b"<%s%s>%s</%s>" % (name.encode(), count, element, name.encode())
        if found is not None:
            return xml[: found.start()] + new + xml[found.end() :], 0
        head = re.search(rb"<styleSheet\b[^>]*>", xml)  # numFmts come first
        return xml[: head.end()] + new + xml[head.end() :], 0
    attrs = re.sub(rb'\s+count="\d*"', b"", found.group(1)) + count
    open_tag = b"<%s%s>" % (name.encode(), attrs)
    inner = found.group(2) + element
    return xml[: found.start()] + open_tag + inner + b"</%s>" % name.encode() + xml[
        found.end() :
    ], (len(items))


def merge(user: bytes, ours: bytes) -> tuple[bytes, dict[int, int]] | None:
    """The user's styles.xml with every cell style of `ours` (XlsxWriter's) in it, and the
    index of each of our styles there. None if the user's file is not in the usual form
    (then the sheet is written without styles)."""
    if _section(user, "cellXfs") is None or re.search(rb"<styleSheet\b", user) is None:
        return None
    ours_lists = {
        n: _children((_section(ours, n) or [None, None, None])[2], t) for n, t in _SECTIONS.items()
    }
    formats = {
        m.group(1): m.group(2)
        for m in re.finditer(
            rb'numFmtId="(\d+)" formatCode="([^"]*)"', b"".join(ours_lists["numFmts"])
        )
    }
    mapping = {}
    for i, xf in enumerate(_children(_section(ours, "cellXfs").group(2), b"xf")):
        if i == 0:
            continue  # the default style: the user's own default stays
        for attr, section in _ID_OF.items():
            old = int(re.search(rb'%s="(\d+)"' % attr, xf).group(1))
            user, new = _add(user, section, _SECTIONS[section], ours_lists[section][old])
            xf = re.sub(rb'%s="\d+"' % attr, b'%s="%d"' % (attr, new), xf)
        fmt = re.search(rb'numFmtId="(\d+)"', xf).group(1)
        if fmt in formats:  # a format of its own: numbered in the user's file
            user = _ensure_format(user, formats[fmt])
            code = re.escape(formats[fmt])
            fmt_id = re.search(rb'numFmtId="(\d+)" formatCode="%s"' % code, user).group(1)
            xf = re.sub(rb'numFmtId="\d+"', b'numFmtId="%s"' % fmt_id, xf)
        user, mapping[i] = _add(user, "cellXfs", b"xf", xf)
    return user, mapping


def _ensure_format(user: bytes, code: bytes) -> bytes:
    if re.search(rb'formatCode="%s"' % re.escape(code), user):
        return user
    ids = [int(i) for i in re.findall(rb'<numFmt\b[^>]*numFmtId="(\d+)"', user)]
    element = b'<numFmt numFmtId="%d" formatCode="%s"/>' % (max([163, *ids]) + 1, code)
    return _add(user, "numFmts", b"numFmt", element)[0]


def restyle(sheet: bytes, mapping: dict[int, int] | None) -> bytes:
    """The sheet's cells with their style indices renumbered (or dropped, without a mapping)."""

    def one(m: re.Match) -> bytes:
        if mapping is None or int(m.group(2)) not in mapping:
            return m.group(1)
        return m.group(1) + b' s="%d"' % mapping[int(m.group(2))]

    return re.sub(rb'(<c r="[A-Z]+\d+") s="(\d+)"', one, sheet)
