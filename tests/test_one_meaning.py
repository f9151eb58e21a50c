"""One meaning of a formula in every command (issue 23): `calc` and `check` (Calculation) and
`fit` and `eval` (the training Model) read a formula alike — implicit intersection, relative
names, the workbook's date system, legacy (non-array) evaluation, Excel's smaller rules — and
as Excel and LibreOffice do: LibreOffice's recalculation of each workbook is the oracle."""

from __future__ import annotations

import math
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
import torch
from openpyxl.workbook.defined_name import DefinedName

from excelnet.errors import ExcelnetError
from excelnet.fitting.pipeline import compile_models, evaluate, fit
from excelnet.formula.calculation import Calculation
from excelnet.formula.graph import a1, anchored
from excelnet.formula.parse import Error
from excelnet.xlsx.read import read_book
from tests.handmade import line_fit, solver_names

ROOT = Path(__file__).resolve().parents[1]


def _book(path: Path, cells: dict[str, object], names: dict[str, str] = ()) -> Path:
    """A one-sheet workbook "m" with A1 adjustable and D1 the objective (minimised)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "m"
    for ref, value in cells.items():
        ws[ref] = value
    for name, text in dict(names).items():
        wb.defined_names[name] = DefinedName(name, attr_text=text)
    solver_names(wb, "m", "m!$D$1", "m!$A$1")
    wb.save(path)
    return path


def _lo(recalc, path: Path, tmp_path: Path) -> dict[str, object]:
    """LibreOffice's values of a workbook's sheet m, by cell name."""
    from openpyxl.utils.datetime import to_excel

    (out,) = recalc([shutil.copy(path, tmp_path / f"lo-{path.name}")])
    wb = openpyxl.load_workbook(out, data_only=True)
    cells = [c for row in wb["m"].iter_rows() for c in row if c.value is not None]
    return {  # a date LibreOffice formats as one: its serial, in the workbook's date system
        c.coordinate: c.value if not c.is_date else float(to_excel(c.value, wb.epoch))
        for c in cells
    }


def _calc(path: Path) -> dict[str, object]:
    return {a1(r, c): v for (_, r, c), v in Calculation(read_book(path)).values.items()}


def _same(ours, theirs) -> bool:
    if isinstance(ours, Error):
        return isinstance(theirs, str) and theirs == ours.code
    if isinstance(ours, float) and isinstance(theirs, (int, float)):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)
    return ours == theirs


# -- implicit intersection: fit and eval meet calc, Excel and LibreOffice -----------------------

DATA = {f"B{r}": float(r) for r in range(1, 6)}


def _column(formula: str, own: bool) -> dict[str, str]:
    """C1:C5 holding `formula`: one block copied down, or each cell a formula of its own (a
    different text in each, so no two are read as one block)."""
    if not own:
        return {f"C{r}": formula for r in range(1, 6)}
    return {f"C{r}": formula + "+0" * r for r in range(1, 6)}


@pytest.mark.parametrize("own", [False, True], ids=["copied down", "cell by cell"])
@pytest.mark.parametrize(
    "formula, names",
    [
        ("=(B:B-$A$1)^2", {}),
        ("=($B$1:$B$5-$A$1)^2", {}),
        ("=(xs-$A$1)^2", {"xs": "m!$B$1:$B$5"}),
    ],
    ids=["whole column", "fixed range", "named range"],
)
def test_a_range_read_by_row_fits_as_excel_computes(tmp_path, recalc, formula, names, own):
    cells = {"A1": 0.0, **DATA, **_column(formula, own), "D1": "=SUM(C1:C5)"}
    path = _book(tmp_path / "book.xlsx", cells, names)
    lo = _lo(recalc, path, tmp_path)
    assert lo["D1"] == pytest.approx(55.0)
    assert _calc(path)["D1"] == pytest.approx(55.0)
    (start,) = evaluate(path, write=False)
    assert start.objective == pytest.approx(55.0)  # not 5: every row read B1
    assert start.gradients["m!A1"] == pytest.approx(-30.0)
    (done,) = fit(path, epochs=50, history=False)
    assert done.initial_loss == pytest.approx(55.0)
    assert done.final_loss == pytest.approx(10.0, abs=1e-9)
    assert done.params["m!A1"] == pytest.approx(3.0, abs=1e-6)
    fitted = _lo(recalc, path, tmp_path)  # LibreOffice agrees with what fit wrote
    ours = openpyxl.load_workbook(path, data_only=True)["m"]
    for cell in ("D1", "C1", "C3", "C5"):
        assert ours[cell].value == pytest.approx(fitted[cell], rel=1e-9, abs=1e-9), cell
    assert fitted["D1"] == pytest.approx(10.0, abs=1e-9)


def test_a_row_range_is_read_in_the_formula_column(tmp_path, recalc):
    cells = {"A1": 0.0, **{f"{c}10": float(i) for i, c in enumerate("BCDEF", 1)}}
    cells.update({f"{c}2": f"=({c[0]}$10:F$10-$A$1)^2" for c in "BCDEF"})  # own formulas
    cells.update({f"{c}3": "=(B$10:F$10-$A$1)^2" for c in "BCDEF"})
    cells["D1"] = "=SUM(B2:F2)+SUM(B3:F3)"
    path = _book(tmp_path / "row.xlsx", cells)
    lo = _lo(recalc, path, tmp_path)
    ours = _calc(path)
    for cell in ("B2", "C2", "F2", "B3", "D3", "F3", "D1"):
        assert _same(ours[cell], lo[cell]), (cell, ours[cell], lo[cell])
    (done,) = fit(path, epochs=50, history=False)
    assert done.initial_loss == pytest.approx(lo["D1"])
    assert done.params["m!A1"] == pytest.approx(3.0, abs=1e-6)


def test_a_row_outside_the_range_is_value_error_in_every_command(tmp_path, recalc):
    cells = {"A1": 0.0, **DATA, **_column("=($B$1:$B$3-$A$1)^2", False), "D1": "=SUM(C1:C5)"}
    path = _book(tmp_path / "outside.xlsx", cells)
    lo = _lo(recalc, path, tmp_path)
    ours = _calc(path)
    assert [lo[f"C{r}"] for r in range(1, 6)] == [1, 4, 9, "#VALUE!", "#VALUE!"]
    for r in range(1, 6):
        assert _same(ours[f"C{r}"], lo[f"C{r}"]), r
    assert ours["D1"] == Error("#VALUE!")
    with pytest.raises(ExcelnetError, match=r"C4: #VALUE!"):  # not "fits to 0"
        evaluate(path, write=False)
    with pytest.raises(ExcelnetError, match=r"#VALUE!"):
        fit(path, epochs=5, history=False)


def test_a_fitted_workbook_checks_clean(tmp_path):
    """check (calc against the stored values) agrees with what fit wrote."""
    from tests.conftest import run_cli

    cells = {"A1": 0.0, **DATA, **_column("=(B:B-$A$1)^2", False), "D1": "=SUM(C1:C5)"}
    path = _book(tmp_path / "check.xlsx", cells)
    fit(path, epochs=50, history=False)
    run = run_cli("check", path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_range_chosen_by_if_is_read_by_row_in_fit_too(tmp_path, recalc):
    """IF(…, B1:B5, …) is a reference: read at the formula's row where a value is wanted, whole
    in SUM(IF(…)); the same whether or not the condition depends on the parameters."""
    cells = {"A1": 1.0, **DATA, **_column("=IF($A$1>0,B1:B5,0)*$A$1", False)}
    cells["D1"] = "=SUM(C1:C5)+SUM(IF($A$1>0,B1:B5,0))"
    path = _book(tmp_path / "if.xlsx", cells)
    lo = _lo(recalc, path, tmp_path)
    ours = _calc(path)
    (start,) = evaluate(path, write=False)
    for r in range(1, 6):
        assert ours[f"C{r}"] == start.values[f"m!C{r}"] == lo[f"C{r}"] == r
    assert ours["D1"] == start.objective == lo["D1"] == 30


def test_a_range_a_function_returns_is_read_by_row(tmp_path, recalc):
    """INDEX(…,0,1), OFFSET(…) and INDIRECT(…) return references: read where a value is wanted,
    at the formula's row, as a range written out is; in fit and eval as in calc."""
    cells = {"A1": 0.0, **DATA, **_column("=(INDEX($B$1:$B$5,0,1)-$A$1)^2", False)}
    cells.update({f"H{r}": float(r) for r in range(1, 6)})
    cells.update({f"E{r}": "=INDEX($H$1:$I$5,0,1)*10" for r in range(1, 6)})  # a 2-D range
    cells.update({f"F{r}": "=OFFSET($B$1,0,0,3,1)*2" for r in range(1, 6)})
    cells.update({f"G{r}": '=INDIRECT("B1:B5")*3' for r in range(1, 6)})
    cells["D1"] = "=SUM(C1:C5)"
    path = _book(tmp_path / "index.xlsx", cells)
    lo = _lo(recalc, path, tmp_path)
    ours = _calc(path)
    for r in range(1, 6):
        for col in "CEFG":
            cell = f"{col}{r}"
            assert _same(ours[cell], lo[cell]), (cell, ours[cell], lo[cell])
    assert ours["F4"] == Error("#VALUE!") and ours["G4"] == 12
    (start,) = evaluate(path, write=False)
    assert start.objective == pytest.approx(lo["D1"]) == 55
    (done,) = fit(path, epochs=50, history=False)
    assert done.params["m!A1"] == pytest.approx(3.0, abs=1e-6)


