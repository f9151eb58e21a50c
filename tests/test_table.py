"""excelnet build table on real tables that packages ship (palmerpenguins; scikit-learn's
diabetes and breast-cancer data), checked against LibreOffice and a hand computation of the
documented rules; and Kaggle's train.csv through it gives the lesson's features and loss."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import openpyxl
import palmerpenguins
import pandas as pd
import pytest
from sklearn import datasets

import excelnet
from excelnet.data import bundled
from excelnet.fitting.pipeline import evaluate
from excelnet.xlsx.writeback import write_values
from tests import reference
from tests.conftest import run_cli

TOL = 1e-9
PENGUINS = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


def _sklearn(loader, path: Path, **kw) -> Path:
    loader(as_frame=True, **kw).frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """name -> (CSV, build_table arguments)."""
    d = tmp_path_factory.mktemp("tables")
    penguins = pd.read_csv(PENGUINS)
    penguins.dropna(subset=["body_mass_g"]).to_csv(d / "penguins.csv", index=False)
    penguins.dropna(subset=["sex"]).to_csv(d / "penguins_sex.csv", index=False)
    return {
        # text categories, NA markers, a 3-valued year; a number to predict
        "penguins": (d / "penguins.csv", {"target": "body_mass_g"}),
        # a two-valued text target
        "penguins_sex": (d / "penguins_sex.csv", {"target": "sex", "drop": ["year"]}),
        "diabetes": (
            _sklearn(datasets.load_diabetes, d / "diabetes.csv", scaled=False),
            {"target": "target"},
        ),
        "cancer": (_sklearn(datasets.load_breast_cancer, d / "cancer.csv"), {"target": "target"}),
        "titanic": (bundled(), {"target": "Survived", "id": "PassengerId"}),
    }


@pytest.fixture(scope="module")
def built(tables, tmp_path_factory, recalc) -> dict[str, tuple[Path, Path]]:
    """name -> (the built workbook, LibreOffice's recalculation of it)."""
    d = tmp_path_factory.mktemp("built")
    books = {n: excelnet.build_table(d / f"{n}.xlsx", csv, **kw) for n, (csv, kw) in tables.items()}
    lo = recalc(list(books.values()))
    return {n: (books[n], p) for n, p in zip(books, lo, strict=True)}


NAMES = ["penguins", "penguins_sex", "diabetes", "cancer", "titanic"]


@pytest.mark.parametrize("name", NAMES)
def test_libreoffice_recalculation_equals_cached_values(built, name):
    ours, lo = (openpyxl.load_workbook(p, data_only=True, read_only=True) for p in built[name])
    n = 0
    for sheet in ("features", "linear", "nn", "mmult"):
        rows = zip(
            ours[sheet].iter_rows(values_only=True),
            lo[sheet].iter_rows(values_only=True),
            strict=True,
        )
        for a_row, b_row in rows:
            for a, b in zip(a_row, b_row, strict=True):
                if isinstance(b, (int, float)) and not isinstance(b, bool):
                    assert a == pytest.approx(b, abs=TOL, rel=TOL), (sheet, a, b)
                    n += 1
                else:
                    assert a == b, (sheet, a, b)
    assert n > 1000


@pytest.mark.parametrize("name", NAMES)
def test_features_follow_the_documented_rules(tables, built, name):
    csv, kw = tables[name]
    skip = {kw["target"], kw.get("id"), *kw.get("drop", [])}
    want = reference.table_features(pd.read_csv(csv), skip)
    got = pd.read_excel(built[name][1], sheet_name="features", engine="openpyxl")
    assert list(got.columns[: len(want)]) == list(want)
    assert got.columns[len(want)] == "Valid"
    for col, values in want.items():
        np.testing.assert_allclose(got[col], values, rtol=0, atol=TOL, err_msg=col)


def test_rules_are_stated_in_the_about_sheet(built):
    about = [
        r[0]
        for r in openpyxl.load_workbook(built["titanic"][0])["about"].iter_rows(values_only=True)
        if r[0]
    ]
    text = "\n".join(about)
    for line in (
        "Name — left out: text with 891 different values (free text or an identifier)",
        "Fare — a skewed number (skewness 4.79): LOG10(x+1) ÷ its maximum; missing → the mode",
        "SibSp — a count from 0 to 10: used as it is",
        "Sex — a category with 2 values: a dummy column for each of 'male'",
        "Pclass — a category with 3 values: a dummy column for each of 1, 2 (3,",
        "PassengerId — the id",
    ):
        assert line in text, line
    sex = openpyxl.load_workbook(built["penguins_sex"][0])["about"]
    assert "sex = male counts as 1, female as 0" in sex["A2"].value


def test_each_model_sheet_fits(built, tmp_path):
    for name in ("penguins", "penguins_sex", "diabetes", "cancer"):
        book = tmp_path / f"{name}.xlsx"
        shutil.copy(built[name][0], book)
        for r in excelnet.fit(book, epochs=30, history=False):
            assert r.diverged is None and r.final_loss < r.losses[0], (name, r.sheet)
            assert (r.accuracy is not None) == (name in ("penguins_sex", "cancer"))
    cached = openpyxl.load_workbook(book, data_only=True, read_only=True)
    for ev in evaluate(book, write=False):  # the written-back loss is the fitted one
        sheet, cell = ev.objective_cell.split("!")
        assert cached[sheet][cell].value == pytest.approx(ev.objective, abs=TOL, rel=0)


MAP = {"Sex_male": "Male", "Embarked_S": "Embark_S", "Embarked_C": "Embark_C"}


def _params(path: Path, sheet: str, names: list[str]) -> dict[tuple, float]:
    """Each parameter cell, keyed by (unit, feature name)."""
    ws = openpyxl.load_workbook(path, data_only=True)[sheet]
    if sheet == "mmult":
        return {
            (u, ws.cell(6 + i, 12).value): (6 + i, 13 + u)
            for i in range(len(names))
            for u in (0, 1)
        }
    rows = 1 if sheet == "linear" else 2
    return {
        (u, ws.cell(1, 2 + j).value): (2 + u, 2 + j) for u in range(rows) for j in range(len(names))
    }


def test_titanic_through_build_table_gives_the_lessons_features_and_loss(built, tmp_path):
    lesson = excelnet.build_titanic(tmp_path / "lesson.xlsx")
    table = tmp_path / "table.xlsx"
    shutil.copy(built["titanic"][0], table)
    ours = pd.read_excel(table, sheet_name="features", engine="openpyxl")
    theirs = pd.read_excel(lesson, sheet_name="features", engine="openpyxl")
    renamed = ours.rename(columns=MAP)
    names = list(theirs.columns[:10])
    assert sorted(renamed.columns[:10]) == sorted(names)
    pd.testing.assert_frame_equal(renamed[names], theirs[names])
    # the lesson's starting weights, each moved to its feature's cell: the same losses
    values = openpyxl.load_workbook(lesson, data_only=True)
    updates = {}
    for sheet in ("linear", "nn", "mmult"):
        src = _params(lesson, sheet, names)
        dst = _params(table, sheet, names)
        for (u, feature), (r, c) in dst.items():
            sr, sc = src[(u, MAP.get(feature, feature))]
            updates.setdefault(sheet, {})[(r - 1, c - 1)] = values[sheet].cell(sr, sc).value
    write_values(table, updates)
    a = {e.sheet: e.objective for e in evaluate(lesson, write=False)}
    b = {e.sheet: e.objective for e in evaluate(table, write=False)}
    assert b == pytest.approx(a, abs=TOL, rel=0)
    fa = {r.sheet: r.final_loss for r in excelnet.fit(lesson, epochs=30, history=False)}
    fb = {r.sheet: r.final_loss for r in excelnet.fit(table, epochs=30, history=False)}
    assert fb == pytest.approx(fa, abs=TOL, rel=0)


def test_predict_on_a_built_table(built, tables, tmp_path):
    """A built table's model predicts new rows: here the penguins' own rows, whose
    predictions must equal the model sheet's (the same rows, the same statistics)."""
    book = tmp_path / "p.xlsx"
    shutil.copy(built["penguins"][0], book)
    got = excelnet.predict(book, "nn", tables["penguins"][0])["Prediction"]
    sheet = pd.read_excel(book, sheet_name="nn", header=4, engine="openpyxl")
    np.testing.assert_allclose(got, sheet["Prediction"], rtol=0, atol=TOL)


BAD = {
    "no_target": ("a,b\n1,2\n3,4\n", ["--target", "c"], "line 1: no column named 'c'"),
    "constant": ("a,b\n1,2\n3,2\n", ["--target", "b"], "line 2, column b: the target is 2"),
    "empty": ("", ["--target", "b"], "the file is empty"),
    "missing": ("a,b\n1,2\n3,\n", ["--target", "b"], "line 3, column b: the target is missing"),
    "nothing": (
        "name,b\nx,1\ny,0\nz,1\n",
        ["--target", "b", "--drop", "name"],
        "no usable feature column",
    ),
    "three": ("a,b\n1,x\n2,y\n3,z\n", ["--target", "b"], "line 2, column b: the target holds"),
    "ragged": ("a,b\n1,2\n3\n", ["--target", "b"], "line 3: 1 fields where the header has 2"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, case, capsys):
    from excelnet.cli import main

    text, args, message = BAD[case]
    (tmp_path / "in.csv").write_text(text)
    out = tmp_path / "out.xlsx"
    out.write_bytes(b"the user's old file")
    # --force: the user's file is kept whenever the input is refused, even when forced
    code = main(
        ["build", "table", "--csv", str(tmp_path / "in.csv"), "-o", str(out), "--force", *args]
    )
    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1, stderr
    assert "in.csv" in stderr and message in stderr, stderr
    assert out.read_bytes() == b"the user's old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.xlsx"]


def test_cli_build_table(tmp_path):
    shutil.copy(PENGUINS, tmp_path / "penguins.csv")
    run = run_cli(
        "build",
        "table",
        "--csv",
        "penguins.csv",
        "--target",
        "flipper_length_mm",
        "--drop",
        "year",
        "island",
        cwd=tmp_path,
    )
    assert run.returncode == 2 and "line 5, column flipper_length_mm: the target is missing" in (
        run.stderr
    )
    pd.read_csv(PENGUINS).dropna(subset=["flipper_length_mm"]).to_csv(
        tmp_path / "penguins.csv", index=False
    )
    run = run_cli(
        "build",
        "table",
        "--csv",
        "penguins.csv",
        "--target",
        "flipper_length_mm",
        "--drop",
        "year",
        "island",
        cwd=tmp_path,
    )
    assert run.returncode == 0 and run.stdout == "wrote penguins.xlsx\n", run.stderr
    header = [c.value for c in openpyxl.load_workbook(tmp_path / "penguins.xlsx")["features"][1]]
    assert not any(h and (h.startswith("year") or h.startswith("island")) for h in header)
