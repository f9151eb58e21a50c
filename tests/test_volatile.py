"""Volatile functions as Excel computes them (issue 20): each RAND, RANDBETWEEN or RANDARRAY
cell an independent draw, in calc as in fit; in a fit, drawn afresh at every evaluation as
Solver recalculates them (a RAND dropout mask trains as dropout), from a seed, the cached values
written back one final recalculation's; check computes the cells that depend on them but does
not compare them (listed apart, not in its exit code)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import openpyxl
import pytest
import torch
import xlsxwriter
from openpyxl.worksheet.formula import ArrayFormula
from scipy import stats

import excelnet
from excelnet.errors import ExcelnetError
from excelnet.fitting.options import FitOptions
from excelnet.fitting.pipeline import compile_models
from excelnet.formula.calculation import Calculation
from excelnet.formula.parse import Error
from excelnet.xlsx.read import read_book
from excelnet.xlsx.writeback import write_values
from tests.conftest import run_cli
from tests.handmade import solver_names

N = 10_000


@pytest.fixture(scope="module")
def draws(tmp_path_factory):
    """A sheet of random draws, computed twice (two recalculations)."""
    path = tmp_path_factory.mktemp("draws") / "draws.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("s")
    for i in range(N):
        ws.write_formula(i, 0, "=RAND()")
        ws.write_formula(i, 1, "=RANDBETWEEN(1,100)")
    for i in range(200):
        ws.write_formula(i, 2, "=RANDBETWEEN(2.5,4.2)")
    ws.write_array_formula(0, 3, 2, 4, "{=_xlfn.RANDARRAY(3,2)}")
    ws.write_array_formula(0, 5, 4, 5, "{=_xlfn.RANDARRAY(5,1,10,20,TRUE)}")
    ws.write_array_formula(0, 6, 2, 6, "{=RAND()}")
    ws.write_formula(0, 7, "=RANDBETWEEN(5,1)")
    ws.write_formula(1, 7, f"=SUM(A1:A{N})")
    wb.close()
    book = read_book(path)
    return Calculation(book).values, Calculation(read_book(path)).values


def _column(values, col: int, n: int) -> np.ndarray:
    return np.array([values[("s", i, col)] for i in range(n)])


def test_a_column_of_rand_is_independent_draws(draws):
    values, again = draws
    u = _column(values, 0, N)
    assert len(set(u.tolist())) == N  # no two equal
    assert ((u >= 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 5 * (1 / 12 / N) ** 0.5
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / N**0.5  # neighbours independent
    assert values[("s", 1, 7)] == pytest.approx(u.sum(), rel=1e-12)  # what SUM reads
    assert len(set(u.tolist()) & set(_column(again, 0, N).tolist())) == 0  # a new draw


def test_randbetween_keeps_to_its_range(draws):
    values, _ = draws
    k = _column(values, 1, N)
    assert (k == np.round(k)).all() and k.min() == 1 and k.max() == 100
    counts = np.bincount(k.astype(int), minlength=101)[1:]
    assert stats.chisquare(counts).pvalue > 1e-3  # every value as likely
    assert set(_column(values, 2, 200).tolist()) == {3.0, 4.0}  # 2.5 rounds up, 4.2 down
    assert values[("s", 0, 7)] == Error("#NUM!")  # bottom above top


def test_arrays_of_draws(draws):
    values, _ = draws
    grid = [values[("s", r, c)] for r in range(3) for c in (3, 4)]
    assert len(set(grid)) == 6 and all(0 <= x < 1 for x in grid)  # RANDARRAY(3,2)
    whole = _column(values, 5, 5)
    assert ((whole == np.round(whole)) & (whole >= 10) & (whole <= 20)).all()
    cells = [values[("s", r, 6)] for r in range(3)]  # {=RAND()}: each cell its own draw
    assert len(set(cells)) == 3


def test_calc_writes_independent_draws(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in range(1, 51):
        ws[f"A{r}"] = "=RAND()"
        ws[f"B{r}"] = f"=A{r}*2"
    wb.save(tmp_path / "r.xlsx")
    run = run_cli("calc", tmp_path / "r.xlsx")
    assert run.returncode == 0, run.stderr
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx", data_only=True).active
    a = [ws[f"A{r}"].value for r in range(1, 51)]
    assert len(set(a)) == 50 and all(0 <= x < 1 for x in a)
    assert [ws[f"B{r}"].value for r in range(1, 51)] == [2 * x for x in a]


# -- dropout: a RAND mask in the sheet, drawn at every evaluation --------------------------------

ROWS = 200
P = 0.5  # the chance a feature is dropped; kept ones are scaled by 1/(1-P)


def _dropout(path):
    """A linear model of three features whose inputs pass through a dropout mask of
    =IF(RAND()<0.5,0,2) cells (inverted dropout), mean squared error minimised."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (ROWS, 3))
    y = x @ np.array([2.0, -1.0, 0.5]) + rng.normal(0, 0.1, ROWS)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "net"
    for j in range(3):
        ws.cell(1 + j, 2, 0.1)
    for i in range(ROWS):
        r = 6 + i
        for j, col in enumerate("ABC"):
            ws[f"{col}{r}"] = float(x[i, j])
        for col in "DEF":
            ws[f"{col}{r}"] = f"=IF(RAND()<{P},0,{1 / (1 - P)})"
        ws[f"G{r}"] = f"=A{r}*D{r}*$B$1+B{r}*E{r}*$B$2+C{r}*F{r}*$B$3"
        ws[f"H{r}"] = float(y[i])
        ws[f"I{r}"] = f"=(G{r}-H{r})^2"
    ws["B4"] = f"=AVERAGE(I6:I{ROWS + 5})"
    solver_names(wb, "net", "net!$B$4", "net!$B$1:$B$3")
    wb.save(path)
    return x, y


