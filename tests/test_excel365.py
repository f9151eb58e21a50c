"""What files Excel saves carry besides tables: @ and dynamic arrays (Excel 365's stored forms),
line breaks inside formulas, whole-column references inside INDEX, ranges between reference
functions, What-If data tables and external links — each computed as Excel does (LibreOffice
the oracle where it reads the form), and nothing excelnet does not understand passed over in
silence."""

from __future__ import annotations

import re
import shutil
import zipfile

import numpy as np
import openpyxl
import pytest
import xlsxwriter

import excelnet
from excelnet.errors import ExcelnetError
from excelnet.formula.calculation import Calculation
from excelnet.formula.parse import Error
from excelnet.xlsx.read import read_book
from tests.conftest import run_cli
from tests.excel_xml import data_tables, external_link


def _formula_cells(path, sheet: str) -> dict[str, str]:
    ws = openpyxl.load_workbook(path)[sheet]
    out = {}
    for row in ws.iter_rows():
        for cell in row:
            v = cell.value
            text = getattr(v, "text", v)
            if isinstance(text, str) and text.startswith("="):
                out[cell.coordinate] = text
    return out


def _same_as_libreoffice(path, lo, sheet: str, cells) -> None:
    """calc's values (in a copy of the file) equal LibreOffice's in every cell listed."""
    copy = shutil.copy(path, path.parent / f"calc-{path.name}")
    run = run_cli("calc", copy)
    assert run.returncode == 0, run.stderr + run.stdout
    ours = openpyxl.load_workbook(copy, data_only=True)[sheet]
    theirs = openpyxl.load_workbook(lo, data_only=True)[sheet]
    for cell in cells:
        assert ours[cell].value == pytest.approx(theirs[cell].value, rel=1e-12), cell


# -- @ and dynamic arrays -----------------------------------------------------------------------


def test_at_and_spills_as_excel_365_stores_them(tmp_path):
    """write_dynamic_array_formula stores what Excel 365 does: <f t="array" ref=…> with cm="1"
    on the anchor (xl/metadata.xml: a dynamic array), the spill's other cells values only;
    A1# is _xlfn.ANCHORARRAY(A1), @ is _xlfn.SINGLE(…)."""
    path = tmp_path / "spill.xlsx"
    x = np.arange(12.0).reshape(6, 2) + 1
    w = np.array([[0.5, -1], [2, 0.25]])
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("S")
    for r in range(6):
        ws.write_row(r, 0, x[r].tolist())
    ws.write_row(0, 3, w[0].tolist())
    ws.write_row(1, 3, w[1].tolist())
    ws.write_dynamic_array_formula("F1:G6", "=MMULT(A1:B6,D1:E2)")
    ws.write_formula("I1", "=SUM(ANCHORARRAY(F1))")
    ws.write_formula("I2", "=ROWS(_xlfn.ANCHORARRAY(F1))")
    ws.write_formula("I3", "=_xlfn.SINGLE(A1:A6)*10")  # row 3 of A1:A6
    ws.write_formula("I9", "=_xlfn.SINGLE(A1:A6)*10")  # row 9: no cell of A1:A6
    ws.write_formula("J1", "=_xlfn.SINGLE(D1:E1)")  # column J: no cell of D1:E1
    ws.write_formula("E4", "=_xlfn.SINGLE(D1:E1)")  # column E: E1
    ws.write_dynamic_array_formula("K1:K1", "=SUM(A1:A6*B1:B6)")
    wb.close()
    book = read_book(path)
    assert book.sheets["S"].spills == {
        (0, 5),
        (0, 8),
        (1, 8),
        (2, 8),
        (8, 8),
        (0, 9),
        (3, 4),
        (0, 10),
    }
    calc = Calculation(book)
    assert not calc.failures
    got = np.array([[calc.values[("S", r, c)] for c in (5, 6)] for r in range(6)])
    assert np.array_equal(got, x @ w)
    value = {cell: calc.values[("S", *cell)] for cell in [(0, 8), (1, 8), (2, 8), (8, 8)]}
    assert value == {(0, 8): (x @ w).sum(), (1, 8): 6.0, (2, 8): 50.0, (8, 8): Error("#VALUE!")}
    assert calc.values[("S", 0, 9)] == Error("#VALUE!")
    assert calc.values[("S", 3, 4)] == -1.0
    assert calc.values[("S", 0, 10)] == float((x[:, 0] * x[:, 1]).sum())


