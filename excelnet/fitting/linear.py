"""Simplex LP, as Excel's Solver has it: a model whose objective and constraints are linear in
its variable cells is solved exactly, by HiGHS (scipy.optimize.linprog), and its int, bin and
dif rows by HiGHS's branch and bound.

Linear is decided from the compiled formulas, not from solver_eng: at the start and at random
points spread over the bounds, the objective and every constrained cell equal their
linearisation at the start to 1e-9 (relative to the size of their terms), and the gradient of
the objective plus a random combination of the constraints is the same at every point (its
change between points is the Hessian's work along the way: zero). The LP's answer is then
checked on the formulas themselves, so that a model linear only near the points looked at
(an IF, a MAX) is caught where it matters.

dif (AllDifferent) is Excel's: the N cells hold 1, 2, …, N in some order. It becomes an
assignment, N × N binaries z[i, v] with each cell taking one value and each value one cell,
and cell i = Σ v·z[i, v].
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from excelnet.fitting.problem import Problem, _label

RTOL = 1e-9  # how closely a linear model equals its linearisation (relative)
POINTS = (1.0, 0.1, 10.0)  # the random points' spread, in units of each cell's size
FEASIBLE = 1e-10  # HiGHS's primal and dual feasibility tolerances (its smallest)
BATCHED = 2.0  # seconds: what a batched backward pass costs first (torch's vmap, loaded)
SEED = 20_231  # the random points are the same every run: one model, one answer
UNLIMITED = 1e9  # Excel's "no limit" (2147483647) in solver_tim, solver_itr, solver_nod

# Excel's own words for how Simplex LP ended
FOUND = "Solver found a solution. All Constraints and optimality conditions are satisfied."
FOUND_INTEGER = "Solver found an integer solution within tolerance. All Constraints are satisfied."
INFEASIBLE = "Solver could not find a feasible solution."
UNBOUNDED = "The Objective Cell values do not converge."
NOT_LINEAR = "The linearity conditions required by this LP Solver are not satisfied."
LIMIT = "Solver stopped at its time or iteration limit (solver_tim, solver_itr, solver_nod)."


@dataclass
class Linear:
    """The model as an LP: objective f(x) = f0 + g·(x − x0), residuals of the general
    constraints c(x) = c0 + J (x − x0), the first k of them ≤ 0, the rest = 0."""

    x0: np.ndarray
    f0: float
    g: np.ndarray
    c0: np.ndarray
    J: object  # scipy.sparse.csr_matrix, m × n
    k: int


@dataclass
class LPAnswer:
    """What HiGHS said: the status, in Excel's words, and the point when there is one."""

    status: str  # "optimal" | "infeasible" | "unbounded" | "limit" | "error"
    message: str
    x: np.ndarray | None = None
    objective: float | None = None  # the objective cell's value there, by the LP
    iterations: int = 0
    seconds: float = 0.0  # HiGHS's own time
    gap: float | None = None  # branch and bound: the relative gap it stopped at
    duals: dict | None = None
    used: list[str] = field(default_factory=list)  # the Solver names it honoured


def _at(problem: Problem, x: np.ndarray, w: torch.Tensor | None):
    """f, the residuals c and the gradient of f + w·c at x (numpy)."""
    t = torch.as_tensor(x, dtype=problem.lo.dtype, device=problem.lo.device).requires_grad_(True)
    f, _, c = problem.terms(t)
    total = f if w is None or not c.numel() else f + (w * c).sum()
    if total.requires_grad:
        (g,) = torch.autograd.grad(total, t, allow_unused=True)
    else:
        g = None
    g = torch.zeros_like(t) if g is None else g
    return float(f.detach()), c.detach().cpu().numpy().astype(float), g.detach().cpu().numpy()


