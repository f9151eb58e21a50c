"""Sheets excelnet adds to a user's workbook — history, lr_sweep, compare: a table and one
chart, written with XlsxWriter into memory and moved into the workbook as new zip parts (or
over the parts of the same sheet from an earlier run). Nothing else in the workbook changes
beyond the bookkeeping a new sheet needs (workbook.xml, its rels, [Content_Types].xml)."""

from __future__ import annotations

import io
import math
import posixpath
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import xlsxwriter

from excelnet.errors import ExcelnetError, where
from excelnet.xlsx import styles
from excelnet.xlsx.files import sheet_parts
from excelnet.xlsx.text import Worksheet

Parts = dict[str, bytes]


HEADER = {"bold": True, "bg_color": "#D9E1F2", "bottom": 1, "text_wrap": True}  # as a build's


# Characters of column width a landscape page shows at a size still read (Calibri 11 at about
# 55%): a sheet wider than that prints in sections, each one page wide, its first column
# repeated on each
SECTION_WIDTH = 240
DEFAULT_WIDTH = 8.43  # a column's width when the sheet sets none


def widths(ws, first: int, last: int) -> list[float]:
    """The widths of an XlsxWriter sheet's columns first..last, in characters (XlsxWriter
    keeps pixels: 7 a character and 5 of padding)."""
    out = []
    for c in range(first, last + 1):
        info = ws.col_info.get(c)
        pixels = getattr(info, "width", None) if info is not None else None
        out.append(DEFAULT_WIDTH if pixels is None else max(pixels - 5, 0) / 7)
    return out


def pages_wide(ws, last: int | None = None) -> None:
    """Print an XlsxWriter sheet (through column `last`, default its last used) one page
    wide, or when that would shrink it past reading, in sections of SECTION_WIDTH characters
    a page wide each, its first column repeated; as many pages tall as it needs. Call it once
    the columns have their widths."""
    last = ws.dim_colmax if last is None else last
    width = sum(widths(ws, 0, last)) if last is not None else 0
    sections = max(1, math.ceil(width / SECTION_WIDTH))
    ws.fit_to_pages(sections, 0)
    if sections > 1:
        ws.repeat_columns(0)


def render(
    name: str,
    header: list[str],
    columns: list[list[float | str | None]],
    chart: Callable[[xlsxwriter.Workbook], object],
    formats: list[str | None] | None = None,
) -> Parts:
    """A sheet holding `columns` under a styled `header`, each column in its number format
    (`formats`, Excel's codes), with the chart `chart(workbook)` beside."""

    def fill(wb: xlsxwriter.Workbook, ws) -> None:
        ws.write_row(0, 0, header, wb.add_format(HEADER))
        number = [wb.add_format({"num_format": f}) if f else None for f in formats or []]
        for c, column in enumerate(columns):
            fmt = number[c] if c < len(number) else None
            for r, v in enumerate(column):
                if isinstance(v, str):
                    ws.write_string(r + 1, c, v)
                elif v is not None:
                    ws.write_number(r + 1, c, v, fmt)
        for c, text in enumerate(header):
            ws.set_column(c, c, max(12, len(text) + 2))
        ws.freeze_panes(1, 0)
        ws.insert_chart(1, len(header) + 1, chart(wb))

    return render_sheet(name, fill)


