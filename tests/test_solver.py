"""Solver parity: every option of a Solver model honoured (Max, Min, Value Of, solver_neg,
bounds, general constraints), non-linear integer models refused by GRG, steps nobody has to
pick, and a fit never worse than its start. The workbooks are made in LibreOffice over UNO, as
a person would make them (tests/lo_make.py), with the Solver names Excel stores; LibreOffice's
recalculation of each fitted file is the oracle for the objective and the constraints."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName
from scipy.optimize import lsq_linear, minimize

import excelnet
from excelnet.errors import ExcelnetError, NotSolved
from excelnet.fitting.options import FitOptions
from tests.conftest import run_cli
from tests.solver_models import GRG, model_names

HERE = Path(__file__).parent
N = 20
# What Excel 2010+ stores besides the model itself, for a GRG Nonlinear model with defaults
EXCEL_DEFAULTS = GRG
COV = np.array(
    [
        [0.040, 0.006, 0.010, 0.004],
        [0.006, 0.090, 0.012, 0.018],
        [0.010, 0.012, 0.160, 0.030],
        [0.004, 0.018, 0.030, 0.250],
    ]
)
RETURNS = np.array([0.05, 0.08, 0.12, 0.15])


def _solver(objective: str, adjustable: str, typ: int, neg: int, rows=(), **more) -> dict:
    """A sheet's Solver names as Excel writes them: the model, its constraints, the defaults."""
    return model_names(objective, adjustable, typ, neg, rows, EXCEL_DEFAULTS, **more)


def _line_data(seed: int, f) -> tuple[np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, N)
    y = f(x) + rng.normal(0, 0.05, N)
    cells = {"A1": "x", "B1": "y"}
    for i in range(N):
        cells[f"A{i + 2}"], cells[f"B{i + 2}"] = float(x[i]), float(y[i])
    return x, y, cells


def _regression(terms: list[str], start: list[float]) -> dict:
    """Parameters in B1:B(k), a prediction per data row in column D, the loss in B6."""
    cells = {}
    for i, (name, s) in enumerate(zip(terms, start, strict=True), start=1):
        cells[f"A{i}"], cells[f"B{i}"] = name, s
    cells["A6"], cells["D1"] = "mean squared error", "prediction"
    cells["B6"] = f"=SUMXMY2(D2:D{N + 1},data!B2:B{N + 1})/{N}"
    for r in range(2, N + 2):
        x = f"data!A{r}"
        cells[f"D{r}"] = "=" + "+".join(
            {"slope": f"$B$1*{x}", "intercept": "$B$2", "curve": f"$B$3*{x}^2"}[t] for t in terms
        )
    return cells


