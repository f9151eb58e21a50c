"""excelnet predict on Kaggle's test.csv after a fit: an independent computation with the fitted
weights and the training statistics, and LibreOffice's recalculation of the --workbook copy."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from openpyxl.worksheet.formula import ArrayFormula

import excelnet
from excelnet.data import bundled
from tests import handmade, reference
from tests.conftest import cli, model_params, run_cli

MODELS = ["linear", "nn", "mmult"]
TOL = 1e-9
TEST_CSV = bundled("test.csv")


def fitted_params(path: Path, model: str) -> np.ndarray:
    return model_params(openpyxl.load_workbook(path, data_only=True)[model], model)


def sheet_table(path: Path, sheet: str = "predictions") -> pd.DataFrame:
    """A sheet's header row and the rows below, as values (duplicate headers get .1)."""
    return pd.read_excel(path, sheet_name=sheet, engine="openpyxl")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, titanic_book, recalc):
    """A fitted Titanic workbook; each model sheet's predictions for test.csv (CSV and a
    --workbook copy); an edited test.csv with unseen and missing values; all the copies
    recalculated by LibreOffice in one start."""
    d = tmp_path_factory.mktemp("predict")
    book = d / "fitted.xlsx"
    shutil.copy(titanic_book, book)
    excelnet.fit(book, epochs=100, history=False)
    out = {"book": book, "dir": d}
    for m in MODELS:
        out[m] = excelnet.predict(book, m, TEST_CSV, d / f"{m}.csv", d / f"{m}.xlsx")
    out["kaggle"] = excelnet.predict(book, "nn", TEST_CSV, d / "submission.csv", kaggle=True)
    odd = pd.read_csv(TEST_CSV, dtype=str, keep_default_na=False).head(6)
    odd.loc[0, "Embarked"] = "X"  # a port no training passenger used
    odd.loc[1, "Sex"] = "unknown"
    odd.loc[2, ["Age", "Fare", "Embarked"]] = ""  # missing: the training modes
    odd.loc[3, "Name"] = "=1+1"  # text stays text
    odd = odd.drop(columns=["Ticket", "Cabin"])  # columns the model does not read
    odd.to_csv(d / "odd.csv", index=False)
    out["odd"] = excelnet.predict(book, "nn", d / "odd.csv", workbook=d / "odd.xlsx")
    out["odd_csv"] = d / "odd.csv"
    # a workbook typed by hand in its own layout: data on one sheet, the model on another
    hand = handmade.line_fit(d / "hand_book.xlsx")
    pd.DataFrame({"x": [0.25, -1.0, 10.0], "note": ["a", "b", "c"]}).to_csv(
        d / "x.csv", index=False
    )
    out["hand"] = excelnet.predict(
        hand, "Model", d / "x.csv", workbook=d / "hand.xlsx", column="prediction"
    )
    # data and model on one sheet, with other formulas beside them
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "one"
    ws.append(["x", "y", "Prediction", "sq", None, "loss"])
    for i in range(10):
        ws.append([i / 10, 2 * i / 10 + 1, f"=$G$2*A{i + 2}+$G$3", f"=(C{i + 2}-B{i + 2})^2"])
    ws["F2"], ws["G2"], ws["G3"] = "=SUM(D2:D11)", 1.5, 0.5
    handmade.solver_names(wb, "one", "one!$F$2", "one!$G$2:$G$3")
    wb.save(d / "one_book.xlsx")
    out["one"] = excelnet.predict(d / "one_book.xlsx", "one", d / "x.csv", workbook=d / "one.xlsx")
    names = [*MODELS, "odd", "hand", "one"]
    out["lo"] = dict(zip(names, recalc([d / f"{n}.xlsx" for n in names]), strict=True))
    return out


@pytest.mark.parametrize("model", MODELS)
def test_predictions_equal_independent_computation(runs, model):
    x = reference.features(TEST_CSV, train=bundled())
    want = reference.predictions(model, x, fitted_params(runs["book"], model))["Prediction"]
    got = runs[model]["Prediction"].to_numpy(float)
    assert len(got) == 418
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    written = pd.read_csv(runs["dir"] / f"{model}.csv")
    np.testing.assert_array_equal(written["Prediction"].to_numpy(), got)  # repr: exact
    assert list(written.columns) == [*pd.read_csv(TEST_CSV).columns, "Prediction"]


