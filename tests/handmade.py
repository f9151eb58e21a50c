"""Workbooks made without excelnet's builder: openpyxl writes them, in layouts of their own,
with Solver models set by hand the way Excel stores them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
from openpyxl.workbook.defined_name import DefinedName

TRUE_SLOPE, TRUE_INTERCEPT = 3.0, -2.0


def solver_names(wb, sheet: str, objective: str, params: str, typ: str = "2") -> None:
    ws = wb[sheet]
    for name, value in (("solver_opt", objective), ("solver_adj", params), ("solver_typ", typ)):
        ws.defined_names[name] = DefinedName(
            name, attr_text=value, localSheetId=wb.sheetnames.index(sheet)
        )


def line_fit(path: Path, n: int = 20, seed: int = 1, **edits) -> Path:
    """A straight line fitted to noisy points: data on one sheet, the model on another,
    parameters in a column, the loss from SUMXMY2."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, n)
    y = TRUE_SLOPE * x + TRUE_INTERCEPT + rng.normal(0, 0.05, n)
    wb = openpyxl.Workbook()
    inputs = wb.active
    inputs.title = "inputs"
    inputs.append(["x", "y"])
    for a, b in zip(x, y, strict=True):
        inputs.append([float(a), float(b)])
    model = wb.create_sheet("Model")
    model["B3"], model["C3"] = "slope", 0.5
    model["B4"], model["C4"] = "intercept", 0.0
    model["E1"] = "prediction"
    for i in range(n):
        model[f"E{i + 2}"] = f"=$C$3*inputs!A{i + 2}+$C$4"
    model["B7"] = "loss"
    model["C7"] = f"=SUMXMY2(E2:E{n + 1},inputs!B2:B{n + 1})/COUNT(inputs!B2:B{n + 1})"
    model["B8"], model["C8"] = "rmse", "=SQRT(C7)"
    solver_names(wb, "Model", "Model!$C$7", "Model!$C$3:$C$4")
    for cell, value in edits.items():
        sheet, ref = cell.split("__")
        wb[sheet][ref] = value
    wb.save(path)
    return path


def least_squares(path: Path) -> tuple[float, float]:
    ws = openpyxl.load_workbook(path)["inputs"]
    rows = [(r[0], r[1]) for r in ws.iter_rows(min_row=2, values_only=True)]
    x, y = np.array(rows).T
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)
