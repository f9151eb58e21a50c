"""ENGINEERING and DATABASE: values and gradients against LibreOffice where it computes as Excel
does, and Excel's rules the corpus (tests/test_oracle.py) does not show: copied-down blocks,
errors inside ranges, omitted arguments, prefixes and criteria."""

from __future__ import annotations

import numpy as np
import openpyxl
import pytest
import torch

from excelnet.formula.calculation import Calculation
from excelnet.formula.functions import FUNCTIONS
from excelnet.formula.parse import Error
from excelnet.formula.values import Ctx, V, from_python, omitted
from excelnet.xlsx.read import read_book
from tests.conftest import items
from tests.libreoffice_check import check_formulas

CPU = Ctx(torch.device("cpu"))


def _eval(fn: str, *args: V, ctx: Ctx = CPU) -> V:
    return FUNCTIONS[fn].fn(ctx, list(args))


def _values(rows) -> V:
    """(N, H, W) nested lists → a value as a range reads it."""
    return from_python(np.array(rows, dtype=object), CPU, ref=True)


def _one(value) -> V:
    return _values([[[value]]])


# -- against LibreOffice ----------------------------------------------------------------------

DATA = {"A": ["name", "a", "b", "a"], "B": ["v", 1.5, 2.0, 4.0], "D": ["name", "a"]}
FORMULAS = [  # (formula, P, Q): functions Excel 2010 added carry their _xlfn. prefix
    ("ERF({P})+ERFC({Q})", (0.4, -0.7)),
    ("ERF({P},{Q})*3", (-1.2, 0.3)),
    ("_xlfn.ERF.PRECISE({P})-_xlfn.ERFC.PRECISE({Q})^2", (1.1, 0.2)),
    ("GESTEP({P},{Q})+DELTA({P},0.5)*2", (0.5, 0.25)),
    ('CONVERT({P},"ft","m")+CONVERT({Q},"C","F")+CONVERT(1,"kW","W")', (2.5, 37.0)),
    ("_xlfn.BITXOR(ROUND(ABS({P})*100,0),255)+_xlfn.BITLSHIFT(3,ROUND({Q},0))", (1.37, 4.2)),
    ('DEC2HEX(ROUND({P}*1000,0))&HEX2DEC("FF")&BIN2OCT("1111111111")', (-0.4, 0.0)),
    ('DSUM(d!$A$1:$B$4,"v",d!$D$1:$D$2)*{P}+DCOUNT(d!$A$1:$B$4,2,d!$D$1:$D$2)', (0.7, 0.0)),
]


def test_values_and_gradients_match_libreoffice(tmp_path, recalc):
    params = np.array([point for _, point in FORMULAS])
    checked = check_formulas([f for f, _ in FORMULAS], params, DATA, tmp_path, recalc)
    assert checked >= 6  # both gradients of the three ERF/ERFC formulas


def test_erf_trains_with_finite_gradients():
    x = torch.linspace(-30, 30, 13, dtype=torch.float64).reshape(-1, 1, 1).requires_grad_()
    loose = Ctx(torch.device("cpu"), strict=False)
    y = _eval("ERF", V(x), V(x * 0.5), ctx=loose).x + _eval("ERFC", V(x), ctx=loose).x
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    # d/dx [erf(x/2) - erf(x) + erfc(x)] = (2/√π) (e^(-x²/4)/2 - 2 e^(-x²))
    t = x.detach()
    want = 2 / np.sqrt(np.pi) * (torch.exp(-(t**2) / 4) / 2 - 2 * torch.exp(-(t**2)))
    assert torch.allclose(x.grad, want)


# -- ENGINEERING: Excel's rules the corpus does not show ---------------------------------------


def test_erf_omitted_upper_limit_and_errors_first():
    assert items(_eval("ERF", _one(1.0), omitted(CPU))) == pytest.approx([0.8427007929497149])
    assert items(_eval("ERF", _one(Error("#N/A")), _one(True))) == [Error("#N/A")]
    assert items(_eval("ERF", _one(1.0), _one(True))) == [Error("#VALUE!")]


