"""FastWorksheet writes what XlsxWriter writes, cell by cell, byte for byte."""

from __future__ import annotations

import zipfile
from pathlib import Path

import xlsxwriter

from excelnet.writer import new_workbook

N = 40
TEXT = ["plain", "=1+1", "a < b & c", " padded ", None, "@SUM(1)"]
FORMULAS = [
    lambda r: f"=A{r}*2+LOG10(B{r}+1)",
    lambda r: f'=IF(A{r}<0.5,"low & <small>",A{r}^2)',
    lambda r: f"=XLOOKUP(A{r},A2:A9,B2:B9)",  # XlsxWriter rewrites it: _xlfn.XLOOKUP
]


def _sheet(wb, ws, fmt, columns: bool) -> None:
    """The same cells, written either cell by cell or a column at a time."""
    ws.write_string(0, 0, "header", fmt["header"])
    ws.write_number(3, 7, 42.5)  # cells of XlsxWriter's own among the columns' rows
    ws.write_formula(5, 8, "=SUM(A2:A41)", fmt["metric"], 123.25)
    ws.set_row(7, 30)  # a row with its own height
    ws.set_column(1, 1, 12, fmt["number"])  # column B: a column format for unformatted cells
    numbers = [None if r % 7 == 3 else r / 3 for r in range(N)]
    text = [TEXT[r % len(TEXT)] for r in range(N)]
    ints = list(range(N))
    for c, cells in enumerate([numbers, ints, text]):
        if columns:
            ws.write_column(1, c, cells, fmt["feature"] if c == 0 else None)
            continue
        for r, v in enumerate(cells, start=1):
            if isinstance(v, str):
                ws.write_string(r, c, v)
            elif v is not None:
                ws.write_number(r, c, v, fmt["feature"] if c == 0 else None)
    for k, formula in enumerate(FORMULAS):
        rows = range(2, N + 2)
        values = [r * 0.1 for r in rows]
        if columns:
            ws.write_formulas(1, 3 + k, [formula(r) for r in rows], values, fmt["number"])
        else:
            for r, v in zip(rows, values, strict=True):
                ws.write_formula(r - 1, 3 + k, formula(r), fmt["number"], v)


def _build(path: Path, columns: bool) -> Path:
    wb, fmt = new_workbook(path)
    _sheet(wb, wb.add_worksheet("s"), fmt, columns)
    wb.close()
    return path


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_columns_write_the_bytes_cells_write(tmp_path):
    by_cell = _parts(_build(tmp_path / "cells.xlsx", columns=False))
    by_column = _parts(_build(tmp_path / "columns.xlsx", columns=True))
    assert by_column.keys() == by_cell.keys()
    for name, data in by_cell.items():
        assert by_column[name] == data, name
    sheet = by_cell["xl/worksheets/sheet1.xml"].decode()
    assert "_xlfn.XLOOKUP(" in sheet and "&lt;small&gt;" in sheet  # both paths were exercised


def test_fast_formulas_match_stock_xlsxwriter(tmp_path):
    """The formula shortcut gives the bytes of XlsxWriter's own worksheet class."""
    stock = tmp_path / "stock.xlsx"
    wb = xlsxwriter.Workbook(
        str(stock),
        {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False},
    )
    ours_wb, _ = new_workbook(tmp_path / "ours.xlsx")
    for book in (wb, ours_wb):
        ws = book.add_worksheet("s")
        for k, formula in enumerate(FORMULAS):
            for r in range(2, 12):
                ws.write_formula(r - 1, k, formula(r), None, 1.5)
        book.close()
    assert (
        _parts(stock)["xl/worksheets/sheet1.xml"]
        == _parts(tmp_path / "ours.xlsx")["xl/worksheets/sheet1.xml"]
    )