def test_every_range_parameter_is_classed():
    """A parameter the registry reads whole (r) takes a reference or an array in arguments.py:
    a function added with one is not left to intersect its ranges."""
    from excelnet.formula.functions import FUNCTIONS
    from excelnet.formula.functions.arguments import VALUE, argument_class

    unclassed = [
        (name, i)
        for name, f in FUNCTIONS.items()
        if f.args is not None and f.args.spec is not None
        for i, kind in enumerate(f.args.kinds)
        if kind == "r" and argument_class(name, i) == VALUE
    ]
    assert not unclassed


# -- relative names ------------------------------------------------------------------------------


def test_anchored_moves_relative_parts_only():
    assert anchored("m!B1", 4, 2) == "m!D5"
    assert anchored("m!$B1:$B3", 4, 2) == "m!$B5:$B7"
    assert anchored("m!B$1", 4, 2) == "m!D$1"
    assert anchored("'my sheet'!XFD1", 0, 2) == "'my sheet'!B1"  # wraps past the last column
    assert anchored('"A1"&m!A1', 1, 0) == '"A1"&m!A2'


def test_a_relative_name_reads_beside_the_cell_that_uses_it(tmp_path, recalc):
    cells = {"A1": 0.0, **{f"E{r}": float(r) for r in range(1, 6)}, **DATA}
    cells.update({f"C{r}": "=(right2-$A$1)^2+(left-$A$1)^2" for r in range(1, 6)})
    cells.update({f"H{r}": "=right2*10" for r in range(1, 6)})  # J: two columns right of H
    cells.update({f"J{r}": float(r) for r in range(1, 6)})
    cells["D1"] = "=SUM(C1:C5)"
    # Excel's relative names are stored relative to A1: in C7, m!C1 means E7 and m!XFD1
    # (one column left of A1, wrapping round) means B7, as Excel writes a name defined so
    path = _book(tmp_path / "names.xlsx", cells, {"right2": "m!C1", "left": "m!XFD1"})
    lo = _lo(recalc, path, tmp_path)
    ours = _calc(path)
    for r in range(1, 6):
        assert ours[f"H{r}"] == lo[f"H{r}"] == 10 * r  # LibreOffice does not wrap XFD round
        assert ours[f"C{r}"] == 2 * r**2
    (start,) = evaluate(path, write=False)
    assert start.objective == pytest.approx(ours["D1"]) == 110.0
    (done,) = fit(path, epochs=50, history=False)
    assert done.params["m!A1"] == pytest.approx(3.0, abs=1e-6)
    assert done.final_loss == pytest.approx(20.0, abs=1e-9)


