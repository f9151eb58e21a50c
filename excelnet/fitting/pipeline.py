"""The pipeline behind `excelnet fit` and `excelnet eval`: read the workbook, compile its
formulas, train, write back."""

from __future__ import annotations

import math
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from excelnet.errors import ExcelnetError, ExcelnetWarning, NotSolved, where
from excelnet.fitting.history import LOSS, VIOLATION
from excelnet.fitting.history import SHEET as HISTORY
from excelnet.fitting.interrupt import Interrupt
from excelnet.fitting.options import SEED, FitOptions
from excelnet.progress import Silent
from excelnet.xlsx.files import (
    check_source,
    check_target,
    check_well_formed,
    lock,
    refuse_if_open,
    resolve_sheet,
    sheet_parts,
)

if TYPE_CHECKING:  # torch, openpyxl and XlsxWriter load when the work starts, after the checks
    import torch

    from excelnet.fitting.problem import Problem
    from excelnet.fitting.train import Plan, SheetFit
    from excelnet.formula.book import Book
    from excelnet.formula.model import Model
    from excelnet.formula.parse import Ref
    from excelnet.xlsx.sheets import Changes

METRIC_NAMES = {"valid_loss": "excelnet_valid_loss", "accuracy": "excelnet_accuracy"}


def resolve_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ExcelnetError(f"unknown device {device!r}: choose auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ExcelnetError(f"device {device}: no CUDA GPU is available here")
    return torch.device(device)


def _named_range(book: Book, sheet: str, name: str) -> tuple[str | None, Ref | None]:
    """A sheet-scoped name's text and, when it names cells, their Ref."""
    from excelnet.formula.parse import FormulaError, Ref, parse

    text = book.sheets[sheet].names.get(name)
    if text is None:
        return None, None
    try:
        ref = parse(text, sheet)
    except FormulaError:
        return text, None
    ok = isinstance(ref, Ref) and ref.r1 is not None and ref.c1 is not None
    return text, ref if ok else None


def metric_cells(book: Book, sheet: str) -> dict[str, tuple[str, int, int]]:
    """Cells named excelnet_valid_loss / excelnet_accuracy on a model sheet, if any."""
    out = {}
    for key, name in METRIC_NAMES.items():
        _, ref = _named_range(book, sheet, name)
        if ref is not None:
            out[key] = (ref.sheet, ref.r0, ref.c0)
    return out


def gradient_cells(book: Book, model: Model) -> list[tuple[str, int, int]]:
    """The cells named excelnet_gradients on a model sheet (one per parameter), if any."""
    sheet = model.solver.sheet
    text, ref = _named_range(book, sheet, "excelnet_gradients")
    if text is None:
        return []
    if ref is None:
        raise ExcelnetError(
            f"{where(book.path, sheet)}: excelnet_gradients is {text!r}, not a range"
        )
    cells = [
        (ref.sheet, r, c) for r in range(ref.r0, ref.r1 + 1) for c in range(ref.c0, ref.c1 + 1)
    ]
    count = sum(b.size for b in model.params)
    if len(cells) != count:
        raise ExcelnetError(
            f"{where(book.path, sheet)}: excelnet_gradients has {len(cells)} cells for "
            f"{count} parameters"
        )
    return cells


def gradients(model: Model) -> list[float]:
    """d objective / d parameter at the current parameters, in the order of the cells."""
    loss = model.objective_value()
    loss.backward()
    out = []
    for b in model.params:
        out.extend(b.value.x.grad.detach().cpu().reshape(-1).tolist())
        b.value.x.grad = None
    return out


def compile_book(
    book: Book,
    sheet: str | None,
    device: torch.device,
    dtype: torch.dtype | None = None,
    fuse: bool = True,
    seed: int = SEED,
) -> list[Model]:
    """Compile the Solver model of every sheet (or of `sheet`), with the formulas its
    constraints read (watched); check that each objective is a number at the starting
    parameters. `fuse`: see Model.compile. `seed`: where the cells that call RAND,
    RANDBETWEEN or RANDARRAY draw from (again at every evaluation, as Solver's are)."""
    import torch

    from excelnet.fitting.problem import watch_list
    from excelnet.formula.graph import Graph, a1, linked_note
    from excelnet.formula.model import Model
    from excelnet.formula.values import Ctx

    ctx = Ctx(device) if dtype is None else Ctx(device, dtype)
    ctx.random = torch.Generator(device).manual_seed(seed)
    graph = Graph(book)
    models = []
    kept: dict[str, str] = {}  # cells that kept their stored values -> the functions why
    for solver in book.solver_models(sheet):
        model = Model(book, solver, ctx, graph, watch_list(book, solver))
        model.compile(fuse=fuse)  # every block once, strictly: is the objective a number?
        problem = model.objective_error()
        if problem is not None:
            raise ExcelnetError(
                f"{problem} — the objective of sheet {solver.sheet} "
                f"({a1(solver.objective.r0, solver.objective.c0)}) is not a "
                f"number at the starting parameters"
            )
        models.append(model)
        for b, names in model.warnings:
            span = b.cell() if b.size == 1 else f"{b.cell()}:{b.cell(b.size - 1)}"
            kept[f"{b.sheet}!{span}"] = names
    linked = {r.sheet for m in models for b in m.order for r in b.refs if r.sheet in graph.linked}
    if linked:
        warnings.warn(f"{book.path}: {linked_note(linked)}", ExcelnetWarning, stacklevel=3)
    if kept:
        cells = "; ".join(f"{cell} ({names})" for cell, names in kept.items())
        warnings.warn(
            f"{book.path}: used the values the file stores for cells excelnet does not "
            f"recompute: {cells}",
            ExcelnetWarning,
            stacklevel=3,
        )
    return models


def _read_and_compile(
    path: Path,
    sheet: str | None,
    device: str,
    progress: Silent,
    also: tuple[str, ...] = (),
    seed: int = SEED,
) -> tuple[Book, list[Model], frozenset[str]]:
    """The workbook read and its Solver models compiled; and the zip parts of the sheets a
    write-back will patch, checked to be well-formed XML before any training."""
    from excelnet.xlsx.read import read_book

    dev = resolve_device(device)
    with progress.phase(f"reading {path}"):
        book = read_book(path, needed_by=sheet, also=also)
    with progress.phase(f"compiling the formulas of {path.name}"):
        models = compile_book(book, sheet, dev, seed=seed)
        written = {b.sheet for m in models for b in m.report_blocks + m.params}
        with zipfile.ZipFile(path) as z:
            parts = sheet_parts(z)
            for s in sorted(written):
                check_well_formed(path, parts[s], z.read(parts[s]), s)
    return book, models, frozenset(parts[s] for s in written)


def train_model(
    book: Book,
    model: Model,
    options: FitOptions,
    progress: Silent | None = None,
    problem: Problem | None = None,
    how: Plan | None = None,
    stop=None,
) -> SheetFit:
    """Train one compiled model as `options` say, as `fit` does for each, showing its epochs on
    `progress`. `problem`: the model's Solver goal and constraints (default: read from its
    Solver names); `how`: its method (default: excelnet.fitting.train.plan's); `stop`: when
    to stop early (see train)."""
    from excelnet.fitting.train import train

    progress = progress or Silent()
    sheet = model.solver.sheet
    tick = progress.epochs(sheet, options.epochs)
    try:
        return train(model, options, tick, metric_cells(book, sheet), problem, how, stop)
    except ValueError as e:
        raise ExcelnetError(f"{where(book.path, sheet)}: {e}") from None
    finally:
        progress.done()


def fit(
    path: str | Path,
    sheet: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    device: str | None = None,
    out: str | Path | None = None,
    progress: Silent | None = None,
    history: bool | None = None,
    report=None,
    compiled: bool | None = None,
    force: bool = False,
    method: str | None = None,
    options: FitOptions | None = None,
    seed: int | None = None,
    seeds: int = 1,
    workers: int = 1,
    cluster: str | None = None,
) -> list[SheetFit]:
    """Fit every Solver model of the workbook (or of `sheet`) and write the best parameters
    seen, and fresh values of every cell that depends on them, into `out` (default: the
    workbook). How: `options` (a FitOptions; default: FitOptions()), with any of `epochs`
    (default 1000), `lr`, `method`, `device` (default auto), `compiled`, `history`
    (default True) and `seed` (default 0) given here in its place. `method`: gd, adam, lbfgs,
    simplex or evolutionary (default: gd when `lr` is given, else as the Solver model asks:
    excelnet.fitting.train.plan); `lr` fixes gd's step. `history` also records
    the losses in the workbook's `history` sheet, with a chart. `compiled` picks the CPU
    engine (see `excelnet.fitting.train.train`; None: the faster one). Cells that call RAND,
    RANDBETWEEN or RANDARRAY are drawn afresh at every evaluation, as Solver recalculates them
    (a RAND dropout mask trains as dropout), from `seed`: the same seed, the same fit; the
    values written are one final recalculation's; the Evolutionary method draws from it too.
    `progress` shows each phase
    (excelnet.progress.Progress(); default: nothing shown).
    `force` replaces a read-only workbook (or another user's) all the same.
    While it works, excelnet's lock keeps other excelnet processes off the workbook: one
    that wants it waits, then reads what this one wrote (its history included).

    Each model is fitted by the method its Solver model asks for (see
    excelnet.fitting.train.plan). A fit that ends without an answer — no point meeting the
    constraints to solver_pre, an unbounded LP, or a best point the sheet shows an error for —
    raises excelnet.errors.NotSolved, with every result, and leaves the file unchanged (with
    `options.keep_infeasible`, the points closest to feasible are written first). Ctrl-C
    stops the fit and writes the best point so far (the result says `interrupted`); a second
    Ctrl-C raises KeyboardInterrupt before the write, and the file is unchanged.

    `seeds`: fit each model from that many starts and keep the best (see `seeded_start`),
    on `workers` local processes or the Ray cluster at `cluster` (excelnet.fitting.parallel;
    default: one after the other, here)."""
    path = Path(path)
    out = Path(out) if out is not None else path
    if int(seeds) != seeds or seeds < 1:
        raise ExcelnetError(f"--seeds: the number of starts must be 1 or more, not {seeds}")
    progress = progress or Silent()
    if out.suffix.lower() != path.suffix.lower():
        # the zip's content types say .xlsx or .xlsm; Excel refuses a file whose name disagrees
        raise ExcelnetError(
            f"{out}: a fitted copy of {path.name} must keep its extension ({path.suffix})"
        )
    options = FitOptions.of(
        options,
        epochs=epochs,
        lr=lr,
        method=method,
        device=device,
        compiled=compiled,
        history=history,
        seed=seed,
    )
    check_source(path)
    sheet = resolve_sheet(path, sheet) if sheet is not None else None  # as Excel: any case
    check_target(out, force)
    refuse_if_open(path, out)  # before the work, not only at the write
    with lock(progress, path, out), Interrupt() as interrupt:
        from excelnet.fitting.problem import Problem
        from excelnet.fitting.train import plan

        also = (HISTORY,) if options.history else ()
        book, models, checked = _read_and_compile(
            path, sheet, options.device, progress, also, options.seed
        )
        problems = [Problem(model) for model in models]  # every model checked before any fit
        with progress.phase(f"choosing the methods for {path.name}"):  # a linearity check each
            plans = [plan(problem, options) for problem in problems]
        if seeds > 1:
            starts = _fit_starts(path, book, problems, options, seeds, workers, cluster, progress)
        results, updates = [], {}
        for model, problem, how in zip(models, problems, plans, strict=True):
            if interrupt():  # Esc: the sheets not reached keep their values
                if not results:  # before any fit: nothing to keep
                    raise KeyboardInterrupt
                results[-1].notes.append(
                    f"the sheets after {results[-1].sheet} were not fitted (Ctrl-C)"
                )
                break
            if seeds > 1:
                fitted = _keep_best(problem, starts[model.solver.sheet])
            else:
                fitted = train_model(book, model, options, progress, problem, how, interrupt)
            results.append(fitted)
            keep = fitted.solved or (options.keep_infeasible and fitted.solution == "infeasible")
            fitted.written = keep
            if not keep:
                continue
            for (s, r, c), v in model.values().items():
                updates.setdefault(s, {})[(r, c)] = v
            cells = gradient_cells(book, model)
            for (s, r, c), g in zip(cells, gradients(model) if cells else [], strict=True):
                updates.setdefault(s, {})[(r, c)] = g
        unsolved = [r for r in results if not r.solved]
        if unsolved and not options.keep_infeasible:
            for r in results:
                r.written = False
            raise NotSolved(_unsolved(path, unsolved, written=False), results, written=False)
        with progress.phase(f"writing {out}"):
            from excelnet.fitting.history import add_history
            from excelnet.xlsx.sheets import Changes
            from excelnet.xlsx.writeback import write_values

            changes = Changes()
            if options.history:
                add_history(changes, path, book, [r for r in results if r.written])
            if report is not None:
                report(changes, path, results)
            write_values(
                path,
                updates,
                out,
                extra=changes.extra,
                replace=changes.replace,
                force=force,
                checked=checked,
            )
        if unsolved:
            raise NotSolved(_unsolved(out, unsolved, written=True), results, written=True)
    return results


def _unsolved(path: Path, unsolved: list[SheetFit], written: bool) -> str:
    """One line: why the first model without an answer has none, and what became of the file."""
    from excelnet.fitting.linear import INFEASIBLE

    r = unsolved[0]
    at = where(path, r.sheet)
    if r.solution == "infeasible" and r.method == "simplex":
        why = f"{INFEASIBLE} (HiGHS proved that no point meets the constraints)"
        why += ": no feasible point found"
    elif r.solution == "infeasible":
        why = (
            f"constraints broken by up to {r.max_violation:.2g} (solver_pre "
            f"{r.precision:g}): no feasible point found"
        )
    elif r.solution == "error":
        why = f"{r.message}, an error value where the objective or a constraint reads"
    else:
        why = r.message
    others = f" (and {len(unsolved) - 1} more sheets)" if len(unsolved) > 1 else ""
    if not written:
        return f"{at}: {why}{others}; the file is unchanged"
    kept = [x for x in unsolved if x.written]
    what = "wrote the point closest to feasible" if kept else "wrote the other sheets' fits"
    return f"{at}: {why}{others}; {what} (keep_infeasible)"


def seeded_start(problem: Problem, seed: int, x0: torch.Tensor | None = None) -> torch.Tensor:
    """Start `seed` of a multi-start fit: 0 is the workbook's own parameters; every other seed
    draws each adjustable cell afresh — uniformly between its bounds where it has both, else
    from a normal around the workbook's value, as spread as its range's values are (their root
    mean square; 1 where they are all 0), kept within a bound it has. The same seed, the same
    start. `x0`: the workbook's parameters (default: the model's now)."""
    import numpy as np
    import torch

    x0 = problem.start() if x0 is None else x0
    if seed == 0:
        return x0
    rng = np.random.default_rng(seed)
    pieces = []
    for piece in x0.detach().cpu().double().split(problem.sizes):
        v = piece.numpy()
        spread = float(np.sqrt(np.mean(v * v))) or 1.0
        pieces.append(v + spread * rng.standard_normal(v.shape))
    x = torch.tensor(np.concatenate(pieces), dtype=x0.dtype, device=x0.device)
    lo, hi = problem.lo, problem.hi
    both = torch.isfinite(lo) & torch.isfinite(hi)
    between = torch.tensor(rng.uniform(size=problem.n), dtype=x0.dtype, device=x0.device)
    return problem.project(torch.where(both, lo + (hi - lo) * between, x))


def fit_start(path: Path, sheet: str, options: FitOptions, seed: int) -> SheetFit:
    """One start of a multi-start fit, in a worker: the workbook read (the process that asked
    holds its lock) and the sheet's model fitted from seeded_start(seed); nothing written."""
    from excelnet.fitting.problem import Problem

    book, (model,), _ = _read_and_compile(
        Path(path), sheet, options.device, Silent(), (), options.seed
    )
    problem = Problem(model)
    problem.restore(seeded_start(problem, seed))
    return train_model(book, model, options, None, problem)


def _fit_starts(
    path: Path,
    book: Book,
    problems: list[Problem],
    options: FitOptions,
    seeds: int,
    workers: int,
    cluster: str | None,
    progress: Silent,
) -> dict[str, list[SheetFit]]:
    """Every model fitted from each of `seeds` starts: sheet -> the fits, in seed order."""
    from excelnet.fitting.parallel import run_jobs

    out: dict[str, list[SheetFit]] = {}
    if workers <= 1 and cluster is None:  # here, one after the other, on the compiled models
        for problem in problems:
            sheet = problem.model.solver.sheet
            start = problem.start()
            for seed in range(seeds):
                problem.restore(seeded_start(problem, seed, start))
                out.setdefault(sheet, []).append(
                    train_model(book, problem.model, options, progress, problem)
                )
            problem.restore(start)
        return out
    jobs = [
        (path.absolute(), p.model.solver.sheet, options, seed)
        for p in problems
        for seed in range(seeds)
    ]
    with progress.phase(f"fitting {len(jobs)} starts on {_on(workers, cluster, len(jobs))}"):
        outcomes = run_jobs(fit_start, jobs, workers, cluster)
    for (_, sheet, _, seed), o in zip(jobs, outcomes, strict=True):
        if not o.ok:
            raise ExcelnetError(f"{where(path, sheet)}: start {seed}: {o.error}")
        out.setdefault(sheet, []).append(o.value)
    return out


def _keep_best(problem: Problem, fits: list[SheetFit]) -> SheetFit:
    """The best of a model's multi-start fits — feasible before infeasible (Solver's precision),
    then the best objective for the goal (lowest, highest, nearest the target), then the lower
    seed — put into the model (every dependent cell evaluated afresh, as a fit leaves it)."""
    import torch

    target = None if problem.target is None else float(problem.target)

    def rank(i: int) -> tuple:
        r = fits[i]
        feasible = r.max_violation is None or r.max_violation <= problem.precision
        f = r.final_loss
        value = {1: -f, 2: f}.get(problem.goal, abs(f - target) if target is not None else f)
        if math.isnan(value):
            value = math.inf
        return (not feasible, value if feasible else r.max_violation, i)

    best = min(range(len(fits)), key=rank)
    won = fits[best]
    x = torch.tensor(list(won.params.values()), dtype=problem.lo.dtype, device=problem.lo.device)
    problem.restore(x)
    problem.row_violations()  # a strict evaluate of every dependent cell, as train ends
    return replace(
        won, best_start=best, starts=len(fits), start_losses=[r.final_loss for r in fits]
    )


def _on(workers: int, cluster: str | None, jobs: int) -> str:
    """Where jobs run, in words."""
    return f"the Ray cluster at {cluster}" if cluster else f"{min(workers, jobs)} workers"


@dataclass
class Evaluation:
    sheet: str
    objective_cell: str
    objective: float
    gradients: dict[str, float]  # parameter cell -> d objective / d parameter
    values: dict[str, object]  # every formula cell that depends on the parameters
    labels: dict[str, str] = field(default_factory=dict)  # cell -> the headers that name it

    def summary(self) -> dict:
        return {
            "sheet": self.sheet,
            "objective_cell": self.objective_cell,
            "objective": self.objective,
            "gradients": self.gradients,
            "labels": self.labels,
        }


LABEL_REACH = 50  # cells up and to the left a header is looked for


def label(book: Book, sheet: str, r: int, c: int) -> str:
    """The headers that name a cell, as a reader finds them: the text that heads its row
    (to its left) and its column (above it), across the numbers of its table but not across
    an empty cell ("Unit 1, Ones"); empty if there is none."""
    sheet_ = book.sheets.get(sheet)
    values = sheet_.values if sheet_ is not None else {}
    formulas = sheet_.formulas if sheet_ is not None else {}

    def nearest(cells) -> str | None:
        for key in cells:
            v = values.get(key)
            if isinstance(v, str) and v.strip():
                return v.strip()
            if v is None and key not in formulas:  # a gap: this cell has no header that way
                return None
        return None

    left = nearest((r, k) for k in range(c - 1, max(c - LABEL_REACH, 0) - 1, -1))
    above = nearest((k, c) for k in range(r - 1, max(r - LABEL_REACH, 0) - 1, -1))
    return ", ".join(x for x in (left, above) if x)


def evaluate_model(model: Model) -> Evaluation:
    """The objective, its gradients and every dependent cell's value at the current parameters."""
    from excelnet.formula.graph import a1

    grads = gradients(model)
    names = [f"{b.sheet}!{b.cell(i)}" for b in model.params for i in range(b.size)]
    where_ = [
        (b.sheet, b.r0 + i // b.cols, b.c0 + i % b.cols)
        for b in model.params
        for i in range(b.size)
    ]
    model.evaluate()
    o = model.solver.objective
    cells = {f"{s}!{a1(r, c)}": v for (s, r, c), v in model.values().items()}
    objective = f"{o.sheet}!{a1(o.r0, o.c0)}"
    labels = {name: label(model.book, *at) for name, at in zip(names, where_, strict=True)}
    labels[objective] = label(model.book, o.sheet, o.r0, o.c0)
    return Evaluation(
        model.solver.sheet,
        objective,
        cells[objective],
        dict(zip(names, grads, strict=True)),
        cells,
        {k: v for k, v in labels.items() if v},
    )


def evaluate(
    path: str | Path,
    sheet: str | None = None,
    device: str = "auto",
    write: bool = True,
    progress: Silent | None = None,
    force: bool = False,
) -> list[Evaluation]:
    """Each Solver model's objective, its gradient with respect to each parameter cell, and the
    value of every formula cell that depends on the parameters. Where a sheet names gradient
    cells (excelnet_gradients), `write` fills them in; nothing else in the file changes."""
    path = Path(path)
    progress = progress or Silent()
    check_source(path)
    sheet = resolve_sheet(path, sheet) if sheet is not None else None
    with lock(progress, path):
        _, models, _ = _read_and_compile(path, sheet, device, progress)
        out, updates = [], {}
        for model in models:
            result = evaluate_model(model)
            out.append(result)
            grads = result.gradients.values()
            for (s, r, c), g in zip(gradient_cells(model.book, model), grads, strict=False):
                updates.setdefault(s, {})[(r, c)] = g
        if write and updates:
            from excelnet.xlsx.writeback import write_values

            check_target(path, force)
            with progress.phase(f"writing {path}"):
                write_values(path, updates, force=force)
    return out


@dataclass
class SweepRun:
    lr: float
    epochs: int
    losses: list[float]  # thinned as SheetFit.losses is: the loss before epoch i * loss_every
    loss_every: int
    final_loss: float
    diverged: str | None

    def summary(self) -> dict:
        return {
            "lr": self.lr,
            "epochs": self.epochs,
            "final_loss": self.final_loss,
            "diverged": self.diverged,
        }


def _sweep_run(how: FitOptions, r: SheetFit) -> SweepRun:
    return SweepRun(how.lr, r.epochs, r.losses, r.loss_every, r.final_loss, r.diverged)


def sweep_fit(path: Path, sheet: str, how: FitOptions) -> SweepRun:
    """One learning rate of an lr sweep, in a worker: the workbook read (the process that asked
    holds its lock) and the sheet's model fitted from the workbook's parameters."""
    from excelnet.fitting.train import train

    _, (model,), _ = _read_and_compile(Path(path), sheet, how.device, Silent(), (), how.seed)
    return _sweep_run(how, train(model, how))


SWEEP_SHEET = "lr_sweep"


def lr_sweep(
    path: str | Path,
    sheet: str,
    lrs: list[float],
    epochs: int | None = None,
    device: str | None = None,
    progress: Silent | None = None,
    force: bool = False,
    options: FitOptions | None = None,
    workers: int = 1,
    cluster: str | None = None,
) -> list[SweepRun]:
    """Fit one sheet's Solver model from the same starting parameters with each learning rate,
    leave the model sheet as it is, and write an lr_sweep sheet: every rate's loss curve in one
    chart (log scale), the rates that diverged marked. How each fit runs: `options` (default:
    FitOptions(): gd, 1000 epochs), with `epochs` and `device` given here in its place. The
    rates' fits run on `workers` local processes or the Ray cluster at `cluster` (default: one
    after the other, here)."""
    path = Path(path)
    progress = progress or Silent()
    if not lrs:
        raise ExcelnetError("an lr sweep needs at least one learning rate")
    bad = [lr for lr in lrs if not (lr > 0 and math.isfinite(lr))]
    if bad:
        raise ExcelnetError(f"learning rates must be positive finite numbers, not {bad[0]:g}")
    options = FitOptions.of(options, epochs=epochs, device=device).at_least(1)
    each = [replace(options, lr=lr) for lr in lrs]  # every rate checked before any work
    check_source(path)
    sheet = resolve_sheet(path, sheet)
    check_target(path, force)
    refuse_if_open(path)
    import torch

    from excelnet.fitting.train import train
    from excelnet.xlsx.sheets import Changes, render
    from excelnet.xlsx.writeback import write_values

    with lock(progress, path):
        _, (model,), _ = _read_and_compile(path, sheet, options.device, progress, (), options.seed)
        if (workers > 1 and len(each) > 1) or cluster is not None:
            from excelnet.fitting.parallel import run_jobs

            jobs = [(path.absolute(), sheet, how) for how in each]
            on = _on(workers, cluster, len(jobs))
            with progress.phase(f"fitting {len(jobs)} learning rates on {on}"):
                outcomes = run_jobs(sweep_fit, jobs, workers, cluster)
            bad = next((o for o in outcomes if not o.ok), None)
            if bad is not None:
                raise ExcelnetError(f"{where(path, sheet)}: {bad.error}")
            runs = [o.value for o in outcomes]
        else:
            params = model.parameters()
            start = [p.detach().clone() for p in params]
            runs = []
            for how in each:
                with torch.no_grad():
                    for p, s in zip(params, start, strict=True):
                        p.copy_(s)
                tick = progress.epochs(f"{sheet} at learning rate {how.lr:g}", how.epochs)
                try:
                    r = train(model, how, tick)
                finally:
                    progress.done()
                runs.append(_sweep_run(how, r))

        # one epoch column for all: the coarsest of the runs' (each a power of 2)
        every = max(r.loss_every for r in runs)
        rows = max(len(r.losses[:: every // r.loss_every]) for r in runs)
        header = ["epoch"] + [f"lr {r.lr:g}" + (" (diverged)" if r.diverged else "") for r in runs]
        columns = [[float(i * every) for i in range(rows)]] + [
            list(r.losses[:: every // r.loss_every]) for r in runs
        ]

        def chart(wb):
            ch = wb.add_chart({"type": "scatter", "subtype": "straight"})
            for i, column in enumerate(columns[1:], start=1):
                if column:
                    ch.add_series(
                        {
                            "name": header[i],
                            "categories": [SWEEP_SHEET, 1, 0, len(column), 0],
                            "values": [SWEEP_SHEET, 1, i, len(column), i],
                            "line": {"dash_type": "dash"} if runs[i - 1].diverged else {},
                        }
                    )
            ch.set_title({"name": f"Learning rates on sheet {sheet}"})
            ch.set_x_axis({"name": "epoch", "min": 0})
            ch.set_y_axis({"name": "loss (log scale)", "log_base": 10})
            ch.set_size({"width": 720, "height": 400})
            return ch

        with progress.phase(f"writing {path}"):
            changes = Changes()
            formats = ["0"] + [LOSS] * len(runs)  # losses over orders of magnitude
            sheet = render(SWEEP_SHEET, header, columns, chart, formats)
            changes.place(path, SWEEP_SHEET, sheet)
            write_values(path, {}, extra=changes.extra, replace=changes.replace, force=force)
    return runs


COMPARE_SHEET = "compare"
COMPARE_HEADER = [
    "model",
    "parameters",
    "training loss",
    "validation loss",
    "validation accuracy",
    "fit seconds",
    "method",
    "constraints",
    "max violation",
]
COMPARE_FORMATS = [None, "0", "0.00000", "0.00000", "0.0%", "0.00", None, "0", VIOLATION]


def compare(
    path: str | Path,
    epochs: int | None = None,
    lr: float | None = None,
    device: str | None = None,
    out: str | Path | None = None,
    progress: Silent | None = None,
    force: bool = False,
    method: str | None = None,
    options: FitOptions | None = None,
    seeds: int = 1,
    workers: int = 1,
    cluster: str | None = None,
) -> list[SheetFit]:
    """Fit every model sheet (as `fit` does, with `options` and the knobs given here; `seeds`,
    `workers`, `cluster`: each from several starts, as `fit`'s) and write a compare sheet: per
    model its validation loss and accuracy, number of parameters, fit time, method and
    constraint status, with a chart."""
    options = FitOptions.of(options, epochs=epochs, lr=lr, method=method, device=device)
    from excelnet.xlsx.sheets import render

    def report(changes: Changes, book_path: Path, results: list[SheetFit]) -> None:
        rows = [
            [
                r.sheet,
                r.parameters,
                r.final_loss,
                r.valid_loss,
                r.accuracy,
                r.seconds,
                r.method,
                r.constraints,
                r.max_violation,
            ]
            for r in results
        ]
        columns = [list(c) for c in zip(*rows, strict=True)]
        n = len(rows)

        def chart(wb):
            ch = wb.add_chart({"type": "column"})
            use = 3 if any(r.valid_loss is not None for r in results) else 2
            ch.add_series(
                {
                    "name": COMPARE_HEADER[use],
                    "categories": [COMPARE_SHEET, 1, 0, n, 0],
                    "values": [COMPARE_SHEET, 1, use, n, use],
                }
            )
            ch.set_title({"name": f"Models compared: {COMPARE_HEADER[use]}"})
            ch.set_y_axis({"name": COMPARE_HEADER[use], "min": 0})  # bars from 0: honest sizes
            ch.set_legend({"none": True})
            return ch

        sheet = render(COMPARE_SHEET, COMPARE_HEADER, columns, chart, COMPARE_FORMATS)
        changes.place(book_path, COMPARE_SHEET, sheet)

    return fit(
        path,
        out=out,
        progress=progress,
        report=report,
        force=force,
        options=options,
        seeds=seeds,
        workers=workers,
        cluster=cluster,
    )


def compile_models(
    book: Book, sheet: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None
) -> list[Model]:
    """Compile the Solver model of every sheet that has one (or of `sheet`): what `fit` does
    before it trains (compile_book), for code that drives the models itself (float64 unless
    `dtype` says otherwise)."""
    import torch

    return compile_book(book, sheet, torch.device(device), dtype or torch.float64)
