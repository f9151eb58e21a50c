"""Excel's Evolutionary engine (solver_eng 3, --method evolutionary), by scipy's
differential_evolution: for models whose objective is not smooth (IF, ABS, ROUND, lookups)
where a gradient says little. As Excel's, it needs bounds on every variable cell; int and bin
rows are its integrality; general constraints are kept to solver_pre.

Solver's settings it honours: solver_ssz (population size, in all: scipy's popsize is per
variable), solver_rsd (random seed, where --seed is left at 0), solver_cvg (convergence:
the spread of the population's objective values, relative), solver_mni (seconds without
improvement), solver_tim (seconds in all). --epochs caps the generations. The start (the
file's values, within the bounds) is one of the first population, and the point kept is never
worse than it.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from excelnet.errors import ExcelnetError
from excelnet.fitting.options import SEED
from excelnet.fitting.problem import Problem

POPULATION = 100  # Excel's default population size (solver_ssz)
CONVERGENCE = 1e-4  # Excel's default convergence (solver_cvg)
PATIENCE = 30.0  # Excel's default seconds without improvement (solver_mni)
CANNOT_IMPROVE = "Solver cannot improve the current solution. All Constraints are satisfied."


def check(problem: Problem) -> None:
    """Refuse, in one line, a model the Evolutionary method cannot take: a variable cell
    without both bounds (Excel's refuses too), or a dif row."""
    lo, hi = problem.lo.cpu().numpy(), problem.hi.cpu().numpy()
    loose = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
    if len(loose):
        i = int(loose[0])
        side = "lower" if not math.isfinite(lo[i]) else "upper"
        cell = problem.cell_name(i)
        example = f"{cell} >= -100" if side == "lower" else f"{cell} <= 100"
        raise ExcelnetError(
            f"{problem.at}: the Evolutionary method needs bounds on every variable cell, as "
            f"Excel's does; {cell} has no {side} bound (add a constraint such as {example}; "
            f"nothing was written)"
        )
    if problem.alldifferent:
        raise ExcelnetError(
            f"{problem.at}: a dif (AllDifferent) row with the Evolutionary method: excelnet "
            f"solves dif by HiGHS's branch and bound on a linear model only (nothing was written)"
        )


def evolve(problem: Problem, options, notes: list[str], progress, stop):
    """The Evolutionary fit of one model (see the module's notes): the point kept, and what
    the result says of the fit (train.conclude's keywords); `notes` gains how it stopped."""
    from scipy.optimize import NonlinearConstraint, differential_evolution

    started = time.perf_counter()
    n, m, k = problem.n, problem.m, problem.k
    seed, used = options.seed, ["solver_ssz", "solver_cvg", "solver_mni", "solver_tim"]
    rsd = int(problem.option("solver_rsd", 0))
    if seed == SEED and rsd > 0:  # the seed left as it is: Excel's random seed, if it has one
        seed = rsd
        used.append("solver_rsd")
    lo, hi = problem.lo.cpu().numpy().astype(float), problem.hi.cpu().numpy().astype(float)
    x0 = problem.start()
    dtype, device = x0.dtype, x0.device
    cache: dict[bytes, tuple[float, float, np.ndarray]] = {}

    def point(x: np.ndarray) -> tuple[float, float, np.ndarray]:
        """The quantity minimised, the objective cell and the residuals at x; inf where the
        sheet cannot compute x (an error value on the objective's path)."""
        key = x.tobytes()
        if key not in cache:
            if len(cache) > 10_000:
                cache.clear()
            t = torch.as_tensor(x, dtype=dtype, device=device)
            with torch.no_grad():
                f, big_f, c = problem.terms(t)
                F, f = float(big_f), float(f)
                c = c.cpu().numpy().astype(float)
                if not (math.isfinite(F) and np.isfinite(c).all()) or problem.suspect(t):
                    F, c = math.inf, np.full(m, math.inf)
            cache[key] = (F, f, c)
        return cache[key]

    pre = problem.precision
    constraints = ()
    if m:
        constraints = NonlinearConstraint(
            lambda x: point(x)[2],
            np.concatenate([np.full(k, -np.inf), np.full(m - k, -pre)]),
            np.full(m, pre),
        )
    population = problem.option("solver_ssz", POPULATION)
    popsize = max(1, math.ceil(population / max(n, 1)))
    tolerance = problem.option("solver_cvg", CONVERGENCE) or CONVERGENCE
    patience = problem.option("solver_mni", PATIENCE) or PATIENCE
    limit = problem.option("solver_tim", math.inf)
    limit = math.inf if limit >= 1e9 else limit
    start = np.clip(x0.cpu().numpy().astype(float), lo, hi)
    ints = problem.integer
    start[ints] = np.clip(np.round(start[ints]), lo[ints], hi[ints])
    first = point(start)[0]
    scale = max(1.0, abs(first)) if math.isfinite(first) else 1.0
    state = {"best": math.inf, "since": time.perf_counter(), "generation": 0, "why": None}
    history = [(0, point(start)[1], None, None, None)]
    every = max(1, options.epochs // 50)

    def watch(intermediate_result) -> bool:
        """After each generation: progress, and whether to stop (Ctrl-C, solver_mni,
        solver_tim)."""
        state["generation"] += 1
        now = time.perf_counter()
        fun = float(intermediate_result.fun)
        best = state["best"]
        if fun < best and (not math.isfinite(best) or best - fun > 1e-12 * abs(best)):
            state["best"], state["since"] = fun, now
        if state["generation"] % every == 0:
            history.append((state["generation"], point(intermediate_result.x)[1], None, None, None))
        if progress is not None:
            progress(state["generation"], point(intermediate_result.x)[1])
        if stop():
            state["why"] = "interrupted"
        elif now - state["since"] > patience:
            state["why"] = f"no improvement in solver_mni = {patience:g} seconds"
        elif now - started > limit:
            state["why"] = f"stopped at solver_tim = {limit:g} seconds"
        return state["why"] is not None

    result = differential_evolution(
        lambda x: point(x)[0],
        list(zip(lo, hi, strict=True)),
        maxiter=max(1, options.epochs),
        popsize=popsize,
        tol=tolerance,
        atol=tolerance * scale,  # the spread that ends it near an optimum of 0 too
        rng=np.random.default_rng(seed),
        callback=watch,
        polish=False,
        init="latinhypercube",
        updating="immediate",
        constraints=constraints,
        x0=start,
        integrality=problem.integer if problem.integer.any() else None,
    )
    best = np.asarray(result.x, dtype=float)
    # never worse than the start: feasible before not, then the lower quantity minimised
    F0, _, c0 = point(start)
    F1, _, c1 = point(best)
    v0 = _violation(c0, k) if m else 0.0
    v1 = _violation(c1, k) if m else 0.0
    if (v0 <= pre and (v1 > pre or F0 < F1)) or (v0 > pre and v1 > pre and v0 < v1):
        best = start
    interrupted = state["why"] == "interrupted"
    if state["why"] and not interrupted:
        notes.append(state["why"])
    x = torch.as_tensor(best, dtype=dtype, device=device)
    return x, {
        "method": "evolutionary",
        "epochs": int(result.nit),
        "initial": history[0][1],
        "history": history,
        "message": None if state["why"] else CANNOT_IMPROVE,
        "interrupted": interrupted,
        "used": tuple(used),
        "seed": seed,
        "converged": state["why"] is None,
    }


def _violation(c: np.ndarray, k: int) -> float:
    if not np.isfinite(c).all():
        return math.inf
    return float(max(np.max(c[:k], initial=0.0), np.max(np.abs(c[k:]), initial=0.0)))
