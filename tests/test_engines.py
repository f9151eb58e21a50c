"""The training engines: the compiled CPU step is the eager step, number for number, and a
computation it cannot trace runs eagerly instead."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from excelnet.fitting.options import FitOptions
from excelnet.fitting.pipeline import compile_models, fit
from excelnet.fitting.train import train
from excelnet.xlsx.read import read_book
from tests.conftest import cli, run_cli
from tests.handmade import solver_names

ROOT = Path(__file__).resolve().parents[1]


def _both(path, sheet: str, **kw):
    book = read_book(path)
    runs = {}
    for compiled in (False, True):
        (model,) = compile_models(book, sheet)
        runs[compiled] = train(model, FitOptions(compiled=compiled, **kw))
    return runs[False], runs[True]


@pytest.mark.parametrize("sheet", ["nn", "mmult"])
def test_compiled_steps_equal_eager_steps(titanic_book, sheet):
    eager, compiled = _both(titanic_book, sheet, epochs=200, lr=0.1)
    assert (eager.engine, compiled.engine) == ("eager", "compiled")
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=1e-9)
    assert compiled.params.keys() == eager.params.keys()
    np.testing.assert_allclose(
        list(compiled.params.values()), list(eager.params.values()), rtol=1e-9, atol=1e-12
    )
    assert compiled.final_loss == pytest.approx(eager.final_loss, rel=1e-9)
    assert len(compiled.history) == len(eager.history)
    for row, want in zip(compiled.history, eager.history, strict=True):  # (epoch, loss, …)
        assert [v is None for v in row] == [v is None for v in want]
        assert [v for v in row if v is not None] == pytest.approx(
            [v for v in want if v is not None], rel=1e-9
        )


def test_compiled_divergence_keeps_the_same_parameters(titanic_book):
    eager, compiled = _both(titanic_book, "linear", epochs=200, lr=5.0, history=False)
    assert compiled.engine == "compiled" and eager.diverged is not None
    assert compiled.diverged == eager.diverged
    assert compiled.epochs == eager.epochs < 200
    np.testing.assert_allclose(
        list(compiled.params.values()), list(eager.params.values()), rtol=1e-9
    )


def test_a_compiled_fit_is_what_libreoffice_computes(titanic_book, tmp_path, recalc):
    book = shutil.copy(titanic_book, tmp_path / "t.xlsx")
    (r,) = fit(book, sheet="nn", epochs=300, compiled=True, history=False)
    assert r.engine == "compiled"
    (lo,) = recalc([book])
    assert openpyxl.load_workbook(lo, data_only=True)["nn"]["M2"].value == pytest.approx(
        r.final_loss, rel=1e-9
    )


def test_short_fits_stay_eager(titanic_book):
    (model,) = compile_models(read_book(titanic_book), "nn")
    assert train(model, FitOptions(epochs=20)).engine == "eager"


@pytest.mark.parametrize("name", ["quadratic", "relu", "double-relu", "titanic"])
def test_short_lbfgs_fits_of_small_models_run_eagerly(name):
    """Every model of the committed workbooks, fitted as `excelnet fit` does by default (L-BFGS,
    1000 iterations allowed, that it stops well short of): eager, with the reason."""
    from excelnet.fitting.choice import choose
    from excelnet.fitting.problem import Problem

    options = FitOptions()
    for model in compile_models(read_book(ROOT / "workbooks" / f"{name}.xlsx")):
        problem = Problem(model)
        c = choose(problem, problem.start(), options.chosen_method, options.epochs, None)
        assert c.engine == "eager", (model.solver.sheet, c.reason)
        assert "L-BFGS iterations" in c.reason and "it stops early" in c.reason
        assert c.eager_seconds * 10 < c.compiled_seconds


def test_the_choice_and_its_reason_in_json(tmp_path, capsys):
    book = shutil.copy(ROOT / "workbooks" / "quadratic.xlsx", tmp_path / "q.xlsx")
    code, out, err = cli(capsys, "fit", book, "--json", "-q", "--no-history")
    assert code == 0, err
    (r,) = json.loads(out)["fits"]
    assert (r["engine"], r["engine_choice"]) == ("eager", "eager")
    assert "eager" in r["engine_reason"] and "compiling" in r["engine_reason"]
    code, out, err = cli(capsys, "fit", book, "--json", "-q", "--no-history", "--engine", "eager")
    assert json.loads(out)["fits"][0]["engine_reason"].startswith("asked for (--engine eager")


def test_the_choice_is_not_timed(titanic_book, monkeypatch):
    """A busy machine (every evaluation slow) leaves the choice as it is: it is predicted from
    the model's operation counts and sizes, not timed."""
    from excelnet.fitting import optimisers
    from excelnet.fitting.choice import choose
    from excelnet.fitting.problem import Problem

    (model,) = compile_models(read_book(titanic_book, "nn"), "nn")
    problem = Problem(model)
    calm = choose(problem, problem.start(), "lbfgs", 1000, None)
    slow = optimisers.evaluate

    def busy(*args, **kwargs):
        time.sleep(0.05)
        return slow(*args, **kwargs)

    monkeypatch.setattr(optimisers, "evaluate", busy)
    loaded = choose(problem, problem.start(), "lbfgs", 1000, None)
    assert loaded == calm and calm.engine == "eager"
    assert calm.evaluations < 1000 * 1.5  # L-BFGS stops early on 20 parameters
    long = choose(problem, problem.start(), "gd", 1_000_000, None)
    assert long.engine == "compiled" and long.compiled_seconds < long.eager_seconds