@pytest.fixture(scope="module")
def dropout(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dropout")
    x, y = _dropout(folder / "dropout.xlsx")
    return folder / "dropout.xlsx", x, y


def test_the_mask_is_drawn_at_every_evaluation(dropout):
    path, x, y = dropout
    (model,) = compile_models(read_book(path))
    losses = []
    masks = []
    with torch.no_grad():
        for _ in range(1000):
            losses.append(float(model.objective_value()))
        for _ in range(3):
            model.evaluate()
            masks.append([model.value_at("net", 5 + i, 3) for i in range(ROWS)])
    losses = np.array(losses)
    assert len(set(losses.tolist())) == len(losses)
    # the expected loss of inverted dropout: the error of the mean prediction, plus each
    # kept input's variance P/(1-P) x² w²
    w = np.full(3, 0.1)
    expected = np.mean((x @ w - y) ** 2 + P / (1 - P) * (x**2 * w**2).sum(1))
    assert abs(losses.mean() - expected) < 5 * losses.std() / len(losses) ** 0.5
    assert masks[0] != masks[1] != masks[2]
    dropped = np.mean(np.array(masks) == 0)
    assert abs(dropped - P) < 5 * (P * (1 - P) / (3 * ROWS)) ** 0.5
    assert model.redrawn() == ["RAND"]


def _fit(path, tmp, name: str, seed: int):
    copy = shutil.copy(path, tmp / f"{name}.xlsx")
    (result,) = excelnet.fit(copy, method="gd", lr=0.02, epochs=400, history=False, seed=seed)
    return copy, result


def test_dropout_trains_as_dropout_and_again_alike_from_its_seed(dropout, tmp_path):
    path, x, y = dropout
    book, first = _fit(path, tmp_path, "a", seed=3)
    _, again = _fit(path, tmp_path, "b", seed=3)
    _, other = _fit(path, tmp_path, "c", seed=4)
    assert first.losses == again.losses and first.params == again.params
    assert first.final_loss == again.final_loss
    assert first.losses != other.losses and first.params != other.params
    losses = np.array(first.losses)
    assert (np.diff(losses) > 0).sum() > 20  # a new mask every epoch: the loss is noisy
    assert losses[-50:].mean() < 0.7 * losses[0]  # and still it trains
    assert first.engine == "eager" and "RAND" in first.engine_note
    # dropout's expected loss is least squares with a penalty of P/(1-P) Σ x² on each weight:
    # the fit lands near its minimiser, far from plain least squares'
    w = np.array([first.params[f"net!B{j}"] for j in (1, 2, 3)])
    ridge = np.linalg.solve(x.T @ x + P / (1 - P) * np.diag((x**2).sum(0)), x.T @ y)
    plain = np.linalg.lstsq(x, y, rcond=None)[0]
    assert np.abs(w - ridge).max() < 0.15 and np.abs(w - plain).max() > 0.5
    # the values written are one recalculation's: mask, parameters and objective agree
    ws = openpyxl.load_workbook(book, data_only=True)["net"]
    mask = np.array([[ws[f"{c}{6 + i}"].value for c in "DEF"] for i in range(ROWS)])
    assert set(np.unique(mask).tolist()) == {0.0, 2.0}
    w_written = np.array([ws[f"B{j}"].value for j in (1, 2, 3)])
    np.testing.assert_array_equal(w_written, w)
    loss = np.mean(((x * mask) @ w_written - y) ** 2)
    assert ws["B4"].value == pytest.approx(loss, rel=1e-12)
    assert first.final_loss == ws["B4"].value


def test_the_seed_on_the_command_line(dropout, tmp_path):
    path, _, _ = dropout

    def final(name: str, *seed: str) -> float:
        copy = shutil.copy(path, tmp_path / f"{name}.xlsx")
        args = ["--method", "gd", "--lr", "0.02", "--epochs", "30", "--no-history", "--json"]
        run = run_cli("fit", copy, *args, *seed)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)["fits"][0]["final_loss"]

    assert final("a", "--seed", "7") == final("b", "--seed", "7")
    assert final("c", "--seed", "8") != final("a2", "--seed", "7")
    assert final("d") == final("e", "--seed", "0")  # the default: a fixed seed
    for bad in ("x", "-1", "1.5"):
        run = run_cli("fit", path, "--seed", bad)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, bad