def _jacobian(problem: Problem, x0: np.ndarray):
    """The residuals' Jacobian at x0, as a sparse matrix, constraint by constraint (each
    through its own graph): one backward pass per row, or — where those would take longer
    than loading torch's vmap machinery (about 2 s, once per process) — one batched pass."""
    from scipy import sparse

    n, m = problem.n, problem.m
    t = torch.as_tensor(x0, dtype=problem.lo.dtype, device=problem.lo.device).requires_grad_(True)
    blocks = []
    for part in problem.residual_parts(t) if m else []:
        size = part.numel()
        if not part.requires_grad:
            blocks.append(sparse.csr_matrix((size, n)))
            continue
        began = time.perf_counter()
        first = _row(part, 0, t)
        rows = [first]
        if (size - 1) * (time.perf_counter() - began) > BATCHED:
            try:
                eye = torch.eye(size, dtype=part.dtype, device=part.device)[1:]
                (rest,) = torch.autograd.grad(
                    part, t, grad_outputs=eye, retain_graph=True, is_grads_batched=True
                )
                rows.append(rest.detach().cpu().numpy())
            except RuntimeError:  # an operation without a batched rule: row by row
                pass
        if len(rows) == 1:
            rows += [_row(part, i, t) for i in range(1, size)]
        blocks.append(sparse.csr_matrix(np.vstack(rows)))
    if not blocks:
        return sparse.csr_matrix((m, n))
    return sparse.vstack(blocks).tocsr()


def _row(part: torch.Tensor, i: int, t: torch.Tensor) -> np.ndarray:
    (g,) = torch.autograd.grad(part[i], t, retain_graph=True, allow_unused=True)
    return np.zeros((1, t.numel())) if g is None else g.detach().cpu().numpy().reshape(1, -1)


