"""LOOKUP_AND_REFERENCE, LOGICAL and INFORMATION: every cell of the corpus's files equal to
Excel's stored value; values and gradients against LibreOffice; Excel's rules the corpus does
not show (blocks of copied-down formulas, blanks, errors in ranges), and lookups that take no
device sync while training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import torch

from excelnet.formula.book import SolverModel
from excelnet.formula.calculation import Calculation, cell_name
from excelnet.formula.model import Model
from excelnet.formula.parse import Error, Ref
from excelnet.formula.values import Ctx
from excelnet.xlsx.read import read_book
from tests.conftest import forbid_device_syncs, formula_model
from tests.libreoffice_check import check_formulas

# -- values and gradients against LibreOffice -------------------------------------------------

DATA = {
    "A": [1.0, 2.0, 3.0, 4.0],
    "B": [10.5, -3.0, 7.0, 2.0],
    "C": ["a", "B", "c", "d"],
    "D": [4.0, 3.0, 2.0, 1.0],
}
GRADIENT_FORMULAS = [
    "VLOOKUP(2,d!$A$1:$C$4,2,FALSE)*{P}",
    "VLOOKUP(2.5,d!$A$1:$B$4,2,TRUE)*{P}+{Q}^2",
    'VLOOKUP("C",d!$C$1:$D$4,2,FALSE)^2*{Q}',
    "HLOOKUP({P},{PQ},1,FALSE)*{Q}",
    "INDEX({PQ},1,2)*{P}",
    "INDEX(d!$A$1:$B$4,3,2)*{P}+INDEX({PQ},1,1)^2",
    "SUM(INDEX({PQ},0,0))*{P}",
    "MATCH(3,d!$A$1:$A$4,0)*{P}+MATCH(2.5,d!$D$1:$D$4,-1)*{Q}",
    "INDEX(d!$B$1:$B$4,MATCH(MAX({PQ}),{PQ},0))*{Q}",
    "CHOOSE(2,{P},{Q},3)*{P}",
    "CHOOSE(MATCH(2.5,d!$A$1:$A$4,1),{P},{Q}^2,{P}*{Q})",
    "CHOOSE(IF({P}>0,1,2),{Q}^2,{P}^2)",
    "LOOKUP(3.5,d!$A$1:$A$4,d!$B$1:$B$4)*{P}^2",
    "LOOKUP(2,d!$A$1:$B$4)*{Q}",
    "IF({P}>0,{P}^2,{Q}*3)",
    "_xlfn.IFS({P}>1,{P}*2,{Q}>0,{Q}^3,TRUE(),{P}+{Q})",
    "_xlfn.SWITCH(ROUND({P},0),1,{Q},2,{P}*{Q},-1,{Q}^2,{P}-{Q})",
    "IFERROR(1/({P}-{P}),{Q}^2)+IFERROR({P}*2,0)",
    "_xlfn.IFNA(VLOOKUP(99,d!$A$1:$B$4,2,FALSE),{P}*{Q})",
    "_xlfn.IFNA(1/0,{P})",
    "N({P})*{Q}",
    "_xlfn.XOR({P}>0,{Q}>0)*{P}",
    "IF(ISNUMBER({P}),{P}*2,0)+IF(ISERROR(1/{Q}),0,{Q})",
    "SUMPRODUCT(VLOOKUP(d!$A$1:$A$2,d!$A$1:$B$4,2,FALSE)*{PQ})",
    "IFERROR(INDEX({PQ},1,3),{P}^3)",
    "MATCH({P},d!$A$1:$A$4,1)*{Q}",
]


def test_gradients_match_libreoffice(tmp_path, recalc):
    rng = np.random.default_rng(10)
    params = np.round(rng.uniform(-2, 2, size=(len(GRADIENT_FORMULAS), 2)), 3)
    params[-1] = [2.5, 1.5]  # MATCH of P found (elsewhere P < 1: #N/A in both)
    checked = check_formulas(GRADIENT_FORMULAS, params, DATA, tmp_path, recalc)
    assert checked >= 2 * len(GRADIENT_FORMULAS) - 12  # all but the kinks and errors


def _gradient(folder: Path, formula: str, p: float, q: float, data: dict) -> list[float]:
    model = formula_model(folder, formula, p, q, data)
    model.objective_value().backward()
    return model.params[0].value.x.grad.tolist()


@pytest.mark.parametrize(
    ("xlookup", "twin"),
    [  # LibreOffice 7 has no XLOOKUP: its gradient must equal its LibreOffice-checked twin's
        ("XLOOKUP(3,d!$A$1:$A$4,d!$B$1:$B$4)*{P}", "INDEX(d!$B$1:$B$4,MATCH(3,d!$A$1:$A$4,0))*{P}"),
        ("XLOOKUP({Q},{PQ},{PQ})*{P}", "HLOOKUP({Q},{PQ},1,FALSE)*{P}"),
        ("XLOOKUP(9,d!$A$1:$A$4,d!$B$1:$B$4,{Q}^2)", "IFNA(MATCH(9,d!$A$1:$A$4,0),{Q}^2)"),
        ("XLOOKUP(2.5,d!$A$1:$A$4,{PQ}*d!$A$1:$A$4,,1)", "INDEX({PQ}*d!$A$1:$A$4,3)"),
    ],
)
def test_xlookup_gradient_equals_its_twin(tmp_path, xlookup, twin):
    data = {"A": [1.0, 2.0, 3.0, 4.0], "B": [10.5, -3.0, 7.0, 2.0]}
    assert _gradient(tmp_path / "x", xlookup, 1.25, -0.5, data) == pytest.approx(
        _gradient(tmp_path / "twin", twin, 1.25, -0.5, data)
    )


# -- Excel's rules the corpus does not show ----------------------------------------------------


def _calc(tmp_path: Path, cells: dict[str, object]) -> dict[str, object]:
    """Every formula cell of a one-sheet workbook, computed by excelnet."""
    wb = openpyxl.Workbook()
    for ref, value in cells.items():
        wb.active[ref] = value
    path = tmp_path / "book.xlsx"
    wb.save(path)
    return {cell_name(c).split("!")[1]: v for c, v in Calculation(read_book(path)).values.items()}


def _filled(column: str, rows: range, formula: str) -> dict[str, str]:
    """One formula copied down (its relative rows move): one block of len(rows) cells."""
    return {f"{column}{r}": "=" + formula.replace("#", str(r)) for r in rows}


def test_copied_down_blocks_equal_libreoffice(tmp_path, recalc):
    keys = [1, 3, "b", 7, None, 2.5]
    cells = {f"A{r}": k for r, k in enumerate(keys, start=1) if k is not None}
    table = [(1, 10.0, "x"), (2, 20.0, "y"), (3, 30.0, "z"), ("b", 40.0, "w")]
    for r, row in enumerate(table, start=1):
        for col, v in zip("EFG", row, strict=True):
            cells[f"{col}{r}"] = v
    rows = range(1, len(keys) + 1)
    for col, formula in {
        "B": "VLOOKUP(A#,$E$1:$G$4,3,FALSE)",
        "C": "MATCH(A#,$E$1:$E$4,0)",
        "D": "_xlfn.IFNA(VLOOKUP(A#,$E$1:$F$3,2,TRUE),-1)",
        "H": "INDEX($F$1:$F$4,MOD(#,4)+1)",
        "I": 'CHOOSE(MOD(#,3)+1,"p",A#,#)',
        "J": '_xlfn.IFS(ISNUMBER(A#),A#*2,ISTEXT(A#),"text",TRUE,"blank")',
        "K": '_xlfn.SWITCH(A#,1,"one",3,"three","b","bee","other")',
        "L": "IFERROR(1/(A#-3),ERROR.TYPE(1/(A#-3)))",
        "M": "TYPE(A#)+N(A#)",
        "N": "_xlfn.XOR(ISBLANK(A#),ISODD(#))",
        "O": "ADDRESS(#,MOD(#,5)+1,MOD(#,4)+1)",
        "P": "HLOOKUP(#,$Q$1:$T$2,2,TRUE)",
    }.items():
        cells.update(_filled(col, rows, formula))
    for col, (top, bottom) in zip("QRST", [(1, "a"), (3, "b"), (4, "c"), (6, "d")], strict=True):
        cells[f"{col}1"], cells[f"{col}2"] = top, bottom
    ours = _calc(tmp_path, cells)
    (lo,) = recalc([tmp_path / "book.xlsx"])
    theirs = openpyxl.load_workbook(lo, data_only=True).active
    for ref, got in ours.items():
        want = theirs[ref].value
        if isinstance(want, str) and want.startswith("#"):
            want = Error(want)
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            assert isinstance(got, float) and math.isclose(got, want), (ref, got, want)
        else:
            assert got == want, (ref, cells.get(ref), got, want)


def test_blanks_text_and_errors(tmp_path):
    cells = {"A1": 1, "A2": "x", "A4": 5, "A5": "y", "A6": 3, "C1": "=1/0", "C2": 2}
    cells.update({"B1": 10, "B2": 20, "B3": 30, "B4": 40, "B5": 50, "B6": 60})
    formulas = {
        "D1": "=MATCH(A3,A1:A6,0)",  # a blank key finds nothing, not a blank cell ...
        "D2": "=_xlfn.XLOOKUP(A3,A1:A6,B1:B6)",  # ... except in XLOOKUP
        "D3": "=LOOKUP(9.99E+307,A1:A6,B1:B6)",  # the last number: text is passed over
        "D4": '=LOOKUP(2,1/(A1:A6="y"),B1:B6)',  # the last "y": errors are passed over
        "D5": "=VLOOKUP(2,C1:C2,1,TRUE)",  # an error in the first column is passed over
        "D6": "=INDEX(C1:C2,1)",  # an error picked is the result
        "D7": '=IFERROR(INDEX(C1:C2,1),"e")',
        "D8": '=_xlfn.XLOOKUP("Y",A1:A6,B1:B6,"none",0,-1)',  # text without case, from the end
        "D9": '=_xlfn.XMATCH("?",A1:A6,2)',  # a wildcard: the first one-character text
        "D10": "=SUM(INDEX(A1:B6,0,1))",  # a whole column, as a reference: text skipped
        "D11": "=AND(A1:A6)",  # text in a range is passed over
        "D12": '=OR("x",FALSE)',  # typed text other than TRUE/FALSE too
        "D13": "=_xlfn.IFNA(MATCH(4,A1:A6,0),C1)",  # IFNA lets other errors through
        "D14": "=CHOOSE(0,1,2)",
        "D15": "=_xlfn.SWITCH(C1,1,2)",
    }
    got = _calc(tmp_path, {**cells, **formulas})
    assert [got[f"D{r}"] for r in range(1, 16)] == [
        Error("#N/A"),
        30.0,
        60.0,
        50.0,
        2.0,
        Error("#DIV/0!"),
        "e",
        50.0,
        2.0,
        9.0,
        True,
        False,
        Error("#DIV/0!"),
        Error("#VALUE!"),
        Error("#DIV/0!"),
    ]


def test_array_arguments_spread_as_excel(tmp_path):
    """Element-wise over arrays of different sizes: a size of 1 repeats, a shorter array is
    padded with #N/A (IFERROR's own corpus file shows it for ranges)."""
    got = _calc(
        tmp_path,
        {
            "A1": "=SUMPRODUCT(IFERROR(IFERROR({1;2;3}/{1;0;0},{7;8}),100))",  # 1 + 8 + 100
            "A2": "=SUMPRODUCT(--ISNA(IF({TRUE;FALSE;TRUE},{1;2},{3;4;5})))",  # row 3: #N/A
            "A3": "=SUM(CHOOSE({1,2},{10;20},{1;2}))",  # a 2×2 array
            "A4": '=SUMPRODUCT(--(_xlfn.IFS({1;0},"a",{0;1},"b")="b"))',
            "A5": "=SUM(VLOOKUP({2,3},{1,10;2,20;3,30},2,FALSE))",
            "A6": "=SUM(MATCH({3;1},{1,2,3},0))",
            "A7": "=SUMPRODUCT(INDEX({10;20;30;40},{1;3}))",  # positions as an array
            "A8": "=SUM(_xlfn.XLOOKUP(2,{1;2;3},{1,2;3,4;5,6}))",  # a row: 3 + 4
            "A9": "=SUM(_xlfn.XLOOKUP(3,{1,2,3},{1,2,3;4,5,6}))",  # a column: 3 + 6
        },
    )
    assert [got[f"A{r}"] for r in range(1, 10)] == [
        109.0,
        1.0,
        33.0,
        1.0,
        50.0,
        4.0,
        40.0,
        7.0,
        9.0,
    ]


