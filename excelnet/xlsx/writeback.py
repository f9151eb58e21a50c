"""Write values into an existing .xlsx/.xlsm by patching its sheet XML inside the zip.

Only the <c> elements of the changed cells are rewritten; every other byte of every other zip
member stays as it was (charts, images, comments, styles, names, VBA, form controls), which a
load-and-save through openpyxl would not keep. The new file is written beside the old one and
renamed over it atomically.
"""

from __future__ import annotations

import re
import zipfile
from collections import deque
from itertools import compress, repeat
from operator import is_not, itemgetter
from pathlib import Path

from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

from excelnet.errors import ExcelnetError
from excelnet.formula.parse import Error
from excelnet.xlsx.atomic import atomic_path
from excelnet.xlsx.files import (
    check_well_formed,
    check_zip,
    read_member,
    refuse_if_open,
    sheet_parts,
)
from excelnet.xlsx.text import xml_text
from excelnet.xlsx.zipcopy import can_copy, copy_with

Value = float | bool | str | Error

_CELL = re.compile(rb"<c\b([^>]*?)(/>|>(.*?)</c>)", re.S)
_ROW = re.compile(rb"<row\b([^>]*?)(/>|>(.*?)</row>)", re.S)
_F = re.compile(rb"<f\b[^>]*?(?:/>|>.*?</f>)", re.S)
_R = re.compile(rb' r="([A-Z]+\d+)"')
_R_ANYWHERE = re.compile(rb'\br="([A-Z]+\d+)"')


def _number(x: float) -> str:
    r = repr(float(x))
    return r[:-2] if r.endswith(".0") else r


def _typed(value: Value) -> tuple[bytes | None, bytes]:
    """(t attribute or None for numbers, <v> content)."""
    if isinstance(value, bool):
        return b"b", b"1" if value else b"0"
    if isinstance(value, Error):
        return b"e", value.code.encode()
    if isinstance(value, str):  # control characters as Excel writes them (_x0007_)
        return b"str", xml_text(value).encode()
    return None, _number(value).encode()


_T = re.compile(rb'\s+t="[^"]*"')


def _formula(inner: bytes | None) -> bytes:
    """The <f> element inside a cell, if any."""
    if not inner:
        return b""
    if inner.startswith(b"<f>"):  # the common form, found without a search
        return inner[: inner.index(b"</f>") + 4]
    found = _F.search(inner)
    return found.group(0) if found else b""


def _rewrite_cell(attrs: bytes, inner: bytes | None, value: Value) -> bytes:
    attrs = _T.sub(b"", attrs) if b't="' in attrs else attrs
    if type(value) is float:  # the common case: a number, with or without a formula
        return (
            b"<c"
            + attrs
            + b">"
            + _formula(inner)
            + b"<v>"
            + _number(value).encode()
            + (b"</v></c>")
        )
    t, v = _typed(value)
    formula = _formula(inner)
    if t is not None and formula:
        attrs += b' t="' + t + b'"'
    elif t is not None:  # a literal cell: booleans keep t="b"; text goes in as inline text
        if t == b"str":
            space = b' xml:space="preserve"' if v != v.strip() else b""
            return b"<c" + attrs + b' t="inlineStr"><is><t' + space + b">" + v + b"</t></is></c>"
        attrs += b' t="' + t + b'"'
    return b"<c" + attrs + b">" + formula + b"<v>" + v + b"</v></c>"


def _col(ref: bytes) -> int:
    letters, _ = coordinate_from_string(ref.decode())
    return column_index_from_string(letters)


# A cell whose reference is its first attribute, as every common writer stores it, in two
# pieces: up to its value, and its value on (<v>…</v></c>, <v/></c> or </c>; the > of
# <c …/>); with its reference, and whether it has content (the > that closes its tag).
# Splitting the XML by it keeps every byte. The content is read as an unrolled loop, twice
# as fast as a lazy .*?; a cell with anything after its <v>, or a <v> with attributes (<v />),
# is not matched, and so goes to the general path.
_CELL_R = re.compile(
    rb'(<c r="([A-Z]{1,3}[0-9]+)"[^>]*?(?:/|(>)[^<]*(?:<(?!/c>|v[\s/>])[^<]*)*))'
    rb"((?(3)(?:<v>[^<]*</v>|<v/>)?</c>|>))"
)
# The same for a sheet whose formulas are all plain <f>…</f> and that has no inline
# strings (a third faster): no attributes on <f>, no "/" among the cell's attributes.
_PLAIN_R = re.compile(
    rb'(<c r="([A-Z]{1,3}[0-9]+)"[^>/]*(?:/|(>)(?:<f>[^<]*</f>)?))'
    rb"((?(3)(?:<v>[^<]*</v>|<v/>)?</c>|>))"
)
_STRIDE = 5  # what the split gives per cell: the text before it, and its four groups


