"""Simplex LP as Excel's Solver has it: linear models (decided from their formulas) solved by
HiGHS, exactly, from Excel's start and from zero; int, bin and dif by branch and bound; the
optimum computed again without excelnet (HiGHS through scipy's milp, on the numbers the
workbook holds; or every choice enumerated); infeasible and unbounded models leave the file as
it was, in Excel's words, exit code 3; names Excel leaves behind ignored."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

import excelnet
from excelnet.errors import ExcelnetError, NotSolved
from tests import solver_models as sm
from tests.conftest import run_cli


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _values(path: Path, sheet: str, cells: str) -> np.ndarray:
    """The numbers of a range of the written file (excelnet writes every value it computed)."""
    ws = openpyxl.load_workbook(path, data_only=True)[sheet]
    got = ws[cells]
    rows = got if isinstance(got, tuple) else ((got,),)
    return np.array([[c.value for c in row] for row in rows], dtype=float)


def _reference_mix(m: dict) -> float:
    res = milp(-m["profit"], constraints=LinearConstraint(m["use"], ub=m["cap"]))
    assert res.status == 0
    return -res.fun


def _reference_transport(m: dict) -> float:
    p, q = m["cost"].shape
    rows = np.kron(np.eye(p), np.ones(q))  # each plant's shipments
    cols = np.kron(np.ones(p), np.eye(q))  # each market's
    res = milp(
        m["cost"].reshape(-1),
        constraints=[
            LinearConstraint(rows, ub=m["supply"]),
            LinearConstraint(cols, lb=m["demand"]),
        ],
    )
    assert res.status == 0
    return res.fun


def _reference_diet(m: dict) -> float:
    res = milp(
        m["price"],
        constraints=LinearConstraint(m["content"], lb=m["need"]),
        bounds=Bounds(0, m["most"]),
    )
    assert res.status == 0
    return res.fun


LPS = {
    "product mix": (sm.product_mix, "Mix", "H3", "B2:G2", _reference_mix),
    "transport": (sm.transport, "Ship", "B9", "B3:F5", _reference_transport),
    "diet": (sm.diet, "Diet", "G3", "B2:F2", _reference_diet),
}


@pytest.mark.parametrize("start", ["excel", "zero"])
@pytest.mark.parametrize("case", list(LPS))
def test_lps_reach_the_exact_optimum(tmp_path, case, start):
    build, sheet, objective, variables, reference = LPS[case]
    book = tmp_path / f"{case}.xlsx"
    numbers = build(book, **({"start": 0.0} if start == "zero" else {}))
    (r,) = excelnet.fit(book)
    optimum = reference(numbers)
    assert r.method == "simplex" and r.solution == "optimal" and r.written
    assert r.message.startswith("Solver found a solution.")
    assert r.final_loss == pytest.approx(optimum, rel=1e-9)
    assert r.max_violation <= 1e-9 * max(1.0, abs(optimum))
    cached = _values(book, sheet, objective)[0, 0]
    assert cached == pytest.approx(optimum, rel=1e-9)  # the file holds the optimum
    assert (_values(book, sheet, variables) >= -1e-9).all()  # solver_neg
    assert r.duals is not None and set(r.duals) == {"shadow_prices", "reduced_costs"}


def test_the_issues_gap_is_closed(tmp_path):
    """The issue's product mix from zero reached 1,676,658 where Excel's answer was
    29,937,917: an LP is solved, not descended."""
    book = tmp_path / "mix.xlsx"
    numbers = sm.product_mix(book, start=0.0)
    (r,) = excelnet.fit(book)
    assert r.initial_loss == 0.0 and r.final_loss > 3e7
    assert r.final_loss == pytest.approx(_reference_mix(numbers), rel=1e-12)


def test_shadow_prices_are_the_objectives_change_per_unit_of_capacity(tmp_path):
    """--json's duals, as Excel's sensitivity report has them: one more unit of a resource
    raises the optimum by its shadow price (checked by solving again with it)."""
    book = tmp_path / "mix.xlsx"
    m = sm.product_mix(book)
    run = run_cli("fit", book, "--json", "-q")
    assert run.returncode == 0, run.stderr
    (fit,) = json.loads(run.stdout)["fits"]
    prices = fit["duals"]["shadow_prices"]["solver_lhs1"]
    base = -linprog(-m["profit"], A_ub=m["use"], b_ub=m["cap"], method="highs").fun
    for i, price in enumerate(prices):
        cap = m["cap"].copy()
        cap[i] += 1.0
        more = -linprog(-m["profit"], A_ub=m["use"], b_ub=cap, method="highs").fun
        assert more - base == pytest.approx(price, rel=1e-6, abs=1e-6)
    assert any(p > 0 for p in prices) and all(p >= 0 for p in prices)
    assert set(fit["duals"]["reduced_costs"]) == {f"Mix!{c}2" for c in "BCDEFG"}
    assert fit["solution"] == "optimal" and fit["method"] == "simplex"


def _best_subset(n: int, ok, value) -> tuple[float, tuple]:
    """Every 0/1 choice of n: the best value among those `ok` accepts."""
    best = (-np.inf, ())
    for pick in itertools.product((0.0, 1.0), repeat=n):
        x = np.array(pick)
        if ok(x) and value(x) > best[0]:
            best = (value(x), pick)
    return best


@pytest.mark.parametrize("start", [0.0, 1.0])
def test_binary_knapsack_is_the_best_subset(tmp_path, start):
    book = tmp_path / "pack.xlsx"
    m = sm.knapsack(book, start=start)
    (r,) = excelnet.fit(book)
    best, pick = _best_subset(12, lambda x: x @ m["weight"] <= m["cap"], lambda x: x @ m["value"])
    assert r.method == "simplex" and r.solution == "optimal"
    assert r.message.startswith("Solver found an integer solution")
    assert r.final_loss == best
    taken = _values(book, "Pack", "B2:M2")[0]
    assert set(taken) <= {0.0, 1.0} and taken @ m["weight"] <= m["cap"]
    assert taken @ m["value"] == best
    if start == 0.0:  # HiGHS's branch and bound prints lines of its own: not into --json
        run = run_cli("fit", book, "--json", "-q")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["fits"][0]["final_loss"] == best


@pytest.mark.parametrize("start", [0.0, 1.0])
def test_team_selection_with_equal_and_at_least_rows(tmp_path, start):
    book = tmp_path / "team.xlsx"
    m = sm.team(book, start=start)

    def ok(x):
        return x.sum() == 5 and x @ m["defender"] >= 2 and x @ m["salary"] <= 100

    best, _ = _best_subset(10, ok, lambda x: x @ m["rating"])
    (r,) = excelnet.fit(book)
    assert r.solution == "optimal" and r.final_loss == best
    picked = _values(book, "Team", "C2:C11")[:, 0]
    assert ok(picked) and picked @ m["rating"] == best


@pytest.mark.parametrize("start", [0.0, 1.0])
def test_alldifferent_is_a_permutation_and_the_best_one(tmp_path, start):
    """dif: the six cells hold 1..6 in some order (Excel's AllDifferent); the order found is
    the cheapest of all 720."""
    book = tmp_path / "jobs.xlsx"
    m = sm.sequence(book, start=start)

    def cost(p):
        return float(np.dot(m["weight"], p) + 2.5 * (p[0] - p[1]))

    best = min(cost(np.array(p, dtype=float)) for p in itertools.permutations(range(1, 7)))
    (r,) = excelnet.fit(book)
    order = _values(book, "Jobs", "B2:G2")[0]
    assert sorted(order) == [1, 2, 3, 4, 5, 6]
    assert r.final_loss == best == cost(order)
    assert r.violations["solver_lhs1"] == 0.0


def test_excels_default_integer_tolerance_is_honoured(tmp_path):
    """solver_tol, Excel's integer optimality (1% by default), is HiGHS's relative gap."""
    book = tmp_path / "pack.xlsx"
    m = sm.knapsack(book, solver_tol="0.01")
    (r,) = excelnet.fit(book)
    best, _ = _best_subset(12, lambda x: x @ m["weight"] <= m["cap"], lambda x: x @ m["value"])
    assert r.solution == "optimal" and r.final_loss >= best * 0.99
    assert "solver_tol" not in r.ignored and "solver_eng" not in r.ignored


def _model_names(book: Path, sheet: str, **edits) -> None:
    wb = openpyxl.load_workbook(book)
    ws = wb[sheet]
    for key, text in edits.items():
        if key in ws.defined_names:
            del ws.defined_names[key]
        ws.defined_names[key] = DefinedName(
            key, attr_text=text, localSheetId=wb.sheetnames.index(sheet)
        )
    wb.save(book)


def test_leftover_constraint_names_are_ignored_as_excel_does(tmp_path):
    """Excel leaves solver_lhsN+1… behind when a constraint is deleted and reads only the first
    solver_num: here a row that would cap every product at 1 is left over."""
    book = tmp_path / "mix.xlsx"
    m = sm.product_mix(book)
    _model_names(
        book,
        "Mix",
        solver_lhs2="Mix!$B$2:$G$2",
        solver_rel2="1",
        solver_rhs2="1",
        solver_lhs3="Mix!$B$2",
        solver_rel3="3",
    )
    (r,) = excelnet.fit(book)
    assert r.final_loss == pytest.approx(_reference_mix(m), rel=1e-9)
    (note,) = [n for n in r.notes if "ignored" in n]
    assert "solver_lhs2, solver_rel2, solver_rhs2, solver_lhs3, solver_rel3" in note
    assert "solver_num is 1" in note
    run = run_cli("fit", book, "-q")
    assert run.returncode == 0, run.stderr
    assert "solver_num is 1" in " ".join(run.stdout.split())


def _fails(book: Path, *words: str, written: bool = False) -> None:
    before = md5(book)
    run = run_cli("fit", book, "-q")
    assert run.returncode == 3, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert (md5(book) != before) == written


def test_an_infeasible_lp_leaves_the_file_unchanged(tmp_path):
    book = tmp_path / "infeasible.xlsx"
    sm.two_variables(book, "=B1+B2", [("=B1+B2", 3, "10"), ("=B1+B2", 1, "5")])
    _fails(book, "Solver could not find a feasible solution.", "the file is unchanged")
    with pytest.raises(NotSolved) as e:
        excelnet.fit(book)
    (r,) = e.value.results
    assert (r.solution, r.method, r.written, e.value.written) == (
        "infeasible",
        "simplex",
        False,
        False,
    )


def test_an_unbounded_lp_leaves_the_file_unchanged(tmp_path):
    book = tmp_path / "unbounded.xlsx"
    sm.two_variables(book, "=B1+B2", [("=B1-B2", 1, "1")])
    _fails(book, "The Objective Cell values do not converge.", "the file is unchanged")


def test_an_infeasible_integer_model_leaves_the_file_unchanged(tmp_path):
    book = tmp_path / "pack.xlsx"
    sm.knapsack(book)
    _model_names(book, "Pack", solver_num="3", solver_lhs3="Pack!$B$7", solver_rel3="3",
                 solver_rhs3="500")  # fmt: skip
    _fails(book, "Solver could not find a feasible solution.")


def test_simplex_on_a_model_that_is_not_linear_gets_excels_message(tmp_path):
    book = tmp_path / "curved.xlsx"
    sm.two_variables(book, "=B1*B2", [("=B1+B2", 1, "4")])
    before = md5(book)
    run = run_cli("fit", book)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "The linearity conditions required by this LP Solver are not satisfied." in run.stderr
    assert "solver_eng = 2 (Simplex LP)" in run.stderr and md5(book) == before
    with pytest.raises(ExcelnetError, match="linearity conditions"):
        excelnet.fit(book, method="simplex")
    (r,) = excelnet.fit(book, method="lbfgs")  # GRG's answer: x = y = 2
    assert r.final_loss == pytest.approx(4.0, rel=1e-6)


def test_a_grg_model_that_is_linear_is_solved_by_highs_too(tmp_path):
    """solver_eng 1 (GRG Nonlinear, Excel's default) on a linear model: the LP's optimum all
    the same (GRG would reach it too, slower), and --method lbfgs still gets gradient steps."""
    book = tmp_path / "ship.xlsx"
    m = sm.transport(book, **sm.GRG)
    (r,) = excelnet.fit(book)
    assert r.method == "simplex" and r.final_loss == pytest.approx(
        _reference_transport(m), rel=1e-9
    )
    (g,) = excelnet.fit(book, method="lbfgs", history=False)
    assert g.method == "lbfgs"


def test_a_bend_outside_the_points_looked_at_falls_back_to_grg(tmp_path):
    """An IF that bends far from the start (x > 1000) looks linear at every point looked at;
    at HiGHS's optimum (x = 2000) the formulas disagree with the LP, so the model goes to
    lbfgs, which says so: never a wrong "optimal". Simplex LP asked for by name refuses."""
    book = tmp_path / "bend.xlsx"
    rows = [("=B1", 1, "2000"), ("=B2", 1, "10")]
    objective = "=B1+B2+IF(B1>1000,-5000,0)"
    sm.two_variables(book, objective, rows, engine=sm.GRG, start=(0.0, 0.0))
    (r,) = excelnet.fit(book, history=False, epochs=100)  # the cliff costs line searches
    assert r.method == "lbfgs" and r.solved and r.max_violation <= 1e-6
    assert any("HiGHS's optimum is not one on its formulas" in n for n in r.notes)
    assert 10 < r.final_loss <= 1010
    with pytest.raises(ExcelnetError, match="linearity conditions required"):
        excelnet.fit(book, method="simplex")
