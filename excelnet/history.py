"""The `history` sheet: the losses of every fit, appended fit after fit, with a line chart.

Laid out as four columns per model sheet — epoch, training loss, validation loss, accuracy —
so each model's curve is one contiguous range. The sheet and its chart are written with
XlsxWriter into memory and moved into the user's workbook as new zip parts; later fits
rewrite those same parts. Nothing else in the workbook changes beyond the bookkeeping a new
sheet needs (workbook.xml, its rels, [Content_Types].xml).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from pathlib import Path

import xlsxwriter

from excelnet.errors import ExcelnetError, where
from excelnet.formula.book import Book
from excelnet.train import SheetFit
from excelnet.writeback import sheet_parts

SHEET = "history"
SUFFIXES = ["epoch", "training loss", "validation loss", "accuracy"]
Row = tuple[float, float | None, float | None, float | None]


def _existing(book: Book) -> dict[str, list[Row]]:
    """The runs already in the history sheet, per model sheet."""
    sheet = book.sheets.get(SHEET)
    if sheet is None:
        return {}
    headers = {c: v for (r, c), v in sheet.values.items() if r == 0}
    groups: dict[str, list[Row]] = {}
    for c in sorted(headers):
        h = headers[c]
        if (
            c % 4
            or not isinstance(h, str)
            or not h.endswith(" " + SUFFIXES[0])
            or any(
                headers.get(c + i) != f"{h[: -len(SUFFIXES[0])]}{s}" for i, s in enumerate(SUFFIXES)
            )
        ):
            if c % 4 == 0:
                raise ExcelnetError(
                    f"{where(book.path, SHEET)}: a sheet named {SHEET!r} exists "
                    f"that excelnet did not write; rename it and fit again"
                )
            continue
        name = h[: -len(SUFFIXES[0]) - 1]
        rows = []
        for r in range(1, sheet.max_row + 1):
            cells = [sheet.values.get((r, c + i)) for i in range(4)]
            if cells[0] is None:
                break
            rows.append(tuple(v if isinstance(v, float) else None for v in cells))
        groups[name] = rows
    return groups


def _merge(groups: dict[str, list[Row]], results: list[SheetFit]) -> dict[str, list[Row]]:
    for res in results:
        rows = groups.setdefault(res.sheet, [])
        offset = rows[-1][0] if rows else 0.0
        new = [(offset + e, t, v, a) for e, t, v, a in res.history]
        if rows and new:
            new = new[1:]  # epoch 0 of this fit is the last row of the one before
        rows.extend(new)
    return groups


def _render(groups: dict[str, list[Row]]) -> dict[str, bytes]:
    """The history sheet and its chart as an XlsxWriter workbook's parts."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet(SHEET)
    names = list(groups)
    height = max((len(rows) for rows in groups.values()), default=0)
    ws.write_row(0, 0, [f"{n} {s}" for n in names for s in SUFFIXES])
    for r in range(height):
        for g, n in enumerate(names):
            if r < len(groups[n]):
                for i, v in enumerate(groups[n][r]):
                    if v is not None:
                        ws.write_number(r + 1, 4 * g + i, v)
    ws.set_column(0, 4 * len(names) - 1, 16)
    chart = wb.add_chart({"type": "scatter", "subtype": "straight"})
    for g, n in enumerate(names):
        last = len(groups[n])
        if not last:
            continue
        for i, label in ((1, "training"), (2, "validation")):
            if all(row[i] is None for row in groups[n]):
                continue
            chart.add_series(
                {
                    "name": f"{n} {label} loss",
                    "categories": [SHEET, 1, 4 * g, last, 4 * g],
                    "values": [SHEET, 1, 4 * g + i, last, 4 * g + i],
                    "line": {"dash_type": "dash"} if label == "validation" else {},
                }
            )
    chart.set_title({"name": "Loss during excelnet fit"})
    chart.set_x_axis({"name": "epoch"})
    chart.set_y_axis({"name": "loss (mean squared error)"})
    chart.set_size({"width": 720, "height": 400})
    ws.insert_chart(1, 4 * len(names) + 1, chart)
    wb.close()
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    sheet = z.read("xl/worksheets/sheet1.xml").replace(b' tabSelected="1"', b"")
    # the user's workbook has its own shared strings: write the headers inline instead
    shared = re.findall(rb"<si><t[^>]*>(.*?)</t></si>", z.read("xl/sharedStrings.xml"), re.S)
    sheet = re.sub(
        rb'<c r="([A-Z]+\d+)" t="s"><v>(\d+)</v></c>',
        lambda m: (
            b'<c r="'
            + m.group(1)
            + b'" t="inlineStr"><is><t>'
            + shared[int(m.group(2))]
            + b"</t></is></c>"
        ),
        sheet,
    )
    return {
        "sheet": sheet,
        "drawing": z.read("xl/drawings/drawing1.xml"),
        "chart": z.read("xl/charts/chart1.xml"),
    }


