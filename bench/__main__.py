"""excelnet's benchmarks, side by side with their baselines in the same run.

    python -m bench [--repeat 3] [--skip-solvers] [--out bench/results.json]

Prints a markdown table (median of --repeat runs where a case is quick enough to repeat) and
writes the same as JSON, with the machine, versions and device, under bench/. It writes nothing
else: docs/benchmarks.md shows the tables of its runs, with how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from excelnet.progress import Silent

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
BIG = 100_000
HUGE = 1_000_000
rows: list[dict] = []


def record(
    case: str, excelnet: str, baseline: str, target: str, met: bool | None, **numbers
) -> None:
    row = {
        "case": case,
        "excelnet": excelnet,
        "baseline": baseline,
        "target": target,
        "met": met,
        **numbers,
    }
    rows.append(row)
    verdict = {True: "met", False: "MISSED", None: "—"}[met]
    print(f"  {case}: {excelnet} | {baseline} | {verdict}", file=sys.stderr)


def median_time(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def machine() -> dict:
    import torch

    cpu = ""
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    lo = subprocess.run(["soffice", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "libreoffice": lo,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def resampled_workbook(passengers: int) -> tuple[Path, float]:
    """A workbook of that many passengers (built once, cached) and how long the build took."""
    from excelnet.writer.titanic import build_titanic

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"titanic-{passengers}.xlsx"
    stamp = CACHE / f"titanic-{passengers}.seconds"
    if not path.exists() or not stamp.exists():
        t = time.perf_counter()
        build_titanic(path, passengers=passengers, force=True)
        stamp.write_text(str(time.perf_counter() - t))
    return path, float(stamp.read_text())


def big_workbook() -> tuple[Path, float]:
    return resampled_workbook(BIG)


def bench_build(repeat: int) -> None:
    from excelnet.writer.titanic import build_titanic

    CACHE.mkdir(parents=True, exist_ok=True)
    small, _ = median_time(
        lambda: build_titanic(CACHE / "titanic.xlsx", force=True), max(repeat, 5)
    )
    record(
        "build the Titanic workbook (891 rows)",
        f"{small:.2f} s",
        "—",
        "≤ 0.5 s",
        small <= 0.5,
        seconds=small,
    )
    _, big = big_workbook()
    record(f"build the {BIG:,}-row workbook", f"{big:.1f} s", "—", "≤ 15 s", big <= 15, seconds=big)


def bench_read_compile(repeat: int) -> None:
    from excelnet.fitting.pipeline import compile_models
    from excelnet.xlsx.read import read_book

    path, _ = big_workbook()
    seconds, _ = median_time(lambda: compile_models(read_book(path, "nn"), "nn"), repeat)
    record(
        f"read and compile the {BIG:,}-row nn model (excelnet fit --sheet nn)",
        f"{seconds:.1f} s",
        "—",
        "≤ 10 s",
        seconds <= 10,
        seconds=seconds,
    )


def bench_writeback(repeat: int) -> None:
    from excelnet.fitting.options import FitOptions
    from excelnet.fitting.pipeline import compile_models
    from excelnet.fitting.train import train
    from excelnet.xlsx.read import read_book

    path, _ = big_workbook()
    (model,) = compile_models(read_book(path, "nn"), "nn")
    train(model, FitOptions(epochs=1))
    updates: dict = {}
    for (s, r, c), v in model.values().items():
        updates.setdefault(s, {})[(r, c)] = v
    pickled, target = CACHE / "updates.pickle", CACHE / "writeback.xlsx"
    pickled.write_bytes(pickle.dumps(updates))

    def once(how: str) -> tuple[float, float]:
        """Seconds and peak resident MiB of one write-back, in a fresh process."""
        shutil.copy(path, target)
        run = subprocess.run(
            [sys.executable, "-m", "bench.write_once", how, str(target), str(pickled)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, peak = run.stdout.split()
        return float(seconds), float(peak)

    mine = [once("excelnet") for _ in range(repeat)]
    theirs = [once("openpyxl") for _ in range(max(1, repeat // 3))]
    t_ours, m_ours = statistics.median(s for s, _ in mine), max(m for _, m in mine)
    t_naive, m_naive = statistics.median(s for s, _ in theirs), max(m for _, m in theirs)
    cells = sum(len(v) for v in updates.values())
    record(
        f"write back a fit into the {BIG:,}-row workbook ({cells:,} cells)",
        f"{t_ours:.1f} s, peak {m_ours:.0f} MiB",
        f"openpyxl load → set parameters → save: {t_naive:.1f} s, peak {m_naive:.0f} MiB",
        "≥ 20× faster",
        t_naive / t_ours >= 20,
        seconds=t_ours,
        baseline_seconds=t_naive,
        peak_mib=m_ours,
        baseline_peak_mib=m_naive,
        speedup=t_naive / t_ours,
    )


def epoch_rate(
    model, engine: str, steps: int, repeat: int, method: str = "gd", lr: float | None = 0.01
) -> tuple[float, float]:
    """Steady epochs per second of one engine on a compiled model (gd with a fixed step by
    default), and its one-time set-up (tracing and compiling, or capturing the CUDA graph)
    in seconds."""
    import torch

    from excelnet.fitting.optimisers import runner
    from excelnet.fitting.problem import Problem

    problem = Problem(model)
    t = time.perf_counter()
    run, _ = runner(problem, method, lr, engine, steps)
    setup = time.perf_counter() - t
    run.run(min(50, steps))  # warm-up

    def go():
        run.run(steps)
        if model.ctx.device.type == "cuda":
            torch.cuda.synchronize()

    seconds, _ = median_time(go, repeat)
    return steps / seconds, setup


def bench_epochs(repeat: int, huge: Path | None) -> None:
    """Steady epochs per second of the eager and compiled engines (gd, fixed step), beside the
    same net written by hand in the same run: minimal torch autograd and hand-derived numpy
    (bench/minimal.py), at the threads excelnet picks for the model's size."""
    import torch

    from bench.minimal import numpy_rate, torch_rate
    from excelnet.fitting.engines import threads, threads_for
    from excelnet.fitting.pipeline import compile_models
    from excelnet.xlsx.read import read_book

    big, _ = big_workbook()
    cases = [
        ("Titanic nn (891 rows)", ROOT / "workbooks" / "titanic.xlsx", 1000, 891),
        (f"nn, {BIG:,} rows", big, 50, BIG),
    ]
    for label, path, steps, n in cases:
        (model,) = compile_models(read_book(path, "nn"), "nn")
        with threads(threads_for(model)):
            eager, _ = epoch_rate(model, "eager", steps, repeat)
            minimal = statistics.median(torch_rate(n, steps) for _ in range(repeat))
            hand = statistics.median(numpy_rate(n, steps) for _ in range(repeat))
            compiled, setup = epoch_rate(model, "compiled", steps, repeat)
            used = torch.get_num_threads()
        record(
            f"epochs/s, {label}, cpu eager ({used} thread{'s' if used > 1 else ''})",
            f"{eager:,.0f}/s ({eager / minimal:.2f}× minimal)",
            f"minimal torch autograd: {minimal:,.0f}/s; numpy, gradient by hand: {hand:,.0f}/s",
            "≥ 0.8× minimal",
            eager >= 0.8 * minimal,
            epochs_per_second=eager,
            minimal_torch=minimal,
            numpy=hand,
            threads=used,
        )
        gain = 1 / eager - 1 / compiled  # seconds saved per epoch
        even = f"pays after {setup / gain:,.0f} epochs" if gain > 0 else "never pays"
        record(
            f"epochs/s, {label}, cpu compiled (torch.compile)",
            f"{compiled:,.0f}/s after {setup:.1f} s once ({even})",
            f"eager: {eager:,.0f}/s",
            "—",
            None,
            epochs_per_second=compiled,
            setup_seconds=setup,
            baseline_epochs_per_second=eager,
        )
    devices = ["cuda"] if torch.cuda.is_available() else []
    gpu = [("Titanic nn (891 rows)", ROOT / "workbooks" / "titanic.xlsx", 1000, 30_000)]
    if huge is not None:
        gpu.append((f"nn, {HUGE:,}-row resample", huge, 20, 10_000))
    for label, path, steps, target in gpu if devices else []:
        (model,) = compile_models(read_book(path, "nn"), "nn", device="cuda")
        base, _ = epoch_rate(model, "eager", steps, repeat)
        rate, setup = epoch_rate(model, "cuda graph", steps, repeat)
        record(
            f"epochs/s, {label}, cuda",
            f"{rate:,.0f}/s cuda graph ({setup:.1f} s once)",
            f"eager: {base:,.0f}/s",
            f"≥ {target:,}/s",
            rate >= target,
            epochs_per_second=rate,
            setup_seconds=setup,
            baseline_epochs_per_second=base,
        )
    if not devices:
        record(
            "epochs/s on CUDA (Titanic nn; 1,000,000 rows)",
            "not measured",
            "no GPU on this machine",
            "≥ 30,000/s; ≥ 10,000/s",
            None,
        )


