"""FINANCIAL functions (the corpus's FINANCIAL files are checked by tests/test_oracle.py):
values and gradients against LibreOffice where it computes as Excel does; Excel's rules that
the corpus leaves out (blanks, text, logicals, errors, copied-down blocks) and the training
path (finite gradients, no device sync)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from excelnet.formula.parse import Error
from tests.conftest import calc_formulas, forbid_device_syncs, formula_model
from tests.libreoffice_check import check_formulas

# -- against LibreOffice -----------------------------------------------------------------------

DATA = {
    "A": [-1000.0, 300.0, "text", 420.0, None, 380.0],
    "B": [0.05, 0.04, 0.06],
    "F": [44927.0],  # dates of two cash flows, in one row (F1:G1)
    "G": [45292.0],
}
# formula and the point (P, Q): values, and gradients where the function is smooth there;
# points where LibreOffice computes as Excel does
SMOOTH = [
    ("PMT({P},36,{Q})", (0.01, 8000.0)),
    ("PMT({P},{Q},8000,100,1)", (0.005, 48.0)),
    ("PMT({P},12,{Q})", (0.0, 1200.0)),  # rate 0 (its gradient too)
    ("PV({P},{Q},-200)", (0.008, 60.0)),
    ("PV({P},10,{Q},1000,1)", (0.05, -100.0)),
    ("FV({P},12,{Q},-500,1)", (0.03, -100.0)),
    ("FV(0.05,{P},-100,{Q})", (7.5, 250.0)),
    ("NPER({P},-200,{Q})", (0.01, 5000.0)),
    ("NPER({P},{Q},8000,0,1)", (0.02, -400.0)),
    ("NPER({P},{Q},1000)", (0.0, -50.0)),
    ("IPMT({P},3,36,{Q})", (0.01, 8000.0)),
    ("IPMT({P},{Q},30,8000,10,1)", (0.1, 3.3)),
    ("PPMT({P},5,{Q},8000,0,1)", (0.02, 24.0)),
    ("PPMT({P},2,10,{Q},-300)", (0.07, 2000.0)),
    ("CUMIPMT({P},36,{Q},3,10,0)", (0.01, 8000.0)),
    ("CUMPRINC({P},36,{Q},1,12,1)", (0.0083, 8000.0)),
    ("ISPMT({P},2,10,{Q})", (0.1, 1000.0)),
    ("EFFECT({P},12)*{Q}", (0.05, 3.0)),
    ("NOMINAL({P},4)+{Q}", (0.06, 1.0)),
    ("RRI({P},{Q},2000)", (5.0, 1000.0)),
    ("PDURATION({P},{Q},200)", (0.04, 150.0)),
    ("SLN({P},{Q},5)", (3000.0, 500.0)),
    ("SYD({P},{Q},10,3)", (30000.0, 7500.0)),
    ("NPV({P},{Q},d!$A$1:$A$6)", (0.1, -50.0)),
    ("NPV(0.08,{PQ},d!$A$2:$A$4)", (-700.0, 250.0)),
    ("XNPV({P},d!$A$1:$A$2,d!$F$1:$G$1)+{Q}", (0.07, 2.0)),
    ("XNPV(0.09,{PQ},d!$F$1:$G$1)", (-100.0, 130.0)),
    ("FVSCHEDULE({P},d!$B$1:$B$3)*{Q}", (1000.0, 0.5)),
    ("FVSCHEDULE(100,{PQ})", (0.05, 0.07)),
    ("IRR({PQ})", (-100.0, 112.0)),
    ("IRR({PQ},0.3)", (-80.0, 130.0)),
    ("XIRR({PQ},d!$F$1:$G$1)", (-100.0, 130.0)),
    ("RATE(36,{P},{Q})", (-280.0, 8000.0)),
    ("RATE({P},-200,{Q},0,1)", (48.0, 8000.0)),
    ("MIRR({PQ},0.1,0.12)", (-100.0, 135.0)),
    ("MIRR(d!$A$1:$A$6,{P},{Q})", (0.1, 0.12)),
]
# without a gradient (rounding, dates): values, at P = 3, Q = 0.05
VALUES = [
    "DB(10000,1000,{P}+3,{P})",
    "DDB(2400,300,{P}*4,{P},1.5)",
    "DB(1000000,100000,6,{P},7)",
    "ACCRINTM(44927,44927+{P}*100,{Q},1000,3)",
    "DISC(44927,44927+{P}*100,100-{Q}*10,100,2)",
    "INTRATE(44927,44927+{P}*100,1000,1000+{Q}*100,3)",
]


def test_values_and_gradients_match_libreoffice(tmp_path, recalc):
    formulas = [f for f, _ in SMOOTH] + VALUES
    params = np.array([p for _, p in SMOOTH] + [(3.0, 0.05)] * len(VALUES))
    new = {"PDURATION(": "_xlfn.PDURATION(", "RRI(": "_xlfn.RRI("}  # Excel 2013's, as stored
    for old, stored in new.items():
        formulas = [f.replace(old, stored) for f in formulas]
    checked = check_formulas(formulas, params, DATA, tmp_path, recalc)
    assert checked == 2 * len(SMOOTH), checked  # every gradient, IRR's, XIRR's and RATE's too


# -- Excel's rules ---------------------------------------------------------------------------


def test_excel_documented_examples(tmp_path):
    """The examples of Excel's own help pages (their printed digits)."""
    got = calc_formulas(
        tmp_path,
        {
            "A1": "=PMT(8%/12,10,10000)",
            "A2": "=PV(0.08/12,12*20,500)",
            "A3": "=FV(0.06/12,10,-200,-500,1)",
            "A4": "=NPER(0.12/12,-100,-1000,10000,1)",
            "A5": "=RATE(4*12,-200,8000)*12",
            "A6": "=IPMT(0.1/12,1,36,8000)",
            "A7": "=PPMT(0.1/12,1,24,2000)",
            "A8": "=CUMIPMT(0.09/12,30*12,125000,13,24,0)",
            "A9": "=CUMPRINC(0.09/12,30*12,125000,13,24,0)",
            "A10": "=EFFECT(0.0525,4)",
            "A11": "=NOMINAL(0.053543,4)",
            "A12": "=SLN(30000,7500,10)",
            "A13": "=SYD(30000,7500,10,10)",
            "A14": "=DB(1000000,100000,6,7,7)",
            "A15": "=DDB(2400,300,10,10)",
            "A16": "=NPV(0.1,-10000,3000,4200,6800)",
            "A17": "=IRR({-70000,12000,15000,18000,21000,26000})",
            "A18": "=IRR({-70000,12000,15000},-10%)",
            "A19": "=MIRR({-120000,39000,30000,21000,37000,46000},0.1,0.12)",
            "A20": "=XNPV(0.09,{-10000,2750,4250,3250,2750},{39448,39508,39751,39859,39904})",
            "A21": "=XIRR({-10000,2750,4250,3250,2750},{39448,39508,39751,39859,39904},0.1)",
            "A22": "=ISPMT(0.1/12,1,36,8000000)",
            "A23": "=FVSCHEDULE(1,{0.09,0.11,0.1})",
            "A24": "=_xlfn.RRI(96,10000,11000)",
            "A25": "=_xlfn.PDURATION(0.025,2000,2200)",
            "A26": "=ACCRINT(39508,39691,39569,0.1,1000,2,0)",
            "A27": "=ACCRINTM(39539,39614,0.1,1000,3)",
            "A28": "=DISC(DATE(2018,1,25),DATE(2018,6,15),97.975,100,1)",
            "A29": "=INTRATE(DATE(2008,2,15),DATE(2008,5,15),1000000,1014420,2)",
        },
    )
    printed = {
        "A1": -1037.03,
        "A2": -59777.15,
        "A3": 2581.40,
        "A4": 59.6738657,
        "A5": 0.09241767,
        "A6": -66.67,
        "A7": -75.62,
        "A8": -11135.23,
        "A9": -934.1071234,
        "A10": 0.053542667,
        "A11": 0.05250032,
        "A12": 2250.0,
        "A13": 409.09,
        "A14": 15845.10,
        "A15": 22.12,
        "A16": 1188.44,
        "A17": 0.086630948,
        "A18": -0.44350694,
        "A19": 0.1261,
        "A20": 2086.647602,
        "A21": 0.373362535,
        "A22": -64814.8148,
        "A23": 1.33089,
        "A24": 0.0009933,
        "A25": 3.86,
        "A26": 16.666666667,
        "A27": 20.54794521,
        "A28": 0.052420213,
        "A29": 0.05768,
    }
    for ref, value in printed.items():
        digits = len(str(value).split(".")[1].rstrip("0")) if "." in str(value) else 0
        tolerance = 0.6 * 10.0**-digits
        if ref == "A21":  # Excel's XIRR stops ~1e-9 short of the root excelnet converges to
            tolerance = 5e-8 * abs(value)
        assert got[ref] == pytest.approx(value, abs=tolerance), (ref, got[ref])


