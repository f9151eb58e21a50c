"""Workbooks shaped like the ones users fit, for the engine-choice bench (bench/engines.py):
a collaborative-filtering sheet (150 parameters) and a two-layer net of 39 parameters over 100
rows, built with openpyxl (formulas only; excelnet computes them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
from openpyxl.utils import get_column_letter as col
from openpyxl.workbook.defined_name import DefinedName


def _solver(wb, sheet: str, objective: str, params: str) -> None:
    ws = wb[sheet]
    for name, value in (("solver_opt", objective), ("solver_adj", params), ("solver_typ", "2")):
        ws.defined_names[name] = DefinedName(
            name, attr_text=value, localSheetId=wb.sheetnames.index(sheet)
        )


def collab(path: Path, users: int = 15, movies: int = 15, factors: int = 5, seed: int = 0) -> Path:
    """The lesson's collaborative filtering: a rating is MMULT(user factors, movie
    factors); the loss the root mean squared error over the ratings. users × factors + movies
    × factors parameters (150 by default)."""
    rng = np.random.default_rng(seed)
    true_u, true_m = rng.normal(size=(users, 3)), rng.normal(size=(3, movies))
    ratings = np.clip(np.round(3 + true_u @ true_m), 1, 5)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "collab"
    # movie factors: rows 2..factors+1, columns G.. (one column per movie)
    first = factors + 2  # 1-based first column of the movies
    for j in range(movies):
        for f in range(factors):
            ws.cell(2 + f, first + j, float(rng.uniform(0, 1)))
    top = factors + 3  # first user row
    for i in range(users):
        for f in range(factors):
            ws.cell(top + i, 1 + f, float(rng.uniform(0, 1)))
        for j in range(movies):
            c = col(first + j)
            u = f"$A{top + i}:${col(factors)}{top + i}"
            m = f"{c}$2:{c}${factors + 1}"
            ws.cell(top + i, first + j, f"=MMULT({u},{m})")
    # the ratings, on the right
    rfirst = first + movies + 1
    for i in range(users):
        for j in range(movies):
            ws.cell(top + i, rfirst + j, float(ratings[i, j]))
    pred = f"${col(first)}${top}:${col(first + movies - 1)}${top + users - 1}"
    real = f"${col(rfirst)}${top}:${col(rfirst + movies - 1)}${top + users - 1}"
    ws["A1"] = f"=SQRT(SUMXMY2({pred},{real})/COUNT({real}))"
    movie_params = f"collab!${col(first)}$2:${col(first + movies - 1)}${factors + 1}"
    user_params = f"collab!$A${top}:${col(factors)}${top + users - 1}"
    _solver(wb, "collab", "collab!$A$1", f"{movie_params},{user_params}")
    wb.save(path)
    return path


def two_layer(
    path: Path, rows: int = 100, inputs: int = 11, hidden: int = 3, seed: int = 0
) -> Path:
    """A two-layer net: `hidden` ReLU units MAX(0, SUMPRODUCT(inputs and a 1, weights and a
    bias)), added up by output weights; the mean squared error over `rows` rows. (inputs + 2) ×
    hidden parameters: 39 by default."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, inputs))
    y = np.maximum(0, x @ rng.normal(size=inputs)) - 0.5 * x[:, 0] + rng.normal(0, 0.1, rows)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "net"
    # the first layer's weights and bias: one row per unit from B2; the output weights below
    for h in range(hidden):
        for k in range(inputs + 1):
            ws.cell(2 + h, 2 + k, float(rng.normal(0, 0.5)))
    out = 2 + hidden  # the output weights' row
    for h in range(hidden):
        ws.cell(out, 2 + h, float(rng.normal(0, 0.5)))
    top = out + 3
    xc = inputs + 5  # the table's first input column
    units, prediction, target = xc + inputs + 2, xc + inputs + 2 + hidden, xc + inputs + 1
    for r in range(rows):
        row = top + r
        for k in range(inputs):
            ws.cell(row, xc + k, float(x[r, k]))
        ws.cell(row, xc + inputs, 1.0)  # the bias's input
        ws.cell(row, target, float(y[r]))
        xs = f"${col(xc)}{row}:${col(xc + inputs)}{row}"
        for h in range(hidden):
            w = f"$B${2 + h}:${col(2 + inputs)}${2 + h}"
            ws.cell(row, units + h, f"=MAX(0,SUMPRODUCT({xs},{w}))")
        hs = f"{col(units)}{row}:{col(units + hidden - 1)}{row}"
        ws.cell(row, prediction, f"=SUMPRODUCT({hs},$B${out}:${col(1 + hidden)}${out})")
    last = top + rows - 1
    p, t = col(prediction), col(target)
    ws["A1"] = f"=SUMXMY2(${p}${top}:${p}${last},${t}${top}:${t}${last})/{rows}"
    first = f"net!$B$2:${col(2 + inputs)}${1 + hidden}"
    _solver(wb, "net", "net!$A$1", f"{first},net!$B${out}:${col(1 + hidden)}${out}")
    wb.save(path)
    return path