def test_at_down_a_column_stays_one_block(tmp_path):
    """@ of a column range in a column of formulas: each row's own cell, one block."""
    path = tmp_path / "at.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    for r in range(1, 11):
        ws[f"A{r}"] = float(r)
        ws[f"B{r}"] = "=_xlfn.SINGLE($A$3:$A$8)*2"
        ws[f"C{r}"] = f"=_xlfn.SINGLE(A{r}:A{r + 2})+1"  # moves down: its first cell
    wb.save(path)
    calc = Calculation(read_book(path))
    assert not calc.failures
    b = [calc.values[("S", r, 1)] for r in range(10)]
    assert b == [Error("#VALUE!")] * 2 + [2.0 * r for r in range(3, 9)] + [Error("#VALUE!")] * 2
    assert [calc.values[("S", r, 2)] for r in range(10)] == [r + 2.0 for r in range(10)]


def test_a_spill_that_would_change_size_is_reported(tmp_path):
    path = tmp_path / "resized.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("S")
    for r in range(5):
        ws.write_row(r, 0, [r + 1.0, 1.0])
    ws.write_dynamic_array_formula("D1:D6", "=A1:A5*2")  # recorded 6 rows, computes 5
    wb.close()
    calc = Calculation(read_book(path))
    (failure,) = calc.failures
    assert failure.where == "S!D1:D6" and "5×1 now" in failure.reason
    run = run_cli("check", path)
    assert run.returncode == 1 and "S!D1:D6" in run.stdout


def test_a_net_written_as_a_dynamic_array_trains(tmp_path):
    """MMULT as an Excel 365 dynamic array feeding the loss through A1#: fit, and numpy gives
    the reported loss at the fitted parameters."""
    rng = np.random.default_rng(0)
    n = 30
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = np.maximum(0, 0.5 + 2 * x[:, 1]) + rng.normal(0, 0.05, n)
    path = tmp_path / "dynamic.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("net")
    for r in range(n):
        ws.write_row(r + 1, 0, [*x[r].tolist(), float(y[r])])
    ws.write_column(1, 5, [0.1, 0.3])  # F2:F3, the weights
    ws.write_dynamic_array_formula(f"D2:D{n + 1}", f"=MMULT(A2:B{n + 1},F2:F3)")
    spill = "_xlfn.ANCHORARRAY(D2)"  # D2#, as Excel stores it
    ws.write_formula("H2", f"=SUMXMY2(IF({spill}>0,{spill},0),C2:C{n + 1})/{n}")
    wb.define_name("net!solver_opt", "=net!$H$2")
    wb.define_name("net!solver_adj", "=net!$F$2:$F$3")
    wb.define_name("net!solver_typ", "=2")
    wb.close()
    assert read_book(path).sheets["net"].spills == {(1, 3), (1, 7)}
    before = zipfile.ZipFile(path)
    (fitted,) = excelnet.fit(path, epochs=100, history=False)
    ws = openpyxl.load_workbook(path)["net"]
    w = np.array([ws["F2"].value, ws["F3"].value])
    numpy_loss = float(np.mean((np.maximum(0, x @ w) - y) ** 2))
    assert fitted.final_loss == pytest.approx(numpy_loss, rel=1e-9)
    assert fitted.final_loss < fitted.initial_loss / 10
    after = zipfile.ZipFile(path)
    for name in before.namelist():  # xl/metadata.xml and every other part, byte for byte
        if name != "xl/worksheets/sheet1.xml":
            assert after.read(name) == before.read(name), name
    formulas = re.compile(rb'<c r="[A-Z]+\d+"[^>]*><f[^>]*>[^<]*</f>')
    sheet = "xl/worksheets/sheet1.xml"
    assert formulas.findall(after.read(sheet)) == formulas.findall(before.read(sheet))
    assert b'cm="1"><f t="array" ref="D2:D31">' in after.read(sheet)