def test_copied_down_blocks_compute_row_by_row(tmp_path):
    """One formula filled down a column: each row its own arguments, ranges, roots."""
    rows = [
        (-100.0, 60.0, 60.0, 0.05, 12.0),
        (-200.0, "x", 250.0, 0.10, 24.0),  # text in a range: skipped, no period taken
        (-50.0, None, 70.0, 0.0, 6.0),  # a blank: the same
        (100.0, 50.0, 10.0, -1.0, 0.0),  # no sign change; a −100% rate; no periods
    ]
    cells = {}
    for i, (a, b, c, rate, n) in enumerate(rows, start=1):
        cells.update({f"A{i}": a, f"B{i}": b, f"C{i}": c, f"D{i}": rate, f"E{i}": n})
        cells[f"G{i}"] = f"=IRR(A{i}:C{i})"
        cells[f"H{i}"] = f"=NPV(D{i},A{i}:C{i})"
        cells[f"I{i}"] = f"=PMT(D{i},E{i},1000)"
        cells[f"J{i}"] = f"=RATE(E{i},-100,1000)"
        cells[f"K{i}"] = f"=MIRR(A{i}:C{i},D{i},0.1)"
    got = calc_formulas(tmp_path, cells)
    assert got["G1"] == pytest.approx(0.130662, abs=1e-6)
    assert got["G2"] == pytest.approx(0.25) and got["G3"] == pytest.approx(0.4)
    assert got["G4"] == Error("#NUM!")
    assert got["H1"] == pytest.approx(-100 / 1.05 + 60 / 1.05**2 + 60 / 1.05**3)
    assert got["H2"] == pytest.approx(-200 / 1.1 + 250 / 1.1**2)
    assert got["H3"] == pytest.approx(20.0)  # rate 0: the plain sum
    assert got["H4"] == Error("#DIV/0!")  # −100%: a division by zero
    assert got["I3"] == pytest.approx(-1000 / 6) and got["I4"] == Error("#NUM!")
    assert got["I1"] == pytest.approx(-112.825410, abs=1e-6)
    assert got["J1"] == pytest.approx(0.029229, abs=1e-6)
    assert got["J4"] == Error("#NUM!")  # no periods: no rate
    assert got["K2"] == pytest.approx((250 / 200) ** (1 / 1) - 1)
    assert got["K4"] == Error("#DIV/0!")  # no outflow