def test_the_seed_in_fit_options():
    assert FitOptions().seed == 0 and FitOptions.of(None, seed=5).seed == 5
    assert FitOptions.of(FitOptions(seed=5), epochs=3).seed == 5
    for bad in (-1, 1.5, True):
        with pytest.raises(ExcelnetError, match="seed"):
            FitOptions(seed=bad)


# -- check: volatile cells listed apart, not compared ---------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory, recalc):
    """A workbook of fixed formulas and volatile ones (and cells reading those), as
    LibreOffice saves it: the stored values are its recalculation's."""
    folder = tmp_path_factory.mktemp("check")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "s"
    for r in range(1, 21):
        ws[f"A{r}"] = r * 1.5
        ws[f"B{r}"] = "=RAND()"
        ws[f"C{r}"] = f"=A{r}*2+1"
        ws[f"D{r}"] = f"=B{r}<0.5"
    ws["E1"] = "=RANDBETWEEN(1,6)"
    ws["E2"] = "=OFFSET(B1,3,0)*2"  # reads a RAND cell through a reference OFFSET makes
    ws["E3"] = "=SUM(C1:C20)"
    ws["F1"] = ArrayFormula("F1:F3", "=RAND()")
    wb.save(folder / "v.xlsx")
    (lo,) = recalc([folder / "v.xlsx"])
    return shutil.copy(lo, folder / "saved.xlsx")


def test_check_lists_volatile_cells_apart(saved, tmp_path):
    book = shutil.copy(saved, tmp_path / "v.xlsx")
    run = run_cli("check", book)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 different, 45 volatile (not compared)" in run.stdout
    for cells in ("s!B1:B20", "s!D1:D20", "s!E1", "s!E2", "s!F1:F3"):
        assert f"{cells} " in run.stdout and "volatile, not compared" in run.stdout, cells
    report = json.loads(run_cli("check", book, "--json").stdout)["sheets"][0]
    assert report["different"] == [] and report["equal"] == 21  # C1:C20, E3
    assert sum(v["count"] for v in report["volatile"]) == 45
    write_values(book, {"s": {(2, 2): 99.0}})  # a wrong value stored with C3: a difference
    run = run_cli("check", book)
    assert run.returncode == 1 and "s!C3" in run.stdout and "99.0" in run.stdout
    assert "volatile (not compared)" in run.stdout
