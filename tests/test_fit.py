"""excelnet fit / eval on the Titanic workbook: LibreOffice confirms every reported number."""

from __future__ import annotations

import json
import shutil

import numpy as np
import openpyxl
import pandas as pd
import pytest

import excelnet
from excelnet.data import bundled
from excelnet.fitting.pipeline import compile_models, evaluate, fit
from excelnet.xlsx.read import read_book
from tests import reference
from tests.conftest import run_cli

MODELS = ["linear", "nn", "mmult"]


@pytest.fixture(scope="module")
def fitted(titanic_book, tmp_path_factory, recalc):
    """The Titanic workbook fitted by the CLI (300 epochs), and LibreOffice's recalculation."""
    d = tmp_path_factory.mktemp("fit")
    out = d / "fitted.xlsx"
    run = run_cli("fit", titanic_book, "--epochs", 300, "--out", out, "--json")
    assert run.returncode == 0, run.stderr
    report = {r["sheet"]: r for r in json.loads(run.stdout)["fits"]}
    (lo,) = recalc([out])
    return out, report, lo


@pytest.mark.parametrize("model", MODELS)
def test_libreoffice_objective_equals_reported_final_loss(fitted, model):
    out, report, lo = fitted
    lo_value = openpyxl.load_workbook(lo, data_only=True)[model]["M2"].value
    assert lo_value == pytest.approx(report[model]["final_loss"], rel=1e-9, abs=0)
    assert report[model]["final_loss"] < report[model]["initial_loss"]
    # programs that do not recalculate see the fitted state too
    cached = pd.read_excel(out, sheet_name=model, header=None)
    assert cached.iloc[1, 12] == pytest.approx(report[model]["final_loss"], rel=1e-12)
    assert cached.iloc[1, 13] == pytest.approx(report[model]["valid_loss"], rel=1e-12)
    assert cached.iloc[1, 15] == pytest.approx(report[model]["accuracy"], rel=1e-12)


def test_every_dependent_cached_value_equals_libreoffice(fitted):
    out, _, lo = fitted
    ours, theirs = (
        openpyxl.load_workbook(out, data_only=True),
        openpyxl.load_workbook(lo, data_only=True),
    )
    for model in MODELS:
        a, b = ours[model], theirs[model]
        for row_a, row_b in zip(
            a.iter_rows(min_row=1, max_row=200, max_col=16),
            b.iter_rows(min_row=1, max_row=200, max_col=16),
            strict=True,
        ):
            for ca, cb in zip(row_a, row_b, strict=True):
                if isinstance(cb.value, float):
                    assert ca.value == pytest.approx(cb.value, rel=1e-9, abs=1e-12), ca.coordinate


def test_fitted_parameters_are_in_the_cells(fitted, titanic_book):
    out, report, _ = fitted
    api = fit(shutil.copy(titanic_book, out.parent / "api.xlsx"), sheet="nn", epochs=300)
    params = pd.read_excel(out, sheet_name="nn", header=None).iloc[1:3, 1:11].to_numpy(float)
    fitted_values = np.array(list(api[0].params.values())).reshape(2, 10)
    np.testing.assert_allclose(params, fitted_values, rtol=1e-15)
    assert len(api[0].losses) == api[0].epochs == report["nn"]["epochs"] <= 300
    assert api[0].losses[0] == pytest.approx(report["nn"]["initial_loss"])


def test_default_fit_reaches_least_squares_optimum(titanic_book, tmp_path):
    book = shutil.copy(titanic_book, tmp_path / "t.xlsx")
    (result,) = excelnet.fit(book, sheet="linear")
    x = reference.features(bundled()).to_numpy()
    y = pd.read_csv(bundled())["Survived"].to_numpy(float)
    valid = pd.read_excel(book, sheet_name="features")["Valid"].to_numpy()
    xt, yt = x[valid == 0], y[valid == 0]
    w = np.linalg.lstsq(xt, yt, rcond=None)[0]
    optimum = ((xt @ w - yt) ** 2).mean()
    assert optimum * (1 - 1e-12) <= result.final_loss <= optimum * 1.005  # lstsq rounds too


def test_eval_gradient_equals_analytic(titanic_book):
    (ev,) = evaluate(titanic_book, sheet="linear")
    wb = openpyxl.load_workbook(titanic_book, data_only=True)
    w = np.array([wb["linear"].cell(2, c).value for c in range(2, 12)])
    x = reference.features(bundled()).to_numpy()
    y = pd.read_csv(bundled())["Survived"].to_numpy(float)
    valid = pd.read_excel(titanic_book, sheet_name="features")["Valid"].to_numpy()
    xt, yt = x[valid == 0], y[valid == 0]
    grad = 2 / len(yt) * xt.T @ (xt @ w - yt)
    np.testing.assert_allclose(list(ev.gradients.values()), grad, rtol=1e-9, atol=1e-12)
    assert ev.objective == pytest.approx(((xt @ w - yt) ** 2).mean(), rel=1e-12)


