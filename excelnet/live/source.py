"""The second source: a workbook open in Excel or LibreOffice, read through xlwings' Book /
Sheet / Range / Name API into the same in-memory Book that the file reader builds
(excelnet/formula/book.py), so that one compiler serves both. The values the application
shows for formula cells stand for the values a file stores with them (Book.stored)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from excelnet.errors import ExcelnetError
from excelnet.fitting.history import SHEET as HISTORY
from excelnet.formula.book import Book, Sheet
from excelnet.formula.parse import ERRORS, Error


def read_live(book, path: str | Path | None = None) -> Book:
    """The cells, formulas and defined names of an open workbook (an xlwings Book).

    An engine that sends no formulas (xlwings' remote engine: its clients send values and
    names only) needs the workbook's file, `path`: formulas are then read from the file, and
    the values of the cells that hold no formula from the live workbook, as they are now."""
    names, scoped = {}, {}
    for n in book.names:
        text = n.refers_to
        if text is None:  # an older remote client sends no definition
            continue
        sheet, _, name = n.name.rpartition("!")
        text = text.removeprefix("=")
        if sheet and name.startswith("_xlnm."):
            continue  # print areas and titles: page setup, as the file reader (openpyxl) has it
        if sheet:
            scoped.setdefault(_unquote(sheet), {})[name] = text
        else:
            names[name] = text
    sheets = {}
    try:
        for ws in book.sheets:
            sheets[ws.name] = _read_sheet(ws, scoped.get(ws.name, {}))
    except NotImplementedError:
        if path is None:
            raise ExcelnetError(
                f"{book.name}: this xlwings engine does not send formulas; give the "
                f"workbook's file (path=…) to read them from"
            ) from None
        return _with_live_values(book, path, names, scoped)
    return Book(Path(book.fullname), sheets, names, cached=True)


def _unquote(sheet: str) -> str:
    return sheet[1:-1].replace("''", "'") if sheet.startswith("'") else sheet


def _serial(**when) -> float:
    """xlwings' date builder → the date's Excel serial number, as the file holds it."""
    from openpyxl.utils.datetime import to_excel

    return float(to_excel(dt.datetime(**{k: v for k, v in when.items() if k != "tzinfo"})))


def _values(rng) -> list[list]:
    """A range's values as a list of rows: numbers as floats, dates as serial numbers, errors
    as Error, empty cells as None."""
    rows = rng.options(ndim=2, dates=_serial, err_to_str=True).value
    return [[_literal(v) for v in row] for row in rows]


def _literal(v):
    if isinstance(v, str) and v in ERRORS:
        return Error(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def _read_sheet(ws, names: dict[str, str]) -> Sheet:
    sheet = Sheet(ws.name, names=dict(names))
    used = ws.used_range
    top, left = used.row - 1, used.column - 1
    formulas = used.formula
    if isinstance(formulas, str):  # a single cell
        formulas = ((formulas,),)
    values = _values(used)
    text_cells = {}
    for i, row in enumerate(formulas):
        for j, f in enumerate(row):
            v = values[i][j]
            key = (top + i, left + j)
            # a formula's text starts with "="; text that does (typed after an apostrophe)
            # shows itself as its value
            if isinstance(f, str) and f.startswith("=") and not (isinstance(v, str) and v == f):
                text_cells[key] = f
                if v is not None:  # what the application computes now: the stored value
                    sheet.cached[key] = v
            elif v is not None:
                sheet.values[key] = v
    if text_cells or sheet.values:
        cells = list(text_cells) + list(sheet.values)
        sheet.max_row = max(r for r, _ in cells)
        sheet.max_col = max(c for _, c in cells)
    for origin, (text, area) in _arrays(ws, text_cells).items():
        sheet.arrays[origin] = (text, area)
        for r in range(area[0], area[2] + 1):
            for c in range(area[1], area[3] + 1):
                text_cells.pop((r, c), None)
    sheet.formulas = text_cells
    return sheet


def _arrays(ws, formulas: dict[tuple[int, int], str]) -> dict:
    """The legacy array formulas among a sheet's formula cells: origin → (text, area). Each
    cell of an array shows the array's formula, so a run of formula cells down a column is
    asked once whether it is all array (Range.has_array: True, False, or None when mixed)."""
    in_array = set()
    for run in _column_runs(formulas):
        (r0, c), (r1, _) = run[0], run[-1]
        has = ws.range((r0 + 1, c + 1), (r1 + 1, c + 1)).has_array
        if has is None:  # mixed: cell by cell
            in_array |= {k for k in run if ws.range((k[0] + 1, k[1] + 1)).has_array}
        elif has:
            in_array |= set(run)
    arrays = {}
    while in_array:
        r0, c0 = min(in_array)
        text = formulas[(r0, c0)]
        c1 = c0
        while (r0, c1 + 1) in in_array and formulas[(r0, c1 + 1)] == text:
            c1 += 1
        r1 = r0
        while all(formulas.get((r1 + 1, c)) == text for c in range(c0, c1 + 1)) and all(
            (r1 + 1, c) in in_array for c in range(c0, c1 + 1)
        ):
            r1 += 1
        arrays[(r0, c0)] = (text, (r0, c0, r1, c1))
        in_array -= {(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)}
    return arrays


def _column_runs(cells) -> list[list[tuple[int, int]]]:
    """Cells grouped into runs of consecutive rows in one column."""
    runs: list[list[tuple[int, int]]] = []
    for r, c in sorted(cells, key=lambda k: (k[1], k[0])):
        if runs and runs[-1][-1] == (r - 1, c):
            runs[-1].append((r, c))
        else:
            runs.append([(r, c)])
    return runs


def _with_live_values(book, path, names, scoped) -> Book:
    """The workbook's formulas from its file; the live values of its other cells."""
    from excelnet.xlsx.read import read_book

    saved = read_book(path)
    for ws in book.sheets:
        sheet = saved.sheets.get(ws.name)
        if sheet is None and ws.name == HISTORY:  # added by excelnet since: values only
            sheet = saved.sheets[ws.name] = Sheet(ws.name)
        if sheet is None:
            raise ExcelnetError(f"{path}: has no sheet {ws.name!r}; is it this workbook's file?")
        sheet.names = dict(scoped.get(ws.name, {}))
        used = ws.used_range
        top, left = used.row - 1, used.column - 1
        for i, row in enumerate(_values(used)):
            for j, v in enumerate(row):
                key = (top + i, left + j)
                if holds_formula(sheet, *key):
                    if v is not None:
                        sheet.cached[key] = v
                    continue
                if v is None:
                    sheet.values.pop(key, None)
                else:
                    sheet.values[key] = v
                    sheet.max_row = max(sheet.max_row, key[0])
                    sheet.max_col = max(sheet.max_col, key[1])
    saved.names = names
    saved.cached = True  # the formula cells' live values, not the file's
    return saved


def holds_formula(sheet: Sheet, r: int, c: int) -> bool:
    """Is the cell a formula's, or part of an array formula's?"""
    if (r, c) in sheet.formulas:
        return True
    return any(r0 <= r <= r1 and c0 <= c <= c1 for _, (r0, c0, r1, c1) in sheet.arrays.values())
