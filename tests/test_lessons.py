"""The lesson workbooks: LibreOffice equals excelnet eval before and after fit; charts point at
the right ranges; the fits land where the lesson says; lr-sweep and compare."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from excelnet.data.synthetic import TRUE_QUADRATIC, quadratic_samples
from excelnet.fitting.pipeline import compare, evaluate, fit
from excelnet.formula.parse import Error
from excelnet.writer.lessons import build_double_relu, build_quadratic, build_relu
from tests.conftest import run_cli, same_value

ROOT = Path(__file__).resolve().parents[1]
LESSONS = {"quadratic": build_quadratic, "relu": build_relu, "double-relu": build_double_relu}
SHEETS = {"quadratic": "quadratic", "relu": "relu", "double-relu": "double_relu"}


@pytest.fixture(scope="module")
def books(tmp_path_factory, recalc):
    """Each lesson workbook as built and after a fit; evaluations and LibreOffice's values."""
    d = tmp_path_factory.mktemp("lessons")
    out = {}
    for name, build in LESSONS.items():
        start = build(d / f"{name}.xlsx")
        fitted = shutil.copy(start, d / f"{name}-fitted.xlsx")
        results = fit(fitted)
        out[name] = {"start": start, "fitted": Path(fitted), "fit": results[0]}
    paths = [b[k] for b in out.values() for k in ("start", "fitted")]
    lo = dict(zip(paths, recalc(paths), strict=True))
    for b in out.values():
        for k in ("start", "fitted"):
            b[f"lo_{k}"] = openpyxl.load_workbook(lo[b[k]], data_only=True)
            b[f"eval_{k}"] = evaluate(b[k], write=False)[0]
    return out


def test_committed_lesson_workbooks_are_up_to_date(books):
    for name, b in books.items():
        committed = ROOT / "workbooks" / f"{name}.xlsx"
        assert committed.read_bytes() == b["start"].read_bytes(), (
            f"workbooks/{name}.xlsx is out of date: run `excelnet build {name} -o "
            f"workbooks/{name}.xlsx`"
        )


@pytest.mark.parametrize("name", list(LESSONS))
@pytest.mark.parametrize("state", ["start", "fitted"])
def test_libreoffice_equals_eval_for_every_formula_cell(books, name, state):
    b = books[name]
    sheet = SHEETS[name]
    formulas = openpyxl.load_workbook(b[state])[sheet]
    lo = b[f"lo_{state}"][sheet]
    ours = b[f"eval_{state}"].values
    count = 0
    for row in formulas.iter_rows():
        for cell in row:
            if cell.data_type != "f":
                continue
            count += 1
            mine = ours[f"{sheet}!{cell.coordinate}"]
            assert not isinstance(mine, Error)
            assert same_value(mine, lo[cell.coordinate].value, rel=1e-9, abs=1e-12), cell.coordinate
    params = len(b[f"eval_{state}"].gradients)  # values() holds the parameters too
    assert count + params == len([k for k in ours if k.startswith(sheet)]) and count > 20


@pytest.mark.parametrize("name", list(LESSONS))
def test_chart_series_point_at_the_data_and_the_model(books, name):
    sheet = SHEETS[name]
    with zipfile.ZipFile(books[name]["start"]) as z:
        xml = z.read("xl/charts/chart1.xml").decode()
    n = 20 if name == "quadratic" else 30
    refs = re.findall(r"<c:f>([^<]+)</c:f>", xml)
    rows = f"$11:$A${10 + n}"
    assert refs == [
        f"{sheet}!$A{rows}",
        f"{sheet}!$B$11:$B${10 + n}",
        f"{sheet}!$A{rows}",
        f"{sheet}!$C$11:$C${10 + n}",
    ]


