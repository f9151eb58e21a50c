"""`excelnet build … --macros`: the .xlsm opens in LibreOffice (one per module, the oracle of
what the file holds), its VBA project is xlwings' own, every model sheet has a Train button
bound to an existing macro and an Action cell with its three choices, and the companion
module's main() trains the open workbook through the xlwings engine over UNO."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import zipfile
from pathlib import Path

import palmerpenguins
import pandas as pd
import pytest

import excelnet
from excelnet.writer import macros
from excelnet.xlsx.read import read_book
from tests.conftest import run_cli

xw = pytest.importorskip("xlwings")
from excelnet.live.uno_engine import open_book, uno_python  # noqa: E402

INSPECT = Path(__file__).with_name("lo_macros.py")
BUILDERS = {
    "titanic": excelnet.build_titanic,
    "quadratic": excelnet.build_quadratic,
    "relu": excelnet.build_relu,
    "double_relu": excelnet.build_double_relu,
}


PENGUINS = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


def _penguins(folder: Path) -> Path:
    """palmerpenguins' table, the rows with a body mass (build table's numeric target)."""
    csv = folder / "penguins.csv"
    pd.read_csv(PENGUINS).dropna(subset=["body_mass_g"]).to_csv(csv, index=False)
    return csv


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("macros")
    out = {}
    for name, build in BUILDERS.items():
        out[name] = build(folder / f"{name}.xlsm", macros=True)
    # build table with a number to predict: two metrics, so the controls sit further left
    csv = _penguins(folder)
    out["penguins"] = excelnet.build_table(
        folder / "penguins.xlsm", csv, "body_mass_g", macros=True
    )
    return out


@pytest.fixture(scope="module")
def seen(office, built) -> dict:
    """LibreOffice's view of each built workbook and of xlwings' quickstart."""
    paths = [str(macros.quickstart()), *map(str, built.values())]
    run = subprocess.run(
        [uno_python(), str(INSPECT), office, *paths], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _model_sheets(path: Path) -> list[str]:
    return [m.sheet for m in read_book(path).solver_models()]


def test_the_vba_project_is_xlwings_quickstart(built, seen):
    quickstart = seen[str(macros.quickstart())]["modules"]["VBAProject"]
    assert "Sub SampleCall()" in quickstart["Module1"]
    for path in built.values():
        with zipfile.ZipFile(path) as z, zipfile.ZipFile(macros.quickstart()) as q:
            assert z.read("xl/vbaProject.bin") == q.read("xl/vbaProject.bin")
        modules = seen[str(path)]["modules"]["VBAProject"]
        assert sorted(modules) == sorted(quickstart)  # Module1, xlwings, Dictionary, …
        assert modules["Module1"] == quickstart["Module1"]  # SampleCall, as xlwings wrote it


def test_every_model_sheet_has_a_train_button_and_an_action_cell(built, seen):
    for path in built.values():
        book = seen[str(path)]
        sheets = _model_sheets(path)
        assert sheets
        assert sorted(s for s, _, _ in book["buttons"]) == sorted(sheets)  # one on each
        for _, label, script in book["buttons"]:
            assert label == "Train"
            # vnd.sun.star.script:VBAProject.Module1.SampleCall?language=Basic&location=document
            library, module, macro = script.split(":")[1].split("?")[0].split(".")
            assert macro == macros.MACRO
            assert f"Sub {macro}()" in book["modules"][library][module]
        assert sorted(book["actions"]) == sorted(sheets)
        for kind, choices, value in book["actions"].values():
            assert kind == "LIST"
            assert choices == '"Train";"Reset";"Evaluate"'
            assert value == "Train"


def test_the_about_sheet_says_where_the_action_and_seed_cells_are(built):
    where = {}
    for name, path in built.items():
        book = read_book(path)
        about = " ".join(book.sheets["about"].values.values())
        for sheet in (m.sheet for m in book.solver_models()):
            names = book.sheets[sheet].names
            action, seed = (
                names[n].split("!")[1].replace("$", "")
                for n in ("excelnet_action", "excelnet_seed")
            )
            assert f"Action cell ({action})" in about and f"Seed, {seed})" in about, name
            where[name] = action
    assert (where["titanic"], where["quadratic"]) == ("S1", "E7")  # as docs/spreadsheet.md says


def test_the_companion_module_trains_the_open_workbook(office, built, monkeypatch):
    path = built["quadratic"]
    companion = macros.companion_path(path)
    assert companion.read_text() == macros.companion_text(path)
    spec = importlib.util.spec_from_file_location("quadratic", companion)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # it imports: xlwings, excelnet.live.xl

    book = open_book(path, connect=office, headless=True)
    try:
        book.sheets["quadratic"].activate()  # the sheet whose button was pressed
        start = book.sheets["quadratic"]["B7"].value
        book.set_mock_caller()  # what RunPython does for xw.Book.caller()
        monkeypatch.delenv("XLWINGS_LICENSE_KEY", raising=False)  # the RunPython path needs none
        outcome = module.main()
        assert book.app.impl.alerts == []  # no note, no error
        loss = book.sheets["quadratic"]["B7"].value  # LibreOffice's value, after the fit
        assert loss == pytest.approx(outcome.fit.final_loss, rel=1e-9) and loss < start
        assert book.sheets["history"]["A1"].value == "quadratic epoch"
    finally:
        del xw.Book._mock_caller
        book.close()


def test_build_macros_from_the_command_line(tmp_path):
    r = run_cli("build", "double-relu", "--macros", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "double_relu.xlsm").exists()  # a module name: SampleCall imports it
    assert (tmp_path / "double_relu.py").read_text().startswith('"""The companion module')
    again = tmp_path / "again"
    again.mkdir()
    r = run_cli("build", "double-relu", "--macros", "-o", again / "double_relu.xlsm")
    same = (tmp_path / "double_relu.xlsm").read_bytes() == (again / "double_relu.xlsm").read_bytes()
    assert r.returncode == 0 and same  # the same seed, the same bytes

    _penguins(tmp_path).rename(tmp_path / "penguins-2024.csv")
    r = run_cli(
        "build",
        "table",
        "--csv",
        "penguins-2024.csv",
        "--target",
        "body_mass_g",
        "--macros",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "penguins_2024.xlsm").exists() and (tmp_path / "penguins_2024.py").exists()
    assert {m.sheet for m in read_book(tmp_path / "penguins_2024.xlsm").solver_models()} == {
        "linear",
        "nn",
        "mmult",
    }


@pytest.mark.parametrize(
    "name, why",
    [
        ("double-relu.xlsm", "must be letters, digits and _"),
        ("json.xlsm", "would hide the Python module 'json'"),
        ("quadratic.xlsx", "an .xlsm"),
        ("edited.xlsm", "exists and is not the companion module"),
    ],
)
def test_bad_macro_workbook_names_write_nothing(tmp_path, name, why):
    (tmp_path / "edited.py").write_text("print('mine')\n")
    with pytest.raises(excelnet.ExcelnetError, match=why):
        excelnet.build_quadratic(tmp_path / name, macros=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.py"]
    assert (tmp_path / "edited.py").read_text() == "print('mine')\n"


def test_without_macros_no_vba_and_no_companion(tmp_path):
    out = excelnet.build_quadratic(tmp_path / "quadratic.xlsx")
    with zipfile.ZipFile(out) as z:
        assert "xl/vbaProject.bin" not in z.namelist()
    assert [p.name for p in tmp_path.iterdir()] == ["quadratic.xlsx"]
