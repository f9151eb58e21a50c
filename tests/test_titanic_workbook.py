"""The Titanic workbook, checked against real LibreOffice and an independent computation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

import excelnet
from excelnet.data import bundled
from tests import reference
from tests.conftest import model_params as params

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["linear", "nn", "mmult"]
FEATURES = [
    "Ones",
    "Age",
    "SibSp",
    "Parch",
    "LogFare",
    "Male",
    "Pclass_1",
    "Pclass_2",
    "Embark_S",
    "Embark_C",
]
TOL = 1e-9


def table(ws, header_row: int) -> pd.DataFrame:
    """A sheet's table below `header_row` (1-based), columns named by their headers."""
    rows = list(ws.iter_rows(min_row=header_row, values_only=True))
    header = [h for h in rows[0] if h is not None]
    body = [r[: len(header)] for r in rows[1:] if r[0] is not None]
    return pd.DataFrame(body, columns=header)


def metrics_row(ws) -> dict[str, float]:
    return {ws.cell(1, c).value: ws.cell(2, c).value for c in range(13, 17)}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The workbooks this module checks, all recalculated by LibreOffice in one start."""
    d = tmp_path_factory.mktemp("titanic")
    books = {"default": excelnet.build_titanic(d / "titanic.xlsx")}

    # The oracle really recalculates: a cached value that is wrong must come back right.
    wb = openpyxl.load_workbook(books["default"])
    wb["data"]["F2"] = None  # a passenger whose age is unknown: features follow
    wb["data"]["E2"] = "female"
    wb.save(d / "edited.xlsx")
    books["edited"] = d / "edited.xlsx"

    # Text that looks like a formula stays text.
    csv = pd.read_csv(bundled(), dtype=str, keep_default_na=False)
    csv.loc[0, "Name"], csv.loc[1, "Name"] = "=1+1", "+cmd|' /C calc'!A0"
    csv.loc[2, "Ticket"], csv.loc[3, "Cabin"] = "-2", "@SUM(1)"
    csv.to_csv(d / "tricky.csv", index=False)
    books["tricky"] = excelnet.build_titanic(d / "tricky.xlsx", csv=d / "tricky.csv", seed=7)
    return books


@pytest.fixture(scope="module")
def recalculated(built, recalc) -> dict[str, Path]:
    names = list(built)
    return dict(zip(names, recalc([built[n] for n in names]), strict=True))


@pytest.fixture(scope="module")
def lo_book(recalculated):
    return openpyxl.load_workbook(recalculated["default"], data_only=True)


@pytest.fixture(scope="module")
def our_book(built):
    return openpyxl.load_workbook(built["default"], data_only=True)


def test_features_equal_independent_computation(lo_book):
    got = table(lo_book["features"], 1)
    want = reference.features(bundled())
    assert list(got.columns[: len(FEATURES)]) == FEATURES
    assert len(got) == 891
    np.testing.assert_allclose(got[FEATURES].to_numpy(float), want.to_numpy(), rtol=0, atol=TOL)
    assert got["Valid"].sum() == round(0.2 * 891)


@pytest.mark.parametrize("model", MODELS)
def test_model_sheet_equals_independent_computation(lo_book, model):
    ws = lo_book[model]
    got = table(ws, 5)
    x = reference.features(bundled())
    want = reference.predictions(model, x, params(ws, model))
    survived = pd.read_csv(bundled())["Survived"].to_numpy(float)
    valid = table(lo_book["features"], 1)["Valid"].to_numpy(float)
    s = reference.scores(want["Prediction"], survived, valid)
    for column, values in {
        **want,
        "Squared error": s["Squared error"],
        "Correct": s["Correct"],
    }.items():
        np.testing.assert_allclose(
            got[column].to_numpy(float), values, rtol=0, atol=TOL, err_msg=f"{model}!{column}"
        )
    m = metrics_row(ws)
    for k in ("Training loss", "Validation loss", "Training accuracy", "Validation accuracy"):
        assert m[k] == pytest.approx(s[k], abs=TOL, rel=0), k


def test_nn_and_mmult_are_the_same_net(lo_book):
    assert metrics_row(lo_book["nn"]) == pytest.approx(metrics_row(lo_book["mmult"]), abs=TOL)


def test_every_formula_cell_caches_libreoffices_value(built, our_book, lo_book):
    formulas = openpyxl.load_workbook(built["default"])
    checked = 0
    for ws in formulas.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                is_formula = cell.data_type == "f" or isinstance(
                    cell.value, openpyxl.worksheet.formula.ArrayFormula
                )
                ours = our_book[ws.title][cell.coordinate].value
                theirs = lo_book[ws.title][cell.coordinate].value
                if is_formula:
                    assert ours is not None, f"{ws.title}!{cell.coordinate} has no cached value"
                    checked += 1
                if isinstance(theirs, (int, float)):
                    assert ours == pytest.approx(theirs, abs=TOL, rel=TOL), (
                        f"{ws.title}!{cell.coordinate}"
                    )
                else:
                    assert ours == theirs, f"{ws.title}!{cell.coordinate}"
    assert checked > 891 * 30  # features, and every model column of every passenger


def test_libreoffice_recalculates_edited_data(recalculated):
    """Pasting over a passenger updates its features: the oracle recalculates, it does not
    echo the cached values (which still say Age 22, male)."""
    ws = openpyxl.load_workbook(recalculated["edited"], data_only=True)["features"]
    assert ws["B2"].value == pytest.approx(24 / 80)  # missing age -> mode / max
    assert ws["F2"].value == 0  # Male


def test_text_stays_text(built, recalculated):
    for path in (built["tricky"], recalculated["tricky"]):
        ws = openpyxl.load_workbook(path)["data"]
        assert ws["D2"].value == "=1+1" and ws["D2"].data_type == "s"
        assert ws["D3"].value == "+cmd|' /C calc'!A0" and ws["D3"].data_type == "s"
        assert ws["I4"].value == "-2" and ws["I4"].data_type == "s"
        assert ws["K5"].value == "@SUM(1)" and ws["K5"].data_type == "s"


def test_structure_names_and_solver_models(built):
    wb = openpyxl.load_workbook(built["default"])
    assert wb.sheetnames == ["about", "data", "features", "linear", "nn", "mmult"]
    assert [c.value for c in wb["data"][1]] == [
        "PassengerId",
        "Survived",
        "Pclass",
        "Name",
        "Sex",
        "Age",
        "SibSp",
        "Parch",
        "Ticket",
        "Fare",
        "Cabin",
        "Embarked",
    ]
    assert [c.value for c in wb["features"][1]][:11] == [*FEATURES, "Valid"]
    expected_params = {"linear": "$B$2:$K$2", "nn": "$B$2:$K$3", "mmult": "$M$6:$N$15"}
    for model in MODELS:
        ws = wb[model]
        local = ws.defined_names
        assert local["solver_opt"].attr_text == f"{model}!$M$2"
        assert local["solver_adj"].attr_text == f"{model}!{expected_params[model]}"
        assert local["solver_typ"].attr_text == "2"
        assert wb.defined_names[f"{model}_loss"].attr_text == f"{model}!$M$2"
        assert wb.defined_names[f"{model}_params"].attr_text == f"{model}!{expected_params[model]}"
        assert ws.freeze_panes == "A6"
        assert ws["M1"].value == "Training loss"
    assert wb["nn"]["D6"].value == "=MAX(0,SUMPRODUCT(features!A2:J2,$B$2:$K$2))"
    mm = wb["mmult"]["D6"].value
    assert isinstance(mm, openpyxl.worksheet.formula.ArrayFormula)
    assert mm.ref == "D6:E896" and mm.text == "=MMULT(features!$A$2:$J$892,$M$6:$N$15)"


def test_parameters_are_seeded_uniform(built, tmp_path):
    ws = openpyxl.load_workbook(built["default"], data_only=True)
    for model in MODELS:
        p = params(ws[model], model)
        assert np.all(np.abs(p) < 0.5) and p.std() > 0.1
    np.testing.assert_array_equal(params(ws["nn"], "nn").T, params(ws["mmult"], "mmult"))
    other = openpyxl.load_workbook(
        excelnet.build_titanic(tmp_path / "s1.xlsx", seed=1), data_only=True
    )
    assert not np.array_equal(params(other["nn"], "nn"), params(ws["nn"], "nn"))


def test_same_input_and_seed_give_identical_bytes(built, tmp_path):
    again = excelnet.build_titanic(tmp_path / "again.xlsx")
    assert again.read_bytes() == built["default"].read_bytes()


def test_committed_workbook_is_up_to_date(built):
    committed = ROOT / "workbooks" / "titanic.xlsx"
    assert committed.read_bytes() == built["default"].read_bytes(), (
        "workbooks/titanic.xlsx is out of date: run `excelnet build titanic -o "
        "workbooks/titanic.xlsx`"
    )


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "excelnet", *args], cwd=cwd, capture_output=True, text=True
    )


def test_cli_build_default_name(tmp_path):
    run = cli("build", "titanic", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "titanic.xlsx").read_bytes() == excelnet.build_titanic(
        tmp_path / "api.xlsx"
    ).read_bytes()


BAD_CSV = {
    "empty": (b"", "the file is empty"),
    "binary": (b"PK\x03\x04\x00\xff\xfe\x00garbage", "not a CSV file"),
    "no_column": (b"PassengerId,Survived\n1,0\n", "missing column(s) Pclass"),
    "age_text": (None, "line 3, column Age: 'old' is not a number"),
    "fare_text": (None, "line 2, column Fare: 'free' is not a number"),
    "sibsp_text": (None, "line 4, column SibSp: 'x' is not a number"),
    "parch_empty": (None, "line 2, column Parch: value is missing"),
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_bad_csv_one_line_exit_2_nothing_written(tmp_path, case):
    content, message = BAD_CSV[case]
    if content is None:
        df = pd.read_csv(bundled(), dtype=str, keep_default_na=False)
        column, row, value = {
            "age_text": ("Age", 1, "old"),
            "fare_text": ("Fare", 0, "free"),
            "sibsp_text": ("SibSp", 2, "x"),
            "parch_empty": ("Parch", 0, ""),
        }[case]
        df.loc[row, column] = value
        content = df.to_csv(index=False).encode()
    (tmp_path / "in.csv").write_bytes(content)
    out = tmp_path / "out.xlsx"
    out.write_bytes(b"the user's old file")
    # --force: the user's file is kept whenever the input is refused, even when forced
    run = cli("build", "titanic", "--csv", "in.csv", "-o", "out.xlsx", "--force", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stdout == "" and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "in.csv" in run.stderr and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert out.read_bytes() == b"the user's old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.xlsx"]


def test_unknown_workbook_and_bad_flags(tmp_path):
    for args in (["build", "pizza"], ["build", "titanic", "--seed", "x"], ["frobnicate"]):
        run = cli(*args, cwd=tmp_path)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder(tmp_path):
    run = cli("build", "titanic", "-o", "no/such/dir/t.xlsx", cwd=tmp_path)
    assert run.returncode == 2 and "does not exist" in run.stderr


def test_resampled_passengers_keep_the_same_formulas(tmp_path):
    from excelnet.fitting.pipeline import evaluate

    book = excelnet.build_titanic(tmp_path / "big.xlsx", passengers=2000, seed=3)
    wb = openpyxl.load_workbook(book)
    assert wb["data"].max_row == 2001 and wb["nn"].max_row == 2005
    assert wb["nn"]["M2"].value == "=SUMIF($C$6:$C$2005,0,$G$6:$G$2005)/COUNTIF($C$6:$C$2005,0)"
    cached = openpyxl.load_workbook(book, data_only=True)
    for ev in evaluate(book, write=False):
        assert ev.objective == pytest.approx(cached[ev.sheet]["M2"].value, rel=1e-12)
    run = cli("build", "titanic", "--passengers", "0", "-o", "x.xlsx", cwd=tmp_path)
    assert run.returncode == 2 and "passengers must be from 1 to 1,048,571" in run.stderr