def test_blanks_text_logicals_and_errors(tmp_path):
    got = calc_formulas(
        tmp_path,
        {
            "A1": -100.0,
            "A2": "=1/0",
            "A3": 60.0,
            "A4": 70.0,
            "B1": -100.0,
            "B2": None,
            "B3": 60.0,
            "B4": 70.0,
            "C1": 44927.0,
            "C2": 44958.0,
            "C3": 44986.0,
            "C4": 45017.0,
            "D1": True,
            "D2": "0.05",
            "D3": "five",
            "E1": "=NPV(0.1,A1:A4)",  # an error in a range is the result
            "E2": "=NPV(0.1,B1:B4)-NPV(0.1,B1,B3,B4)",  # a blank takes no period
            "E3": '=NPV(0.1,TRUE,"0.05")+NPV(0.1,D1,D2)',  # typed: counted; in cells: not
            "E4": "=XIRR(B1:B4,C1:C4)-XIRR({-100,0,60,70},C1:C4)",  # XIRR: a blank is 0
            "E5": "=XNPV(0.1,B1:B4,C1:C4)",  # XNPV: a blank value is #NUM!
            "E6": "=XIRR(A3:A4,C1:C2,D3)",  # a text guess: #VALUE!
            "E7": "=EFFECT(0.05,D1)",  # the Analysis ToolPak takes no TRUE: #VALUE!
            "E8": "=PMT(0.01,12,1000,0,D1)",  # ... PMT does: TRUE is type 1
            "F1": 0.06,
            "F3": 0.07,
            "E9": "=FVSCHEDULE(100,F1:F3)",  # blanks are 0%
            "E10": "=IRR(B1:B4,-1)",  # a guess of −100%: #VALUE!
            "E11": "=XIRR(B1:B4,C1:C3)",  # as many dates as values, or #NUM!
            "D4": "3",  # numeric text counts in the ToolPak:
            "E12": "=CUMIPMT(0.01,12,1000,D4,12,0)-CUMIPMT(0.01,12,1000,3,12,0)",
            "E13": "=ACCRINTM(C2,C1,0.1,1000)",  # issue after settlement: #NUM!
            "E14": "=PV(-1,5,100)",  # (1+r)^n = 0 divides: #DIV/0!
            "E15": "=FV(-2,0.5,100)",  # a negative base to a fractional power: #NUM!
        },
    )
    assert got["E1"] == Error("#DIV/0!")
    assert got["E2"] == pytest.approx(0.0, abs=1e-12)
    assert got["E3"] == pytest.approx(1 / 1.1 + 0.05 / 1.1**2)
    assert got["E4"] == pytest.approx(0.0, abs=1e-12)
    assert got["E5"] == Error("#NUM!")
    assert got["E6"] == Error("#VALUE!")
    assert got["E7"] == Error("#VALUE!")
    assert got["E8"] == pytest.approx(-1000 * 0.01 / (1.01 * (1 - 1.01**-12)))
    assert got["E9"] == pytest.approx(100 * 1.06 * 1.07)
    assert got["E10"] == Error("#VALUE!")
    assert got["E11"] == Error("#NUM!")
    assert got["E12"] == 0.0
    assert got["E13"] == Error("#NUM!")
    assert got["E14"] == Error("#DIV/0!")
    assert got["E15"] == Error("#NUM!")