def render_sheet(name: str, fill: Callable[[xlsxwriter.Workbook, object], None]) -> Parts:
    """A sheet that `fill(workbook, worksheet)` writes with XlsxWriter, as the zip parts to
    place: its XML, its styles (merged into the workbook's when it is placed, see
    excelnet.xlsx.styles), its drawing and chart if it inserted one, and the rows (and columns)
    its pages repeat. It prints one page wide, or a wide sheet in sections (pages_wide)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    wb.worksheet_class = Worksheet  # text escaped as Excel escapes it
    ws = wb.add_worksheet(name)
    ws.set_landscape()
    fill(wb, ws)
    ws.repeat_rows(0)  # the header row, on every page
    pages_wide(ws)
    wb.close()
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    sheet = z.read("xl/worksheets/sheet1.xml").replace(b' tabSelected="1"', b"")
    # the user's workbook has its own shared strings: write the strings inline instead
    names = z.namelist()
    table = z.read("xl/sharedStrings.xml") if "xl/sharedStrings.xml" in names else b""
    shared = re.findall(rb"<si><t[^>]*>(.*?)</t></si>", table, re.S)
    sheet = re.sub(
        rb'<c r="([A-Z]+\d+)"( s="\d+")? t="s"><v>(\d+)</v></c>',
        lambda m: (
            b'<c r="'
            + m.group(1)
            + b'"'
            + (m.group(2) or b"")
            + b' t="inlineStr"><is><t>'
            + shared[int(m.group(3))]
            + b"</t></is></c>"
        ),
        sheet,
    )
    parts = {"sheet": sheet, "styles": z.read("xl/styles.xml")}
    titles = re.search(
        rb'<definedName name="_xlnm.Print_Titles"[^>]*>([^<]*)</definedName>',
        z.read("xl/workbook.xml"),
    )
    if titles is not None:  # the rows (and for a wide sheet, the column) every page repeats
        parts["titles"] = titles.group(1)
    if "xl/drawings/drawing1.xml" in names:
        parts["drawing"] = z.read("xl/drawings/drawing1.xml")
        parts["chart"] = z.read("xl/charts/chart1.xml")
    return parts


def _rels_path(part: str) -> str:
    return posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")


def _rels_target(z: zipfile.ZipFile, part: str, kind: str) -> str | None:
    rels = _rels_path(part)
    if rels not in z.namelist():
        return None
    for m in re.finditer(rb"<Relationship\b[^>]*>", z.read(rels)):
        tag = m.group(0)
        if f'/relationships/{kind}"'.encode() in tag:
            target = re.search(rb'Target="([^"]*)"', tag).group(1).decode()
            return posixpath.normpath(posixpath.join(posixpath.dirname(part), target))
    return None


def _free(names: list[str], folder: str, stem: str) -> str:
    k = 1
    while f"{folder}/{stem}{k}.xml" in names:
        k += 1
    return f"{folder}/{stem}{k}.xml"


def _rel(rid: str, kind: str, target: str) -> bytes:
    return (
        f'<Relationship Id="{rid}" Type="http://schemas.openxmlformats.org/officeDocument/'
        f'2006/relationships/{kind}" Target="{target}"/>'
    ).encode()


def _rels_file(*rels: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
        b'"http://schemas.openxmlformats.org/package/2006/relationships">'
        + b"".join(rels)
        + b"</Relationships>"
    )


_TYPES = {
    "sheet": "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
    "drawing": "application/vnd.openxmlformats-officedocument.drawing+xml",
    "chart": "application/vnd.openxmlformats-officedocument.drawingml.chart+xml",
}


class Changes:
    """Zip members to add and to replace, gathered before one write (see writeback)."""

    def __init__(self) -> None:
        self.extra: Parts = {}
        self.replace: Parts = {}

    def read(self, z: zipfile.ZipFile, member: str) -> bytes:
        return self.replace.get(member) or self.extra.get(member) or z.read(member)

    def _styled(self, z: zipfile.ZipFile, parts: Parts) -> bytes:
        """The rendered sheet with its styles merged into the workbook's styles.xml."""
        merged = None
        if "xl/styles.xml" in z.NameToInfo:
            merged = styles.merge(self.read(z, "xl/styles.xml"), parts["styles"])
        if merged is None:
            return styles.restyle(parts["sheet"], None)
        self.replace["xl/styles.xml"], mapping = merged
        return styles.restyle(parts["sheet"], mapping)

    def place(self, path: Path, name: str, parts: Parts) -> None:
        """Put a rendered sheet into the workbook: over the same sheet from an earlier run,
        or as a new last sheet."""
        with zipfile.ZipFile(path) as z:
            parts = {**parts, "sheet": self._styled(z, parts)}
            names = z.namelist() + list(self.extra)
            sheet_part = sheet_parts(z).get(name)
            if sheet_part is not None:
                drawing = _rels_target(z, sheet_part, "drawing")
                chart = _rels_target(z, drawing, "chart") if drawing else None
                if chart is None or "chart" not in parts:
                    raise ExcelnetError(
                        f"{where(path, name)}: a sheet named {name!r} exists "
                        f"that excelnet did not write (or its chart is gone); "
                        f"rename it"
                    )
                self.replace.update(
                    {sheet_part: parts["sheet"], drawing: parts["drawing"], chart: parts["chart"]}
                )
                return
            sheet_part = _free(names, "xl/worksheets", "sheet")
            self.extra[sheet_part] = parts["sheet"]
            added = [("sheet", sheet_part)]
            if "chart" in parts:
                drawing = _free(names, "xl/drawings", "drawing")
                chart = _free(names, "xl/charts", "chart")
                self.extra.update(
                    {
                        drawing: parts["drawing"],
                        chart: parts["chart"],
                        _rels_path(sheet_part): _rels_file(
                            _rel("rId1", "drawing", "../drawings/" + posixpath.basename(drawing))
                        ),
                        _rels_path(drawing): _rels_file(
                            _rel("rId1", "chart", "../charts/" + posixpath.basename(chart))
                        ),
                    }
                )
                added += [("drawing", drawing), ("chart", chart)]
            types = self.read(z, "[Content_Types].xml")
            overrides = b"".join(
                f'<Override PartName="/{p}" ContentType="{_TYPES[k]}"/>'.encode() for k, p in added
            )
            types = types.replace(b"</Types>", overrides + b"</Types>")
            rels = self.read(z, "xl/_rels/workbook.xml.rels")
            ids = {int(i) for i in re.findall(rb'Id="rId(\d+)"', rels)}
            rid = f"rId{max(ids, default=0) + 1}"
            rels = rels.replace(
                b"</Relationships>",
                _rel(rid, "worksheet", posixpath.relpath(sheet_part, "xl")) + b"</Relationships>",
            )
            wb = self.read(z, "xl/workbook.xml")
            if b"</sheets>" not in wb:
                raise ExcelnetError(f"{path}: workbook.xml has no sheet list")
            sheet_ids = [int(i) for i in re.findall(rb'<sheet\b[^>]*\bsheetId="(\d+)"', wb)]
            entry = f'<sheet name="{name}" sheetId="{max(sheet_ids, default=0) + 1}" r:id="{rid}"/>'
            wb = wb.replace(b"</sheets>", entry.encode() + b"</sheets>")
            # its header row repeats on every printed page (the sheet is the last one)
            quoted = name if re.fullmatch(r"\w+", name) else "'" + name.replace("'", "''") + "'"
            repeat = parts.get("titles") or f"{quoted}!$1:$1".encode()
            titles = (
                f'<definedName name="_xlnm.Print_Titles" localSheetId="{len(sheet_ids)}">'.encode()
                + repeat
                + b"</definedName>"
            )
            if b"</definedNames>" in wb:
                wb = wb.replace(b"</definedNames>", titles + b"</definedNames>")
            else:
                names = b"<definedNames>" + titles + b"</definedNames>"
                wb = wb.replace(b"</sheets>", b"</sheets>" + names)
            self.replace.update(
                {
                    "[Content_Types].xml": types,
                    "xl/_rels/workbook.xml.rels": rels,
                    "xl/workbook.xml": wb,
                }
            )
