"""The fast sheet reader reads what openpyxl reads, and a model reads only the sheets it
involves."""

from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from openpyxl.workbook.defined_name import DefinedName

import excelnet.xlsx.read as book_module
from excelnet.fitting.pipeline import fit
from excelnet.formula.parse import Error, relative_key
from excelnet.xlsx.read import read_book
from excelnet.xlsx.scan import scan
from tests.handmade import line_fit

ROOT = Path(__file__).resolve().parents[1]


def by_openpyxl(path: Path):
    """The book as openpyxl's cell-by-cell reader sees it (the scan switched off)."""
    saved = book_module.scan
    book_module.scan = lambda xml, strings, cached=False: None
    try:
        return read_book(path)
    finally:
        book_module.scan = saved


def assert_same_book(path: Path) -> None:
    fast, slow = read_book(path), by_openpyxl(path)
    assert fast.names == slow.names
    assert fast.sheets.keys() == slow.sheets.keys()
    for name, a in fast.sheets.items():
        b = slow.sheets[name]
        for what in ("formulas", "arrays", "values", "names", "max_row", "max_col"):
            assert getattr(a, what) == getattr(b, what), (path.name, name, what)


@pytest.mark.parametrize("name", ["titanic", "quadratic", "relu", "double-relu"])
def test_scan_reads_what_openpyxl_reads(name):
    path = ROOT / "workbooks" / f"{name}.xlsx"
    with zipfile.ZipFile(path) as z:  # and it really is the scan that reads them
        parts = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert all(scan(z.read(n), [""] * 10_000) is not None for n in parts)
    assert_same_book(path)


def test_scan_reads_libreoffice_and_openpyxl_files(titanic_book, tmp_path, recalc):
    (saved_by_libreoffice,) = recalc([titanic_book])
    assert_same_book(saved_by_libreoffice)
    assert_same_book(line_fit(tmp_path / "line.xlsx"))


def sheet_with(tmp_path: Path, cells: str, dimension: str = "A1:F5") -> Path:
    """A workbook whose first sheet's cells are exactly `cells` (sheetData XML), as Excel
    writes them: shared formulas, inline strings, booleans, errors, escaped text."""
    path = tmp_path / "cells.xlsx"
    with xlsxwriter.Workbook(path) as wb:  # two shared strings for the cells to use
        wb.add_worksheet("Sheet").write_row(0, 0, ["placeholder", "second"])
    patched = tmp_path / "patched.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(patched, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                head, rest = data.split(b"<sheetData>")
                _, tail = rest.split(b"</sheetData>")
                data = head + b"<sheetData>" + cells.encode() + b"</sheetData>" + tail
                # openpyxl's read-only mode trusts <dimension>: make it cover the cells
                data = re.sub(
                    rb'<dimension ref="[^"]*"/>', f'<dimension ref="{dimension}"/>'.encode(), data
                )
            dst.writestr(item, data)
    return patched


EXCEL_CELLS = (
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
    '<c r="C1" t="inlineStr"><is><r><t>in</t></r><r><rPr><b/></rPr>'
    '<t xml:space="preserve">line &amp; rich</t></r></is></c></row>'
    '<row r="2"><c r="A2"><v>1.5</v></c><c r="B2"><f t="shared" ref="B2:B5" si="0">A2*2</f>'
    '<v>3</v></c><c r="C2" t="b"><v>1</v></c><c r="D2" t="e"><v>#DIV/0!</v></c>'
    '<c r="E2" t="str"><f>"a&lt;b"&amp;A2</f><v>a&lt;b1.5</v></c><c r="F2" s="1"/></row>'
    '<row r="3"><c r="A3"><v>2E-3</v></c><c r="B3"><f t="shared" si="0"/><v>0</v></c>'
    '<c r="C3" t="b"><v>0</v></c><c r="D3" t="str"><v>plain text</v></c></row>'
    '<row r="4"><c r="A4"><v>-7</v></c><c r="B4"><f t="shared" si="0"/><v>0</v></c>'
    '<c r="C4"><f t="array" ref="C4:D5">A4:A5*2</f><v>-14</v></c><c r="D4"><v>6</v></c></row>'
    '<row r="5"><c r="A5"><v>3</v></c><c r="B5"><f t="shared" si="0"/><v>0</v></c>'
    '<c r="C5"><v>6</v></c></row>'
)


def test_scan_reads_excels_own_forms(tmp_path):
    path = sheet_with(tmp_path, EXCEL_CELLS)
    assert_same_book(path)
    sheet = read_book(path).sheets["Sheet"]
    assert sheet.formulas[(2, 1)] == "=A3*2" and sheet.formulas[(4, 1)] == "=A5*2"
    assert sheet.formulas[(1, 4)] == '="a<b"&A2'
    assert sheet.arrays[(3, 2)] == ("=A4:A5*2", (3, 2, 4, 3))
    assert sheet.values[(0, 2)] == "inline & rich"
    assert sheet.values[(1, 2)] is True and sheet.values[(2, 2)] is False
    assert sheet.values[(1, 3)] == Error("#DIV/0!") and sheet.values[(2, 0)] == 0.002
    assert (3, 3) not in sheet.values and (4, 2) not in sheet.values  # inside the array
    assert (sheet.max_row, sheet.max_col) == (4, 4)


def test_cells_beyond_a_stale_dimension_are_read(tmp_path):
    """openpyxl's read-only mode stops at the sheet's <dimension>; the scan reads every cell."""
    sheet = read_book(sheet_with(tmp_path, EXCEL_CELLS, dimension="A1:B1")).sheets["Sheet"]
    assert sheet.formulas[(4, 1)] == "=A5*2" and (sheet.max_row, sheet.max_col) == (4, 4)


