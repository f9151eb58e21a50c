"""How a fit ends, as Excel's Solver would have it: a point that breaks the constraints is no
answer (exit code 3, the file unchanged, unless --keep-infeasible); a point the sheet cannot
compute is never kept (EXP overflowing to #NUM!), and LibreOffice's recalculation of what is
written agrees; the Evolutionary method on a model no gradient helps; Ctrl-C as Esc."""

from __future__ import annotations

import hashlib
import json
import math
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import torch

import excelnet
from excelnet.errors import ExcelnetError, ExcelnetWarning, NotSolved
from excelnet.fitting.options import FitOptions
from tests import solver_models as sm
from tests.conftest import run_cli
from tests.handmade import line_fit

# the unit circle and x + y >= 3: no point meets both
CIRCLE = [("=B1^2+B2^2", 1, "1"), ("=B1+B2", 3, "3")]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_an_infeasible_grg_fit_exits_3_and_leaves_the_file(tmp_path):
    book = tmp_path / "circle.xlsx"
    sm.two_variables(book, "=B1*B2", CIRCLE, engine=sm.GRG, start=(0.2, 0.1))
    before = md5(book)
    run = run_cli("fit", book, "-q", "--json", "--epochs", "200")
    assert run.returncode == 3
    (line,) = run.stderr.strip().splitlines()
    assert line.endswith("no feasible point found; the file is unchanged"), line
    assert "constraints broken by up to" in line and "solver_pre 1e-06" in line
    out = json.loads(run.stdout)
    assert out["written"] is False and out["fits"][0]["solution"] == "infeasible"
    assert out["fits"][0]["message"] == "Solver could not find a feasible solution."
    assert md5(book) == before


def test_keep_infeasible_writes_the_point_closest_to_feasible(tmp_path):
    book = tmp_path / "circle.xlsx"
    sm.two_variables(book, "=B1*B2", CIRCLE, engine=sm.GRG, start=(0.2, 0.1))
    before = md5(book)
    run = run_cli("fit", book, "-q", "--keep-infeasible", "--epochs", "200")
    assert run.returncode == 3 and "wrote the point closest to feasible" in run.stderr
    assert md5(book) != before
    ws = openpyxl.load_workbook(book, data_only=True)["M"]
    x, y = ws["B1"].value, ws["B2"].value
    # the least of the larger violation: x² + y² − 1 = 3 − (x + y), at x = y = 1 (both 1)
    assert (x, y) == pytest.approx((1.0, 1.0), abs=0.02)
    with pytest.raises(NotSolved) as e:
        excelnet.fit(book, options=FitOptions(keep_infeasible=True, epochs=200), history=False)
    assert e.value.written and e.value.results[0].written
    assert e.value.results[0].solution == "infeasible"


def test_an_infeasible_start_is_left_for_a_feasible_point(tmp_path):
    """Min x² + y² with x + y >= 3 from (1, 1), which breaks it: the answer is (1.5, 1.5)."""
    book = tmp_path / "stuck.xlsx"
    sm.two_variables(book, "=B1^2+B2^2", [("=B1+B2", 3, "3")], typ=2, engine=sm.GRG)
    (r,) = excelnet.fit(book, history=False)
    assert r.solved and r.final_loss == pytest.approx(4.5, rel=1e-6)


def _net_weights(book: Path) -> tuple[float, float]:
    ws = openpyxl.load_workbook(book, data_only=True)["Net"]
    return ws["B1"].value, ws["B2"].value


def test_exp_overflow_is_never_kept_and_libreoffice_computes_what_is_written(tmp_path, recalc):
    """A sigmoid net on data it separates: the squared error falls as the weight grows, until
    EXP(-z) passes 709.78 and Excel shows #NUM!. excelnet stops before (the points past it
    are failed steps); LibreOffice's recalculation of the written file shows a number in
    every cell where excelnet wrote one. With ^2 in place of the product, LibreOffice's own
    rule (a power that underflows is #NUM! there, Excel gives 0) is warned about, cell by cell:
    every error LibreOffice shows is one excelnet named."""
    product = tmp_path / "net.xlsx"
    numbers = sm.sigmoid_net(product, square="*")
    power = tmp_path / "net-power.xlsx"
    sm.sigmoid_net(power)
    (r,) = excelnet.fit(product)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExcelnetWarning)
        (p,) = excelnet.fit(power)
    for fitted, book in ((r, product), (p, power)):
        assert fitted.solved and fitted.method == "lbfgs"
        w, b = _net_weights(book)
        z = w * numbers["x"] + b
        assert np.abs(z).max() < math.log(sys.float_info.max), z  # EXP(-z) computes in Excel
        assert fitted.final_loss < 1e-100  # as far as the sheet allows
    assert p.libreoffice and all(v == "#NUM!" for v in p.libreoffice.values())
    assert any("LibreOffice will show an error value" in str(w.message) for w in caught)
    for book, lo_book, warned in zip(
        (product, power), recalc([product, power]), ({}, p.libreoffice), strict=True
    ):
        ours = openpyxl.load_workbook(book, data_only=True)["Net"]
        theirs = openpyxl.load_workbook(lo_book, data_only=True)["Net"]
        for row in ours.iter_rows(min_row=1, max_row=9, max_col=7):
            for cell in row:
                if isinstance(cell.value, float):
                    lo = theirs[cell.coordinate].value
                    if f"Net!{cell.coordinate}" in warned:
                        assert isinstance(lo, str) and lo.startswith("#")
                        continue
                    assert isinstance(lo, (int, float)), (book.name, cell.coordinate, lo)


