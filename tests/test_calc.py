"""excelnet calc and check on workbooks written without cached values, and what fit does with a
cell it does not recompute (an unknown function where the parameters do not reach): the value
the file stores, with a warning; without one, one line saying how to get it. A volatile one
(RAND) is recomputed, drawn afresh at every evaluation as Solver's are (tests/test_volatile.py)."""

from __future__ import annotations

import shutil
import zipfile

import openpyxl
import pytest

from excelnet.xlsx.writeback import write_values
from tests.conftest import run_cli
from tests.handmade import line_fit


def test_calc_stores_what_libreoffice_computes(tmp_path, recalc):
    book = line_fit(tmp_path / "script.xlsx")  # openpyxl stores no values with formulas
    assert openpyxl.load_workbook(book, data_only=True)["Model"]["C7"].value is None
    before = zipfile.ZipFile(book)
    run = run_cli("calc", book)
    assert run.returncode == 0, run.stderr
    (lo,) = recalc([line_fit(tmp_path / "again.xlsx")])
    ours = openpyxl.load_workbook(book, data_only=True)["Model"]
    theirs = openpyxl.load_workbook(lo, data_only=True)["Model"]
    for cell in ("C7", "C8", "E2", "E21"):
        assert ours[cell].value == pytest.approx(theirs[cell].value, rel=1e-12), cell
    after = zipfile.ZipFile(book)
    for name in before.namelist():  # only the sheets with formulas changed
        if not name.startswith("xl/worksheets/"):
            assert after.read(name) == before.read(name), name


def test_check_exit_codes(tmp_path, titanic_book):
    book = shutil.copy(titanic_book, tmp_path / "t.xlsx")
    assert run_cli("check", book).returncode == 0
    write_values(book, {"nn": {(5, 5): 99.0}})  # a wrong value stored with nn!F6
    run = run_cli("check", book)
    assert run.returncode == 1 and "nn!F6" in run.stdout and "99.0" in run.stdout
    (tmp_path / "notes.xlsx").write_text("not a workbook")
    run = run_cli("check", tmp_path / "notes.xlsx")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def data_through(tmp_path_factory, recalc):
    """Line fits whose data pass through VDB (Excel has it, excelnet does not) and RAND: as a
    script writes them (no stored values), and as LibreOffice saves them (stored values)."""
    folder = tmp_path_factory.mktemp("unknown")
    y = openpyxl.load_workbook(line_fit(folder / "plain.xlsx"))["inputs"]["B2"].value
    edits = {
        "inputs__B2": f"=VDB(2400,300,10,0,1)/480*{y!r}",  # VDB(…) is 480
        "inputs__B3": "=RAND()*0+1",
    }
    script = line_fit(folder / "script.xlsx", **edits)
    (saved,) = recalc([line_fit(folder / "saved.xlsx", **edits)])
    return script, shutil.copy(saved, folder / "saved-by-libreoffice.xlsx")


def test_a_stored_value_stands_in_with_a_warning(data_through, tmp_path):
    _, saved = data_through
    book = shutil.copy(saved, tmp_path / "fit.xlsx")
    run = run_cli("fit", book, "--no-history", "--json")
    assert run.returncode == 0, run.stderr
    warning = [line for line in run.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1
    assert "inputs!B2 (VDB)" in warning[0] and "B3" not in warning[0]  # RAND: drawn, not kept


def test_without_a_stored_value_one_line_says_how_to_get_one(data_through, tmp_path):
    script, _ = data_through
    book = shutil.copy(script, tmp_path / "fit.xlsx")
    before = book.read_bytes()
    run = run_cli("fit", book)
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert "inputs" in line and "B2" in line and "VDB" in line and "excelnet calc" in line
    assert book.read_bytes() == before