def _refs(updates: dict[tuple[int, int], Value]) -> dict[bytes, Value]:
    """The updates keyed by A1 reference (b"B7"), each column's letters worked out once."""
    rows, cols = map(itemgetter(0), updates), list(map(itemgetter(1), updates))
    letters = {c: get_column_letter(c + 1).encode() for c in set(cols)}
    pairs = zip(map(letters.__getitem__, cols), map((1).__add__, rows), strict=True)
    return dict(zip(map(b"%b%d".__mod__, pairs), updates.values(), strict=True))


def _patch_common(body: bytes, want: dict[bytes, Value]) -> tuple[bytes, set[bytes]] | None:
    """patch_sheet's rewrite when every cell has its reference first (else None): one split
    of the XML, and when every change is a number for a cell with no t attribute, each
    cell's <v> replaced in bulk (C-level maps: a Python step per cell costs seconds here)."""
    plain = b"<f " not in body and b"<is>" not in body
    parts = (_PLAIN_R if plain else _CELL_R).split(body)  # [between, head, ref, >, value, …]
    if b"<c" in b"".join(parts[0::_STRIDE]):
        if not plain:
            return None  # a cell in another form, left between those found: the general path
        parts = _CELL_R.split(body)
        if b"<c" in b"".join(parts[0::_STRIDE]):
            return None
    heads, refs = parts[1::_STRIDE], parts[2::_STRIDE]
    found = list(map(want.get, refs))
    hits = list(compress(range(len(found)), map(is_not, found, repeat(None))))
    values = list(map(found.__getitem__, hits))
    hit_heads = b"\0".join(map(heads.__getitem__, hits)) + b"\0"  # (no \0 in XML)
    if (
        set(map(type, values)) <= {float}
        and b"/\0" not in hit_heads  # <c r="B2" s="1"/>
        and b' t="' not in hit_heads
    ):
        # _number's text for each, as one string: repr, with ".0" dropped
        text = "<v>" + "</v></c>\0<v>".join(map(float.__repr__, values)) + "</v></c>"
        tails = text.replace(".0</v>", "</v>").encode().split(b"\0")
        deque(map(parts.__setitem__, [_STRIDE * i + 4 for i in hits], tails), maxlen=0)
    else:
        for i, value in zip(hits, values, strict=True):
            head, tail = heads[i], parts[_STRIDE * i + 4]
            end = head.find(b">")
            if end < 0:  # <c r="B2" s="1"/>
                cell = _rewrite_cell(head[2:-1], None, value)
            else:
                cell = _rewrite_cell(head[2:end], head[end + 1 :] + tail[:-4], value)
            parts[_STRIDE * i + 1], parts[_STRIDE * i + 4] = cell, b""
    parts[2::_STRIDE] = parts[3::_STRIDE] = [b""] * len(refs)  # inside the heads already
    return b"".join(parts), set(map(refs.__getitem__, hits))


def patch_sheet(xml: bytes, updates: dict[tuple[int, int], Value]) -> bytes:
    """Rewrite the cells at 0-based (row, col) in a worksheet's XML; add missing ones."""
    want = _refs(updates)
    seen: set[bytes] = set()

    def cell(m: re.Match) -> bytes:
        attrs = m.group(1)
        found = _R.match(attrs) or _R_ANYWHERE.search(attrs)  # r first, as writers put it
        value = want.get(found.group(1)) if found else None
        if value is None:
            return m.group(0)
        ref = found.group(1)
        seen.add(ref)
        return _rewrite_cell(attrs, m.group(3), value)

    start, end = xml.find(b"<sheetData"), xml.find(b"</sheetData>")
    if start < 0:
        raise ExcelnetError("worksheet XML has no sheetData")
    if end < 0:  # <sheetData/>: an empty sheet
        close = xml.index(b"/>", start) + 2
        xml = xml[:start] + b"<sheetData></sheetData>" + xml[close:]
        end = xml.find(b"</sheetData>")
    body = xml[start:end]
    common = _patch_common(body, want) if want else (body, seen)
    if common is not None:
        body, seen = common
    else:
        body = _CELL.sub(cell, body)
    missing = {k: want[k] for k in want.keys() - seen}
    if missing:
        body = _insert(body, missing)
    return xml[:start] + body + xml[end:]