def test_number_systems_over_a_block_with_places():
    numbers = _values([[[5.0]], [[-1.0]], [["12"]], [[None]], [[600.0]], [[True]]])
    assert items(_eval("DEC2BIN", numbers, _one(4.0))) == [
        "0101",
        "1111111111",
        "1100",
        "0000",
        Error("#NUM!"),
        Error("#VALUE!"),
    ]
    # places: numeric text is read, other text is #VALUE!, an empty cell is 0 (#NUM!)
    assert items(_eval("DEC2OCT", _one(9.0), _values([[["3"]], [["x"]], [[None]]]))) == [
        "011",
        Error("#VALUE!"),
        Error("#NUM!"),
    ]
    assert items(_eval("HEX2BIN", _one("fffffffe00"))) == ["1000000000"]
    assert items(_eval("OCT2DEC", _values([[["7777777777", "0x1", " 7", "12345678901"]]]))) == [
        -1.0,
        Error("#NUM!"),
        Error("#NUM!"),
        Error("#NUM!"),
    ]


def test_bitwise_functions_read_booleans_and_text():
    assert items(_eval("BITOR", _one("6"), _one(True))) == [7.0]
    assert items(_eval("BITAND", _one("six"), _one(1.0))) == [Error("#VALUE!")]
    assert items(_eval("BITRSHIFT", _values([[[2.0**47, 1.0]]]), _one(-1.0))) == [
        Error("#NUM!"),
        2.0,
    ]


def test_convert_prefixes_quantities_and_temperatures():
    def convert(number, source, target):
        return items(_eval("CONVERT", _one(number), _one(source), _one(target)))[0]

    assert convert(1.0, "km", "mi") == pytest.approx(0.621371192237334)
    assert convert(2.0, "km2", "m^2") == pytest.approx(2e6)
    assert convert(1.0, "kibyte", "bit") == 8192.0
    assert convert(1.0, "dam", "m") == pytest.approx(10.0)
    assert convert(1.0, "ms", "s") == pytest.approx(1e-3)
    assert convert(100.0, "C", "F") == pytest.approx(212.0)
    assert convert(0.0, "F", "Rank") == pytest.approx(459.67)
    assert convert("2", "lbm", "kg") == pytest.approx(0.90718474)
    # binary prefixes are for bits and bytes only; units and prefixes are case-sensitive;
    # only some units take prefixes (not yr, mi, ly2); quantities must agree
    for source, target in [
        ("kim", "m"),
        ("Kibyte", "bit"),
        ("kyr", "yr"),
        ("kmi", "m"),
        ("kly2", "m2"),
        ("M", "m"),
        ("m", "g"),
        ("", "m"),
    ]:
        assert convert(1.0, source, target) == Error("#N/A"), source
    assert convert(True, "m", "ft") == Error("#VALUE!")
    assert items(_eval("CONVERT", _one(1.0), _values([[["m", "in", "g"]]]), _one("cm"))) == [
        pytest.approx(100.0),
        pytest.approx(2.54),
        Error("#N/A"),
    ]


def test_bessel_is_excels_approximation():
    # Excel's BESSELJ(0,0) is its rational fit's 1.00000000283141, not 1
    assert items(_eval("BESSELJ", _one(0.0), _one(0.0))) == [pytest.approx(1.00000000283141, 1e-15)]
    x = _values([[[2.5]], [[-1.0]], [[0.0]], [["x"]]])
    assert items(_eval("BESSELK", x, _one(1.0)))[1:] == [
        Error("#NUM!"),
        Error("#NUM!"),
        Error("#VALUE!"),
    ]
    assert items(_eval("BESSELI", _one(800.0), _one(1.0))) == [Error("#NUM!")]  # beyond a double


# -- DATABASE -------------------------------------------------------------------------------

SALES = [
    ["Name", "Sales", "Note"],
    ["a", 1.0, "x"],
    ["b", 2.0, None],
    ["ab", 4.0, True],
    ["a", 8.0, Error("#N/A")],
    ["c", 16.0, "y"],
]


def _database(fn: str, field, criteria: list[list]) -> list:
    field = field if isinstance(field, V) else _one(field)
    return items(_eval(fn, _values([SALES]), field, _values([criteria])))