# -- line breaks, whole columns in INDEX, ranges between functions -----------------------------


@pytest.fixture(scope="module")
def as_typed(tmp_path_factory, recalc):
    """Formulas as people type them into real files, and LibreOffice's values for them."""
    path = tmp_path_factory.mktemp("typed") / "typed.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("S")
    ws.write_column(0, 0, [1, 2, 3, 4, 5])
    ws.write("H1", 10)
    ws.write("H2", 20)
    for r in range(2, 6):  # INDEX(H:H, …) in column H: reads H1 and column A, no cycle
        ws.write_formula(r, 7, f"=INDEX(H:H,1)+INDEX(A:A,{r + 1})")
    for r in range(6, 9):  # the cell above, by INDEX of the own column: a chain, no cycle
        ws.write_formula(r, 7, "=INDEX(H:H,ROW()-1)+1")
    ws.write_formula("I1", "=INDEX(H:H,MATCH(20,H:H,0))*2")
    ws.write_formula("B1", '=SUM(INDIRECT("A1"):INDIRECT("A3"))')
    ws.write_formula("B2", '=SUM(INDIRECT("A"&1):A4)')
    ws.write_formula("B3", "=SUM(A1:INDEX(A:A,5))")
    ws.write_formula("B4", "=SUM(INDEX(A:A,2):INDEX(A:A,4))")
    ws.write_formula("B5", "=SUM(OFFSET(A1,1,0):A5)")
    ws.write_formula("C1", "=1+\r\n2")
    ws.write_formula("C2", "=SUM(A1,\nA2)")
    ws.write_formula("C3", '=SUM(A1:A3)&"\r\n"&"x"')
    ws.write_array_formula("C4:C4", "{=SUM(A1:A3*\r\nA1:A3)}")
    ws.write_formula("C5", "=SUM(A1:A3\t)")
    wb.close()
    (lo,) = recalc([path])
    return path, lo


def test_line_breaks_and_tabs_inside_formulas(as_typed):
    path, lo = as_typed
    with zipfile.ZipFile(path) as z:  # XlsxWriter writes CR as OOXML's escape
        assert "_x000D_" in z.read("xl/worksheets/sheet1.xml").decode()
    _same_as_libreoffice(path, lo, "S", ["C1", "C2", "C5"])
    calc = Calculation(read_book(path))
    assert calc.values[("S", 2, 2)] == "6\r\nx"  # inside text, a line break stays one
    assert calc.values[("S", 3, 2)] == 14.0  # (LibreOffice reads _x000D_ in a formula as text)


def test_line_breaks_written_raw(tmp_path):
    """CR LF and LF as a file may hold them (openpyxl writes them as they are)."""
    path = tmp_path / "raw.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    ws["A1"], ws["A2"] = 1, 2
    ws["B1"] = "=A1+\r\nA2"
    ws["B2"] = "=SUM(\r\n  A1:A2\r\n)"
    ws["B3"] = openpyxl.worksheet.formula.ArrayFormula("B3", "=SUM(A1:A2*\r\nA1:A2)")
    wb.save(path)
    calc = Calculation(read_book(path))
    assert not calc.failures
    assert [calc.values[("S", r, 1)] for r in range(3)] == [3.0, 3.0, 5.0]


def test_index_of_the_own_column_is_no_cycle(as_typed):
    path, lo = as_typed
    _same_as_libreoffice(path, lo, "S", [f"H{r}" for r in range(3, 10)] + ["I1"])


def test_a_real_cycle_through_index_is_still_one(tmp_path):
    path = tmp_path / "cycle.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    ws["H1"] = 1
    ws["H2"] = "=INDEX(H:H,2)+1"  # itself
    ws["H3"] = "=INDEX(H:H,1)+1"
    wb.save(path)
    calc = Calculation(read_book(path))
    assert [f.where for f in calc.failures] == ["S!H2"]
    assert "circular" in calc.failures[0].reason
    assert calc.values[("S", 2, 7)] == 2.0