def test_kaggle_submission(runs):
    sub = pd.read_csv(runs["dir"] / "submission.csv")
    assert list(sub.columns) == ["PassengerId", "Survived"] and len(sub) == 418
    assert sub["PassengerId"].tolist() == pd.read_csv(TEST_CSV)["PassengerId"].tolist()
    assert sub["Survived"].tolist() == (runs["nn"]["Prediction"] > 0.5).astype(int).tolist()
    assert (runs["dir"] / "submission.csv").read_text().startswith("PassengerId,Survived\n892,")


@pytest.mark.parametrize("model", MODELS)
def test_libreoffice_recalculates_the_same_predictions(runs, model):
    ours, lo = runs["dir"] / f"{model}.xlsx", runs["lo"][model]
    got = sheet_table(lo)["Prediction"].to_numpy(float)
    np.testing.assert_allclose(got, runs[model]["Prediction"].to_numpy(float), rtol=0, atol=TOL)
    cached, theirs = (
        openpyxl.load_workbook(p, data_only=True, read_only=True)["predictions"] for p in (ours, lo)
    )
    n = 0
    for a_row, b_row in zip(
        cached.iter_rows(values_only=True), theirs.iter_rows(values_only=True), strict=True
    ):
        for a, b in zip(a_row, b_row, strict=True):
            if isinstance(b, (int, float)):
                assert a == pytest.approx(b, abs=TOL, rel=0)
                n += 1
            else:
                assert a == b
    assert n >= 418 * 16  # data numbers, features, units, prediction


def test_predictions_sheet_is_live_formulas(runs):
    ws = openpyxl.load_workbook(runs["dir"] / "nn.xlsx")["predictions"]
    header = [c.value for c in ws[1]]
    assert header[:12] == list(pd.read_csv(bundled()).columns)  # the data sheet's headers
    assert header[-3:] == ["Unit 1", "Unit 2", "Prediction"]
    row = {h: c.value for h, c in zip(header, ws[2], strict=True)}
    assert row["Prediction"] == "=W2+X2"
    assert ws["W2"].value == "=MAX(0,SUMPRODUCT(M2:V2,nn!$B$2:$K$2))"  # the fitted weights
    assert ws["N2"].value == "=IF(ISBLANK(F2),age_mode,F2)/age_max"  # the training statistics
    mm = openpyxl.load_workbook(runs["dir"] / "mmult.xlsx")["predictions"]
    array = next(c.value for c in mm[2] if isinstance(c.value, ArrayFormula))
    assert array.text == "=MMULT($M$2:$V$419,mmult!$M$6:$N$15)"


def test_copy_keeps_every_other_part_of_the_workbook(runs):
    with zipfile.ZipFile(runs["book"]) as a, zipfile.ZipFile(runs["dir"] / "nn.xlsx") as b:
        changed = {"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml"}
        for name in a.namelist():
            if name not in changed:
                assert a.read(name) == b.read(name), name
        assert set(b.namelist()) - set(a.namelist()) == {"xl/worksheets/sheet7.xml"}


def test_unseen_and_missing_values(runs):
    odd = runs["odd"]
    lo = sheet_table(runs["lo"]["odd"])
    np.testing.assert_allclose(lo["Prediction"], odd["Prediction"], rtol=0, atol=TOL)
    assert lo.loc[0, ["Embark_S", "Embark_C"]].tolist() == [0, 0]  # a port never seen
    assert lo.loc[1, "Male"] == 0
    train = pd.read_csv(bundled())
    assert lo.loc[2, "Age.1"] == pytest.approx(24 / 80)  # training mode ÷ training max
    assert lo.loc[2, "Embark_S"] == 1  # the most common training port
    assert lo.loc[2, "LogFare"] == pytest.approx(
        np.log10(8.05 + 1) / np.log10(train["Fare"].max() + 1), abs=TOL
    )
    assert lo.loc[3, "Name"] == "=1+1"
    x = reference.features(runs["odd_csv"], train=bundled())
    want = reference.predictions("nn", x, fitted_params(runs["book"], "nn"))["Prediction"]
    np.testing.assert_allclose(odd["Prediction"], want, rtol=0, atol=TOL)