# -- the 1904 date system ------------------------------------------------------------------------


def _date1904(path: Path) -> Path:
    """The workbook with <workbookPr date1904="1"/>, as Excel for the Mac saves it."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/workbook.xml":
                text = data.decode()
                if "<workbookPr" in text:
                    text = re.sub(r"<workbookPr\b", '<workbookPr date1904="1"', text, count=1)
                else:
                    text = re.sub(r"(<workbook\b[^>]*>)", r'\1<workbookPr date1904="1"/>', text)
                data = text.encode()
            out.writestr(info, data)
    tmp.replace(path)
    return path


DATES = {
    "B1": "=DATE(2020,1,1)",
    "B2": '=DATEVALUE("2020-01-01")',
    "B3": '=TEXT(42369,"yyyy-mm-dd")',
    "B4": "=YEAR(0)",
    "B5": "=WEEKDAY(0)",
    "B6": '="2020-01-01"+0',
    "B7": "=DATE(1903,1,1)",  # before 1904: #NUM! (LibreOffice counts back: -365)
    "B8": "=EOMONTH(DATE(2020,1,15),1)",
}


def test_the_1904_date_system_flows_from_the_file(tmp_path, recalc):
    cells = {"A1": 0.0, **DATES, "D1": "=(A1-DATE(2020,1,1))^2"}
    path = _date1904(_book(tmp_path / "mac.xlsx", cells))
    assert read_book(path).date1904
    lo = _lo(recalc, path, tmp_path)
    ours = _calc(path)
    assert ours["B1"] == 42369.0  # 43831 in the 1900 system
    assert ours["B3"] == "2020-01-01"
    assert ours["B7"] == Error("#NUM!") and lo["B7"] == -365
    for cell in DATES.keys() - {"B7"}:
        assert _same(ours[cell], lo[cell]), (cell, ours[cell], lo[cell])
    (start,) = evaluate(path, write=False)
    assert start.objective == pytest.approx(42369.0**2)
    (done,) = fit(path, epochs=50, history=False)
    assert done.params["m!A1"] == pytest.approx(42369.0, abs=1e-6)
    plain = _calc(_book(tmp_path / "pc.xlsx", cells))  # the same cells in the 1900 system
    assert plain["B1"] == 43831.0 and plain["B3"] == "2015-12-31"


# -- legacy (non-array) formulas: a range where a value is expected intersects -------------------

LEGACY = {
    "A1": 1.0,
    "A2": 2.0,
    "A3": 3.0,
    "B1": 5.0,
    "B2": 7.0,
    "B3": 11.0,
    "C2": "=ISERROR(A1:A3)",
    "C5": "=ISERROR(A1:A3)",
    "D2": "=SUM((A1:A3-B1:B3)^2)",
    "D5": "=SUM((A1:A3-B1:B3)^2)",
    "E2": "=SUMPRODUCT((A1:A3-B1:B3)^2)",
    "E5": "=SUMPRODUCT((A1:A3-B1:B3)^2)",
    "F2": "=A1:A3*2",
    "F5": "=ABS(A1:A3)",
    "G2": "=INDEX((A1:A3=2)*(B1:B3=7),2)",
    "G3": "=LOOKUP(2,1/(A1:A3>1),B1:B3)",
    "G4": "=MATCH(1,INDEX((A1:A3=3)*1,0),0)",
    "G5": '=SUM(A1:A3)+COUNTIF(A1:A3,">1")',
    "H2": "=IF(A1:A3>1,1,0)",
    "H5": "=AND(A1:A3>0)",
    "I2": "=MATCH(1,(A1:A3=2)*1,0)",
}
LEGACY_EXCEL = {  # where LibreOffice differs (docs/compatibility.md): Excel's values
    "G2": 1.0,  # Excel's INDEX computes its array argument over whole ranges; LibreOffice
    "I2": 1.0,  # intersects it. MATCH's lookup array is the other way round: in row 2 it is
    # (A2=2)*1, one value (LibreOffice: 2, the position in {0;1;0})
}


def test_legacy_formulas_intersect_where_a_value_is_expected(tmp_path, recalc):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "m"
    for ref, value in LEGACY.items():
        ws[ref] = value
    ws["J1"] = openpyxl.worksheet.formula.ArrayFormula("J1", "=SUM((A1:A3-B1:B3)^2)")
    path = tmp_path / "legacy.xlsx"
    wb.save(path)
    lo = _lo(recalc, path, tmp_path)
    ours = _calc(path)
    assert ours["C2"] is False and ours["C5"] is True  # an IS function is never an error
    assert ours["D2"] == 25.0 and ours["D5"] == Error("#VALUE!")
    assert ours["J1"] == 16 + 25 + 64  # the array formula: over whole ranges
    differ = [
        (cell, ours[cell], lo[cell])
        for cell in [*LEGACY, "J1"]
        if not isinstance(LEGACY.get(cell), float)
        and cell not in LEGACY_EXCEL
        and not _same(ours[cell], lo[cell])
    ]
    assert not differ
    for cell, excel in LEGACY_EXCEL.items():
        assert ours[cell] == excel and not _same(ours[cell], lo[cell]), cell


# -- Excel's smaller rules, in calc and in the training model ----------------------------------

SMALL = {  # cell: formula, Excel's value
    "B1": ("=0.1+0.2=0.3", True),
    "B2": ('="é"<"f"', True),
    "B3": ('="Z"<"é"', False),
    "B4": ("=0^1E+20", 0.0),
    "B5": ('=+"a"', "a"),
    "B6": ("=0.1*3<>0.3", False),
    "B7": ('="１"+1', Error("#VALUE!")),  # full-width digits are text to Excel
    "B8": ('="x"&1.2E+17', "x120000000000000000"),  # Apache POI's measurement of Excel
}
LIBREOFFICE_DIFFERS = {"B7", "B8"}  # see docs/compatibility.md


def test_smaller_rules_in_calc(tmp_path, recalc):
    path = _book(tmp_path / "small.xlsx", {ref: f for ref, (f, _) in SMALL.items()})
    ours = _calc(path)
    lo = _lo(recalc, path, tmp_path)
    for cell, (_, excel) in SMALL.items():
        assert ours[cell] == excel, cell
        if cell not in LIBREOFFICE_DIFFERS:
            assert _same(ours[cell], lo[cell]), (cell, lo[cell])


def test_smaller_rules_in_the_training_model(tmp_path):
    """A comparison on the parameters' path, to 15 significant digits: at A1 = 0.1 the IF takes
    its first branch (0.1*3 = 0.3 to Excel), whose derivative is 2*(A1-3)."""
    cells = {"A1": 0.1, "D1": '=IF(A1*3=0.3,(A1-3)^2,A1)+IF(+"é"<"f",0,1)'}
    (result,) = evaluate(_book(tmp_path / "rules.xlsx", cells), write=False)
    assert result.objective == pytest.approx(2.9**2)
    assert result.gradients["m!A1"] == pytest.approx(2 * (0.1 - 3))


# -- the same values from calc and from the training model, on every workbook --------------------


def _workbooks(folder: Path) -> list[Path]:
    import excelnet

    built = [
        line_fit(folder / "line.xlsx"),
        excelnet.build_titanic(folder / "titanic-built.xlsx"),
        _book(
            folder / "one-meaning.xlsx",
            {"A1": 0.5, **DATA, **_column("=(B:B-$A$1)^2", False), "D1": "=SUM(C1:C5)"},
        ),
        _date1904(_book(folder / "mac.xlsx", {"A1": 0.0, **DATES, "D1": "=(A1-DATE(2020,1,1))^2"})),
        _book(
            folder / "if.xlsx",
            {"A1": 1.0, **DATA, **_column("=IF($A$1>0,B1:B5,0)*$A$1", True), "D1": "=SUM(C:C)"},
        ),
        _book(
            folder / "index.xlsx",
            {"A1": 1.0, **DATA, **_column("=INDEX($A$1:$B$5,0,2)*$A$1", False), "D1": "=C5"},
        ),
        _book(
            folder / "names.xlsx",
            {"A1": 0.5, **DATA, **_column("=(left-$A$1)^2", False), "D1": "=SUM(C1:C5)"},
            {"left": "m!XFD1"},
        ),
    ]
    return sorted((ROOT / "workbooks").glob("*.xlsx")) + built


def test_calc_and_the_training_model_agree_on_every_workbook(tmp_path):
    checked = 0
    for path in _workbooks(tmp_path):
        book = read_book(path)
        calc = Calculation(book).values
        for model in compile_models(read_book(path)):
            with torch.no_grad():
                model.evaluate()
            for cell, value in model.values().items():
                if cell not in calc:
                    continue  # a parameter
                assert _same(value, calc[cell]), (path.name, cell, value, calc[cell])
                checked += 1
    assert checked > 1000
