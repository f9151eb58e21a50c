"""Work that follows what a workbook holds, not what it could name: a huge adjustable range is
refused before any work, a far cell costs one cell, losses are kept at bounded resolution for
any number of epochs, and torch.compile is used only where it pays for itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName

from excelnet.cli import main
from excelnet.fitting.choice import choose
from excelnet.fitting.options import FitOptions
from excelnet.fitting.pipeline import compile_models, fit
from excelnet.fitting.problem import Problem
from excelnet.fitting.train import Losses, train
from excelnet.writer.lessons import build_quadratic
from excelnet.xlsx.read import read_book
from excelnet.xlsx.scan import scan
from tests.handmade import line_fit, solver_names

ROOT = Path(__file__).resolve().parents[1]


def test_a_huge_adjustable_range_is_refused_at_once(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    wb = openpyxl.load_workbook(book)
    solver_names(wb, "Model", "Model!$C$7", "Model!$E$1:$XFD$1048576")
    wb.save(book)
    before = book.read_bytes()
    assert main(["fit", str(book)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "solver_adj (Model!$E$1:$XFD$1048576) names 17,175,674,880 cells" in err
    assert "at most 1,000,000 adjustable cells" in err
    assert book.read_bytes() == before


def test_openpyxl_written_formulas_are_read_by_the_scan(tmp_path):
    """openpyxl writes a formula's empty value as <v />: the scan reads it (it used to hand
    the sheet to openpyxl, cell by cell)."""
    book = line_fit(tmp_path / "book.xlsx")
    with zipfile.ZipFile(book) as z:
        xml = z.read("xl/worksheets/sheet2.xml")
    assert b"<v />" in xml
    cells = scan(xml, [])
    assert cells is not None and cells.formulas[(1, 4)] == "=$C$3*inputs!A2+$C$4"


def test_a_far_cell_costs_one_cell(tmp_path):
    """A sheet the scan leaves to openpyxl (ISO dates), with one cell at XFD1048576: read as
    the cells there are, not as the 17 billion of its bounding box."""
    book = line_fit(tmp_path / "book.xlsx")
    wb = openpyxl.load_workbook(book)
    notes = wb.create_sheet("notes")
    notes["A1"] = __import__("datetime").datetime(2026, 11, 27)
    notes["XFD1048576"] = "the far corner"
    wb.iso_dates = True  # t="d": a form the scan leaves to openpyxl
    wb.save(book)
    with zipfile.ZipFile(book) as z:
        assert b't="d"' in z.read("xl/worksheets/sheet3.xml")
    sheet = read_book(book).sheets["notes"]
    assert sheet.values == {(0, 0): 46353.0, (1048575, 16383): "the far corner"}
    (result,) = fit(book, epochs=50, lr=0.5)
    assert result.final_loss < result.initial_loss


def test_losses_are_kept_at_bounded_resolution():
    kept = Losses(limit=64)
    kept.extend([float(i) for i in range(10_000)])
    assert kept.count == 10_000 and len(kept.kept) <= 64
    assert kept.every == 256 and kept.kept == [float(i * 256) for i in range(len(kept.kept))]
    assert kept.kept[-1] == 9984.0 and kept.last == 9999.0  # the last loss: counted, not kept


def test_a_long_fit_keeps_every_epochs_loss_up_to_the_bound(tmp_path, monkeypatch):
    import excelnet.fitting.train

    (model,) = compile_models(read_book(build_quadratic(tmp_path / "q.xlsx")))
    start = [p.detach().clone() for p in model.parameters()]
    full = train(model, FitOptions(epochs=3000, lr=0.01, history=False, compiled=False))
    monkeypatch.setattr(excelnet.fitting.train, "LOSS_POINTS", 100)
    for p, s in zip(model.parameters(), start, strict=True):
        p.data.copy_(s)
    thin = train(model, FitOptions(epochs=3000, lr=0.01, history=False, compiled=False))
    assert full.epochs == thin.epochs == 3000 and len(full.losses) == 3000
    assert len(thin.losses) <= 100 and thin.loss_every == 32
    assert thin.losses == full.losses[::32]
    assert thin.loss_epochs[-1] == 2976 and thin.final_loss == full.final_loss


def test_a_fit_of_a_trillion_epochs_stops_on_ctrl_c_keeping_the_best_point(tmp_path):
    """Ctrl-C as Esc in Excel's Solver (issue 22): the fit stops, the best point so far is
    written (atomically: no temporary file left), exit code 130."""
    book = build_quadratic(tmp_path / "q.xlsx")
    before = book.read_bytes()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "excelnet",
            "fit",
            book,
            "--epochs",
            "1e12",
            "--engine",
            "eager",
            "--method",
            "gd",
        ],  # gd's own step runs until stopped (lbfgs would converge)
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    said = [proc.stderr.readline()]  # imported, read, compiled: training, and said so
    assert said[0].startswith("excelnet: fitting quadratic: epoch"), said
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = said + err.strip().splitlines()
    last = "excelnet: interrupted: wrote the best point found so far (Ctrl-C)"
    assert proc.returncode == 130 and lines[-1] == last, lines
    assert all(line.startswith("excelnet: fitting quadratic: epoch") for line in lines[:-1])
    assert book.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.xlsx"]


def parts(path: Path, count: int) -> Path:
    """A model of `count` parameters, each its own part of solver_adj (A1,A2,…)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "m"
    for i in range(count):
        ws.cell(i + 1, 1, 0.0)
        ws.cell(i + 1, 2, float(i % 7))
    ws["D1"] = f"=SUMXMY2(A1:A{count},B1:B{count})/{count}"
    adj = ",".join(f"m!$A${i + 1}" for i in range(count))
    for name, text in (("solver_opt", "m!$D$1"), ("solver_adj", adj), ("solver_typ", "2")):
        ws.defined_names[name] = DefinedName(name, attr_text=text, localSheetId=0)
    wb.save(path)
    return path


@pytest.mark.parametrize(
    "book, method, epochs, pays",
    [
        ("2000 parts", "gd", 1000, False),  # compiling ~9 min would not pay off 1000 eager steps
        ("quadratic", "gd", 1000, False),  # a tiny model: eager steps take a fraction of a second
        ("titanic nn", "gd", 1_000_000, True),  # a long fit of a small step: seconds once pay
        ("titanic nn", "lbfgs", 1_000_000, False),  # L-BFGS stops after some hundred iterations
    ],
)
def test_torch_compile_is_used_where_it_pays(tmp_path, titanic_book, book, method, epochs, pays):
    path = {
        "2000 parts": lambda: parts(tmp_path / "p.xlsx", 2000),
        "quadratic": lambda: build_quadratic(tmp_path / "q.xlsx"),
        "titanic nn": lambda: titanic_book,
    }[book]()
    sheet = "nn" if book == "titanic nn" else None
    (model,) = compile_models(read_book(path, sheet), sheet)
    problem = Problem(model)
    choice = choose(problem, problem.start(), method, epochs, None)
    assert (choice.engine == "compiled") is pays, choice.reason