def test_lookups_take_no_device_sync_while_training(tmp_path, monkeypatch):
    """Keys from the parameters, numbers only: positions, picks, errors and choices stay on
    the device (a GPU step would otherwise wait for the values every step)."""
    formulas = [
        "VLOOKUP({P},d!$A$1:$B$4,2,TRUE)*{Q}+VLOOKUP({P},d!$A$1:$B$4,2,FALSE)",
        "INDEX(d!$B$1:$B$4,MATCH(MAX({PQ}),{PQ},0))*{Q}",
        "_xlfn.XLOOKUP({P},d!$A$1:$A$4,d!$B$1:$B$4,0,-1,2)*{Q}",
        "_xlfn.XLOOKUP({P},d!$A$1:$A$4,d!$B$1:$B$4,{Q},1)*{Q}",
        "MATCH({P},d!$D$1:$D$4,-1)*{Q}+LOOKUP({P},d!$A$1:$A$4,d!$B$1:$B$4)",
        "CHOOSE(MATCH({P},d!$A$1:$A$4,1),{Q},2*{Q},3*{Q},4*{Q})",
        "IFNA(_xlfn.IFS({P}>3,{Q},{P}>2,2*{Q}),{Q}^2)+_xlfn.SWITCH({P},2.2,{Q},0)",
        "IFERROR(1/({P}-2),{Q})+IF(AND({P}>0,_xlfn.XOR({Q}>0,TRUE)),{Q},0)",
        "N({P})+ISNUMBER({Q})+ISERROR({P})+INDEX({PQ},1,2)",
    ]
    data = {"A": [1.0, 2.0, 3.0, 4.0], "B": [10.5, -3.0, 7.0, 2.0], "D": [4.0, 3.0, 2.0, 1.0]}
    models = [formula_model(tmp_path / str(k), f, 2.2, 0.7, data) for k, f in enumerate(formulas)]
    for model in models:
        model.objective_value()  # a first step reads the constants once

    forbid_device_syncs(monkeypatch)
    for f, model in zip(formulas, models, strict=True):
        loss = model.objective_value()
        assert loss.requires_grad, f


