"""Workbooks as people edit them: excelnet's own lesson workbooks changed the way a user would,
each of which excelnet once refused. Each now trains, and LibreOffice's recalculation of the
saved file gives the loss excelnet reported."""

from __future__ import annotations

import shutil

import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName

import excelnet
from excelnet.fitting.pipeline import fit


def _scoped(ws, name: str, text: str) -> None:
    ws.defined_names[name] = DefinedName(name, attr_text=text)


def named_weights(path) -> None:
    """The mmult sheet's weight block named W (a name Excel reads as a name, not a column)."""
    wb = openpyxl.load_workbook(path)
    wb.defined_names["W"] = DefinedName("W", attr_text="mmult!$M$6:$N$15")
    ws = wb["mmult"]
    formula = ws["D6"].value
    n = formula.ref.split(":")[1][1:]  # D6:E{n}
    ws["D6"] = openpyxl.worksheet.formula.ArrayFormula(
        formula.ref, f"=MMULT(features!A2:J{int(n) - 4},W)"
    )
    for name in ("linear", "nn"):  # keep one model: the one under test
        del wb[name]
    wb.save(path)


def named_coefficients(path) -> None:
    """The quadratic's a, b, c as names, two of them one letter long, and c_ (c is reserved)."""
    wb = openpyxl.load_workbook(path)
    for name, cell in (("a", "$B$2"), ("b", "$B$3"), ("c_", "$B$4")):
        wb.defined_names[name] = DefinedName(name, attr_text=f"quadratic!{cell}")
    ws = wb["quadratic"]
    for r in range(11, 31):
        ws[f"C{r}"] = f"=a*A{r}^2+b*A{r}+c_"
    wb.save(path)


def libreoffice_union(path) -> None:
    """solver_adj as LibreOffice writes a union of ranges: with ~ between them."""
    wb = openpyxl.load_workbook(path)
    ws = wb["nn"]
    _scoped(ws, "solver_adj", "nn!$B$2:$K$2~nn!$B$3:$K$3")
    for name in ("linear", "mmult"):
        del wb[name]
    wb.save(path)


def averageif_loss(path) -> None:
    """The nn sheet's loss as AVERAGEIF over the training rows."""
    wb = openpyxl.load_workbook(path)
    ws = wb["nn"]
    last = ws.max_row
    ws["M2"] = f"=AVERAGEIF($C$6:$C${last},0,$G$6:$G${last})"
    for name in ("linear", "mmult"):
        del wb[name]
    wb.save(path)


def mod_split(path) -> None:
    """The validation split as a formula of the row number, not constants."""
    wb = openpyxl.load_workbook(path)
    ws = wb["features"]
    for r in range(2, ws.max_row + 1):
        if ws[f"K{r}"].value is not None:
            ws[f"K{r}"] = "=IF(MOD(ROW(),5)=0,1,0)"
    for name in ("linear", "mmult"):
        del wb[name]
    wb.save(path)


CASES = {
    "named weights W": ("titanic", named_weights, "mmult", "M2"),
    "names a, b, c_": ("quadratic", named_coefficients, "quadratic", "B7"),
    "LibreOffice's ~ union": ("titanic", libreoffice_union, "nn", "M2"),
    "AVERAGEIF loss": ("titanic", averageif_loss, "nn", "M2"),
    "MOD validation split": ("titanic", mod_split, "nn", "M2"),
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, titanic_book, recalc):
    folder = tmp_path_factory.mktemp("typed")
    quadratic = excelnet.build_quadratic(folder / "quadratic-source.xlsx")
    out = {}
    for label, (source, edit, sheet, cell) in CASES.items():
        path = folder / f"{label.split()[0]}-{len(out)}.xlsx"
        shutil.copy(titanic_book if source == "titanic" else quadratic, path)
        edit(path)
        (result,) = fit(path, sheet=sheet, epochs=50, lr=0.05)
        out[label] = (path, result, cell)
    lo = dict(zip(out, recalc([p for p, _, _ in out.values()]), strict=True))
    return {k: (*v, lo[k]) for k, v in out.items()}


@pytest.mark.parametrize("label", list(CASES))
def test_typed_workbook_trains_and_libreoffice_agrees(fitted, label):
    path, result, cell, lo = fitted[label]
    assert result.final_loss < result.initial_loss
    wb = openpyxl.load_workbook(lo, data_only=True)
    assert wb[result.sheet][cell].value == pytest.approx(result.final_loss, rel=1e-9)