def test_the_choice_knows_the_compile_cache(titanic_book, tmp_path, monkeypatch):
    """A structure compiled before (its marker beside torch's cache entries) costs less to
    compile again; the reason says which state it assumed."""
    from excelnet.fitting import choice
    from excelnet.fitting.problem import Problem

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(choice, "_here", set())
    (model,) = compile_models(read_book(titanic_book, "nn"), "nn")
    problem = Problem(model)
    size = choice.size(problem, problem.start())
    assert size == choice.size(problem, problem.start())  # the same structure, the same key
    cold, state = choice.compile_seconds(size)
    assert "torch.compile" in state or "nothing" in state
    (tmp_path / "cache" / "fxgraph").mkdir(parents=True)
    choice.remember(size.key)
    assert choice.cached(size.key)
    monkeypatch.setattr(choice, "_here", set())  # as a new process finds it
    cached, state = choice.compile_seconds(size)
    assert cached < cold and state == "in torch's compile cache"


def test_a_step_that_depends_on_the_numbers_runs_eagerly(tmp_path):
    """IF choosing between a number and text: which cells are text depends on the parameter,
    so the step cannot be one fixed program; SUM skips the text cells."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "m"
    ws["E1"] = 0.5
    for i in range(2, 22):
        x = (i - 2) / 19
        ws[f"A{i}"], ws[f"B{i}"] = x, 3 * x - 1
        ws[f"C{i}"] = f'=IF($E$1*A{i}<2,($E$1*A{i}-B{i})^2,"big")'
    ws["E2"] = "=SUM(C2:C21)/20"
    solver_names(wb, "m", "m!$E$2", "m!$E$1")
    wb.save(tmp_path / "if.xlsx")
    eager, compiled = _both(tmp_path / "if.xlsx", "m", epochs=50, lr=0.1)
    assert compiled.engine == "eager"
    assert compiled.losses == eager.losses and compiled.final_loss < compiled.initial_loss


def test_cli_engine_flag(titanic_book, tmp_path):
    book = shutil.copy(titanic_book, tmp_path / "t.xlsx")
    runs = {}
    for engine in ("eager", "compiled"):
        run = run_cli(
            "fit",
            book,
            "--sheet",
            "nn",
            "--epochs",
            40,
            "--engine",
            engine,
            "--json",
            "--no-history",
            "--out",
            tmp_path / f"{engine}.xlsx",
        )
        assert run.returncode == 0, run.stderr
        (runs[engine],) = json.loads(run.stdout)["fits"]
    assert [runs[e]["engine"] for e in ("eager", "compiled")] == ["eager", "compiled"]
    assert runs["compiled"]["final_loss"] == pytest.approx(runs["eager"]["final_loss"], rel=1e-9)
    bad = run_cli("fit", book, "--engine", "fast")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_threads_by_size(titanic_book, monkeypatch):
    """A small step runs on one thread (a second costs more than it saves); a fit leaves the
    process's setting as it found it; a large model gets torch's own number."""
    import torch

    from excelnet.fitting import engines, optimisers

    (model,) = compile_models(read_book(titanic_book, "nn"), "nn")
    assert engines.threads_for(model) == 1
    seen = []
    before = torch.get_num_threads()
    monkeypatch.setattr(optimisers, "evaluate", _counting(optimisers.evaluate, seen))
    train(model, FitOptions(epochs=3, lr=0.1, compiled=False))
    assert set(seen) == {1} and torch.get_num_threads() == before
    monkeypatch.setattr(engines, "PARALLEL", 100)  # as if its columns were 100,000 rows
    assert engines.threads_for(model) == engines.THREADS


def _counting(evaluate, seen: list):
    import torch

    def run(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return evaluate(*args, **kwargs)

    return run


def test_history_rows_are_the_strict_evaluation(titanic_book):
    """A history row's validation loss and accuracy come from only the blocks they need, run
    without error bookkeeping: the same numbers a full strict evaluation gives there."""
    from excelnet.fitting.pipeline import metric_cells
    from excelnet.fitting.problem import Problem

    book = read_book(titanic_book, "nn")
    (model,) = compile_models(book, "nn")
    cells = [metric_cells(book, "nn")[k] for k in ("valid_loss", "accuracy")]
    problem = Problem(model)
    x = problem.start() * 0.9
    problem.restore(x)
    quick = model.glance(cells)
    assert len(model._glances[tuple(cells)]) < len(model.report_blocks)
    model.evaluate()
    assert quick == [pytest.approx(model.value_at(*c), rel=1e-12) for c in cells]
    assert all(isinstance(v, float) for v in quick)