@pytest.mark.parametrize(
    "cells",
    [
        '<row r="1"><c t="n"><v>1</v></c></row>',  # no r attribute
        '<row r="1"><c r="A1" t="d"><v>2024-01-31T00:00:00</v></c></row>',  # an ISO date
        '<row r="1"><c r="A1"><v xml:space="preserve">1</v></c></row>',  # attributes on <v>
    ],
)
def test_other_forms_are_left_to_openpyxl(tmp_path, cells):
    path = sheet_with(tmp_path, cells)
    with zipfile.ZipFile(path) as z:
        assert scan(z.read("xl/worksheets/sheet1.xml"), ["placeholder", "second"]) is None
    assert read_book(path).sheets["Sheet"].values == by_openpyxl(path).sheets["Sheet"].values


def test_a_model_reads_only_the_sheets_it_involves(tmp_path):
    """Titanic's nn model reads data, features and nn; not linear or mmult (they refer to
    features but nothing of nn's refers to them)."""
    book = read_book(ROOT / "workbooks" / "titanic.xlsx", needed_by="nn")
    assert sorted(book.sheets) == ["data", "features", "nn"]
    assert len(read_book(ROOT / "workbooks" / "titanic.xlsx").sheets) == 6


def test_sheets_that_depend_on_the_model_are_read_and_written(tmp_path):
    """A report sheet that reads the loss through a defined name, and a lookup sheet read
    only through another defined name, are both involved; an unrelated sheet is not."""
    path = line_fit(tmp_path / "line.xlsx")
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("lookup")["A1"] = 2.0
    wb.create_sheet("report")["A1"] = "=the_loss*scale"
    wb.create_sheet("unrelated")["A1"] = "=1+1"
    wb.defined_names["the_loss"] = DefinedName("the_loss", attr_text="Model!$C$7")
    wb.defined_names["scale"] = DefinedName("scale", attr_text="lookup!$A$1")
    wb.save(path)
    book = read_book(path, needed_by="Model")
    assert sorted(book.sheets) == ["Model", "inputs", "lookup", "report"]
    (r,) = fit(path, sheet="Model", epochs=50, history=False)
    cached = openpyxl.load_workbook(path, data_only=True)
    assert cached["report"]["A1"].value == pytest.approx(2 * r.final_loss, rel=1e-12)


_FORMULA_CELL = re.compile(rb'<c r="([A-Z]+)(\d+)"([^>]*)><f>([^<]*)</f>')


def as_excel_saves_it(src: Path, dst: Path) -> Path:
    """The workbook with each run of a formula copied down a column stored the way Excel
    stores it: the first cell holds a shared formula over the run, the others point to it."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.startswith("xl/worksheets/sheet"):
                data = _share(data)
            zout.writestr(item, data)
    return dst


def _share(xml: bytes) -> bytes:
    found = _FORMULA_CELL.finditer(xml)
    cells = [(m.group(1).decode(), int(m.group(2)), m.group(4).decode()) for m in found]
    runs: dict[tuple[str, int], tuple[int, int, int]] = {}  # cell -> (si, first row, last row)
    by_column: dict[str, list[tuple[int, str]]] = {}
    for col, row, text in cells:
        by_column.setdefault(col, []).append((row, html.unescape(text)))
    si = 0
    for col, rows in by_column.items():
        start = 0
        for i in range(1, len(rows) + 1):
            same = (
                i < len(rows)
                and rows[i][0] == rows[i - 1][0] + 1
                and relative_key(rows[i][1], rows[i][0])
                == relative_key(rows[start][1], rows[start][0])
            )
            if not same:
                if i - start > 1:
                    for row, _ in rows[start:i]:
                        runs[(col, row)] = (si, rows[start][0], rows[i - 1][0])
                    si += 1
                start = i

    def rewrite(m: re.Match) -> bytes:
        col, row = m.group(1).decode(), int(m.group(2))
        if (col, row) not in runs:
            return m.group(0)
        k, first, last = runs[(col, row)]
        head = m.group(0)[: m.start(4) - m.start(0) - 3]  # the <c …> tag
        if row == first:
            return (
                head
                + f'<f t="shared" ref="{col}{first}:{col}{last}" si="{k}">'.encode()
                + (m.group(4) + b"</f>")
            )
        return head + f'<f t="shared" si="{k}"/>'.encode()

    return _FORMULA_CELL.sub(rewrite, xml)


def test_excels_shared_formulas_read_as_the_formulas_they_stand_for(tmp_path, recalc):
    src = ROOT / "workbooks" / "titanic.xlsx"
    shared = as_excel_saves_it(src, tmp_path / "shared.xlsx")
    with zipfile.ZipFile(shared) as z:
        assert z.read("xl/worksheets/sheet5.xml").count(b't="shared"') > 4000
    ours, original = read_book(shared), read_book(src)
    for name, sheet in original.sheets.items():
        assert ours.sheets[name].formulas == sheet.formulas, name
    assert_same_book(shared)  # and openpyxl, translating every cell, reads the same
    (lo,) = recalc([shared])  # a form LibreOffice reads as the same model
    before = openpyxl.load_workbook(src, data_only=True)["nn"]["M2"].value
    assert openpyxl.load_workbook(lo, data_only=True)["nn"]["M2"].value == pytest.approx(
        before, rel=1e-12
    )
