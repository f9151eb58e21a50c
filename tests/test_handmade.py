"""Workbooks excelnet did not build: another writer, another layout, hand-set Solver names;
and every kind of bad input, refused in one line with the file untouched."""

from __future__ import annotations

import json
import shutil

import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName

from tests.conftest import run_cli
from tests.handmade import least_squares, line_fit, solver_names


def test_handmade_workbook_fits(tmp_path, recalc):
    book = line_fit(tmp_path / "line.xlsx")
    out = tmp_path / "fitted.xlsx"
    run = run_cli("fit", book, "--lr", "0.5", "--epochs", "3000", "--out", out, "--json")
    assert run.returncode == 0, run.stderr
    (r,) = json.loads(run.stdout)["fits"]
    assert r["sheet"] == "Model" and r["parameters"] == 2
    slope, intercept = least_squares(book)
    fitted = openpyxl.load_workbook(out, data_only=True)["Model"]
    assert fitted["C3"].value == pytest.approx(slope, abs=1e-4)
    assert fitted["C4"].value == pytest.approx(intercept, abs=1e-4)
    (lo,) = recalc([out])
    lo_model = openpyxl.load_workbook(lo, data_only=True)["Model"]
    assert lo_model["C7"].value == pytest.approx(r["final_loss"], rel=1e-9)
    assert lo_model["C8"].value == pytest.approx(fitted["C8"].value, rel=1e-9)
    assert openpyxl.load_workbook(book)["Model"]["C3"].value == 0.5  # --out left it alone


def _broken(tmp_path, case: str):
    """A bad variant of the line-fit workbook, and the words its error must contain."""
    path = tmp_path / "bad.xlsx"
    if case == "corrupt":
        line_fit(path)
        path.write_bytes(path.read_bytes()[:2000])
        return path, "bad.xlsx"
    if case == "encrypted":
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
        return path, "encrypted"
    if case == "not_xlsx":
        path.write_text("PassengerId,Survived\n1,0\n")
        return path, "not a readable .xlsx"
    line_fit(path)
    wb = openpyxl.load_workbook(path)
    ws, names = wb["Model"], wb["Model"].defined_names
    expect = {
        "no_solver": "no sheet carries a Solver model",
        "missing_adj": "missing the name solver_adj",
        "broken_adj": "solver_adj is",
        "range_objective": "solver_opt must name one cell",
        "bad_goal": "solver_typ is '4', not 1, 2, 3",
        "formula_param": "Model, cell C3: adjustable cell holds a formula",
        "text_param": "Model, cell C4: adjustable cell holds 'abc'",
        "no_dependence": "does not depend on the adjustable cells",
        "circular": "circular reference",
        "text_input": "#VALUE!",
        "error_input": "inputs, cell B9: input holds #N/A",
        "div0": "#DIV/0!",
        "unsupported": "Model, cell C7: function FORECAST.ETS is not supported",
        "unknown_sheet": "no sheet named 'Nope'",
    }[case]
    if case == "no_solver":
        for k in list(names):
            del names[k]
    elif case == "missing_adj":
        del names["solver_adj"]
    elif case == "broken_adj":
        names["solver_adj"] = DefinedName("solver_adj", attr_text='"hello"', localSheetId=1)
    elif case == "range_objective":
        solver_names(wb, "Model", "Model!$C$7:$C$8", "Model!$C$3:$C$4")
    elif case == "bad_goal":
        solver_names(wb, "Model", "Model!$C$7", "Model!$C$3:$C$4", typ="4")
    elif case == "formula_param":
        ws["C3"] = "=1+1"
    elif case == "text_param":
        ws["C4"] = "abc"
    elif case == "no_dependence":
        ws["C7"] = "=SUM(inputs!B2:B21)"
    elif case == "circular":
        ws["E5"] = "=$C$3*inputs!A5+$C$4+C7"
    elif case == "text_input":
        wb["inputs"]["A6"] = "twelve"
    elif case == "error_input":
        wb["inputs"]["B9"] = "#N/A"
        wb["inputs"]["B9"].data_type = "e"
    elif case == "div0":
        ws["C7"] = "=SUMXMY2(E2:E21,inputs!B2:B21)/(C3-C3)"
    elif case == "unsupported":
        ws["C7"] = "=_xlfn.FORECAST.ETS(6,{1;2;3;4;5},{1;2;3;4;5})+C3"
    wb.save(path)
    return path, expect


CASES = [
    "corrupt",
    "encrypted",
    "not_xlsx",
    "no_solver",
    "missing_adj",
    "broken_adj",
    "range_objective",
    "bad_goal",
    "formula_param",
    "text_param",
    "no_dependence",
    "circular",
    "text_input",
    "error_input",
    "div0",
    "unsupported",
    "unknown_sheet",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["fit", "eval"])
def test_bad_workbook_one_line_exit_2_untouched(tmp_path, case, command):
    path, expect = _broken(tmp_path, case)
    before = path.read_bytes()
    args = [command, path] + (["--sheet", "Nope"] if case == "unknown_sheet" else [])
    run = run_cli(*args)
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert expect in lines[0] and "bad.xlsx" in lines[0], lines[0]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xlsx"]


def test_copy_does_not_touch_the_original(tmp_path):
    book = line_fit(tmp_path / "a.xlsx")
    before = book.read_bytes()
    run = run_cli("fit", book, "--out", tmp_path / "b.xlsx", "--epochs", "5", "--lr", "0.5")
    assert run.returncode == 0, run.stderr
    assert book.read_bytes() == before
    shutil.rmtree(tmp_path)


def test_output_names_keep_the_file_type(tmp_path):
    book = line_fit(tmp_path / "a.xlsx")
    run = run_cli("fit", book, "--out", tmp_path / "b.xlsm")
    assert run.returncode == 2 and "must keep its extension (.xlsx)" in run.stderr
    run = run_cli("build", "quadratic", "-o", tmp_path / "q.xlsm")
    assert run.returncode == 2 and "name the output *.xlsx" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xlsx"]