def specs(d: Path, quadratic: Path) -> dict[str, dict]:
    x, y, data = _line_data(3, lambda x: 3 * x - 2)
    bounds = {
        "path": str(d / "bounds.xlsx"),
        "sheets": {"Model": _regression(["slope", "intercept"], [0.5, 0.0]), "data": data},
        "names": {
            "Model": _solver(
                "Model!$B$6",
                "Model!$B$1:$B$2",
                2,
                2,
                [("Model!$B$1:$B$2", 1, "1"), ("Model!$B$1:$B$2", 3, "-1")],
            )
        },
    }
    _, _, data2 = _line_data(4, lambda x: 1 - 2 * x - 0.5 * x**2)
    nonneg = {
        "path": str(d / "nonneg.xlsx"),
        "sheets": {"Model": _regression(["slope", "intercept", "curve"], [1, 1, 1]), "data": data2},
        "names": {
            "Model": _solver("Model!$B$6", "Model!$B$1:$B$3", 2, 1, [("Model!$B$1", 3, "-5")])
        },
    }
    maximum = {
        "path": str(d / "max.xlsx"),
        "sheets": {
            "Plan": {
                "A1": "x",
                "B1": 0.5,
                "A2": "y",
                "B2": 0.5,
                "A4": "profit",
                "B4": "=10-(B1-3)^2-(B2-1)^2",
                "A5": "x + y",
                "B5": "=B1+B2",
            }
        },
        "names": {"Plan": _solver("Plan!$B$4", "Plan!$B$1:$B$2", 1, 1, [("Plan!$B$5", 1, "2")])},
    }
    value = {
        "path": str(d / "value.xlsx"),
        "sheets": {"Goal": {"B1": 1, "B2": 1, "A4": "B1² + B2", "B4": "=B1^2+B2"}},
        "names": {"Goal": _solver("Goal!$B$4", "Goal!$B$1:$B$2", 3, 2, solver_val="7")},
    }
    market = {
        "A1": "covariance",
        "G1": "expected return",
        "H1": "target",
        "I1": "=AVERAGE(G2:G5)*1.1",
    }
    model = {"A1": "asset", "B1": "weight", "C1": "covariance × weights"}
    for i in range(4):
        for j in range(4):
            market[f"{'BCDE'[j]}{i + 2}"] = float(COV[i, j])
        market[f"G{i + 2}"] = float(RETURNS[i])
        model[f"A{i + 2}"], model[f"B{i + 2}"] = f"asset {i + 1}", 0.25
        col = "BCDE"[i]
        model[f"C{i + 2}"] = f"=SUMPRODUCT(market!${col}$2:${col}$5,$B$2:$B$5)"
    model.update(
        {
            "A7": "variance",
            "B7": "=SUMPRODUCT(B2:B5,C2:C5)",
            "A8": "return",
            "B8": "=SUMPRODUCT(B2:B5,market!G2:G5)",
            "A9": "total",
            "B9": "=SUM(B2:B5)",
        }
    )
    portfolio = {
        "path": str(d / "portfolio.xlsx"),
        "sheets": {"Portfolio": model, "market": market},
        "names": {
            "Portfolio": _solver(
                "Portfolio!$B$7",
                "Portfolio!$B$2:$B$5",
                2,
                1,
                [("Portfolio!$B$9", 2, "1"), ("Portfolio!$B$8", 3, "market!$I$1")],
            )
        },
    }
    integer = {
        "path": str(d / "integer.xlsx"),
        "sheets": bounds["sheets"],
        "names": {
            "Model": _solver(
                "Model!$B$6",
                "Model!$B$1:$B$2",
                2,
                2,
                [("Model!$B$1:$B$2", 1, "1"), ("Model!$B$1", 4, '"integer"')],
            )
        },
    }
    # the lesson's quadratic, a cubic term added by hand: d in B5, + d·x³ in every prediction
    cubic_cells = {"A5": "d", "B5": 1.0}
    for r in range(11, 31):
        cubic_cells[f"C{r}"] = f"=$B$2*A{r}^2+$B$3*A{r}+$B$4+$B$5*A{r}^3"
    cubic = {
        "path": str(d / "cubic.xlsx"),
        "open": str(quadratic),
        "sheets": {"quadratic": cubic_cells},
        "names": {
            "quadratic": {
                "solver_adj": "quadratic!$B$2:$B$5",
                "excelnet_gradients": "quadratic!$C$2:$C$5",
            }
        },
    }
    return {
        "bounds": bounds,
        "nonneg": nonneg,
        "max": maximum,
        "value": value,
        "portfolio": portfolio,
        "integer": integer,
        "cubic": cubic,
    }