def _rels_target(z: zipfile.ZipFile, part: str, kind: str) -> str | None:
    rels = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
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


def history_parts(
    path: Path, book: Book, results: list[SheetFit]
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(new zip members, replaced zip members) that write the updated history sheet."""
    parts = _render(_merge(_existing(book), results))
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        sheet_part = sheet_parts(z).get(SHEET)
        if sheet_part is not None:  # ours from an earlier fit: rewrite its parts in place
            drawing = _rels_target(z, sheet_part, "drawing")
            chart = _rels_target(z, drawing, "chart") if drawing else None
            if chart is None:
                raise ExcelnetError(
                    f"{where(path, SHEET)}: the history sheet has lost its "
                    f"chart; rename or delete the sheet and fit again"
                )
            return {}, {
                sheet_part: parts["sheet"],
                drawing: parts["drawing"],
                chart: parts["chart"],
            }
        sheet_part = _free(names, "xl/worksheets", "sheet")
        drawing = _free(names, "xl/drawings", "drawing")
        chart = _free(names, "xl/charts", "chart")
        extra = {
            sheet_part: parts["sheet"],
            drawing: parts["drawing"],
            chart: parts["chart"],
            _rels_path(sheet_part): _rels_file(
                _rel("rId1", "drawing", "../drawings/" + posixpath.basename(drawing))
            ),
            _rels_path(drawing): _rels_file(
                _rel("rId1", "chart", "../charts/" + posixpath.basename(chart))
            ),
        }
        types = z.read("[Content_Types].xml")
        overrides = b"".join(
            f'<Override PartName="/{p}" ContentType="{_TYPES[k]}"/>'.encode()
            for k, p in (("sheet", sheet_part), ("drawing", drawing), ("chart", chart))
        )
        types = types.replace(b"</Types>", overrides + b"</Types>")
        rels = z.read("xl/_rels/workbook.xml.rels")
        ids = {int(i) for i in re.findall(rb'Id="rId(\d+)"', rels)}
        rid = f"rId{max(ids, default=0) + 1}"
        rels = rels.replace(
            b"</Relationships>",
            _rel(rid, "worksheet", posixpath.relpath(sheet_part, "xl")) + b"</Relationships>",
        )
        wb = z.read("xl/workbook.xml")
        sheet_ids = [int(i) for i in re.findall(rb'<sheet\b[^>]*\bsheetId="(\d+)"', wb)]
        entry = f'<sheet name="{SHEET}" sheetId="{max(sheet_ids, default=0) + 1}" r:id="{rid}"/>'
        if b"</sheets>" not in wb:
            raise ExcelnetError(f"{path}: workbook.xml has no sheet list")
        wb = wb.replace(b"</sheets>", entry.encode() + b"</sheets>")
        return extra, {
            "[Content_Types].xml": types,
            "xl/_rels/workbook.xml.rels": rels,
            "xl/workbook.xml": wb,
        }


def _rels_path(part: str) -> str:
    return posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
