"""A workbook's shared strings, read within bounds, as the texts they stand for.

openpyxl reads the shared-string table one XML element at a time (~9 µs each) and keeps
`_xHHHH_` escapes as they are written; a 424 KB file can hold ten million empty strings
(89 s, 1.2 GB). Here the table is counted first, in C, against what the workbook's cells could
use — each shared string is there for a cell that shows it, and such a cell takes at least
16 bytes of sheet XML — and refused past that; then read by one regular expression, each
string unescaped (`_x0001_` is the character U+0001, as Excel and LibreOffice read it).
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path

from excelnet.errors import ExcelnetError
from excelnet.xlsx.files import read_member
from excelnet.xlsx.text import cell_text, unescape

BYTES_PER_CELL = 16  # the least sheet XML a cell showing a shared string takes
FLOOR = 100_000  # strings any workbook may have, whatever its sheets

# elements with or without a namespace prefix (<x:si>, as some writers have it)
_SI = re.compile(r"<(?:\w+:)?si(?:\s[^>]*)?(?:/>|>(.*?)</(?:\w+:)?si>)", re.S)
_PHONETIC = re.compile(r"<(?:\w+:)?rPh\b.*?</(?:\w+:)?rPh>", re.S)
_T = re.compile(r"<(?:\w+:)?t(?:\s[^>]*)?(?:/>|>([^<]*)</(?:\w+:)?t>)")
_TYPE = b"/relationships/sharedStrings"


def part(z: zipfile.ZipFile) -> str | None:
    """The zip member of the shared-string table, if the workbook has one."""
    try:
        rels = z.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return None
    for m in re.finditer(rb"<(?:\w+:)?Relationship\b[^>]*>", rels):
        tag = m.group(0)
        if _TYPE + b'"' in tag:
            target = re.search(rb'Target="([^"]*)"', tag)
            if target is None:
                return None
            t = target.group(1).decode()
            name = t.lstrip("/") if t.startswith("/") else posixpath.normpath("xl/" + t)
            return name if name in z.NameToInfo else None
    return None


def count(xml: bytes) -> int:
    """How many strings a table holds (its <si> elements)."""
    return len(re.findall(rb"<(?:\w+:)?si[ />]", xml))


def check_count(path: Path, n: int, sheet_bytes: int) -> None:
    limit = max(FLOOR, sheet_bytes // BYTES_PER_CELL)
    if n > limit:
        raise ExcelnetError(
            f"{path}: its shared-string table holds {n:,} strings, more than the cells of its "
            f"sheets ({sheet_bytes:,} bytes of XML) could show; a damaged or crafted file"
        )


def parse(xml: bytes) -> list[str] | None:
    """The strings (each item's text runs, its phonetic guides left out), or None where the
    table holds CDATA: then openpyxl reads it."""
    data = xml.decode("utf-8")
    if "<![CDATA[" in data:
        return None
    out = []
    for m in _SI.finditer(data):
        inner = m.group(1)
        if not inner:
            out.append("")
            continue
        if "<rPh" in inner:
            inner = _PHONETIC.sub("", inner)
        out.append(cell_text("".join(t or "" for t in _T.findall(inner))))
    return out


def read(path: Path, z: zipfile.ZipFile, sheet_bytes: int) -> list[str] | None:
    """The workbook's shared strings (an empty list if it has none), counted and checked
    first; None where openpyxl must read them (an uncommon form)."""
    name = part(z)
    if name is None:
        return []
    xml = read_member(path, z, name)
    check_count(path, count(xml), sheet_bytes)
    try:
        return parse(xml)
    except UnicodeDecodeError:
        return None


def exact(strings: list[str] | None) -> None:
    """Decode, in place, the `_xHHHH_` escapes openpyxl leaves in the strings it read itself
    (where `read` gave None: a table with CDATA; openpyxl has already dropped each `_x005F_`,
    so a text holding an escape's pattern itself is read as the escape there)."""
    if strings:
        strings[:] = [unescape(t) if isinstance(t, str) else t for t in strings]