@pytest.fixture(scope="module")
def books(tmp_path_factory, recalc) -> dict[str, Path]:
    """Every workbook of this file, made in one LibreOffice start."""
    d = tmp_path_factory.mktemp("made")
    quadratic = excelnet.build_quadratic(d / "quadratic.xlsx")
    todo = specs(d, quadratic)
    (d / "spec.json").write_text(json.dumps(list(todo.values())))
    run = subprocess.run(
        ["/usr/bin/python3", str(HERE / "lo_make.py"), str(d / "spec.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return {k: Path(v["path"]) for k, v in todo.items()}


@pytest.fixture(scope="module")
def fitted(books, tmp_path_factory, recalc):
    """Each proof workbook fitted with the defaults, and LibreOffice's recalculation of it."""
    d = tmp_path_factory.mktemp("fitted")
    out, results = {}, {}
    for key in ("bounds", "nonneg", "max", "value", "portfolio", "cubic"):
        out[key] = shutil.copy(books[key], d / f"{key}.xlsx")
        (results[key],) = excelnet.fit(out[key])
    lo = dict(zip(out, recalc(list(out.values())), strict=True))
    return results, out, lo


def _lo(lo: dict, key: str, sheet: str):
    return openpyxl.load_workbook(lo[key], data_only=True)[sheet]


def _constraints_hold(book: Path, lo_book: Path, sheet: str) -> None:
    """Every constraint of the Solver model, checked on LibreOffice's recalculated values."""
    names = openpyxl.load_workbook(book)[sheet].defined_names
    values = openpyxl.load_workbook(lo_book, data_only=True)

    def refs(text: str) -> list[tuple[str, str]]:
        ws_name, ref = text.replace("'", "").replace("$", "").split("!")
        got = values[ws_name][ref]
        rows = got if isinstance(got, tuple) else ((got,),)
        return [(ws_name, c.coordinate) for row in rows for c in row]

    def cells(text: str) -> np.ndarray:
        try:
            return np.array([float(text)])
        except ValueError:
            return np.array([values[s][c].value for s, c in refs(text)], dtype=float)

    explicit = set()  # cells with a lower bound of their own: solver_neg leaves them alone
    for i in range(1, int(names["solver_num"].attr_text) + 1):
        lhs = cells(names[f"solver_lhs{i}"].attr_text)
        rhs = cells(names[f"solver_rhs{i}"].attr_text)
        rel = names[f"solver_rel{i}"].attr_text
        gap = {"1": lhs - rhs, "2": np.abs(lhs - rhs), "3": rhs - lhs}[rel]
        assert gap.max() <= 1e-6, (sheet, i, lhs, rhs)
        if rel in ("2", "3"):
            explicit |= set(refs(names[f"solver_lhs{i}"].attr_text))
    if names["solver_neg"].attr_text == "1":
        for s, c in refs(names["solver_adj"].attr_text):
            assert (s, c) in explicit or values[s][c].value >= -1e-6, c


@pytest.mark.parametrize(
    "key,sheet,cell",
    [
        ("bounds", "Model", "B6"),
        ("nonneg", "Model", "B6"),
        ("max", "Plan", "B4"),
        ("value", "Goal", "B4"),
        ("portfolio", "Portfolio", "B7"),
        ("cubic", "quadratic", "B7"),
    ],
)
def test_libreoffice_agrees_and_constraints_hold(fitted, books, key, sheet, cell):
    results, out, lo = fitted
    r = results[key]
    assert _lo(lo, key, sheet)[cell].value == pytest.approx(r.final_loss, rel=1e-9, abs=1e-12)
    _constraints_hold(out[key], lo[key], sheet)
    assert r.max_violation is None or r.max_violation <= 1e-6
    assert r.method == "lbfgs" and r.diverged is None


def test_bounds_reach_the_constrained_least_squares(fitted):
    results, out, _ = fitted
    ws = openpyxl.load_workbook(out["bounds"], data_only=True)
    x = np.array([ws["data"][f"A{r}"].value for r in range(2, N + 2)])
    y = np.array([ws["data"][f"B{r}"].value for r in range(2, N + 2)])
    best = lsq_linear(np.stack([x, np.ones(N)], 1), y, bounds=(-1, 1), tol=1e-12)
    fitted_params = [ws["Model"]["B1"].value, ws["Model"]["B2"].value]
    np.testing.assert_allclose(fitted_params, best.x, atol=1e-7)
    assert results["bounds"].final_loss == pytest.approx(2 * best.cost / N, rel=1e-9)
    assert results["bounds"].constraints == 2
    assert "bound, by projection" in " ".join(results["bounds"].honoured)


def test_nonnegative_leaves_explicit_lower_bounds_alone(fitted):
    results, out, _ = fitted
    ws = openpyxl.load_workbook(out["nonneg"], data_only=True)
    x = np.array([ws["data"][f"A{r}"].value for r in range(2, N + 2)])
    y = np.array([ws["data"][f"B{r}"].value for r in range(2, N + 2)])
    best = lsq_linear(np.stack([x, np.ones(N), x**2], 1), y, bounds=([-5, 0, 0], np.inf), tol=1e-12)
    assert best.x[0] < 0 and abs(best.x[2]) < 1e-12  # the slope may go negative; the curve not
    got = [ws["Model"][f"B{i}"].value for i in (1, 2, 3)]
    np.testing.assert_allclose(got, best.x, atol=1e-6)
    assert results["nonneg"].final_loss == pytest.approx(2 * best.cost / N, rel=1e-8)
    assert any("solver_neg = 1" in h for h in results["nonneg"].honoured)


def test_max_and_value_of(fitted):
    results, out, _ = fitted
    r = results["max"]
    assert r.goal == "maximise Plan!B4" and r.final_loss > r.initial_loss
    assert r.final_loss == pytest.approx(8.0, abs=1e-6)  # at x = 2, y = 0: on x + y <= 2
    plan = openpyxl.load_workbook(out["max"], data_only=True)["Plan"]
    assert (plan["B1"].value, plan["B2"].value) == pytest.approx((2, 0), abs=1e-5)
    v = results["value"]
    assert v.goal == "drive Goal!B4 to 7 (value of)"
    assert v.final_loss == pytest.approx(7.0, abs=1e-9)


def test_portfolio_matches_slsqp(fitted):
    results, out, _ = fitted
    target = RETURNS.mean() * 1.1
    ref = minimize(
        lambda w: w @ COV @ w,
        np.full(4, 0.25),
        jac=lambda w: 2 * COV @ w,
        method="SLSQP",
        bounds=[(0, None)] * 4,
        options={"ftol": 1e-15, "maxiter": 500},
        constraints=[
            {"type": "eq", "fun": lambda w: w.sum() - 1},
            {"type": "ineq", "fun": lambda w: w @ RETURNS - target},
        ],
    )
    assert ref.success
    r = results["portfolio"]
    assert r.final_loss == pytest.approx(ref.fun, rel=1e-6)
    weights = openpyxl.load_workbook(out["portfolio"], data_only=True)["Portfolio"]
    np.testing.assert_allclose([weights[f"B{i}"].value for i in range(2, 6)], ref.x, atol=1e-4)
    assert r.constraints == 2 and r.max_violation <= 1e-6
    assert set(r.violations) == {"solver_lhs1", "solver_lhs2", "solver_neg"}


def test_cubic_default_fit_reaches_the_least_squares_optimum(fitted):
    results, out, _ = fitted
    r = results["cubic"]
    ws = openpyxl.load_workbook(out["cubic"], data_only=True)["quadratic"]
    x = np.array([ws[f"A{r}"].value for r in range(11, 31)])
    y = np.array([ws[f"B{r}"].value for r in range(11, 31)])
    features = np.stack([x**2, x, np.ones_like(x), x**3], 1)
    w = np.linalg.lstsq(features, y, rcond=None)[0]
    optimum = ((features @ w - y) ** 2).mean()
    assert optimum == pytest.approx(0.98, abs=0.01)
    assert r.final_loss <= 1.03 and r.final_loss == pytest.approx(optimum, rel=1e-9)


def test_a_diverging_fixed_step_keeps_the_best_parameters_seen(books, tmp_path):
    """The lesson's fixed step 0.1 diverges on the cubic; the workbook is left no worse."""
    book = shutil.copy(books["cubic"], tmp_path / "c.xlsx")
    (r,) = excelnet.fit(book, lr=0.1, history=False)
    assert r.method == "gd" and "learning rate smaller than 0.1" in r.diverged and r.lr == 0.1
    assert r.final_loss <= r.initial_loss and r.final_loss == min([r.initial_loss, *r.losses])
    cached = openpyxl.load_workbook(book, data_only=True)["quadratic"]
    assert cached["B7"].value == pytest.approx(r.final_loss, rel=1e-12)


def test_gd_finds_its_own_step(books, tmp_path):
    book = shutil.copy(books["cubic"], tmp_path / "c.xlsx")
    (r,) = excelnet.fit(book, method="gd", history=False)
    assert r.diverged is None and r.final_loss <= 1.03
    pairs = zip(r.losses, r.losses[1:], strict=False)
    assert 0 < r.lr < 1 and all(b <= a * (1 + 1e-9) for a, b in pairs)


@pytest.mark.parametrize("method", ["gd", "adam", "lbfgs"])
def test_every_method_keeps_bounds_and_improves(books, tmp_path, method):
    book = shutil.copy(books["bounds"], tmp_path / "b.xlsx")
    (r,) = excelnet.fit(book, method=method, history=False, epochs=300)
    assert r.method == method and r.final_loss < r.initial_loss
    assert all(-1 <= v <= 1 for v in r.params.values())
    assert r.final_loss == min([r.initial_loss, *r.losses]) or method == "lbfgs"


def test_non_linear_integer_models_are_refused(books, tmp_path):
    """An int row on a least-squares model: HiGHS's branch and bound needs a linear model, and
    GRG solves no integer models (the Evolutionary method would, given bounds)."""
    book = shutil.copy(books["integer"], tmp_path / "i.xlsx")
    before = book.read_bytes()
    run = run_cli("fit", book)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "(an integer model), and the model is not" in run.stderr
    assert "GRG (lbfgs) does not" in run.stderr and "--method evolutionary" in run.stderr
    assert "solver_rel2" in run.stderr and book.read_bytes() == before


def test_json_and_summary_list_what_was_honoured(books, tmp_path):
    book = shutil.copy(books["portfolio"], tmp_path / "p.xlsx")
    run = run_cli("fit", book, "--json")
    assert run.returncode == 0, run.stderr
    (r,) = json.loads(run.stdout)["fits"]
    assert r["method"] == "lbfgs" and r["constraints"] == 2 and r["max_violation"] <= 1e-6
    assert any("solver_lhs1: Portfolio!B9 = 1" in h for h in r["honoured"])
    assert "solver_drv" in r["ignored"] and "solver_pre" not in r["ignored"]
    assert "solver_eng" not in r["ignored"]  # it picked the method: GRG's place, lbfgs
    run = run_cli("fit", book, "--method", "adam", "--epochs", "200")
    assert run.returncode == 0, run.stderr
    words = " ".join(run.stdout.split())  # the table and lines may wrap
    assert "2 constraints and solver_neg, max violation" in words, words
    assert "adam ended with step 0.01" in words


def test_history_and_compare_record_method_and_constraints(books, tmp_path):
    book = shutil.copy(books["portfolio"], tmp_path / "p.xlsx")
    with pytest.raises(NotSolved):  # 100 steps of gd do not meet the constraints
        excelnet.fit(book, method="gd", epochs=100, options=FitOptions(keep_infeasible=True))
    excelnet.compare(book, epochs=100)
    wb = openpyxl.load_workbook(book)
    history = [[c.value for c in row] for row in wb["history"].iter_rows()]
    assert history[0] == [
        f"Portfolio {s}"
        for s in (
            "epoch",
            "training loss",
            "validation loss",
            "accuracy",
            "method",
            "max violation",
        )
    ]
    methods = [row[4] for row in history[1:]]
    assert "gd" in methods and "lbfgs" in methods
    assert all(isinstance(row[5], float) for row in history[1:] if row[1] is not None)
    compare = [[c.value for c in row] for row in wb["compare"].iter_rows()]
    assert compare[0][6:] == ["method", "constraints", "max violation"]
    assert compare[1][6:8] == ["lbfgs", 2] and compare[1][8] <= 1e-6


def _names(book: Path, tmp_path: Path, **edits) -> Path:
    """A copy of a workbook with some of its Model sheet's Solver names changed (None: gone)."""
    out = shutil.copy(book, tmp_path / "bad.xlsx")
    wb = openpyxl.load_workbook(out)
    ws = wb["Model"]
    for key, text in edits.items():
        if key in ws.defined_names:
            del ws.defined_names[key]
        if text is not None:
            ws.defined_names[key] = DefinedName(key, attr_text=text, localSheetId=0)
    if "Model_C1" in edits:
        del ws.defined_names["Model_C1"]
    ws["C1"] = "abc"
    wb.save(out)
    return out


BAD = {
    "missing sheet": ({"solver_lhs1": "Gone!$B$1"}, "solver_lhs1 refers to a missing sheet 'Gone'"),
    "rhs on a missing sheet": (
        {"solver_rhs1": "Gone!$A$1"},
        "solver_rhs1 refers to a missing sheet 'Gone'",
    ),
    "rhs text": ({"solver_rhs1": '"abc"'}, "solver_rhs1 is the text 'abc'"),
    "rhs error": ({"solver_rhs1": "#N/A"}, "solver_rhs1 is the error value #N/A"),
    "rhs cell holds text": ({"solver_rhs1": "Model!$C$1"}, "solver_rhs1 holds text 'abc'"),
    "solver_num too big": ({"solver_num": "3"}, "solver_num is 3 but solver_lhs3 is missing"),
    "relation code": ({"solver_rel2": "7"}, "solver_rel2 is '7', not a relation code 1-6"),
    "goal": ({"solver_typ": "4"}, "solver_typ is '4'"),
    "empty bounds": ({"solver_rhs2": "2"}, "no value of Model!B1 satisfies its bounds"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_solver_names_are_refused_in_one_line(books, tmp_path, case):
    edits, words = BAD[case]
    book = _names(books["bounds"], tmp_path, **edits)
    before = book.read_bytes()
    with pytest.raises(ExcelnetError) as e:
        excelnet.fit(book)
    message = str(e.value)
    assert "\n" not in message and "bad.xlsx" in message and "sheet Model" in message
    assert words in message, message
    assert book.read_bytes() == before


def test_bad_names_exit_2_from_the_command_line(books, tmp_path):
    book = _names(books["bounds"], tmp_path, solver_rel2="9")
    before = book.read_bytes()
    run = run_cli("fit", book)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "solver_rel2" in run.stderr
    assert "Traceback" not in run.stderr and book.read_bytes() == before


def _fitted(book: Path, **knobs):
    """The one model's result, written or not: a few hundred steps of gd may end short of
    the constraints (NotSolved, the file unchanged)."""
    try:
        return excelnet.fit(book, **knobs)[0]
    except NotSolved as e:
        return e.results[0]


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("method", ["gd", "adam", "lbfgs"])
def test_cuda_runs_every_method_as_the_cpu_does(books, tmp_path, method):
    """One captured CUDA graph per step (gd, adam) or per evaluation (lbfgs), constraints
    included: the same fit as on the CPU."""
    a, b = (
        _fitted(
            shutil.copy(books["portfolio"], tmp_path / f"{d}.xlsx"),
            method=method,
            epochs=300,
            device=d,
            history=False,
        )
        for d in ("cpu", "cuda")
    )
    assert b.engine == "cuda graph", b.engine_note
    assert b.final_loss == pytest.approx(a.final_loss, rel=1e-6)
    assert b.max_violation == pytest.approx(a.max_violation, abs=1e-7)


@pytest.mark.parametrize("method", ["gd", "lbfgs"])  # adam's step is gd's, scaled
def test_the_compiled_engine_runs_the_methods_as_eager_steps_do(books, tmp_path, method):
    """Bounds, general constraints and each method's bookkeeping (gd's own step, the best
    seen), traced and fused by torch.compile: the same fit, number for number."""
    eager, compiled = (
        _fitted(
            shutil.copy(books["portfolio"], tmp_path / f"{c}.xlsx"),
            method=method,
            epochs=200,
            compiled=c,
            history=False,
        )
        for c in (False, True)
    )
    assert (eager.engine, compiled.engine) == ("eager", "compiled"), compiled.engine_note
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=1e-9)
    assert compiled.final_loss == pytest.approx(eager.final_loss, rel=1e-9)
    assert compiled.best_epoch == eager.best_epoch


def test_a_history_sheet_of_four_columns_is_carried_on(books, tmp_path):
    """History sheets written before methods and constraints were recorded keep their rows."""
    from excelnet.xlsx.sheets import Changes, render
    from excelnet.xlsx.writeback import write_values

    book = shutil.copy(books["bounds"], tmp_path / "h.xlsx")
    old = [f"Model {s}" for s in ("epoch", "training loss", "validation loss", "accuracy")]

    def chart(wb):
        ch = wb.add_chart({"type": "scatter"})
        ch.add_series({"categories": ["history", 1, 0, 2, 0], "values": ["history", 1, 1, 2, 1]})
        return ch

    changes = Changes()
    changes.place(book, "history", render("history", old, [[0.0, 10.0], [1.2, 0.9]], chart))
    write_values(book, {}, extra=changes.extra, replace=changes.replace)
    (r,) = excelnet.fit(book)
    rows = list(openpyxl.load_workbook(book)["history"].iter_rows(values_only=True))
    assert rows[0] == (*old, "Model method", "Model max violation")
    assert rows[1][:2] == (0, 1.2) and rows[2][:2] == (10, 0.9) and rows[2][4] is None
    assert rows[3][4] == "lbfgs" and rows[-1][0] == 10 + r.epochs
    assert rows[-1][1] == pytest.approx(r.final_loss) and rows[-1][5] <= 1e-6