def test_quadratic_fit_lands_within_the_noise_of_the_truth(books):
    """Tolerance: three standard deviations of the least-squares estimates of a, b and c over
    2,000 fresh draws of the same noise (15% multiplicative + 1.5 additive, 20 points): the
    spread any honest fit of such data has. The fit itself must reach least squares."""
    ws = openpyxl.load_workbook(books["quadratic"]["fitted"], data_only=True)["quadratic"]
    fitted = np.array([ws.cell(r, 2).value for r in (2, 3, 4)])
    draws = []
    for seed in range(2000):
        x, y = quadratic_samples(seed)
        draws.append(np.polyfit(x, y, 2))
    sigma = np.array(draws).std(axis=0)
    assert np.all(np.abs(fitted - np.array(TRUE_QUADRATIC)) <= 3 * sigma), (fitted, sigma)
    x, y = quadratic_samples(0)
    np.testing.assert_allclose(fitted, np.polyfit(x, y, 2), atol=1e-6)
    # gradients beside the parameters, ~0 at the optimum
    assert all(abs(ws.cell(r, 3).value) < 1e-6 for r in (2, 3, 4))


def test_double_relu_fits_better_than_one_relu(books):
    assert books["double-relu"]["fit"].final_loss < 0.2 * books["relu"]["fit"].final_loss


def test_eval_fills_in_the_gradients(tmp_path):
    book = build_quadratic(tmp_path / "q.xlsx")
    (ev,) = evaluate(book)
    ws = openpyxl.load_workbook(book, data_only=True)["quadratic"]
    assert [ws.cell(r, 3).value for r in (2, 3, 4)] == list(ev.gradients.values())
    x, y = quadratic_samples(0)
    resid = x**2 + x + 1 - y  # a = b = c = 1 at the start
    analytic = [np.mean(2 * resid * x**2), np.mean(2 * resid * x), np.mean(2 * resid)]
    np.testing.assert_allclose(list(ev.gradients.values()), analytic, rtol=1e-12)


def test_lr_sweep_on_the_quadratic(tmp_path):
    book = build_quadratic(tmp_path / "q.xlsx")
    with zipfile.ZipFile(book) as z:
        model_xml = z.read("xl/worksheets/sheet1.xml")
    run = run_cli(
        "lr-sweep",
        book,
        "--sheet",
        "quadratic",
        "--lrs",
        "0.001,0.01,0.1,1",
        "--epochs",
        "300",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    runs = {r["lr"]: r for r in json.loads(run.stdout)["runs"]}
    assert runs[1.0]["diverged"] and runs[1.0]["epochs"] < 300
    best = min(r["final_loss"] for r in runs.values() if not r["diverged"])
    assert runs[0.001]["final_loss"] > 1.5 * best  # too slow: far from where 0.1 got
    with zipfile.ZipFile(book) as z:
        assert z.read("xl/worksheets/sheet1.xml") == model_xml  # the model sheet is unchanged
    ws = openpyxl.load_workbook(book)["lr_sweep"]
    assert [c.value for c in ws[1]] == ["epoch", "lr 0.001", "lr 0.01", "lr 0.1", "lr 1 (diverged)"]
    assert len(ws._charts) == 1


def test_compare_writes_a_sheet_per_model(titanic_book, tmp_path):
    book = shutil.copy(titanic_book, tmp_path / "t.xlsx")
    results = compare(book, epochs=50)
    ws = openpyxl.load_workbook(book)["compare"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == (
        "model",
        "parameters",
        "training loss",
        "validation loss",
        "validation accuracy",
        "fit seconds",
        "method",
        "constraints",
        "max violation",
    )
    assert [r[0] for r in rows[1:]] == ["linear", "nn", "mmult"]
    assert [r[6:] for r in rows[1:]] == [("lbfgs", 0, None)] * 3
    assert [r[1] for r in rows[1:]] == [10, 20, 20]
    assert rows[1][3] == pytest.approx(results[0].valid_loss)
    assert len(ws._charts) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["build", "cubic"], "unknown workbook 'cubic'"),
        (["lr-sweep", "BOOK", "--sheet", "quadratic", "--lrs", ""], "at least one learning rate"),
        (["lr-sweep", "BOOK", "--sheet", "quadratic", "--lrs", "0.1,0"], "must be positive"),
        (["lr-sweep", "BOOK", "--sheet", "quadratic", "--lrs", "0.1,x"], "not a comma-separated"),
        (["lr-sweep", "BOOK", "--sheet", "about"], "sheet about: no Solver model"),
    ],
)
def test_lesson_bad_input(tmp_path, args, message):
    book = build_quadratic(tmp_path / "q.xlsx")
    before = book.read_bytes()
    run = run_cli(*[str(book) if a == "BOOK" else a for a in args], cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert book.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["q.xlsx"]