def test_a_point_where_exp_overflows_is_found_and_named(tmp_path):
    """Problem.error_at: the sheet by Excel's rules at a point, against the start."""
    import excelnet.fitting.pipeline as pipeline
    from excelnet.fitting.problem import Problem
    from excelnet.xlsx.read import read_book

    book = tmp_path / "net.xlsx"
    sm.sigmoid_net(book)
    (model,) = pipeline.compile_models(read_book(book), "Net")
    problem = Problem(model)
    assert problem.error_at(torch.tensor([5.0, 0.0], dtype=torch.float64)) is None
    assert problem.error_at(torch.tensor([400.0, 0.0], dtype=torch.float64)) == "Net!F2 #NUM!"


def test_libreoffice_rounding_is_warned_about(tmp_path, recalc):
    """LN(1 - B1) at B1 = 1 - 2e-15: Excel computes it (-33.8), LibreOffice rounds 1 - B1 to 0
    first and shows an error. The LP puts B1 there; excelnet writes it, with one warning
    naming the cell, and LibreOffice indeed shows an error there."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "M"
    ws["B1"], ws["C1"], ws["B4"] = 0.5, "=LN(1-B1)", "=B1"
    sm.solver_names(wb, "M", "M!$B$4", "M!$B$1", 1, 1, [("M!$B$1", 1, "0.999999999999998")])
    book = tmp_path / "log.xlsx"
    wb.save(book)
    run = run_cli("fit", book, "-q")
    assert run.returncode == 0, run.stderr
    (line,) = [x for x in run.stderr.splitlines() if "warning" in x]
    assert "LibreOffice will show an error value in M!C1, which Excel computes" in line
    ours = openpyxl.load_workbook(book, data_only=True)["M"]
    assert ours["C1"].value == pytest.approx(math.log(1 - 0.999999999999998), rel=1e-9)
    (lo,) = recalc([book])
    assert str(openpyxl.load_workbook(lo, data_only=True)["M"]["C1"].value).startswith("#")


def test_a_non_smooth_model_by_the_evolutionary_method(tmp_path):
    """|x − 3| + |y + 1| plus a cliff where x + y > 5 (solver_eng 3): within its bounds the
    population finds (3, −1); the same seed, the same answer."""
    book = tmp_path / "rough.xlsx"
    bounds = [("M!$B$1:$B$2", 3, "-10"), ("M!$B$1:$B$2", 1, "10")]
    sm.two_variables(
        book,
        "=ABS(B1-3)+ABS(B2+1)+IF(B1+B2>5,10,0)",
        bounds,
        typ=2,
        neg=2,
        engine=sm.EVOLUTIONARY,
        start=(8.0, 8.0),
    )
    (r,) = excelnet.fit(book, options=FitOptions(seed=7), history=False)
    assert r.method == "evolutionary" and r.seed == 7 and r.solved
    x, y = r.params["M!B1"], r.params["M!B2"]
    assert -10 <= x <= 10 and -10 <= y <= 10
    assert (x, y) == pytest.approx((3.0, -1.0), abs=0.05) and r.final_loss < 0.1
    assert r.initial_loss == 24.0 and "solver_ssz" not in r.ignored
    (again,) = excelnet.fit(book, options=FitOptions(seed=7), history=False)
    assert again.params == r.params or again.final_loss <= r.final_loss  # from r's point


def test_the_evolutionary_method_needs_bounds_as_excels_does(tmp_path):
    book = tmp_path / "loose.xlsx"
    sm.two_variables(book, "=ABS(B1-3)+ABS(B2)", [], typ=2, neg=1, engine=sm.EVOLUTIONARY)
    before = md5(book)
    run = run_cli("fit", book)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "needs bounds on every variable cell, as Excel's does" in run.stderr
    assert "M!B1 has no upper bound" in run.stderr and md5(book) == before
    with pytest.raises(ExcelnetError, match="needs bounds"):
        excelnet.fit(book, method="evolutionary")


def _slow_fit(tmp_path: Path) -> Path:
    """A line fitted to 5,000 points by gd for ever: Ctrl-C is the only way out (and the
    write-back after it takes long enough for a second one to come first)."""
    return line_fit(tmp_path / "line.xlsx", n=5_000)


def _start_fit(book: Path) -> subprocess.Popen:
    """`excelnet fit --json` in a process of its own, once it is training (its first progress
    line: after two seconds of epochs)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "excelnet", "fit", str(book), "--json", "--no-history"]
        + ["--method", "gd", "--epochs", "1e9", "--engine", "eager"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        if "fitting Model: epoch" in line:
            return proc
        assert time.monotonic() < deadline, "no progress line"
    raise AssertionError(f"the fit ended before it trained: {proc.wait()}")


def test_ctrl_c_keeps_the_best_point_so_far(tmp_path):
    book = _slow_fit(tmp_path)
    before = md5(book)
    proc = _start_fit(book)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] == "written" and report["written"] is True
    (fit,) = report["fits"]
    assert fit["interrupted"] and fit["final_loss"] < fit["initial_loss"]
    assert any("Ctrl-C" in n for n in fit["notes"])
    assert "wrote the best point found so far" in err
    assert md5(book) != before
    ws = openpyxl.load_workbook(book, data_only=True)["Model"]
    assert ws["C7"].value == pytest.approx(fit["final_loss"], rel=1e-12)


def test_ctrl_c_twice_leaves_the_file_unchanged(tmp_path):
    book = _slow_fit(tmp_path)
    before = md5(book)
    proc = _start_fit(book)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] == "unchanged" and report["written"] is False
    assert "the file is unchanged" in err and "Traceback" not in err
    assert md5(book) == before