def test_eval_cli_json(titanic_book):
    run = run_cli("eval", titanic_book, "--json")
    assert run.returncode == 0, run.stderr
    models = json.loads(run.stdout)["models"]
    assert [m["sheet"] for m in models] == MODELS
    assert len(models[2]["gradients"]) == 20
    assert models[1]["objective"] == pytest.approx(models[2]["objective"], rel=1e-12)


def test_copied_formulas_run_as_one_block_each(titanic_book):
    book = read_book(titanic_book)
    for model in compile_models(book):
        # per passenger: a handful of columns, each one tensor op; not 891 cells each
        sizes = sorted(b.size for b in model.train_blocks)
        assert len(model.train_blocks) <= 8, model.train_blocks
        assert sizes[-1] >= 891


def test_divergence_keeps_last_good_parameters(titanic_book, tmp_path):
    book = shutil.copy(titanic_book, tmp_path / "t.xlsx")
    run = run_cli("fit", book, "--sheet", "linear", "--lr", "5", "--epochs", "200", "--json")
    assert run.returncode == 0, run.stderr
    (r,) = json.loads(run.stdout)["fits"]
    assert "learning rate smaller than 5" in r["diverged"]
    assert np.isfinite(r["final_loss"]) and r["epochs"] < 200
    cached = openpyxl.load_workbook(book, data_only=True)["linear"]
    assert cached["M2"].value == pytest.approx(r["final_loss"], rel=1e-12)
    assert all(np.isfinite(cached.cell(2, c).value) for c in range(2, 12))


def test_history_sheet_created_then_appended(titanic_book, tmp_path, recalc):
    book = shutil.copy(titanic_book, tmp_path / "t.xlsx")
    (a,) = fit(book, sheet="linear", epochs=100)
    (b,) = fit(book, sheet="linear", epochs=100, method="gd")
    fit(book, sheet="nn", epochs=50)
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames[-1] == "history"
    ws = wb["history"]
    suffixes = ["epoch", "training loss", "validation loss", "accuracy", "method", "max violation"]
    assert [c.value for c in ws[1]] == [f"{m} {s}" for m in ("linear", "nn") for s in suffixes]
    rows = [r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] is not None]
    epochs = [r[0] for r in rows]
    assert epochs[0] == 0 and epochs[-1] == a.epochs + b.epochs == a.epochs + 100
    assert epochs == sorted(epochs) and {r[4] for r in rows} == {"lbfgs", "gd"}
    assert len(ws._charts) == 1
    (lo,) = recalc([book])  # LibreOffice opens the patched file
    assert "history" in openpyxl.load_workbook(lo, read_only=True).sheetnames


def test_fit_refuses_open_workbook(titanic_book, tmp_path):
    book = shutil.copy(titanic_book, tmp_path / "t.xlsx")
    (tmp_path / ".~lock.t.xlsx#").write_text("x")
    before = book.read_bytes()
    run = run_cli("fit", book)
    assert run.returncode == 2 and "open in LibreOffice" in run.stderr
    assert book.read_bytes() == before


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("epochs", [20, 500])  # 20: a history row, and a graph, per epoch
def test_cuda_reaches_the_cpu_loss(titanic_book, tmp_path, epochs):
    a, b = (
        fit(
            shutil.copy(titanic_book, tmp_path / f"{d}.xlsx"),
            sheet="nn",
            epochs=epochs,
            device=d,
            lr=0.1,
        )
        for d in ("cpu", "cuda")
    )
    assert b[0].engine == "cuda graph", b[0].engine_note
    assert b[0].final_loss == pytest.approx(a[0].final_loss, rel=1e-9)


def test_a_workbook_saved_by_libreoffice_fits(titanic_book, tmp_path, recalc):
    """LibreOffice writes its own XML (shared strings, formula attributes, styles): the file it
    saved trains, and its next recalculation agrees with what excelnet reported."""
    (saved,) = recalc([titanic_book])
    book = shutil.copy(saved, tmp_path / "saved-by-libreoffice.xlsx")
    results = fit(book, epochs=100)
    (again,) = recalc([book])
    wb = openpyxl.load_workbook(again, data_only=True)
    for r in results:
        assert wb[r.sheet]["M2"].value == pytest.approx(r.final_loss, rel=1e-9), r.sheet