DATES = {"A": [44927.0, 45292.0]}
TRAINING = [
    ("PMT({P},36,{Q})+PV({P},12,-{Q})+FV({P},6,{Q})+NPER({P},-{Q},8000)", 0.01, 300.0),
    ("IPMT({P},3,36,{Q})+PPMT({P},3,36,{Q})+CUMIPMT({P},36,{Q},1,12,0)", 0.01, 8000.0),
    ("EFFECT({P},12)+NOMINAL({P},4)+_xlfn.RRI(3,{Q},{Q}+{P})+SLN({Q},{P},5)", 0.05, 100.0),
    ("NPV({P},-{Q},60,70)+XNPV({P},{PQ},d!$A$1:$A$2)", 0.1, 100.0),
    ("IRR({PQ})+MIRR({PQ},0.1,{P})", -100.0, 130.0),
    ("XIRR({PQ},d!$A$1:$A$2)+RATE(12,{P},{Q})", -100.0, 1500.0),
    ("IRR({PQ})+RATE(12,{P},{Q})", 100.0, 130.0),  # no root: NaN values, finite gradients
]


def test_training_path_has_finite_gradients_without_device_syncs(tmp_path, monkeypatch):
    """Numbers from the parameters: the closed forms and the Newton iterations stay on the
    device, and a point outside a function's domain gives NaN, never a NaN gradient."""
    models = [
        formula_model(tmp_path / str(k), f, p, q, DATES) for k, (f, p, q) in enumerate(TRAINING)
    ]
    for model in models:
        model.objective_value()  # a first step reads the constants once

    forbid_device_syncs(monkeypatch)
    grads = []
    for (f, _, _), model in zip(TRAINING, models, strict=True):
        loss = model.objective_value()
        assert loss.requires_grad, f
        (grad,) = torch.autograd.grad(torch.nan_to_num(loss), model.params[0].value.x)
        grads.append(grad)
    monkeypatch.undo()
    for (f, _, _), grad in zip(TRAINING, grads, strict=True):
        assert torch.isfinite(grad).all(), f


def test_irr_gradient_is_the_implicit_functions(tmp_path):
    """d IRR / d value_k = −(∂NPV/∂value_k)/(∂NPV/∂r) = −(1+r)^−k / Σ −i·value_i·(1+r)^−i−1."""
    model = formula_model(tmp_path, "IRR({PQ})", -100.0, 125.0, {})
    model.objective_value().backward()
    r = 0.25
    slope = 125.0 * -1 / (1 + r) ** 2
    expected = [-1 / slope, -((1 + r) ** -1) / slope]
    assert model.params[0].value.x.grad.reshape(-1).tolist() == pytest.approx(expected)
