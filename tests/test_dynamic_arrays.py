"""Excel 365's dynamic arrays and the LAMBDA family: Microsoft's documented examples and their
results, errors as Excel gives them, and gradients through LET, LAMBDA, MAP and BYROW (checked
against central differences; a LAMBDA'd layer trains). The corpus files (tests/oracle.py) check
the same functions against Excel's own saved values."""

from __future__ import annotations

import pytest
import torch

from excelnet.formula.parse import Error
from tests.conftest import formula_model
from tests.dynamic_helpers import evaluate, table

NA = Error("#N/A")
ABC = {"A1": 1, "A2": 2, "A3": 3, "B1": 4, "B2": 5, "B3": 6, "C1": 7, "C2": 8, "C3": 9}
GRID = "{1,2,3;4,5,6;7,8,9}"

EXAMPLES = [
    # Microsoft's examples (support.microsoft.com), each function's page
    ("=SEQUENCE(2,3)", [[1, 2, 3], [4, 5, 6]]),
    ("=SEQUENCE(3,1,10,-2.5)", [[10], [7.5], [5]]),
    ("=SEQUENCE(,3)", [[1, 2, 3]]),
    ("=SEQUENCE(0)", [[Error("#VALUE!")]]),
    (
        '=SORTBY({"Tom";"Fred";"Amy";"Sal"},{52;65;22;73})',
        [["Amy"], ["Tom"], ["Fred"], ["Sal"]],
    ),
    ('=SORT({"b";3;TRUE;"A";1})', [[1], [3], ["A"], ["b"], [True]]),
    ("=SORT({3,1;1,2;2,0},2,-1)", [[1, 2], [3, 1], [2, 0]]),
    ("=SORT({3,1,2},1,1,TRUE)", [[1, 2, 3]]),
    ('=UNIQUE({"a";"A";"b";"a"})', [["a"], ["b"]]),
    ("=UNIQUE({1;1;2;3;3},,TRUE)", [[2]]),
    ("=UNIQUE({1,1,2},TRUE)", [[1, 2]]),
    ("=FILTER(A1:C3,A1:A3>1)", [[2, 5, 8], [3, 6, 9]]),
    ("=FILTER(A1:C3,{TRUE,FALSE,TRUE})", [[1, 7], [2, 8], [3, 9]]),
    ('=FILTER(A1:C3,A1:A3>5,"none")', [["none"]]),
    ("=FILTER(A1:C3,A1:A3>5)", [[Error("#CALC!")]]),
    ("=FILTER(A1:C3,A1:A2>1)", [[Error("#VALUE!")]]),
    (f"=TAKE({GRID},2)", [[1, 2, 3], [4, 5, 6]]),
    (f"=TAKE({GRID},,3)", [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
    (f"=TAKE({GRID},-2)", [[4, 5, 6], [7, 8, 9]]),
    (f"=TAKE({GRID},2,2)", [[1, 2], [4, 5]]),
    (f"=DROP({GRID},2)", [[7, 8, 9]]),
    (f"=DROP({GRID},,2)", [[3], [6], [9]]),
    (f"=DROP({GRID},-2)", [[1, 2, 3]]),
    (f"=DROP({GRID},2,2)", [[9]]),
    (f"=DROP({GRID},3)", [[Error("#CALC!")]]),
    ('=VSTACK({"A","B","C"},{"AA","BB","CC"})', [["A", "B", "C"], ["AA", "BB", "CC"]]),
    ("=VSTACK({1,2},{3;4})", [[1, 2], [3, NA], [4, NA]]),
    ('=HSTACK({"A";"B"},{1;2;3})', [["A", 1], ["B", 2], [NA, 3]]),
    ("=TOCOL({1,2;3,4})", [[1], [2], [3], [4]]),
    ("=TOCOL({1,2;3,4},,TRUE)", [[1], [3], [2], [4]]),
    ("=TOROW({1,#N/A;3,4},2)", [[1, 3, 4]]),
    (f"=CHOOSECOLS({GRID},1,3)", [[1, 3], [4, 6], [7, 9]]),
    (f"=CHOOSECOLS({GRID},-1)", [[3], [6], [9]]),
    (f"=CHOOSEROWS({GRID},{{1,3}},1)", [[1, 2, 3], [7, 8, 9], [1, 2, 3]]),
    (f"=CHOOSEROWS({GRID},4)", [[Error("#VALUE!")]]),
    ("=EXPAND({1,2;3,4},3,3)", [[1, 2, NA], [3, 4, NA], [NA, NA, NA]]),
    ('=EXPAND({1,2;3,4},3,,"-")', [[1, 2], [3, 4], ["-", "-"]]),
    ("=EXPAND({1,2;3,4},1)", [[Error("#VALUE!")]]),
    (
        '=WRAPROWS({"A","B","C","D","E","F","G"},3)',
        [["A", "B", "C"], ["D", "E", "F"], ["G", NA, NA]],
    ),
    ("=WRAPCOLS({1,2,3,4,5},2,0)", [[1, 3, 5], [2, 4, 0]]),
    ('=TEXTSPLIT("Dakota Lennon Sanchez"," ")', [["Dakota", "Lennon", "Sanchez"]]),
    ('=TEXTSPLIT("1,2,3;4,5",",",";")', [["1", "2", "3"], ["4", "5", NA]]),
    (
        '=TEXTSPLIT("Do. Or do not. There is no try. -Anonymous",,".")',
        [["Do"], [" Or do not"], [" There is no try"], [" -Anonymous"]],
    ),
    ('=TEXTSPLIT("a--b",,"-",TRUE)', [["a"], ["b"]]),
    # LET and LAMBDA
    ("=LET(x,1,x+1)", [[2]]),
    ("=_xlfn.LET(_xlpm.x,2,_xlpm.y,_xlpm.x*3,_xlpm.x+_xlpm.y)", [[8]]),
    ("=LET(total,SUM(A1:A3),total/COUNT(A1:A3))", [[2]]),
    ("=LAMBDA(x,x+1)(3)", [[4]]),
    ("=_xlfn.LAMBDA(_xlpm.x,_xlpm.y,SQRT(_xlpm.x^2+_xlpm.y^2))(3,4)", [[5]]),
    ("=LET(f,LAMBDA(x,x*x),f(4)+f(2))", [[20]]),
    ("=LAMBDA(x,x)", [[Error("#CALC!")]]),
    ("=LAMBDA(a,b,IF(ISOMITTED(b),a/2,a*b))(12,)", [[6]]),
    ("=LAMBDA(a,b,IF(ISOMITTED(b),a/2,a*b))(12,3)", [[36]]),
    ("=LAMBDA(x,y,x+y)(1)", [[Error("#VALUE!")]]),  # a required parameter left out
    ("=LAMBDA(x,x)(1,2)", [[Error("#VALUE!")]]),
    ("=_xlfn.LAMBDA(_xlpm.a,_xlop.b,IF(_xlfn.ISOMITTED(_xlpm.b),-_xlpm.a,_xlpm.b))(2)", [[-2]]),
    ("=MAP({1,2;3,4},LAMBDA(a,IF(a>2,a*a,+a)))", [[1, 2], [9, 16]]),
    ("=MAP(A1:A3,B1:B3,LAMBDA(a,b,a*b))", [[4], [10], [18]]),
    ("=REDUCE(,{1,2,3},LAMBDA(a,b,a+b^2))", [[14]]),
    ('=SCAN("",{"a","b","c"},LAMBDA(t,c,t&c))', [["a", "ab", "abc"]]),
    ("=SCAN(1,{1,2,3,4,5},LAMBDA(a,b,a*b))", [[1, 2, 6, 24, 120]]),
    ("=BYROW(A1:C3,LAMBDA(r,MAX(r)))", [[7], [8], [9]]),
    ("=BYCOL(A1:C3,LAMBDA(c,SUMSQ(c)))", [[14, 77, 194]]),
    ("=BYROW(A1:C3,LAMBDA(r,r*2))", [[Error("#CALC!")], [Error("#CALC!")], [Error("#CALC!")]]),
    ("=MAKEARRAY(2,3,LAMBDA(r,c,r*c))", [[1, 2, 3], [2, 4, 6]]),
    ("=SUM(MAKEARRAY(3,3,LAMBDA(r,c,r+c)))", [[36]]),
    ("=ROWS(FILTER(A1:C3,C1:C3>7))", [[2]]),
]


def _same(got, want) -> bool:
    if isinstance(want, Error) or isinstance(want, str) or isinstance(want, bool):
        return got == want
    return isinstance(got, float) and got == pytest.approx(want)


@pytest.mark.parametrize(("formula", "want"), EXAMPLES, ids=[f for f, _ in EXAMPLES])
def test_documented_examples(tmp_path, formula, want):
    got = table(evaluate(tmp_path, formula, ABC))
    assert len(got) == len(want) and all(
        len(g) == len(w) for g, w in zip(got, want, strict=True)
    ), got
    assert all(
        _same(g, w) for gr, wr in zip(got, want, strict=True) for g, w in zip(gr, wr, strict=True)
    ), got


def test_a_workbook_function(tmp_path):
    """A name defined as a LAMBDA is a function of the workbook's own."""
    names = {
        "HYPOT": "_xlfn.LAMBDA(_xlpm.a,_xlpm.b,SQRT(_xlpm.a^2+_xlpm.b^2))",
        "TWICE": "LAMBDA(x,2*x)",
    }
    assert table(evaluate(tmp_path, "=HYPOT(3,4)+TWICE(A2)", ABC, names)) == [[9.0]]
    assert table(evaluate(tmp_path, "=MAP(A1:A3,TWICE)", ABC, names)) == [[2.0], [4.0], [6.0]]


def test_whole_workbook_spills(tmp_path):
    """Through the whole-workbook calculation, as an array formula over its spill range."""
    import openpyxl
    from openpyxl.worksheet.formula import ArrayFormula

    from excelnet.formula.calculation import Calculation
    from excelnet.xlsx.read import read_book

    wb = openpyxl.Workbook()
    ws = wb.active
    for ref, v in ABC.items():
        ws[ref] = v
    ws["E1"] = ArrayFormula("E1:E3", "=_xlfn.BYROW(A1:C3,_xlfn.LAMBDA(_xlpm.r,SUM(_xlpm.r)))")
    ws["F1"] = ArrayFormula("F1:G2", "=_xlfn.TAKE(_xlfn._xlws.SORT(A1:C3,1,-1),2,2)")
    wb.save(tmp_path / "b.xlsx")
    calc = Calculation(read_book(tmp_path / "b.xlsx"))
    assert not calc.failures
    values = calc.values
    name = ws.title
    assert [values[(name, r, 4)] for r in range(3)] == [12.0, 15.0, 18.0]
    assert [values[(name, r, c)] for r in range(2) for c in (5, 6)] == [3.0, 6.0, 2.0, 5.0]


GRADIENT_FORMULAS = [
    "SUM(MAP(d!A1:A4,LAMBDA(x,({P}*x+{Q})^2)))",
    "SUM(BYROW(d!A1:B4*{P},LAMBDA(r,MAX(r)+{Q}*SUM(r))))",
    "LET(a,{P}*{Q},b,a^2,LAMBDA(x,x*b+a)(3))",
    "REDUCE(0,d!A1:A4,LAMBDA(acc,x,acc+TANH({P}*x-{Q})))",
    "SUM(SCAN({P},d!A1:A4,LAMBDA(acc,x,acc*{Q}+x)))",
    "SUM(TAKE(SORTBY(d!A1:A4*{P},d!B1:B4),2))+SUM(FILTER(d!A1:A4*{Q},d!B1:B4>0))",
    "SUM(SEQUENCE(3,2,{P},{Q}))+SUM(VSTACK({PQ},{PQ}^2))",
    "SUM(MAKEARRAY(2,2,LAMBDA(r,c,r*{P}+c*{Q}^2)))",
]
DATA = {"A": [1.0, 2.0, -1.5, 0.5], "B": [0.3, -2.0, 1.0, 4.0]}


def _objective(folder, formula, p, q):
    model = formula_model(folder, formula, p, q, DATA)
    value = model.objective_value()
    return model, value


@pytest.mark.parametrize("formula", GRADIENT_FORMULAS)
def test_gradients_are_central_differences(tmp_path, formula):
    p, q, h = 0.7, -0.4, 1e-6
    model, value = _objective(tmp_path / "g", formula, p, q)
    value.backward()
    grad = model.params[0].value.x.grad.reshape(-1).tolist()
    numeric = []
    for dp, dq in ((h, 0), (0, h)):
        up = float(_objective(tmp_path / "u", formula, p + dp, q + dq)[1].detach())
        down = float(_objective(tmp_path / "d", formula, p - dp, q - dq)[1].detach())
        numeric.append((up - down) / (2 * h))
    assert grad == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_a_lambda_layer_trains(tmp_path):
    """A layer written as a workbook's LAMBDA, applied by BYROW over the data rows: gradient
    descent on its two weights brings the squared error down."""
    formula = "SUMSQ(BYROW(d!A1:B4,LAMBDA(r,TANH({P}*INDEX(r,1)+{Q}*INDEX(r,2))))-d!C1:C4)"
    data = dict(DATA, C=[0.5, -0.2, 0.1, 0.9])
    model = formula_model(tmp_path, formula, 0.1, 0.1, data)
    x = model.params[0].value.x
    opt = torch.optim.SGD([x], lr=0.03)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = model.objective_value()
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    assert float(model.objective_value().detach()) < 0.6 * first


def test_copied_down(tmp_path):
    """A formula copied down a column: LET and MAP per row, and arrays whose size differs
    from row to row (each cell its own block)."""
    from tests.conftest import calc_formulas

    cells = {"A1": 1, "A2": 2, "A3": 3}
    for r in (1, 2, 3):
        cells[f"B{r}"] = f"=LET(x,A{r},x*2)"
        cells[f"C{r}"] = f"=SUM(MAP(A{r}:A{r + 1},LAMBDA(v,v*10)))"
        cells[f"D{r}"] = f"=ROWS(FILTER($A$1:$A$3,$A$1:$A$3>=A{r}))"
        cells[f"E{r}"] = f"=COLUMNS(SEQUENCE(1,A{r}))"
    got = calc_formulas(tmp_path, cells)
    assert [got[f"{c}{r}"] for c in "BCDE" for r in (1, 2, 3)] == [
        2.0,
        4.0,
        6.0,
        30.0,
        50.0,
        30.0,
        3.0,
        2.0,
        1.0,
        1.0,
        2.0,
        3.0,
    ]


def test_a_recursive_lambda_is_refused(tmp_path):
    from excelnet.formula.parse import FormulaError

    with pytest.raises(FormulaError, match="calls itself"):
        evaluate(tmp_path, "=FACTR(5)", {}, {"FACTR": "LAMBDA(n,IF(n<2,1,n*FACTR(n-1)))"})
