"""Formulas of two parameters P and Q, checked against LibreOffice: excelnet's value equals
LibreOffice's, and excelnet's gradient equals a central difference of LibreOffice's own
evaluation (where the formula is smooth between the points). Shared by the property test and
the function library's tests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import torch

from excelnet.formula.book import SolverModel
from excelnet.formula.graph import Graph
from excelnet.formula.model import Model
from excelnet.formula.parse import Error, Ref
from excelnet.formula.values import Ctx
from excelnet.xlsx.read import read_book

H = 1e-5  # finite-difference step
SHIFTS = [(0, 0), (H, 0), (-H, 0), (0, H), (0, -H)]  # rows of each formula's group


def _book(path, formulas: list[str], params: np.ndarray, data: dict) -> None:
    wb = openpyxl.Workbook()
    t = wb.active
    t.title = "t"
    d = wb.create_sheet("d")
    for col, values in data.items():
        for i, v in enumerate(values, start=1):
            if v is not None:
                d[f"{col}{i}"] = v
    for k, f in enumerate(formulas):
        for j, (dp, dq) in enumerate(SHIFTS):
            r = 5 * k + j + 1
            t[f"A{r}"], t[f"B{r}"] = params[k, 0] + dp, params[k, 1] + dq
            text = f.replace("{PQ}", f"A{r}:B{r}").replace("{P}", f"A{r}").replace("{Q}", f"B{r}")
            t[f"C{r}"] = "=" + text
    wb.save(path)


def _lo_value(v):
    if isinstance(v, str) and v.startswith("#"):
        return Error(v)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _same(ours, theirs) -> bool:
    if isinstance(ours, Error) or isinstance(theirs, Error):
        return isinstance(ours, Error) and isinstance(theirs, Error)
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
    if ours == 0.0 and theirs is None:
        return True
    return ours == theirs and type(ours) is type(theirs)


def check_formulas(
    formulas: list[str], params: np.ndarray, data: dict, folder: Path, recalc
) -> int:
    """Check every formula ({P}, {Q}: the parameters; {PQ}: both as a range; sheet d holds
    `data`, columns of values from row 1) at its row of `params`. Returns the number of
    gradients checked."""
    path = folder / "formulas.xlsx"
    _book(path, formulas, params, data)
    (lo,) = recalc([path])
    theirs = openpyxl.load_workbook(lo, data_only=True)["t"]
    book = read_book(path)
    graph = Graph(book)
    checked_grads = 0
    for k, f in enumerate(formulas):
        r = 5 * k  # 0-based row of the base case
        solver = SolverModel("t", Ref("t", r, 2, r, 2), [Ref("t", r, 0, r, 1)], 2)
        try:
            model = Model(book, solver, Ctx(torch.device("cpu")), graph)
        except Exception as e:  # the formula ignores its parameters: nothing to compare
            assert "does not depend on the adjustable cells" in str(e), (f, e)
            continue
        model.compile()
        model.evaluate()
        ours = model.values()[("t", r, 2)]
        lo_values = [_lo_value(theirs.cell(r + 1 + j, 3).value) for j in range(5)]
        assert _same(ours, lo_values[0]), (
            f"=({f}) at P,Q={params[k]}: ours {ours!r}, LibreOffice {lo_values[0]!r}"
        )
        if not all(isinstance(v, float) and math.isfinite(v) for v in lo_values):
            continue
        if not isinstance(ours, float) or isinstance(ours, bool) or "&" in f:
            continue  # a number read back from text has no gradient in excelnet
        loss = model.objective_value()
        if not loss.requires_grad:
            continue
        loss.backward()
        grad = model.params[0].value.x.grad.tolist()
        v0, vp, vm, vq, vqm = lo_values
        for g, plus, minus in ((grad[0], vp, vm), (grad[1], vq, vqm)):
            forward, backward = (plus - v0) / H, (v0 - minus) / H
            scale = max(1.0, abs(v0), abs(forward))
            if abs(forward - backward) > 1e-3 * scale:
                continue  # a kink (IF, MAX, ROUND, a comparison) between the points
            central = (plus - minus) / (2 * H)
            assert g == pytest.approx(central, abs=1e-5 * scale), (
                f"d/dP of =({f}) at {params[k]}: ours {g}, LibreOffice {central}"
            )
            checked_grads += 1
    return checked_grads