def test_labels_beside_parameters_are_searched_once(tmp_path, monkeypatch):
    """A table of text labels whose values hold the parameters: the labels' positions are
    found at the first step only, and the gradient flows through the values picked."""
    wb = openpyxl.Workbook()
    t = wb.active
    t.title = "t"
    t["A1"], t["B1"] = 1.5, -0.5
    for r, (label, value) in enumerate([("a", "=A1*2"), ("b", "=B1"), ("c", 5)], start=1):
        t[f"D{r}"], t[f"E{r}"] = label, value
    t["C1"] = '=VLOOKUP("B",D1:E3,2,FALSE)*A1+INDEX(E1:E3,MATCH("a",D1:D3,0))'
    wb.save(tmp_path / "labels.xlsx")
    solver = SolverModel("t", Ref("t", 0, 2, 0, 2), [Ref("t", 0, 0, 0, 1)], 2)
    model = Model(read_book(tmp_path / "labels.xlsx"), solver, Ctx(torch.device("cpu")))
    model.compile()

    def searched(*args):
        raise AssertionError("searched again")

    monkeypatch.setattr("excelnet.formula.functions.lookup._comparable", searched)
    for _ in range(2):
        model.params[0].value.x.grad = None
        loss = model.objective_value()
        loss.backward()
        assert float(loss.detach()) == pytest.approx(-0.5 * 1.5 + 3.0)
        assert model.params[0].value.x.grad.tolist() == pytest.approx([-0.5 + 2.0, 1.5])