def _points(problem: Problem, x0: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Random points over the bounds: uniform where a cell has both bounds, else around the
    start by a few times its size; within the bounds."""
    lo, hi = problem.lo.cpu().numpy(), problem.hi.cpu().numpy()
    size = np.maximum(1.0, np.abs(x0))
    boxed = np.isfinite(lo) & np.isfinite(hi)
    out = []
    for spread in POINTS:
        p = x0 + size * spread * rng.standard_normal(x0.shape)
        p[boxed] = rng.uniform(lo[boxed], hi[boxed])
        out.append(np.clip(p, lo, hi))
    return out


def _close(got: np.ndarray, want: np.ndarray, scale: np.ndarray) -> bool:
    return bool(np.all(np.abs(got - want) <= RTOL * scale + 1e-300))


def linearise(problem: Problem) -> tuple[Linear | None, str | None]:
    """The model as an LP, or why it is not one (in a few words)."""
    rng = np.random.default_rng(SEED)
    x0 = problem.start().cpu().numpy().astype(float)
    m = problem.m
    w = torch.as_tensor(rng.standard_normal(m), dtype=problem.lo.dtype, device=problem.lo.device)
    try:
        f0, c0, g0 = _at(problem, x0, None)
        _, _, h0 = _at(problem, x0, w)
        seen = [(p, *_at(problem, p, w)) for p in _points(problem, x0, rng)]
    finally:
        problem.restore(problem.start())
    if not (math.isfinite(f0) and np.isfinite(c0).all() and np.isfinite(h0).all()):
        return None, "the objective or a constraint is not a number at the start"
    for p, f, c, h in seen:
        if not (math.isfinite(f) and np.isfinite(c).all() and np.isfinite(h).all()):
            return None, "the formulas give an error value at points within the bounds"
        if not _close(h, h0, np.abs(h) + np.abs(h0)):
            return None, "the gradients differ from point to point"
        d = p - x0
        if not _close(f, f0 + g0 @ d, abs(f) + abs(f0) + np.abs(g0) @ np.abs(d)):
            return None, "the objective is not linear in the variable cells"
    J = _jacobian(problem, x0)
    problem.restore(problem.start())
    for p, _, c, _ in seen:
        d = p - x0
        if not _close(c, c0 + J @ d, np.abs(c) + np.abs(c0) + abs(J) @ np.abs(d)):
            return None, "a constraint is not linear in the variable cells"
    return Linear(x0, f0, g0, c0, J, problem.k), None


def _limits(problem: Problem, integer: bool) -> tuple[dict, list[str]]:
    """HiGHS's options from Solver's: solver_tim (seconds), solver_itr (LP iterations),
    solver_tol (integer optimality, the relative gap); the names honoured."""
    options = {
        "presolve": True,
        "primal_feasibility_tolerance": FEASIBLE,
        "dual_feasibility_tolerance": FEASIBLE,
    }
    used = []
    tim = problem.option("solver_tim", math.inf)
    if tim < UNLIMITED:
        options["time_limit"] = max(tim, 0.01)
        used.append("solver_tim")
    if integer:
        options["mip_rel_gap"] = problem.option("solver_tol", 0.0)
        if "solver_tol" in problem.model.solver.options:
            used.append("solver_tol")
    else:
        itr = problem.option("solver_itr", math.inf)
        if itr < UNLIMITED:
            options["maxiter"] = max(1, int(itr))
            used.append("solver_itr")
    return options, used


def solve(problem: Problem, lin: Linear) -> LPAnswer:
    """The LP (or MILP) solved by HiGHS, as Excel's Simplex LP would."""
    from scipy import sparse
    from scipy.optimize import linprog

    n, k = problem.n, lin.k
    # objective: f = f0 + g·(x − x0); HiGHS minimises cost·x
    constant = lin.f0 - float(lin.g @ lin.x0)
    if problem.goal == 1:
        cost = -lin.g
    elif problem.goal == 2:
        cost = lin.g.copy()
    else:  # Value Of: f = target is one more equation; any feasible point will do
        cost = np.zeros(n)
    b = lin.c0 - lin.J @ lin.x0  # c(x) = J x + b
    A_ub, b_ub = lin.J[:k], -b[:k]
    A_eq, b_eq = lin.J[k:], -b[k:]
    if problem.goal == 3:
        A_eq = sparse.vstack([A_eq, sparse.csr_matrix(lin.g.reshape(1, -1))])
        b_eq = np.append(b_eq, float(problem.target) - constant)
    lo, hi = problem.lo.cpu().numpy().astype(float), problem.hi.cpu().numpy().astype(float)
    integrality = problem.integer.astype(int)
    # dif: z[i, v] (row-major after the n cells) with Σ_v z = 1, Σ_i z = 1, x_i = Σ_v v·z
    extra = sum(len(cells) ** 2 for cells in problem.alldifferent)
    if extra:
        cost = np.concatenate([cost, np.zeros(extra)])
        A_ub = sparse.hstack([A_ub, sparse.csr_matrix((A_ub.shape[0], extra))])
        rows, rhs = [sparse.hstack([A_eq, sparse.csr_matrix((A_eq.shape[0], extra))])], [b_eq]
        at = n
        for cells in problem.alldifferent:
            size = len(cells)
            for i, cell in enumerate(cells):
                r = sparse.lil_matrix((3, n + extra))
                r[0, cell] = 1.0
                for v in range(size):
                    r[0, at + i * size + v] = -(v + 1.0)  # x_i − Σ v·z[i, v] = 0
                    r[1, at + i * size + v] = 1.0  # Σ_v z[i, v] = 1
                    r[2, at + v * size + i] = 1.0  # Σ_i z[i, v] = 1 (value v taken once)
                rows.append(r.tocsr())
                rhs.append(np.array([0.0, 1.0, 1.0]))
            at += size * size
        A_eq, b_eq = sparse.vstack(rows), np.concatenate(rhs)
        lo = np.concatenate([lo, np.zeros(extra)])
        hi = np.concatenate([hi, np.ones(extra)])
        integrality = np.concatenate([integrality, np.ones(extra, dtype=int)])
    integer = bool(integrality.any())
    options, used = _limits(problem, integer)
    bounds = [
        (a if math.isfinite(a) else None, z if math.isfinite(z) else None)
        for a, z in zip(lo, hi, strict=True)
    ]

    def run(c, opts, bnds, mip: bool):
        with _quiet():
            return linprog(
                c,
                A_ub=A_ub if A_ub.shape[0] else None,
                b_ub=b_ub if A_ub.shape[0] else None,
                A_eq=A_eq if A_eq.shape[0] else None,
                b_eq=b_eq if A_eq.shape[0] else None,
                bounds=bnds,
                method="highs",
                integrality=integrality if mip else None,
                options=opts,
            )

    start = time.perf_counter()
    res = run(cost, options, bounds, integer)
    if res.status == 4 and "unbounded or infeasible" in res.message.lower():
        # HiGHS's presolve may not tell which: a point meeting the constraints decides
        probe = run(np.zeros_like(cost), options, bounds, integer)
        res.status = 3 if probe.status == 0 else 2
    iterations = int(getattr(res, "nit", 0) or 0)
    if res.status in (2, 3):
        status, words = ("infeasible", INFEASIBLE) if res.status == 2 else ("unbounded", UNBOUNDED)
        seconds = time.perf_counter() - start
        return LPAnswer(status, words, iterations=iterations, seconds=seconds, used=used)
    if res.x is None:
        why = LIMIT if res.status == 1 else f"HiGHS: {res.message}"
        status = "limit" if res.status == 1 else "error"
        seconds = time.perf_counter() - start
        return LPAnswer(status, why, iterations=iterations, seconds=seconds, used=used)
    full = np.asarray(res.x, dtype=float)
    if integer:
        # whole numbers exactly (branch and bound leaves them within its integer tolerance),
        # then the other cells by an LP with those fixed: to HiGHS's LP accuracy (1e-10)
        # rather than its MIP's (1e-6)
        whole = integrality.astype(bool)
        full[whole] = np.round(full[whole])
        if not whole.all():
            fixed = [(v, v) if whole[i] else bounds[i] for i, v in enumerate(full)]
            lp = {key: v for key, v in options.items() if key != "mip_rel_gap"}
            again = run(cost, lp, fixed, False)
            if again.status == 0:
                full = np.asarray(again.x, dtype=float)
                full[whole] = np.round(full[whole])
    seconds = time.perf_counter() - start
    x = full[:n]
    gap = getattr(res, "mip_gap", None) if integer else None
    answer = LPAnswer(
        "optimal" if res.status == 0 else "limit",
        (FOUND_INTEGER if integer else FOUND) if res.status == 0 else LIMIT,
        x=x,
        objective=constant + float(lin.g @ x),
        iterations=iterations,
        seconds=seconds,
        gap=None if gap is None else float(gap),
        used=used,
    )
    if not integer and res.status == 0:
        answer.duals = _duals(problem, lin, res)
    return answer


@contextlib.contextmanager
def _quiet():
    """HiGHS's branch and bound prints lines of its own on the process's stdout (file
    descriptor 1), where --json's output goes: they go to /dev/null."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout is not a file (captured)
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _duals(problem: Problem, lin: Linear, res) -> dict:
    """Excel's sensitivity report, in numbers: each general constraint's shadow prices (the
    objective's change per unit more of its right-hand side) and each variable cell's reduced
    cost (the objective's change per unit that a bound holding it moves)."""
    if problem.goal == 3:
        return {}
    sign = -1.0 if problem.goal == 1 else 1.0  # HiGHS minimised −f for Max
    ineq = np.asarray(res.ineqlin.marginals) if lin.k else np.zeros(0)
    eq = np.asarray(res.eqlin.marginals) if lin.J.shape[0] > lin.k else np.zeros(0)
    prices = {}
    values = problem.model.watched()
    at_ub, at_eq = 0, 0
    for r in problem.unequal + problem.equal:
        count = values[r.lhs].x.numel()
        if r.constraint.rel == 2:
            part = eq[at_eq : at_eq + count]
            at_eq += count
            shadow = sign * part
        else:
            part = ineq[at_ub : at_ub + count]
            at_ub += count
            # ≤: lhs − rhs ≤ 0, a larger rhs loosens it; ≥: rhs − lhs ≤ 0, a larger rhs tightens
            shadow = sign * part * (1.0 if r.constraint.rel == 1 else -1.0)
        prices[_label(r.constraint)] = [float(v) + 0.0 for v in shadow]
    reduced = sign * (np.asarray(res.lower.marginals) + np.asarray(res.upper.marginals))
    cells = {problem.cell_name(i): float(v) + 0.0 for i, v in enumerate(reduced[: problem.n])}
    return {"shadow_prices": prices, "reduced_costs": cells}