def _insert(body: bytes, missing: dict[bytes, Value]) -> bytes:
    by_row: dict[int, list[tuple[int, bytes]]] = {}
    for ref, value in missing.items():
        _, row = coordinate_from_string(ref.decode())
        by_row.setdefault(row, []).append(
            (_col(ref), _rewrite_cell(b' r="' + ref + b'"', None, value))
        )
    rows_done: set[int] = set()

    def row(m: re.Match) -> bytes:
        attrs = m.group(1)
        r = int(re.search(rb'\br="(\d+)"', attrs).group(1))
        if r not in by_row:
            return m.group(0)
        rows_done.add(r)
        cells = [
            (_col(re.search(rb'\br="([A-Z]+\d+)"', c.group(1)).group(1)), c.group(0))
            for c in _CELL.finditer(m.group(3) or b"")
        ]
        merged = sorted(cells + by_row[r], key=lambda t: t[0])
        return b"<row" + attrs + b">" + b"".join(c for _, c in merged) + b"</row>"

    body = _ROW.sub(row, body)
    new_rows = sorted(r for r in by_row if r not in rows_done)
    for r in new_rows:
        cells = b"".join(c for _, c in sorted(by_row[r]))
        element = b'<row r="' + str(r).encode() + b'">' + cells + b"</row>"
        # before the first existing row with a larger number
        pos = None
        for m in _ROW.finditer(body):
            if int(re.search(rb'\br="(\d+)"', m.group(1)).group(1)) > r:
                pos = m.start()
                break
        if pos is None:
            head = body.find(b">") + 1  # after <sheetData ...>
            pos = len(body) if body[head:].strip() else head
        body = body[:pos] + element + body[pos:]
    return body


def write_values(
    path: Path,
    updates: dict[str, dict[tuple[int, int], Value]],
    out: Path | None = None,
    extra: dict[str, bytes] | None = None,
    replace: dict[str, bytes] | None = None,
    force: bool = False,
    checked: frozenset[str] = frozenset(),
) -> Path:
    """Write `updates` (sheet name → {(row, col): value}) into the workbook at `path`, saving
    to `out` (default: `path` itself), atomically. `extra` adds new zip members and `replace`
    swaps the content of existing ones (the history sheet uses both). Every part patched must
    be well-formed XML (the parts named in `checked` were checked already); `force` replaces
    a read-only `out` (see excelnet.xlsx.files.check_target)."""
    out = out or path
    refuse_if_open(path, out)
    replace = dict(replace or {})
    with zipfile.ZipFile(path) as z:
        check_zip(path, z)
        parts = sheet_parts(z)
        for sheet, cells in updates.items():
            part = parts.get(sheet)
            if part is None or part not in z.NameToInfo:
                raise ExcelnetError(f"{path}: sheet {sheet!r} has no part in the zip")
            xml = replace.get(part) or read_member(path, z, part)
            if part not in checked and part not in replace:
                check_well_formed(path, part, xml, sheet)
            replace[part] = patch_sheet(xml, cells)
            check_written(path, part, replace[part], sheet)
        with atomic_path(out, force) as tmp:
            try:
                if can_copy(z):
                    try:
                        copy_with(path, z, tmp, replace, extra or {})
                        return out
                    except zipfile.LargeZipFile:
                        pass  # past 4 GiB: zipfile's own path writes ZIP64
                _recompress(z, tmp, replace, extra or {})
            except zipfile.BadZipFile as e:
                raise ExcelnetError(f"{path}: corrupt workbook ({e}); nothing written") from None
    return out


def check_written(path: Path, part: str, xml: bytes, sheet: str) -> None:
    """A part excelnet has patched is well-formed XML, or nothing is written: a value it
    could not escape is excelnet's fault, never a damaged file left behind."""
    try:
        check_well_formed(path, part, xml, sheet)
    except ExcelnetError as e:
        raise ExcelnetError(f"{e} after excelnet wrote its values; nothing written") from None


def _recompress(
    z: zipfile.ZipFile, tmp: Path, replace: dict[str, bytes], extra: dict[str, bytes]
) -> None:
    """The same copy through zipfile: every member inflated and deflated again."""
    with zipfile.ZipFile(tmp, "w") as dst:
        for info in z.infolist():
            data = replace.get(info.filename)
            dst.writestr(
                info,
                data if data is not None else z.read(info.filename),
                compress_type=info.compress_type,
            )
        for name, data in extra.items():
            dst.writestr(
                zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)),
                data,
                compress_type=zipfile.ZIP_DEFLATED,
            )
