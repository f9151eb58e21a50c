"""Recalculate every formula cell of a workbook with one tool, in a process of its own:

    python -m bench.calc excelnet|formulas|pycel BOOK.xlsx

prints one JSON line: seconds (load and compute every formula cell; excelnet's also writes the
results into the file, as `excelnet calc` does), the formula cells and how many the tool
computed, and its value of nn!M2 (the Titanic workbook's nn loss) as a check that all three
computed the same thing. formulas and pycel run in virtual environments of their own (pycel
needs openpyxl < 3.1), so this module imports nothing but the standard library at the top.
"""

from __future__ import annotations

import json
import sys
import time


def _formula_cells(path: str) -> list[str]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    cells = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                v = c.value
                if (isinstance(v, str) and v.startswith("=")) or type(v).__name__ == "ArrayFormula":
                    cells.append(f"{ws.title}!{c.coordinate}")
    return cells


def excelnet(path: str) -> dict:
    from pathlib import Path

    from excelnet.xlsx.recalc import calc

    t = time.perf_counter()
    reports = calc(Path(path))
    seconds = time.perf_counter() - t
    from excelnet.xlsx.read import read_book

    value = read_book(path, cached=True).sheets["nn"].cached.get((1, 12))
    return {
        "seconds": seconds,
        "cells": sum(r.formula_cells for r in reports),
        "computed": sum(r.computed for r in reports),
        "nn_loss": value,
    }


def formulas(path: str) -> dict:
    import formulas as fs

    t = time.perf_counter()
    solution = fs.ExcelModel().loads(path).finish().calculate()
    seconds = time.perf_counter() - t
    loss = next(v for k, v in solution.items() if k.upper().endswith("NN'!M2"))
    cells = _formula_cells(path)
    return {
        "seconds": seconds,
        "cells": len(cells),
        "computed": None,
        "nn_loss": float(loss.value[0][0]),
    }


def pycel(path: str) -> dict:
    from pycel import ExcelCompiler

    t = time.perf_counter()
    xl = ExcelCompiler(filename=path)
    cells = _formula_cells(path)
    computed = 0
    for cell in cells:  # one by one: pycel lacks MMULT, and one failure would stop a batch
        try:
            xl.evaluate(cell)
            computed += 1
        except Exception:
            pass
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "cells": len(cells),
        "computed": computed,
        "nn_loss": float(xl.evaluate("nn!M2")),
    }


if __name__ == "__main__":
    tool, book = sys.argv[1], sys.argv[2]
    print(json.dumps({"excelnet": excelnet, "formulas": formulas, "pycel": pycel}[tool](book)))
