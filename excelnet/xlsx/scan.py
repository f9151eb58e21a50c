"""A fast scan of one worksheet's cells, straight from its XML.

openpyxl builds a Python object per cell; on a 100,000-row workbook (millions of cells) that is
most of the time `excelnet fit` takes. Every common writer (Excel, LibreOffice, XlsxWriter,
openpyxl) stores a cell as `<c r="B2" s="1" t="…"><f>…</f><v>…</v></c>`, which one regular
expression reads in C. The scan checks that it recognised every cell of the sheet; anything
else (cells without an `r`, prefixed tags, attributes on `<v>`) makes it return None, and the
sheet is read by openpyxl instead.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from operator import itemgetter

from openpyxl.formula.translate import Translator
from openpyxl.utils.cell import get_column_letter, range_boundaries

from excelnet.formula.parse import ERRORS, NEWER_ERRORS, CopiedDown, Error

_CELL = re.compile(
    r'<c r="([A-Z]{1,3})([0-9]+)"([^>]*?)(?:/>|>'
    r"(?:<f([^>]*)/>|<f([^>]*)>([^<]*)</f>)?"  # a formula: empty (shared) or with text
    r"(?:<v>([^<]*)</v>|<v\s*/>)?"  # openpyxl writes an empty value as <v />
    r"(?:<is>(.*?)</is>)?"  # an inline string
    r"</c>)",
    re.S,
)
# The cells a large sheet is made of, in fewer groups (a third faster to match): no "/" among
# the attributes, no attributes on <f>, no inline string. A stretch whose cells it all
# matches is read by it.
_COMMON = re.compile(
    r'<c r="([A-Z]{1,3})([0-9]+)"([^>/]*)(?:/>|>(?:<f>([^<]*)</f>)?(?:<v>([^<]*)</v>)?</c>)'
)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TEXT = re.compile(r"<t(?:\s[^>]*)?>([^<]*)</t>")
_COLUMNS: dict[str, int] = {}


def _column(letters: str) -> int:
    c = _COLUMNS.get(letters)
    if c is None:
        c = 0
        for ch in letters:
            c = c * 26 + ord(ch) - 64
        c = _COLUMNS[letters] = c - 1
    return c


class _Shared:
    """A shared formula (Excel's way of storing a formula filled down or across): the text of
    its first cell, translated to each other cell of the group. openpyxl's Translator does
    it right in every case at ~7 µs a cell; a copy down the same column is the first formula
    with its relative row numbers moved on (CopiedDown, ~1 µs), used once it has given the
    Translator's answer for the first such cell."""

    def __init__(self, formula: str, cell: tuple[int, int]):
        self.formula, (self.row, self.col) = formula, cell
        self.translator = Translator(formula, f"{get_column_letter(self.col + 1)}{self.row + 1}")
        self.down: CopiedDown | None = None
        self.trusted: bool | None = None  # does the copy-down template agree?

    def at(self, cell: tuple[int, int]) -> str:
        dr, dc = cell[0] - self.row, cell[1] - self.col
        if dc == 0 and self.trusted:
            return self.down.at(dr)
        text = self.translator.translate_formula(None, dr, dc)
        if dc == 0 and self.trusted is None:
            self.down = CopiedDown(self.formula, self.row + 1)
            self.trusted = self.down.at(dr) == text
        return text


def _chunks(data: str, chunk: int = 8 << 20) -> Iterator[tuple[int, int]]:
    """(start, end) of a few megabytes at a time (ending at a row's end), so that a
    million-row sheet never holds all its matches at once."""
    start = 0
    while start < len(data):
        end = data.find("</row>", start + chunk)
        end = len(data) if end < 0 else end + len("</row>")
        yield start, end
        start = end


def _found(pattern: re.Pattern, data: str, start: int, end: int) -> list[tuple[str, ...]]:
    """A pattern's matches in data[start:end], the column of each one's letters known."""
    found = pattern.findall(data, start, end)
    for letters in set(map(itemgetter(0), found)) - _COLUMNS.keys():
        _column(letters)
    return found


def _type(attrs: str) -> str | None:
    """The cell's t attribute (its type), if any."""
    if 't="' not in attrs:
        return None
    for name, value in _ATTR.findall(attrs):
        if name == "t":
            return value
    return None


def _text(s: str) -> str:
    return html.unescape(s) if "&" in s else s


class Cells:
    """What a sheet holds: formulas (with "="), array formulas, literal values, and (when asked
    for) the values stored with formula cells, as the application that saved the file
    computed them."""

    def __init__(self) -> None:
        self.formulas: dict[tuple[int, int], str] = {}
        self.arrays: dict[tuple[int, int], tuple[str, tuple[int, int, int, int]]] = {}
        self.values: dict[tuple[int, int], object] = {}
        self.cached: dict[tuple[int, int], object] = {}
        self.rich: dict[tuple[int, int], int] = {}  # error cells with value metadata (vm)
        self.meta: dict[tuple[int, int], int] = {}  # array formulas' cell metadata (cm)
        self.data_tables: dict[tuple[int, int], dict[str, str]] = {}  # <f t="dataTable"> attrs
        self.max_row = self.max_col = 0


def _value(t: str | None, v: str, shared_strings: list[str]) -> object:
    """A <v> as a Python value, by the cell's type (None: no value stored)."""
    if t == "str":
        return _text(v)
    if v == "":
        return None
    if t is None or t == "n":
        return float(v)
    if t == "s":
        return shared_strings[int(v)]
    if t == "b":
        return v.strip() in ("1", "true")
    if t == "e":
        error = v.strip().upper()
        return Error(error if error in ERRORS + NEWER_ERRORS else "#N/A")
    raise ValueError(t)


def scan(xml: bytes, shared_strings: list[str], cached: bool = False) -> Cells | None:
    """The cells of a worksheet part, or None if it is not in the common form. `cached` also
    collects the values stored with formula cells (a little slower)."""
    try:
        data = xml.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if re.search(r"<sheetData[\s>/]", data) is None:  # a prefixed namespace, or no cells
        return None if ":sheetData" in data else Cells()
    seen = cells = 0
    out = Cells()
    shared: dict[str, _Shared] = {}  # si -> the group's first formula
    for start, end in _chunks(data):
        here = sum(data.count(c, start, end) for c in ("<c ", "<c>", "<c/"))
        cells += here
        matches = _found(_COMMON, data, start, end)
        if len(matches) == here and _common(matches, out, shared_strings, cached):
            seen += here
            continue
        matches = _found(_CELL, data, start, end)  # every form, one cell at a time
        seen += len(matches)
        if not _cells(matches, out, shared, shared_strings, cached):
            return None
    if seen != cells:  # a cell the pattern did not recognise
        return None
    for found in (out.formulas, out.values, out.arrays):
        if found:
            out.max_row = max(out.max_row, max(map(itemgetter(0), found)))
            out.max_col = max(out.max_col, max(map(itemgetter(1), found)))
    return out


def _common(
    matches: list[tuple[str, ...]], out: Cells, shared_strings: list[str], cached: bool
) -> bool:
    """_COMMON's cells into `out`, as _cells reads them; False at the first that is not a
    plain formula, a number or a shared string (then _cells reads them all again)."""
    formulas, values, columns = out.formulas, out.values, _COLUMNS
    for letters, row, attrs, f_text, v in matches:
        key = (int(row) - 1, columns[letters])
        if f_text:
            if cached and 't="' in attrs:
                return False
            formulas[key] = "=" + (html.unescape(f_text) if "&" in f_text else f_text)
            if cached and v:
                out.cached[key] = float(v)
        elif 't="' not in attrs:
            if v:
                values[key] = float(v)
        elif ' t="s"' in attrs:
            if v:
                values[key] = shared_strings[int(v)]
        else:
            return False
    return True


def _cells(
    matches: list[tuple[str, ...]],
    out: Cells,
    shared: dict[str, _Shared],
    shared_strings: list[str],
    cached: bool,
) -> bool:
    """The cells of `matches` into `out`; False if one is in a form the scan does not read.
    The forms a large sheet is made of (plain formulas, numbers, shared strings) first."""
    formulas, values, columns = out.formulas, out.values, _COLUMNS
    for letters, row, attrs, f_empty, f_attrs, f_text, v, inline in matches:
        key = (int(row) - 1, columns[letters])
        if f_text and not f_attrs and (not cached or 't="' not in attrs):  # a plain formula
            formulas[key] = "=" + (html.unescape(f_text) if "&" in f_text else f_text)
            if cached and v:
                out.cached[key] = float(v)  # the common case: a number, no t attribute
            continue
        if not (f_text or f_attrs or f_empty):  # a literal: a number or a shared string?
            if 't="' not in attrs:
                if v:
                    values[key] = float(v)
                continue
            if ' t="s"' in attrs:
                if v:
                    values[key] = shared_strings[int(v)]
                continue
        t = _type(attrs) if 't="' in attrs else None
        if cached and (f_text or f_attrs or f_empty) and (v or t == "str"):
            try:
                out.cached[key] = _value(t, v, shared_strings)
            except (ValueError, IndexError):
                return False
        if f_text and not f_attrs:
            formulas[key] = "=" + _text(f_text)
            continue
        if f_text or f_attrs or f_empty:
            fa = dict(_ATTR.findall(f_attrs or f_empty)) if (f_attrs or f_empty) else {}
            kind = fa.get("t")
            if kind == "shared":
                si = fa.get("si", "")
                if f_text:
                    shared[si] = _Shared("=" + _text(f_text), key)
                elif si in shared:
                    formulas[key] = shared[si].at(key)
                    continue
                else:
                    return False  # a follower before its master: leave it to openpyxl
            if kind == "array":
                c0, r0, c1, r1 = range_boundaries(fa.get("ref") or letters + row)
                out.arrays[key] = ("=" + _text(f_text), (r0 - 1, c0 - 1, r1 - 1, c1 - 1))
                if 'cm="' in attrs:  # Excel 365: a dynamic array (xl/metadata.xml says)
                    out.meta[key] = int(dict(_ATTR.findall(attrs))["cm"])
            elif kind == "dataTable":  # What-If: its cells hold values only
                out.data_tables[key] = fa
            elif f_text or kind == "shared":
                formulas[key] = "=" + _text(f_text)
        elif t == "s":
            if v != "":
                values[key] = shared_strings[int(v)]
        elif t == "inlineStr":
            values[key] = _text("".join(_TEXT.findall(inline)))
        elif v == "":
            continue
        elif t is None or t == "n":
            values[key] = float(v)
        elif t == "str":
            values[key] = _text(v)
        elif t == "b":
            values[key] = v.strip() in ("1", "true")
        elif t == "e":
            error = v.strip().upper()
            values[key] = Error(error if error in ERRORS + NEWER_ERRORS else "#N/A")
            if 'vm="' in attrs:  # #SPILL!, #CALC!: stored as #VALUE! plus a rich value
                out.rich[key] = int(dict(_ATTR.findall(attrs))["vm"])
        else:  # t="d" (ISO dates) and anything newer: openpyxl knows
            return False
    return True
