"""MATH_AND_TRIGONOMETRY's matrices (MDETERM, MINVERSE, MUNIT), SUBTOTAL and AGGREGATE (which
leave out the subtotals inside their ranges), PERCENTOF and ECMA.CEILING: Microsoft's examples,
Excel's rules, values and gradients against LibreOffice, and a model that trains through them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from excelnet.formula.functions import FUNCTIONS
from excelnet.formula.parse import Error
from excelnet.formula.values import Ctx, V
from tests.conftest import calc_formulas
from tests.libreoffice_check import check_formulas

CPU = Ctx(torch.device("cpu"))

EXCEL_SAYS = {  # Microsoft's function pages
    "MDETERM({1,3,8,5;1,3,6,1;1,1,1,0;7,3,10,2})": 88.0,
    "MDETERM({3,6,1;1,1,0;3,10,2})": 1.0,
    "MDETERM({3,6;1,1})": -3.0,
    "MDETERM({1,3,8,5;1,3,6,1})": Error("#VALUE!"),  # not square
    "INDEX(MINVERSE({4,-1;2,0}),1,2)": 0.5,
    "INDEX(MINVERSE({4,-1;2,0}),2,1)": -1.0,
    "INDEX(MINVERSE({1,2,1;3,4,-1;0,2,0}),1,1)": 0.25,
    "INDEX(MINVERSE({1,2,1;3,4,-1;0,2,0}),3,3)": -0.25,
    "MINVERSE({1,2;2,4})": Error("#NUM!"),  # singular
    "SUM(MUNIT(3))": 3.0,
    "INDEX(MUNIT(3),2,2)+INDEX(MUNIT(3),2,3)": 1.0,
    "MUNIT(0)": Error("#VALUE!"),
    "SUBTOTAL(9,A2:A5)": 303.0,
    "SUBTOTAL(1,A2:A5)": 75.75,
    "AGGREGATE(4,6,A6:A11)": 96.0,
    "AGGREGATE(14,6,A6:A11,3)": 31.0,
    "AGGREGATE(15,6,A6:A11)": Error("#VALUE!"),  # SMALL needs its k
    "AGGREGATE(12,6,A6:A11,B6:B11)": 68.0,
    "AGGREGATE(12,6,A6:A11)": 51.5,
    "ECMA.CEILING(2.5,1)": 3.0,
    "ECMA.CEILING(-2.5,-2)": -4.0,
    "ECMA.CEILING(-2.5,2)": Error("#NUM!"),  # signs differ: Excel 2007's CEILING
    "ECMA.CEILING(1.5,0.1)": 1.5,
    "ECMA.CEILING(0.234,0.01)": 0.24,
    "PERCENTOF(C1:C2,C1:C4)": 0.3,
    "PERCENTOF(C1:C2,D1:D2)": Error("#DIV/0!"),
}


def test_excel_examples(tmp_path):
    cells = {"A2": 120.0, "A3": 10.0, "A4": 150.0, "A5": 23.0}
    # as AGGREGATE's page: #DIV/0!, 72, 30, #NUM!, 31, 96 in A; 82, 65, 95, 63, 53, 71 in B
    cells.update({"A6": "=1/0", "A7": 72.0, "A8": 30.0, "A9": "=SQRT(-1)", "A10": 31.0})
    cells.update({"A11": 96.0, "B6": 82.0, "B7": 65.0, "B8": 95.0, "B9": 63.0, "B10": 53.0})
    cells.update({"B11": 71.0, "C1": 1.0, "C2": 2.0, "C3": 3.0, "C4": 4.0})
    refs = {}
    for k, formula in enumerate(EXCEL_SAYS, start=1):
        refs[f"F{k}"] = formula
        cells[f"F{k}"] = "=" + formula
    got = calc_formulas(tmp_path, cells)
    for ref, formula in refs.items():
        want = EXCEL_SAYS[formula]
        if isinstance(want, Error):
            assert got[ref] == want, formula
        else:
            assert got[ref] == pytest.approx(want, rel=1e-13), formula


def test_subtotals_leave_out_the_subtotals_in_their_ranges(tmp_path):
    cells = {
        "A1": 1.0,
        "A2": 2.0,
        "A3": "=SUBTOTAL(9,A1:A2)",  # nested: left out of every SUBTOTAL and AGGREGATE
        "A4": 4.0,
        "A5": "=AGGREGATE(9,0,A4)*2",
        "A6": "=1/0",
        "A7": "=SUM(A1:A2)",  # a plain formula: counted
        "B1": "=SUBTOTAL(9,A1:A5)",
        "B2": "=SUBTOTAL(109,A1:A5)",
        "B3": "=SUBTOTAL(2,A1:A5,A7)",
        "B4": "=SUBTOTAL(9,A1:A7)",
        "B5": "=AGGREGATE(9,2,A1:A7)",  # errors and nested subtotals left out
        "B10": "=AGGREGATE(9,6,A1:A7)",  # errors left out, nested subtotals counted
        "B6": "=AGGREGATE(9,4,A1:A5)",  # option 4: nothing left out
        "B7": "=AGGREGATE(9,1,A1:A7)",  # errors kept
        "B8": "=SUBTOTAL(12,A1:A2)",
        "B9": "=SUBTOTAL(4,(A1:A2,A4))",  # a union: each area
    }
    got = calc_formulas(tmp_path, cells)
    assert got["B1"] == 7.0 and got["B2"] == 7.0
    assert got["B3"] == 4.0
    assert got["B4"] == Error("#DIV/0!")
    assert got["B5"] == 10.0 and got["B10"] == 21.0
    assert got["B6"] == 18.0
    assert got["B7"] == Error("#DIV/0!")
    assert got["B8"] == Error("#VALUE!")
    assert got["B9"] == 4.0


def test_mdeterm_and_minverse_gradients_by_central_differences():
    x = torch.tensor([[[2.0, 1.0, 0.5], [0.3, 3.0, -1.0], [1.0, 0.2, 4.0]]], dtype=torch.float64)
    x.requires_grad_(True)

    def f(m):
        det = FUNCTIONS["MDETERM"].fn(CPU, [V(m)]).x
        inverse = FUNCTIONS["MINVERSE"].fn(CPU, [V(m)]).x
        return det.sum() + (inverse * torch.arange(9.0, dtype=m.dtype).reshape(1, 3, 3)).sum()

    f(x).backward()
    numeric = torch.zeros_like(x)
    h = 1e-6
    with torch.no_grad():
        for i in range(3):
            for j in range(3):
                e = torch.zeros_like(x)
                e[0, i, j] = h
                numeric[0, i, j] = (f(x + e) - f(x - e)) / (2 * h)
    assert torch.allclose(x.grad, numeric, rtol=1e-6, atol=1e-8)


def test_matrices_over_a_copied_down_block():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[2.0, 4.0], [1.0, 2.0]]], dtype=torch.float64)
    det = FUNCTIONS["MDETERM"].fn(CPU, [V(x)])
    assert det.x.reshape(-1).tolist() == pytest.approx([-2.0, 0.0])
    inverse = FUNCTIONS["MINVERSE"].fn(CPU, [V(x)])
    assert inverse.x[0].reshape(-1).tolist() == pytest.approx([-2.0, 1.0, 1.5, -0.5])
    assert [str(t) for t in inverse.texts()[1].reshape(-1)] == ["#NUM!"] * 4


# -- against LibreOffice: values and gradients ------------------------------------------------

DATA = {"A": [1.5, -2.0, 0.25, 3.0], "B": [2.0, 0.5, -1.0, 1.0]}
FORMULAS = [
    ("MDETERM(d!$A$1:$B$2)*{P}+MDETERM(d!$A$3:$B$4)*{Q}", (0.7, 1.3)),
    ("SUM(MINVERSE(d!$A$1:$B$2))*{P}^2+{Q}", (0.4, 0.9)),
    ("SUBTOTAL(9,{PQ})*SUBTOTAL(1,d!$A$1:$A$4)+SUBTOTAL(107,{PQ},d!$B$1:$B$4)", (0.5, 1.5)),
    ("_xlfn.AGGREGATE(9,6,{PQ},d!$A$1:$A$4)*{Q}+_xlfn.AGGREGATE(14,6,{PQ},1)", (0.5, 1.5)),
    ("SUBTOTAL(5,{PQ})+SUBTOTAL(8,{PQ})", (0.3, -0.8)),
]


def test_values_and_gradients_match_libreoffice(tmp_path, recalc):
    formulas = [f for f, _ in FORMULAS]
    params = np.array([point for _, point in FORMULAS])
    checked = check_formulas(formulas, params, DATA, tmp_path, recalc)
    assert checked >= 8