def test_ranges_between_reference_functions(as_typed):
    path, lo = as_typed
    _same_as_libreoffice(path, lo, "S", ["B1", "B2", "B3", "B4", "B5"])


def test_a_range_from_a_function_excelnet_cannot_read_as_one_is_reported(tmp_path):
    path = tmp_path / "ifrange.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    for r in range(1, 4):
        ws[f"A{r}"] = float(r)
    ws["B1"] = "=SUM(A1:IF(TRUE,A3,A2))"  # Excel: IF returns a reference
    wb.save(path)
    calc = Calculation(read_book(path))
    (failure,) = calc.failures
    assert failure.where == "S!B1" and "IF(…) as an end" in failure.reason


# -- What-If data tables ----------------------------------------------------------------------


def _what_if(path):
    """One-variable tables down a column and along a row, and a two-variable table, over a
    little model (B1 and B4 its inputs), as Excel stores them."""
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("S")
    ws.write("B1", 0.05)
    ws.write_formula("B2", "=B1*100+1", None, 6)
    ws.write_formula("B3", "=B2^2+B4", None, 39)
    ws.write("B4", 3)
    ws.write_formula("E2", "=B3", None, 39)
    for i, v in enumerate([0.01, 0.02, 0.03, 0.04]):
        ws.write(2 + i, 3, v)
        ws.write(2 + i, 4, 0)
    ws.write_formula("G2", "=B3*10", None, 390)
    ws.write_row(1, 7, [0.1, 0.2, 0.3])
    for i, v in enumerate([1, 2]):
        ws.write_row(2 + i, 6, [v, 0, 0, 0])
    ws.write_row(7, 11, [0.5, 0.6, 0.7])
    ws.write_formula("K9", "=B2", None, 6)
    ws.write_formula("K10", "=B3+1", None, 40)
    for i in range(2):
        ws.write_row(8 + i, 11, [0, 0, 0])
    ws.write_formula("P1", "=SUM(E3:E6)+H3")  # reads the tables' cells
    wb.close()
    return data_tables(
        path,
        "xl/worksheets/sheet1.xml",
        {
            "E3": {"ref": "E3:E6", "dt2D": "0", "dtr": "0", "r1": "B1"},
            "H3": {"ref": "H3:J4", "dt2D": "1", "dtr": "1", "r1": "B1", "r2": "B4"},
            "L9": {"ref": "L9:N10", "dt2D": "0", "dtr": "1", "r1": "B1"},
        },
    )


def test_data_tables_are_computed_as_excel_does(tmp_path, recalc):
    path = _what_if(tmp_path / "whatif.xlsx")
    (lo,) = recalc([path])
    cells = [f"E{r}" for r in range(3, 7)] + [f"{c}{r}" for c in "HIJ" for r in (3, 4)]
    cells += [f"{c}{r}" for c in "LMN" for r in (9, 10)] + ["P1", "B2", "B3"]
    _same_as_libreoffice(path, lo, "S", cells)
    calc = Calculation(read_book(path))
    assert not calc.failures
    assert calc.values[("S", 2, 4)] == 7.0  # B1 = 0.01: B2 = 2, B3 = 4 + 3
    assert calc.values[("S", 2, 7)] == 1220.0  # B1 = 0.1, B4 = 1: (11² + 1) × 10
    assert calc._grid("S").cell(0, 1)[0] == 0.05 and calc.values[("S", 2, 1)] == 39.0  # restored


# -- external links ---------------------------------------------------------------------------