def test_weights_looked_up_by_category_train(tmp_path, recalc):
    """A model typed as a user would: each row's weight looked up by its category in a table
    of labels and parameters, copied down. It fits (to least squares), and LibreOffice's
    recalculation of the saved file gives the loss excelnet reported."""
    import json

    from tests.conftest import run_cli
    from tests.handmade import solver_names

    rng = np.random.default_rng(3)
    labels = rng.choice(["low", "mid", "high"], 40)
    x = rng.uniform(0, 1, 40)
    y = np.array([{"low": -1.0, "mid": 0.5, "high": 2.0}[c] for c in labels]) + 1.5 * x
    y += rng.normal(0, 0.1, 40)
    wb = openpyxl.Workbook()
    data = wb.active
    data.title = "data"
    model = wb.create_sheet("model")
    for i, (c, a, b) in enumerate(zip(labels, x, y, strict=True), start=2):
        data[f"A{i}"], data[f"B{i}"], data[f"C{i}"] = str(c), float(a), float(b)
        data[f"D{i}"] = f"=VLOOKUP(A{i},model!$A$2:$B$4,2,FALSE)+model!$E$2*B{i}"
    for r, label in enumerate(["low", "mid", "high"], start=2):
        model[f"A{r}"], model[f"B{r}"] = label, 0.0
    model["E2"] = 0.0
    model["E5"] = "=SUMXMY2(data!D2:D41,data!C2:C41)/COUNT(data!C2:C41)"
    solver_names(wb, "model", "model!$E$5", "model!$B$2:$B$4,model!$E$2")
    wb.save(tmp_path / "categories.xlsx")
    out = tmp_path / "fitted.xlsx"
    run = run_cli(
        "fit",
        tmp_path / "categories.xlsx",
        "--lr",
        "0.9",
        "--epochs",
        "800",
        "--out",
        out,
        "--json",
    )
    assert run.returncode == 0, run.stderr
    (fit,) = json.loads(run.stdout)["fits"]
    onehot = np.array([[c == k for k in ("low", "mid", "high")] for c in labels], float)
    best = np.linalg.lstsq(np.column_stack([onehot, x]), y, rcond=None)[0]
    fitted = openpyxl.load_workbook(out, data_only=True)["model"]
    got = [fitted[c].value for c in ("B2", "B3", "B4", "E2")]
    assert got == pytest.approx(best, abs=1e-4)
    (lo,) = recalc([out])
    assert openpyxl.load_workbook(lo, data_only=True)["model"]["E5"].value == pytest.approx(
        fit["final_loss"], rel=1e-9
    )