def test_database_criteria():
    assert _database("DSUM", "sales", [["Name"], ["a"]]) == [13.0]  # "a" is a prefix: a, ab
    assert _database("DSUM", "Sales", [["Name"], ["=a"]]) == [9.0]  # "=a": a only
    assert _database("DSUM", 2, [["Name", "Sales"], ["a", ">1"], ["c", None]]) == [28.0]
    assert _database("DSUM", 2, [["Nom"], ["a"]]) == [0.0]  # no such field: no record
    assert _database("DSUM", 2, [["Nom"], [None]]) == [31.0]  # an empty condition: every one
    assert _database("DAVERAGE", 2, [["Sales"], [">100"]]) == [Error("#DIV/0!")]
    assert _database("DSUM", "Total", [["Name"], ["a"]]) == [Error("#VALUE!")]
    assert _database("DSUM", 4, [["Name"], ["a"]]) == [Error("#VALUE!")]


def test_database_counts_gets_and_errors_in_the_field():
    assert _database("DCOUNT", omitted(CPU), [["Sales"], [">1"]]) == [4.0]  # records met
    assert _database("DCOUNTA", "Note", [["Sales"], [">1"]]) == [3.0]
    assert _database("DGET", "Note", [["Name"], ["c"]]) == ["y"]
    assert _database("DGET", "Note", [["Name"], ["b"]]) == [0.0]  # an empty cell reads 0
    assert _database("DGET", "Note", [["Name"], ["a"]]) == [Error("#NUM!")]
    assert _database("DGET", "Note", [["Name"], ["z"]]) == [Error("#VALUE!")]
    # an error in a record that is met is the result, in one that is not it is ignored
    assert _database("DCOUNTA", "Note", [["Name"], ["=a"]]) == [2.0]
    assert _database("DGET", "Note", [["Sales"], [8.0]]) == [Error("#N/A")]
    assert _database("DPRODUCT", "Sales", [["Note"], ["<>x"]]) == [2.0 * 4 * 8 * 16]


def test_database_sums_pass_gradients_to_the_records_met():
    loose = Ctx(torch.device("cpu"), strict=False)
    db = _values([SALES])
    live = db.x.detach().clone().requires_grad_()
    db = V(live, db.kind, db.text, ref=True)
    criteria = _values([[["Name"], ["a"]]])
    total = _eval("DSUM", db, _one("Sales"), criteria, ctx=loose).x
    mean = _eval("DAVERAGE", db, _one(2.0), criteria, ctx=loose).x
    (total + mean).sum().backward()
    assert total.item() == 13.0
    met = 1 + 1 / 3  # a, ab and a: each once in the sum, a third in the average
    assert live.grad[0, :, 1].tolist() == pytest.approx([0, met, 0, met, met, 0])
    assert not live.grad[0, :, [0, 2]].any()


def test_database_functions_copied_down(tmp_path):
    """A block of rows whose criteria ranges move with them: D1:D2, D2:D3 (its header "a" is
    no field), D3:D4."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for r, row in enumerate([["Name", "Sales"], ["a", 1], ["b", 2], ["ab", 4], ["a", 8]], 1):
        ws.append(row + [None, ["Name", "a", "Name", "=a", None][r - 1]])
    ws["D4"].data_type = "s"  # the text "=a", not a formula
    for r in (2, 3, 4):
        ws[f"F{r}"] = f'=DSUM($A$1:$B$5,"Sales",D{r - 1}:D{r})'
        ws[f"G{r}"] = f"=DCOUNT($A$1:$B$5,,D{r - 1}:D{r})"
        ws[f"H{r}"] = f'=DEC2BIN(B{r},5)&CONVERT(B{r},"km","m")'
    path = tmp_path / "block.xlsx"
    wb.save(path)
    calc = Calculation(read_book(path))
    assert not calc.failures, [(f.where, f.reason) for f in calc.failures]
    got = {col: [calc.values[(ws.title, r - 1, ord(col) - 65)] for r in (2, 3, 4)] for col in "FGH"}
    assert got["F"] == [13.0, 0.0, 9.0]
    assert got["G"] == [3.0, 0.0, 2.0]
    assert got["H"] == ["000011000", "000102000", "001004000"]