def test_external_links_read_the_files_copy_with_one_warning(tmp_path, recalc):
    path = tmp_path / "linked.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("S")
    ws.write("A1", 2)
    ws.write_formula("B1", "=[1]WACC!D22*A1")
    ws.write_formula("B2", "=SUM([1]WACC!D22:D23)")
    ws.write_formula("B3", "='[1]My Rates'!$A$1&\"x\"")
    wb.close()
    external_link(path, "WACC.xlsx", {"WACC": {"D22": 0.085, "D23": 0.5}, "My Rates": {"A1": "hi"}})
    book = read_book(path)
    assert book.externals == {
        "[1]WACC": {(21, 3): 0.085, (22, 3): 0.5},
        "[1]My Rates": {(0, 0): "hi"},
    }
    (lo,) = recalc([path])
    before = zipfile.ZipFile(path)
    run = run_cli("calc", path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("warning") == 1 and "[1]WACC" in run.stderr, run.stderr
    ours = openpyxl.load_workbook(path, data_only=True)["S"]
    theirs = openpyxl.load_workbook(lo, data_only=True)["S"]
    assert [ours[c].value for c in ("B1", "B2", "B3")] == [0.17, 0.585, "hix"]
    assert [theirs[c].value for c in ("B1", "B2", "B3")] == [0.17, 0.585, "hix"]
    after = zipfile.ZipFile(path)
    for name in before.namelist():  # the link's parts, byte for byte
        if name != "xl/worksheets/sheet1.xml":
            assert after.read(name) == before.read(name), name
    run = run_cli("check", path)
    assert run.returncode == 0 and run.stderr.count("warning") == 1


# -- nothing silent -----------------------------------------------------------------------------


def test_check_exit_codes_count_what_was_not_computed_and_skip_what_changes(tmp_path, recalc):
    path = tmp_path / "volatile.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    ws["A1"] = "=RAND()"
    ws["A2"] = "=A1*2"  # reads a volatile cell: changes at every recalculation too
    ws["A3"] = "=1+1"
    wb.save(path)
    (saved,) = recalc([path])
    run = run_cli("check", saved)
    assert run.returncode == 0, run.stdout
    assert "2 volatile (not compared)" in run.stdout
    ws["A4"] = "=LAMBDA(x,x+1)(2)"  # excelnet does not compute LAMBDA
    wb.save(path)
    (saved,) = recalc([path])
    run = run_cli("check", saved)
    assert run.returncode == 1 and "S!A4" in run.stdout and "not computed" in run.stdout


@pytest.mark.parametrize(
    "formula, words",
    [
        ("=NoSuchName*$D$1", "cell B1: NoSuchName is no defined name or table (#NAME?)"),
        ("=Gone[[#This Row],[x]]*$D$1", "cell B1: Gone[[#This Row],[x]]: the workbook has no"),
        ("=[2]Other!A1*$D$1", "cell B1: [2]Other: another workbook's sheet"),
    ],
)
def test_fit_names_the_cell_and_construct_the_objective_cannot_reach_through(
    tmp_path, formula, words
):
    path = tmp_path / "broken.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    ws["D1"] = 0.5
    for r in range(1, 4):
        ws[f"A{r}"] = float(r)
        ws[f"B{r}"] = formula if r == 1 else f"=A{r}*$D$1"
    ws["C1"] = "=SUMSQ(B1:B3)"
    for name, text in (("solver_opt", "S!$C$1"), ("solver_adj", "S!$D$1"), ("solver_typ", "2")):
        ws.defined_names[name] = openpyxl.workbook.defined_name.DefinedName(name, attr_text=text)
    wb.save(path)
    with pytest.raises(ExcelnetError, match=re.escape(words)):
        excelnet.fit(path, epochs=5, history=False)


def test_data_tables_read_by_openpyxl_too(tmp_path, monkeypatch):
    """A sheet the fast scan leaves to openpyxl (here: all of them) reads its data tables."""
    import excelnet.xlsx.read as read

    path = _what_if(tmp_path / "whatif.xlsx")
    monkeypatch.setattr(read, "scan", lambda *args: None)
    book = read_book(path, cached=True)
    assert set(book.sheets["S"].data_tables) == {(2, 4), (2, 7), (8, 11)}
    assert book.sheets["S"].data_tables[(2, 7)].input2 == "B4"
    calc = Calculation(book)
    assert not calc.failures
    assert calc.values[("S", 2, 7)] == 1220.0 and calc.values[("S", 9, 13)] == 5045.0
