"""Evaluate one formula against a sheet of data, straight through the evaluator (no workbook
recalculation): the value a dynamic-array formula computes, whole."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import torch

from excelnet.formula.evaluator import Evaluator
from excelnet.formula.graph import Block
from excelnet.formula.parse import parse
from excelnet.formula.site import current
from excelnet.formula.values import Ctx
from excelnet.xlsx.read import read_book


def evaluate(folder: Path, formula: str, cells: dict | None = None, names: dict | None = None):
    """The value of `formula` on a sheet "S" holding `cells` (and workbook `names`)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    for ref, value in (cells or {}).items():
        ws[ref] = value
    for name, text in (names or {}).items():
        from openpyxl.workbook.defined_name import DefinedName

        wb.defined_names[name] = DefinedName(name, attr_text=text)
    ws["Z99"] = 0
    folder.mkdir(parents=True, exist_ok=True)
    wb.save(folder / "book.xlsx")
    ev = Evaluator(read_book(folder / "book.xlsx"), Ctx(torch.device("cpu")))
    node = ev.graph.resolve(parse(formula, "S"), "S", 0)
    return current(ev._node(node, Block("S", 98, 20, 98, 20, "array", formula)))


def table(v) -> list[list]:
    """A value's first block row as rows of Python values."""
    return [[v.item(0, i, j) for j in range(v.shape[2])] for i in range(v.shape[1])]