def test_a_hand_made_workbook(runs):
    """slope·x + intercept with the workbook's parameters (0.5 and 0), in its own layout."""
    want = [0.125, -0.5, 5.0]
    np.testing.assert_allclose(runs["hand"]["prediction"], want, rtol=0, atol=TOL)
    lo = sheet_table(runs["lo"]["hand"])
    assert list(lo.columns) == ["x", "y", "prediction"]
    np.testing.assert_allclose(lo["prediction"], want, rtol=0, atol=TOL)
    ws = openpyxl.load_workbook(runs["dir"] / "hand.xlsx")["predictions"]
    assert ws["C2"].value == "=Model!$C$3*A2+Model!$C$4"


def test_data_and_model_on_one_sheet(runs):
    want = [1.5 * 0.25 + 0.5, -1.5 + 0.5, 15.5]
    np.testing.assert_allclose(runs["one"]["Prediction"], want, rtol=0, atol=TOL)
    lo = sheet_table(runs["lo"]["one"])
    assert list(lo.columns) == ["x", "y", "Prediction"]  # not sq or loss: not per-row data
    np.testing.assert_allclose(lo["Prediction"], want, rtol=0, atol=TOL)


def test_fit_refreshes_the_predictions_sheet(runs, tmp_path):
    """The predictions sheet depends on the parameters: fitting the copy again updates it."""
    copy = tmp_path / "again.xlsx"
    shutil.copy(runs["dir"] / "nn.xlsx", copy)
    excelnet.fit(copy, sheet="nn", epochs=50, history=False)
    cached = sheet_table(copy)["Prediction"].to_numpy(float)
    fresh = excelnet.predict(copy, "nn", TEST_CSV)["Prediction"].to_numpy(float)
    assert not np.allclose(cached, runs["nn"]["Prediction"].to_numpy(float))
    np.testing.assert_allclose(cached, fresh, rtol=0, atol=TOL)


def bad(capsys, tmp_path: Path, book: Path, csv_text: str | None, *extra: str):
    csv = tmp_path / "new.csv"
    if csv_text is not None:
        csv.write_text(csv_text)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli(
        capsys,
        "predict",
        book,
        "--sheet",
        "nn",
        "--csv",
        csv,
        "-o",
        tmp_path / "p.csv",
        "--workbook",
        tmp_path / "w.xlsx",
        *extra,
    )
    assert code == 2, err
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return err


def test_bad_input_one_line_exit_2_nothing_written(runs, tmp_path, capsys):
    book = runs["book"]
    stamp = book.read_bytes()
    text = TEST_CSV.read_text()
    no_age = pd.read_csv(TEST_CSV).drop(columns=["Age", "Fare"]).rename(columns={"Sex": "Gender"})
    err = bad(capsys, tmp_path, book, no_age.to_csv(index=False))
    assert "new.csv: line 1: missing column(s) Age, Fare, Sex" in err and "Gender" in err
    lines = text.splitlines()
    lines[3] = lines[3].replace(",62,", ",old,")
    err = bad(capsys, tmp_path, book, "\n".join(lines) + "\n")
    assert "new.csv: line 4, column Age: 'old' is not a number" in err
    assert "new.csv: the file is empty" in bad(capsys, tmp_path, book, "")
    assert "no data rows after the header" in bad(capsys, tmp_path, book, lines[0] + "\n")
    assert "no such file" in bad(capsys, tmp_path, tmp_path / "missing.xlsx", text)
    err = bad(capsys, tmp_path, book, text, "--column", "Guess")
    assert "sheet nn: no column headed 'Guess'" in err
    # --workbook must be a copy; a workbook that already has a predictions sheet is refused
    code, _, err = cli(
        capsys, "predict", book, "--sheet", "nn", "--csv", TEST_CSV, "--workbook", book
    )
    assert code == 2 and "writes a copy" in err
    code, _, err = cli(
        capsys,
        "predict",
        runs["dir"] / "nn.xlsx",
        "--sheet",
        "nn",
        "--csv",
        TEST_CSV,
        "-o",
        tmp_path / "p.csv",
        "--workbook",
        tmp_path / "w.xlsx",
    )
    assert code == 2 and "already has a sheet named 'predictions'" in err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "w.xlsx").exists()
    assert book.read_bytes() == stamp


def test_cli_default_outputs(runs, tmp_path):
    run = run_cli(
        "predict", runs["book"], "--sheet", "linear", "--csv", TEST_CSV, "--kaggle", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "wrote submission.csv (418 rows)\n"
    sub = pd.read_csv(tmp_path / "submission.csv")
    assert sub["Survived"].tolist() == (runs["linear"]["Prediction"] > 0.5).astype(int).tolist()