class Phases(Silent):
    """A progress display that only times each phase of a fit."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, text: str):
        t = time.perf_counter()
        yield
        word = text.split()[0]
        self.seconds[word] = self.seconds.get(word, 0.0) + time.perf_counter() - t


def bench_big_fit(repeat: int) -> None:
    """`excelnet fit big.xlsx --sheet nn --epochs 200` at 100,000 rows, phase by phase."""
    from excelnet.fitting.pipeline import fit

    big, _ = big_workbook()
    target = CACHE / "big-fit.xlsx"
    runs = []
    for _ in range(repeat):
        phases = Phases()
        t = time.perf_counter()
        (result,) = fit(big, sheet="nn", epochs=200, lr=0.01, out=target, progress=phases)
        wall = time.perf_counter() - t
        runs.append((wall, result.seconds, phases.seconds))
    wall, epochs, seen = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    read, compile_, write = (seen.get(k, 0.0) for k in ("reading", "compiling", "writing"))
    rest = read + compile_ + write
    record(
        f"fit --sheet nn --epochs 200 (gd) at {BIG:,} rows: read + compile + write-back",
        f"{rest:.1f} s (read {read:.1f}, compile {compile_:.1f}, write {write:.1f}); "
        f"{wall:.1f} s in all",
        f"the 200 epochs (and history rows): {epochs:.1f} s",
        "≤ 2× the epochs",
        rest <= 2 * epochs,
        seconds=rest,
        read_seconds=read,
        compile_seconds=compile_,
        write_seconds=write,
        epochs_seconds=epochs,
        wall_seconds=wall,
    )


METHODS = {  # label -> excelnet.fit's arguments
    "lbfgs (the default)": {},
    "gd, its own step": {"method": "gd"},
    "gd --lr 0.1 (the lesson's fixed step)": {"lr": 0.1},
    "adam": {"method": "adam"},
}


def scipy_lbfgsb(path: Path, sheet: str, tight: bool) -> tuple[float, float, int]:
    """scipy.optimize.minimize (L-BFGS-B, at most 1000 iterations; its default tolerances, or
    none when `tight`, so that it runs until its line search gives up) on excelnet's compiled
    objective and gradient (eager steps): seconds, loss, iterations."""
    import numpy as np
    import torch
    from scipy.optimize import minimize

    from excelnet.fitting.optimisers import evaluate
    from excelnet.fitting.pipeline import compile_book
    from excelnet.fitting.problem import Problem
    from excelnet.xlsx.read import read_book

    (model,) = compile_book(read_book(path, sheet), sheet, torch.device("cpu"))
    problem = Problem(model)
    lam, mu = torch.zeros(0, dtype=torch.float64), torch.tensor(10.0, dtype=torch.float64)

    def fg(x: np.ndarray):
        loss, g, *_ = evaluate(problem, torch.from_numpy(x), lam, mu)
        return float(loss), g.numpy().copy()

    x0 = problem.start().numpy()
    t = time.perf_counter()
    options = {"maxiter": 1000} | ({"ftol": 0.0, "gtol": 0.0} if tight else {})
    res = minimize(fg, x0, jac=True, method="L-BFGS-B", options=options)
    return time.perf_counter() - t, float(res.fun), int(res.nit)


def bench_solvers(repeat: int) -> None:
    from excelnet.fitting.pipeline import fit

    src = ROOT / "workbooks" / "titanic.xlsx"
    target = CACHE / "solver.xlsx"
    scipy_s, scipy_loss, scipy_it = scipy_lbfgsb(src, "nn", tight=False)
    tight_s, tight_loss, tight_it = scipy_lbfgsb(src, "nn", tight=True)
    baseline = (
        f"scipy L-BFGS-B: {scipy_s:.2f} s, loss {scipy_loss:.4f} ({scipy_it} iterations, its "
        f"default tolerances); {tight_s:.2f} s, loss {tight_loss:.4f} ({tight_it} iterations, "
        f"no tolerances)"
    )
    result = seconds = None
    for label, how in METHODS.items():

        def ours(how=how):
            shutil.copy(src, target)
            return fit(target, sheet="nn", history=False, **how)[0]

        took, r = median_time(ours, repeat)
        record(
            f"fit Titanic nn, {label} (read, compile, ≤ 1000 epochs, write back)",
            f"{took:.2f} s (training {r.seconds:.2f} s, {r.epochs} epochs), loss "
            f"{r.final_loss:.4f}",
            baseline,
            "—",
            None,
            seconds=took,
            train_seconds=r.seconds,
            loss=r.final_loss,
            epochs=r.epochs,
            baseline_seconds=scipy_s,
            baseline_loss=scipy_loss,
            tight_baseline_seconds=tight_s,
            tight_baseline_loss=tight_loss,
        )
        if result is None:
            result, seconds = r, took
    services = {
        "LibreOffice swarm solver": "com.sun.star.comp.Calc.SwarmSolver",
        "LibreOffice DEPS solver (nlpsolver)": "com.sun.star.comp.Calc.NLPSolver.DEPSSolverImpl",
    }
    for label, service in services.items():
        theirs = CACHE / "solver-libreoffice.xlsx"
        shutil.copy(src, theirs)
        run = subprocess.run(
            [
                "/usr/bin/python3",
                str(ROOT / "bench" / "lo_solver.py"),
                str(theirs),
                "nn",
                "M2",
                "B2:K3",
                service,
                "5",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        try:
            lo = json.loads(run.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            lo = {"available": False}
        if not lo.get("available"):
            why = (
                "not installed: Debian's libreoffice-nlpsolver needs libreoffice-calc, "
                "which conflicts with libreoffice-calc-nogui"
                if "NLPSolver" in service
                else "not available on this machine"
            )
            record(f"fit Titanic nn vs {label}", "—", why, "—", None)
            continue
        speedup = lo["seconds"] / seconds
        record(
            f"fit Titanic nn vs {label} (±5 bounds, its default limits)",
            f"{seconds:.2f} s, loss {result.final_loss:.4f}",
            f"{lo['seconds']:.1f} s, loss {lo['final']:.4f} (from {lo['start']:.4f})",
            "lower loss, ≥ 100× faster",
            result.final_loss < lo["final"] and speedup >= 100,
            seconds=seconds,
            baseline_seconds=lo["seconds"],
            loss=result.final_loss,
            baseline_loss=lo["final"],
            speedup=speedup,
        )


ASSETS = 20


def portfolio_workbook(path: Path):
    """The minimum-variance portfolio, the classic Solver exercise, over ASSETS assets: weights
    >= 0 (solver_neg), their SUM = 1, expected return >= a target cell. Returns the workbook's
    numbers: covariance, expected returns, target."""
    import numpy as np
    import openpyxl
    from openpyxl.utils import get_column_letter as col
    from openpyxl.workbook.defined_name import DefinedName

    rng = np.random.default_rng(0)
    factors = rng.normal(0, 0.1, (ASSETS, 3))
    cov = factors @ factors.T + np.diag(rng.uniform(0.01, 0.05, ASSETS))
    mean = rng.uniform(0.02, 0.15, ASSETS)
    target = float(mean.mean() * 1.2)
    n = ASSETS
    wb = openpyxl.Workbook()
    market = wb.active
    market.title = "market"
    for i in range(n):
        for j in range(n):
            market.cell(i + 2, j + 2, float(cov[i, j]))
        market.cell(i + 2, n + 3, float(mean[i]))
    market.cell(1, n + 5, target)
    ws = wb.create_sheet("Portfolio")
    for i in range(n):
        c = col(i + 2)
        ws.cell(i + 2, 2, 1 / n)
        ws.cell(i + 2, 3, f"=SUMPRODUCT(market!${c}$2:${c}${n + 1},$B$2:$B${n + 1})")
    ws["E1"] = f"=SUMPRODUCT(B2:B{n + 1},C2:C{n + 1})"
    ws["E2"] = f"=SUMPRODUCT(B2:B{n + 1},market!{col(n + 3)}2:{col(n + 3)}{n + 1})"
    ws["E3"] = f"=SUM(B2:B{n + 1})"
    names = {
        "solver_opt": "Portfolio!$E$1",
        "solver_adj": f"Portfolio!$B$2:$B${n + 1}",
        "solver_typ": "2",
        "solver_neg": "1",
        "solver_num": "2",
        "solver_lhs1": "Portfolio!$E$3",
        "solver_rel1": "2",
        "solver_rhs1": "1",
        "solver_lhs2": "Portfolio!$E$2",
        "solver_rel2": "3",
        "solver_rhs2": f"market!${col(n + 5)}$1",
    }
    for k, v in names.items():
        ws.defined_names[k] = DefinedName(k, attr_text=v, localSheetId=1)
    wb.save(path)
    return cov, mean, target


def bench_constrained(repeat: int) -> None:
    """Each method on the portfolio, against scipy's SLSQP on the same numbers."""
    import numpy as np
    from scipy.optimize import minimize

    from excelnet.errors import NotSolved
    from excelnet.fitting.pipeline import fit

    CACHE.mkdir(parents=True, exist_ok=True)
    src, target_path = CACHE / "portfolio.xlsx", CACHE / "portfolio-fit.xlsx"
    cov, mean, target = portfolio_workbook(src)
    t = time.perf_counter()
    ref = minimize(
        lambda w: w @ cov @ w,
        np.full(ASSETS, 1 / ASSETS),
        jac=lambda w: 2 * cov @ w,
        method="SLSQP",
        bounds=[(0, None)] * ASSETS,
        options={"ftol": 1e-12, "maxiter": 1000},
        constraints=[
            {"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones_like(w)},
            {"type": "ineq", "fun": lambda w: w @ mean - target, "jac": lambda w: mean},
        ],
    )
    slsqp = time.perf_counter() - t
    violation = max(abs(ref.x.sum() - 1), max(0.0, target - ref.x @ mean), max(0.0, -ref.x.min()))
    baseline = f"SLSQP: {slsqp:.3f} s, variance {ref.fun:.8f}, max violation {violation:.0e}"
    for label, how in METHODS.items():
        if "lesson" in label:
            continue

        def ours(how=how):
            shutil.copy(src, target_path)
            try:
                return fit(target_path, history=False, **how)[0]
            except NotSolved as e:  # short of the constraints: not written, measured all the same
                return e.results[0]

        took, r = median_time(ours, repeat)
        record(
            f"minimum-variance portfolio ({ASSETS} assets, 2 constraints, weights >= 0), {label}",
            f"{took:.2f} s (training {r.seconds:.2f} s, {r.epochs} epochs), variance "
            f"{r.final_loss:.8f}, max violation {r.max_violation:.0e}",
            baseline,
            "variance within 1e-6 of SLSQP's, violation ≤ 1e-6",
            bool(abs(r.final_loss - ref.fun) <= 1e-6 * ref.fun and r.max_violation <= 1e-6),
            seconds=took,
            train_seconds=r.seconds,
            loss=r.final_loss,
            max_violation=r.max_violation,
            baseline_seconds=slsqp,
            baseline_loss=float(ref.fun),
        )


PLANTS, MARKETS = 40, 60  # the transport LP: 2,400 variables, 100 constraints


def transport_workbook(path: Path):
    """The transport LP, the classic Simplex LP exercise, at PLANTS × MARKETS: shipments on
    sheet Ship (rows plants, columns markets), each plant's total <= its supply, each market's
    >= its demand, the cost per unit on sheet costs; minimise SUMPRODUCT(shipments, costs).
    Returns the numbers: cost, supply, demand."""
    import numpy as np
    import openpyxl
    from openpyxl.utils import get_column_letter as col
    from openpyxl.workbook.defined_name import DefinedName

    rng = np.random.default_rng(0)
    p, m = PLANTS, MARKETS
    cost = rng.uniform(1, 50, (p, m)).round(2)
    demand = rng.integers(50, 150, m).astype(float)
    supply = np.full(p, float(np.ceil(demand.sum() * 1.2 / p)))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Ship"
    costs = wb.create_sheet("costs")
    last = col(1 + m)
    for i in range(p):
        for j in range(m):
            ws.cell(2 + i, 2 + j, 0.0)
            costs.cell(1 + i, 1 + j, float(cost[i, j]))
        ws.cell(2 + i, m + 2, f"=SUM(B{2 + i}:{last}{2 + i})")
        ws.cell(2 + i, m + 3, float(supply[i]))
    for j in range(m):
        c = col(2 + j)
        ws.cell(p + 2, 2 + j, f"=SUM({c}2:{c}{p + 1})")
        ws.cell(p + 3, 2 + j, float(demand[j]))
    ws.cell(p + 5, 2, f"=SUMPRODUCT(B2:{last}{p + 1},costs!A1:{col(m)}{p})")
    total, need = col(m + 2), col(m + 3)
    names = {
        "solver_opt": f"Ship!$B${p + 5}",
        "solver_adj": f"Ship!$B$2:${last}${p + 1}",
        "solver_typ": "2",
        "solver_neg": "1",
        "solver_eng": "2",
        "solver_num": "2",
        "solver_lhs1": f"Ship!${total}$2:${total}${p + 1}",
        "solver_rel1": "1",
        "solver_rhs1": f"Ship!${need}$2:${need}${p + 1}",
        "solver_lhs2": f"Ship!$B${p + 2}:${last}${p + 2}",
        "solver_rel2": "3",
        "solver_rhs2": f"Ship!$B${p + 3}:${last}${p + 3}",
    }
    for k, v in names.items():
        ws.defined_names[k] = DefinedName(k, attr_text=v, localSheetId=0)
    wb.save(path)
    return cost, supply, demand


def bench_lp(repeat: int) -> None:
    """A transport LP: excelnet fit (read, compile, the linearity check, HiGHS, write back)
    against HiGHS alone on the same numbers (scipy's linprog, as excelnet calls it)."""
    import numpy as np
    from scipy.optimize import linprog

    from excelnet.fitting.pipeline import fit

    CACHE.mkdir(parents=True, exist_ok=True)
    src, target = CACHE / "transport.xlsx", CACHE / "transport-fit.xlsx"
    cost, supply, demand = transport_workbook(src)
    p, m = cost.shape
    a_ub = np.vstack([np.kron(np.eye(p), np.ones(m)), -np.kron(np.ones(p), np.eye(m))])
    b_ub = np.concatenate([supply, -demand])

    def highs():
        return linprog(cost.reshape(-1), A_ub=a_ub, b_ub=b_ub, method="highs")

    alone, ref = median_time(highs, repeat)
    runs = []
    for _ in range(repeat):
        shutil.copy(src, target)
        phases = Phases()
        t = time.perf_counter()
        (r,) = fit(target, history=False, progress=phases)
        runs.append((time.perf_counter() - t, r, phases.seconds))
    wall, r, seen = sorted(runs, key=lambda x: x[0])[len(runs) // 2]
    read, compile_, choose, write = (
        seen.get(k, 0.0) for k in ("reading", "compiling", "choosing", "writing")
    )
    record(
        f"transport LP ({p} plants × {m} markets: {p * m:,} variables, {p + m} constraints), "
        f"from zero",
        f"{wall:.2f} s (read {read:.2f}, compile {compile_:.2f}, linearity check "
        f"{choose:.2f}, HiGHS {r.solver_seconds:.3f}, check and write {write:.2f} + "
        f"{r.seconds - r.solver_seconds:.2f}), cost {r.final_loss:,.2f}",
        f"HiGHS alone (scipy linprog on the same numbers): {alone:.3f} s, cost {ref.fun:,.2f}",
        "the same optimum (1e-9)",
        bool(abs(r.final_loss - ref.fun) <= 1e-9 * abs(ref.fun) and r.solution == "optimal"),
        seconds=wall,
        read_seconds=read,
        compile_seconds=compile_,
        linearity_seconds=choose,
        highs_seconds=r.solver_seconds,
        write_seconds=write,
        baseline_seconds=alone,
        loss=r.final_loss,
        baseline_loss=float(ref.fun),
    )


OTHERS = {  # the other recalculation engines, each in a virtual environment of its own
    "formulas": ["formulas[excel]", "openpyxl"],
    "pycel": ["pycel", "openpyxl<3.1"],  # pycel reads defined names as openpyxl 3.0 kept them
}


def _engine_python(tool: str) -> str:
    """The Python that runs `tool` (excelnet: this one; the others: their own venv)."""
    if tool == "excelnet":
        return sys.executable
    venv = CACHE / f"venv-{tool}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *OTHERS[tool]], check=True)
    return str(python)


def _recalc(tool: str, path: Path, timeout: float) -> dict | None:
    """One tool's recalculation of a copy of `path`, in its own process (None: timed out)."""
    copy = CACHE / f"calc-{tool}{path.suffix}"
    shutil.copy(path, copy)
    try:
        run = subprocess.run(
            [_engine_python(tool), "-m", "bench.calc", tool, str(copy)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def bench_calc(timeout: float) -> None:
    """excelnet calc against formulas and pycel recalculating the same workbook."""
    for label, path in (
        ("Titanic workbook", ROOT / "workbooks" / "titanic.xlsx"),
        (f"{BIG:,}-row workbook", big_workbook()[0]),
    ):
        ours = _recalc("excelnet", path, timeout)
        theirs = {tool: _recalc(tool, path, timeout) for tool in OTHERS}

        def said(tool: str, r: dict | None) -> str:
            if r is None:
                return f"{tool}: > {timeout:.0f} s (stopped)"
            done = "" if r["computed"] is None else f", {r['computed']:,} of {r['cells']:,} cells"
            return f"{tool}: {r['seconds']:.1f} s{done}, nn loss {r['nn_loss']:.6f}"

        finished = [r["seconds"] for r in theirs.values() if r is not None]
        fastest = min(finished) if finished else timeout
        record(
            f"recalculate every formula cell of the {label} (excelnet calc)",
            f"{ours['seconds']:.1f} s, {ours['computed']:,} of {ours['cells']:,} cells, "
            f"nn loss {ours['nn_loss']:.6f}",
            "; ".join(said(tool, r) for tool, r in theirs.items()),
            "≥ 10× the faster of the two",
            fastest / ours["seconds"] >= 10,
            seconds=ours["seconds"],
            baseline_seconds={tool: r and r["seconds"] for tool, r in theirs.items()},
            speedup=fastest / ours["seconds"],
        )


def bench_startup(repeat: int) -> None:
    def go():
        subprocess.run(
            [sys.executable, "-m", "excelnet", "--help"], capture_output=True, check=True
        )

    seconds, _ = median_time(go, max(repeat, 5))
    record(
        "start-up: excelnet --help",
        f"{seconds:.2f} s",
        "—",
        "≤ 0.3 s",
        seconds <= 0.3,
        seconds=seconds,
    )


PLAIN_FIT = (  # the baseline for a cold fit: what a short script of one's own costs
    "import torch, openpyxl; "
    "wb = openpyxl.load_workbook('workbooks/titanic.xlsx', read_only=True); "
    "[list(ws.values) for ws in wb.worksheets]; "
    "from bench.minimal import torch_rate; torch.set_num_threads(1); torch_rate(891, 1000)"
)


def bench_wall_clock(repeat: int) -> None:
    """What a user waits for: `excelnet fit` in a new process (Python and torch start-up, read,
    compile, 1000 epochs, write back), beside fit() in a warm process, and `import torch`."""
    from excelnet.fitting.pipeline import fit
    from excelnet.writer.lessons import build_quadratic

    def wall(argv: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, check=True)
        return time.perf_counter() - t

    floor = statistics.median(wall(["-c", "import torch"]) for _ in range(max(repeat, 3)))
    plain = statistics.median(wall(["-c", PLAIN_FIT]) for _ in range(max(repeat, 3)))
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / "wall.xlsx"
    cases = {
        "the quadratic (3 parameters)": (lambda: build_quadratic(target, force=True), []),
        "Titanic nn": (
            lambda: shutil.copy(ROOT / "workbooks" / "titanic.xlsx", target),
            ["--sheet", "nn", "--method", "gd", "--lr", "0.01"],
        ),
    }
    for label, (fresh, extra) in cases.items():
        command = ["-m", "excelnet", "fit", str(target), *extra, "--no-history", "-q", "--json"]
        times = []
        for _ in range(max(repeat, 3)):
            fresh()
            times.append(wall(command))
        cold = statistics.median(times)
        sheet = extra[1] if extra else None
        lr = 0.01 if extra else None

        def in_process(fresh=fresh, sheet=sheet, lr=lr):
            fresh()
            return fit(target, sheet=sheet, history=False, lr=lr)

        warm, _ = median_time(in_process, repeat)
        titanic = bool(extra)
        record(
            f"fit {label}: `excelnet fit` in a new process, wall clock (1000 epochs"
            + (", gd)" if titanic else ")"),
            f"{cold:.2f} s" + (f" ({cold / plain:.2f}× the plain script)" if titanic else ""),
            f"fit() in a warm process: {warm:.2f} s; `python -c 'import torch'`: {floor:.2f} s"
            + (
                f"; a plain script (import torch, openpyxl reads the workbook, 1000 minimal "
                f"torch steps): {plain:.2f} s"
                if titanic
                else ""
            ),
            "≤ 1.15× the plain script" if titanic else "—",
            cold <= 1.15 * plain if titanic else None,
            seconds=cold,
            warm_seconds=warm,
            import_torch_seconds=floor,
            plain_script_seconds=plain,
        )


CASES = {
    "startup": lambda a, huge: bench_startup(a.repeat),
    "wall": lambda a, huge: bench_wall_clock(a.repeat),
    "build": lambda a, huge: bench_build(a.repeat),
    "epochs": lambda a, huge: bench_epochs(a.repeat, huge),
    "solvers": lambda a, huge: None if a.skip_solvers else bench_solvers(a.repeat),
    "constrained": lambda a, huge: bench_constrained(a.repeat),
    "lp": lambda a, huge: bench_lp(a.repeat),
    "read": lambda a, huge: bench_read_compile(a.repeat),
    "bigfit": lambda a, huge: bench_big_fit(a.repeat),
    "writeback": lambda a, huge: bench_writeback(a.repeat),
    "calc": lambda a, huge: None if a.skip_calc else bench_calc(a.calc_timeout),
}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-solvers", action="store_true", help="skip the minute-long solvers")
    p.add_argument(
        "--skip-huge", action="store_true", help=f"skip the {HUGE:,}-row workbook (minutes)"
    )
    p.add_argument(
        "--calc-timeout",
        type=float,
        default=900,
        help="seconds after which formulas or pycel are stopped (default 900)",
    )
    p.add_argument("--skip-calc", action="store_true", help="skip calc vs formulas and pycel")
    p.add_argument("--out", type=Path, help="the results' JSON (default: bench/results.json)")
    p.add_argument(
        "--only",
        help=f"run only these cases, comma-separated ({', '.join(CASES)}); "
        "results.json is then left as it is (--out names a file for them)",
    )
    args = p.parse_args()
    only = args.only.split(",") if args.only else list(CASES)
    info = machine()
    info["load_average"] = os.getloadavg()
    for stale in CACHE.glob(".~lock.*#"):  # left by an interrupted LibreOffice run
        stale.unlink()
    print(
        f"excelnet bench on {info['cpu']} ({info['cores']} cores), torch {info['torch']}",
        file=sys.stderr,
    )
    huge = None
    if not args.skip_huge and {"build", "epochs"} & set(only):
        huge, seconds = resampled_workbook(HUGE)
    for name in only:
        CASES[name](args, huge)
        if name == "build" and huge is not None:
            record(
                f"build the {HUGE:,}-row workbook",
                f"{seconds:.0f} s",
                "—",
                "—",
                None,
                seconds=seconds,
            )
    if not args.only or args.out is not None:
        out = args.out or ROOT / "bench" / "results.json"
        out.write_text(json.dumps({"machine": info, "results": rows}, indent=2))
    print(
        f"\nexcelnet bench, {info['date']}: {info['cpu']}, {info['cores']} cores, load average "
        f"{info['load_average'][0]:.1f}, Python "
        f"{info['python']}, torch {info['torch']}, {info['libreoffice']}, "
        f"GPU: {info['cuda'] or 'none'}\n"
    )
    print("| case | excelnet | baseline (same run) | target | met |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        print(f"| {r['case']} | {r['excelnet']} | {r['baseline']} | {r['target']} | {met} |")


if __name__ == "__main__":
    main()
