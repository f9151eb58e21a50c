"""Fit the model a workbook's formulas define, as Solver would: minimise (or maximise, or drive
to a value) its objective cell by changing its adjustable cells, within its constraints.

Three methods on the same compiled model. "gd" is the lesson's gradient descent, parameters
-= lr × gradient: with --lr the step is fixed (and may diverge: that is the lesson), without it
the step backs off on its own when a step raises the loss and grows again after steps that
lower it ("bold driver"). "adam" scales each parameter's step by its gradient's running size.
"lbfgs" (the default) is quasi-Newton with a line search, the nearest thing to Solver's GRG.
Bounds on adjustable cells are kept by projecting every step onto them; general constraints by
an augmented Lagrangian (multipliers updated between inner minimisations). Whatever the
method, the parameters kept are the best seen — the lowest objective among feasible points —
never worse than the start.

Engines run the steps in chunks. "eager" runs the compiled blocks op by op, with autograd. On
a CUDA device one step (gd, adam) or one evaluation of loss and gradient (lbfgs) is captured
as a CUDA graph and replayed. On the CPU, when compiling is predicted to save more than it costs
(excelnet.fitting.choice), the same is traced into a flat program of tensor operations once and
torch.compile fuses it into native code. The numbers stay on the device until a chunk
ends; the losses are kept at bounded resolution (see Losses), for any number of epochs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from excelnet.errors import ExcelnetError, ExcelnetWarning, where
from excelnet.fitting.choice import choose, remember
from excelnet.fitting.engines import sized_threads
from excelnet.fitting.linear import INFEASIBLE
from excelnet.fitting.optimisers import runner
from excelnet.fitting.options import METHOD, FitOptions
from excelnet.fitting.problem import Problem, _cells
from excelnet.formula.evaluator import python_value
from excelnet.formula.graph import a1
from excelnet.formula.model import Model
from excelnet.formula.values import V, errors_of

EXPLODE = 1e3  # a fixed step whose loss rises this many times the start's has diverged
HISTORY_POINTS = 50  # rows of the history sheet per fit, at most
LOSS_POINTS = 10_000  # losses kept per fit, at most (then every 2nd, 4th, … epoch's)
CHUNK = 1_000  # epochs run by a fast engine between looks at the losses, at most
LOOK = 0.1  # seconds of eager steps between looks at the losses (progress), about


State = list[torch.Tensor]


@dataclass
class SheetFit:
    """What one fit did: the numbers the summary table and --json show."""

    sheet: str
    parameters: int
    epochs: int
    device: str
    lr: float | None  # gd, adam: the step at the end (fixed with --lr); lbfgs: None
    initial_loss: float  # the objective cell's value at the start and after the fit
    final_loss: float
    seconds: float
    losses: list[float] = field(repr=False, default_factory=list)  # before each step, thinned
    loss_every: int = 1  # losses[i] is the loss before epoch i * loss_every
    last_loss: float | None = None  # before the last epoch (kept in losses or not)
    params: dict[str, float] = field(repr=False, default_factory=dict)  # cell -> fitted value
    history: list[tuple] = field(repr=False, default_factory=list)  # epoch, loss, valid, acc, viol
    valid_loss: float | None = None
    accuracy: float | None = None
    diverged: str | None = None
    engine: str = "eager"  # "eager" | "cuda graph" | "compiled"
    engine_note: str | None = None  # why the engine fell back to eager steps, if it did
    engine_choice: str = "eager"  # the engine chosen (excelnet.fitting.choice), before any fallback
    engine_reason: str = ""  # why: asked for, or the predicted costs of each engine
    method: str = METHOD
    goal: str = ""  # "minimise Model!C7", "maximise …", "drive … to 5 (value of)"
    constraints: int = 0  # rows of Solver's constraint list applied (bounds and general)
    max_violation: float | None = None  # the largest, over every constraint, after the fit
    violations: dict[str, float] = field(repr=False, default_factory=dict)  # per constraint
    honoured: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)  # Solver names present, not used
    best_epoch: int = 0  # the epoch whose parameters were kept (0: the start)
    converged: bool = False  # lbfgs: stopped because steps no longer improved the objective
    # how it ended: "optimal" (HiGHS proved it), "feasible" (a point meeting every constraint:
    # a local optimum, or where the method stopped), "infeasible", "unbounded" (an LP's
    # objective without end), "limit" (HiGHS's time or iteration limit, no point), "error"
    # (the best point found shows an error value where the objective or a constraint reads)
    solution: str = "feasible"
    message: str = ""  # the same in Excel's words, where Excel has some
    interrupted: bool = False  # stopped by Ctrl-C (Esc in Solver): the best point so far
    written: bool | None = None  # whether the point went into the file (set by fit)
    duals: dict | None = None  # an LP's shadow prices and reduced costs
    gap: float | None = None  # branch and bound: the relative gap HiGHS stopped at
    solver_seconds: float | None = None  # simplex: HiGHS's own time, of `seconds`
    seed: int | None = None  # the evolutionary method's random seed
    error: str | None = None  # solution "error": the cell and its error value
    libreoffice: dict[str, str] = field(default_factory=dict)  # cells LibreOffice shows as errors
    notes: list[str] = field(default_factory=list)  # what else a user should know, one line each
    precision: float = 1e-6  # solver_pre: how far a constraint may be broken

    @property
    def solved(self) -> bool:
        """Whether the point is an answer to write: it meets the constraints, and the sheet
        computes it."""
        return self.solution in ("optimal", "feasible")

    starts: int = 1  # --seeds: the starts fitted (excelnet.fitting.pipeline.seeded_start)
    best_start: int = 0  # the start whose fit was kept (0: the workbook's own parameters)
    start_losses: list[float] = field(default_factory=list)  # each start's final objective

    def summary(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "sheet",
                "parameters",
                "epochs",
                "device",
                "method",
                "lr",
                "goal",
                "initial_loss",
                "final_loss",
                "valid_loss",
                "accuracy",
                "constraints",
                "max_violation",
                "violations",
                "seconds",
                "diverged",
                "converged",
                "best_epoch",
                "solution",
                "message",
                "interrupted",
                "written",
                "duals",
                "gap",
                "solver_seconds",
                "seed",
                "error",
                "libreoffice",
                "notes",
                "starts",
                "best_start",
                "start_losses",
                "engine",
                "engine_note",
                "engine_choice",
                "engine_reason",
                "honoured",
                "ignored",
                "params",  # the fitted value of each adjustable cell, by its address
            )
        }

    @property
    def status(self) -> str:
        """The constraints in a few words: '3 constraints, max violation 2e-09'."""
        if self.max_violation is None:
            return "unconstrained"
        rows = f"{self.constraints} constraint" + ("s" if self.constraints != 1 else "")
        if "solver_neg" in self.violations:
            rows += " and solver_neg"
        return f"{rows}, max violation {self.max_violation:.1g}"

    @property
    def loss_epochs(self) -> list[int]:
        """The epoch of each kept loss."""
        return [i * self.loss_every for i in range(len(self.losses))]


class Losses:
    """The loss of every epoch while there are at most `limit`, then of every 2nd, 4th, …
    epoch: memory stays bounded for any number of epochs, and the curve keeps its shape."""

    def __init__(self, limit: int | None = None):
        self.limit = LOSS_POINTS if limit is None else limit
        self.every, self.count, self.kept = 1, 0, []
        self.last: float | None = None

    def extend(self, losses: Iterable[float]) -> None:
        for loss in losses:
            self.last = loss
            if self.count % self.every == 0:
                self.kept.append(loss)
                if len(self.kept) > self.limit:
                    self.kept, self.every = self.kept[::2], self.every * 2
            self.count += 1


# -- the loop ----------------------------------------------------------------------------------


def _filled(history: list[tuple], losses: Losses) -> list[tuple]:
    """A fit that stopped long before its epochs ran out (L-BFGS converged after 13 of 1,000:
    rows every 20 epochs gave a chart of 2 points) gets a row for up to HISTORY_POINTS of its
    epochs, their training loss from the losses kept (the other metrics are measured only
    at the rows the fit planned)."""
    if len(history) >= HISTORY_POINTS or not losses.kept:
        return history
    have = {row[0] for row in history}
    step = max(1, math.ceil(losses.count / HISTORY_POINTS))
    extra = [
        (epoch, loss, None, None, None)
        for i, loss in enumerate(losses.kept)
        if (epoch := i * losses.every) % step == 0 and epoch not in have and epoch < losses.count
    ]
    return sorted(history + extra, key=lambda row: row[0])


def _metric(model: Model, metrics: dict[str, tuple[str, int, int]], key: str) -> float | None:
    cell = metrics.get(key)
    if cell is None:
        return None
    v = model.value_at(*cell)
    return v if isinstance(v, float) else None


@dataclass
class Plan:
    """How a model is fitted: the method and what it needs (the LP, for simplex), decided
    before any fit (see plan)."""

    method: str
    linear: object | None = None  # excelnet.fitting.linear.Linear, for simplex
    automatic: bool = False  # the model picked the method: a linearity slip falls back to GRG
    notes: list[str] = field(default_factory=list)
    used: tuple[str, ...] = ()  # the Solver names the choice honoured


GRG_INTEGER = (
    "{at}: solver_rel{n} makes {cells} {relation} (an integer model), and the model is not "
    "linear: excelnet solves integer models by HiGHS's branch and bound when they are linear, "
    "or by --method evolutionary (solver_eng 3); {method} does not (nothing was written)"
)


def plan(problem: Problem, options: FitOptions | None = None) -> Plan:
    """The method for a model, as Excel's Solver would choose, or a refusal in one line: the
    method named (--method, or gd for a fixed --lr); else solver_eng 3 is the Evolutionary
    method; else a model linear in its variable cells (decided from its formulas) is an LP
    for HiGHS, whatever solver_eng says, and solver_eng 2 (Simplex LP) on a model that is not
    linear gets Excel's own message; else GRG's place: lbfgs."""
    from excelnet.fitting.linear import NOT_LINEAR, linearise

    options = options or FitOptions()
    at = problem.at
    asked = None if options.automatic else options.chosen_method
    engine = problem.engine
    integer = [r for r in problem.rows if r.kind == "integer"]
    used = ("solver_eng", "solver_lin") if asked is None else ()
    if asked in ("gd", "adam", "lbfgs"):
        if integer or problem.all_integer:
            _refuse_integer(problem, integer, asked)
        return Plan(asked)
    if asked == "evolutionary" or (asked is None and engine == 3):
        from excelnet.fitting.evolutionary import check

        check(problem)
        return Plan("evolutionary", used=used)
    lin, why = linearise(problem)
    if lin is None:
        if asked == "simplex" or engine == 2:
            how = "--method simplex" if asked == "simplex" else "solver_eng = 2 (Simplex LP)"
            raise ExcelnetError(
                f"{at}: {NOT_LINEAR} ({how}; {why}; choose GRG Nonlinear, solver_eng 1, or "
                f"another --method; nothing was written)"
            )
        if integer or problem.all_integer:
            _refuse_integer(problem, integer, "GRG (lbfgs)")
        return Plan(METHOD, automatic=True, used=used)
    return Plan("simplex", lin, automatic=asked is None, used=used)


def _refuse_integer(problem: Problem, integer: list, method: str) -> None:
    if not integer:  # solver_int = 1
        raise ExcelnetError(
            f"{problem.at}: solver_int = 1 makes every variable an integer, and the model is "
            f"not linear: {method} does not solve integer models (nothing was written)"
        )
    c = integer[0].constraint
    raise ExcelnetError(
        GRG_INTEGER.format(
            at=problem.at, n=c.index, cells=_cells(c.lhs), relation=c.relation, method=method
        )
    )


@sized_threads
def train(
    model: Model,
    options: FitOptions | None = None,
    progress=None,
    metrics: dict[str, tuple[str, int, int]] | None = None,
    problem: Problem | None = None,
    how: Plan | None = None,
    stop=None,
) -> SheetFit:
    """Fit a compiled model as `options` say (default: FitOptions()) and keep the best
    parameters seen; `how` (default: plan(problem, options)) is the method. `lr` fixes gd's
    step (or sets adam's). `history` logs the metrics every few epochs (rows of the history
    sheet). `compiled` picks the CPU engine: torch.compile (True), eager (False), or whichever
    is faster for this many epochs (None). `problem` carries the Solver model's goal and
    constraints (default: read from the model's Solver names). `stop`: a function that says
    when to stop early (Ctrl-C: the best point so far is kept). The result's `solution` says
    whether the point kept is an answer (see SheetFit.solved); the model's parameters hold it."""
    options = options or FitOptions()
    metrics = metrics or {}
    problem = problem or Problem(model)
    how = how or plan(problem, options)
    stop = stop or (lambda: False)
    if how.method == "simplex":
        fitted = _simplex(model, problem, how, metrics)
        if fitted is not None:
            return fitted
        how = Plan(METHOD, automatic=True, used=how.used, notes=how.notes + [LINEAR_SLIP])
    if how.method == "evolutionary":
        from excelnet.fitting.evolutionary import evolve

        began = time.perf_counter()
        x, fields = evolve(problem, options, how.notes, progress, stop)
        return conclude(model, problem, x, metrics, began, how, **fields)
    return _descend(model, problem, options, how, progress, metrics, stop)


LINEAR_SLIP = (
    "the model looked linear, but HiGHS's optimum is not one on its formulas (an IF or a MAX "
    "that bends outside the points looked at): fitted by lbfgs instead"
)


def _simplex(model: Model, problem: Problem, how: Plan, metrics) -> SheetFit | None:
    """The LP by HiGHS, checked on the formulas; None when the formulas disagree with it
    (they are not linear everywhere) and the model picked simplex itself."""
    from excelnet.fitting.linear import NOT_LINEAR, solve

    began = time.perf_counter()
    lin = how.linear
    problem.linear = True
    answer = solve(problem, lin)
    x0 = problem.start()
    x = x0 if answer.x is None else torch.as_tensor(answer.x, dtype=x0.dtype, device=x0.device)
    fitted = conclude(
        model,
        problem,
        x,
        metrics,
        began,
        how,
        method="simplex",
        epochs=answer.iterations,
        initial=lin.f0,
        solution="feasible"
        if answer.status == "limit" and answer.x is not None
        else (answer.status),
        message=answer.message,
        used=tuple(answer.used),
    )
    if answer.x is None:
        return fitted
    scale = abs(answer.objective) + float(np.abs(lin.g) @ np.abs(answer.x)) + abs(lin.f0)
    agrees = abs(fitted.final_loss - answer.objective) <= 1e-9 * scale + 1e-300
    if fitted.solution == "error" or not agrees or not fitted.solved:
        if how.automatic:
            problem.linear = False
            problem.restore(x0)
            return None
        raise ExcelnetError(
            f"{problem.at}: {NOT_LINEAR} (HiGHS's optimum is not one on the formulas: an IF "
            f"or a MAX bends where the points looked at did not show it; nothing was written)"
        )
    fitted.duals = answer.duals
    fitted.gap = answer.gap
    fitted.solver_seconds = answer.seconds
    fitted.converged = answer.status == "optimal"
    return fitted


def _descend(model, problem, options, how, progress, metrics, stop) -> SheetFit:
    """gd, adam or lbfgs: the steps, in chunks, until the epochs are done, the method stops,
    `stop` says so or solver_tim runs out."""
    epochs, lr, compiled = options.epochs, options.lr, options.compiled
    method = how.method
    start = time.perf_counter()
    limit = problem.option("solver_tim", math.inf)
    limit = math.inf if limit >= 1e9 else limit  # Excel's "no limit" is 2147483647
    every = max(1, epochs // HISTORY_POINTS)  # a history row every `every` epochs
    x0 = problem.start()
    drawn = model.redrawn()  # a traced or captured step would replay the same draws
    choice = choose(problem, x0, method, epochs, compiled, drawn)
    fast = min(every, CHUNK)  # steps a fast engine runs between looks (its buffer's rows)
    run, (initial, f0_big) = runner(problem, method, lr, choice.engine, fast)
    if run is not None and run.engine == "compiled":
        remember(choice.key)  # the next fit of this structure finds it in torch's cache
    if not math.isfinite(initial):
        raise ValueError("the objective is not finite at the starting parameters")

    def bad(value: float) -> bool:
        return not math.isfinite(value) or value > f0_big + EXPLODE * max(abs(f0_big), 1e-12)

    # eager: steps between looks sized to ~0.1 s, so that the progress bar moves smoothly
    # and Ctrl-C is answered promptly, without a look (a pack of the state, a transfer)
    # costing every step
    chunk = 1 if run.engine == "eager" else fast
    losses = Losses()
    history = []
    diverged = None
    interrupted = False
    epoch = 0

    named = [k for k in ("valid_loss", "accuracy") if k in metrics]

    def row(at: int, loss: float | None, violation: float | None) -> tuple:
        """A history row: the metrics at the current point, from the blocks they need."""
        problem.restore(run.here())
        seen = dict(zip(named, model.glance([metrics[k] for k in named]), strict=True))
        return at, loss, seen.get("valid_loss"), seen.get("accuracy"), violation

    while epoch < epochs and not run.done:
        if stop():
            interrupted = True
            break
        if time.perf_counter() - start > limit:
            how.notes.append(f"stopped at solver_tim = {limit:g} seconds")
            break
        if options.history and epoch % every == 0:
            history.append(row(epoch, None, None))
        n = min(chunk, epochs - epoch, every - epoch % every)  # history rows fall on `every`
        began = time.perf_counter()
        rows = run.run(n).tolist()
        if run.engine == "eager":
            spent = max(time.perf_counter() - began, 1e-9)
            chunk = max(1, min(fast, int(chunk * LOOK / spent)))
        if not rows:
            break
        fixed = method == "adam" or lr is not None
        first_bad = next((i for i, r in enumerate(rows) if fixed and bad(r[2])), None)
        if first_bad is not None:
            losses.extend(r[0] for r in rows[:first_bad])
            diverged = (
                f"diverged at epoch {epoch + first_bad} (loss {rows[first_bad][0]:.4g}); "
                f"kept the best parameters seen: try a learning rate smaller than "
                f"{run.step_size():g}"
            )
            epoch += first_bad
            break
        losses.extend(r[0] for r in rows)
        if history and history[-1][0] == epoch:
            history[-1] = (epoch, rows[0][0], *history[-1][2:4], rows[0][1])
        epoch += len(rows)
        if progress is not None:
            progress(epoch, rows[-1][0])
    best_x, best_epoch = run.best()
    used = ("solver_tim",) if limit < math.inf else ()
    return conclude(
        model,
        problem,
        best_x,
        metrics,
        start,
        how,
        method=method,
        epochs=losses.count,
        initial=initial,
        history=history,
        losses=losses,
        lr=run.step_size(),
        diverged=diverged,
        engine=run.engine,
        engine_note=run.note
        or (f"{', '.join(drawn)} drawn afresh at every evaluation: eager steps" if drawn else None),
        engine_choice=choice.engine,
        engine_reason=choice.reason,
        best_epoch=best_epoch,
        converged=method == "lbfgs" and run.done,
        interrupted=interrupted,
        used=used,
    )


# Excel's words for how GRG and the Evolutionary method end
CONVERGED = "Solver has converged to the current solution. All Constraints are satisfied."
STOPPED = "Solver stopped at user's request."
LIMITED = "Solver stopped at its limit (--epochs, solver_tim). All Constraints are satisfied."


def conclude(
    model: Model,
    problem: Problem,
    x: torch.Tensor,
    metrics,
    start: float,
    how: Plan,
    *,
    method: str,
    epochs: int,
    initial: float,
    history: list | None = None,
    losses: Losses | None = None,
    solution: str = "feasible",
    message: str | None = None,
    interrupted: bool = False,
    used: tuple[str, ...] = (),
    **more,
) -> SheetFit:
    """The fit's result at x, the point kept: x put into the model's parameters, every cell
    that depends on them evaluated by Excel's rules (what fit writes), and what that shows:
    the constraints met or not (solver_pre), an error value where the objective or a
    constraint reads, cells LibreOffice would show as errors (a warning)."""
    problem.restore(x)
    ctx = model.ctx
    ctx.snaps = 0  # count where LibreOffice's arithmetic would differ from Excel's
    try:
        violations = problem.row_violations()  # a strict evaluate of every dependent cell
        snaps = ctx.snaps
    finally:
        ctx.snaps = None
    libreoffice = {}
    if snaps:  # the cells that show an error value in LibreOffice and not in Excel
        excel = _error_cells(model, libreoffice=False)
        libreoffice = {
            k: v for k, v in _error_cells(model, libreoffice=True).items() if k not in excel
        }
        violations = problem.row_violations()  # Excel's values again, for the write-back
    obj = model.solver.objective
    v = model.objective.value  # detached: the objective may be a variable cell's own value
    final = python_value(V(v.x.detach(), v.kind, v.text), model.objective_pos)
    error = problem.error_now(x)
    if problem.goal == 3:  # Value Of is a constraint to Solver: the objective at its value
        gap = abs(final - float(problem.target)) if isinstance(final, float) else math.inf
        violations["solver_val"] = gap
    worst = max(violations.values(), default=None)
    if error is not None:
        solution, message = "error", f"the sheet shows {error} at the best point found"
    elif (
        solution in ("optimal", "feasible")
        and worst is not None
        and not (worst <= problem.precision)
    ):
        solution, message = "infeasible", INFEASIBLE
    if message is None:
        message = STOPPED if interrupted else CONVERGED if more.get("converged") else LIMITED
    history = list(history or [])
    if not history:
        history.append((0, initial, None, None, None))
    history.append(
        (
            losses.count if losses is not None else epochs,
            final,
            _metric(model, metrics, "valid_loss"),
            _metric(model, metrics, "accuracy"),
            worst,
        )
    )
    if losses is not None:  # a fit that stopped early: its chart from the losses kept
        history = _filled(history, losses)
    values = {}
    for b in model.params:
        for i, v in enumerate(b.value.x.detach().cpu().reshape(-1).tolist()):
            values[f"{b.sheet}!{a1(b.r0 + i // b.cols, b.c0 + i % b.cols)}"] = v
    cell = f"{obj.sheet}!{a1(obj.r0, obj.c0)}"
    goal = {1: f"maximise {cell}", 2: f"minimise {cell}"}.get(problem.goal)
    if problem.goal == 3:
        goal = f"drive {cell} to {float(problem.target):g} (value of)"
    notes = list(how.notes)
    leftover = model.solver.leftover
    if leftover:
        notes.append(
            f"{', '.join(leftover)} ignored: solver_num is "
            f"{len(model.solver.constraints)}, and Excel reads only the first solver_num "
            f"constraints (names a deleted constraint left behind)"
        )
    if interrupted:
        notes.append("stopped by Ctrl-C: kept the best point so far (Keep Solver Solution)")
    if libreoffice:
        shown = ", ".join(f"{s}!{a1(r, c)}" for s, r, c in list(libreoffice)[:3])
        more_cells = f" and {len(libreoffice) - 3} more" if len(libreoffice) > 3 else ""
        warnings.warn(
            f"{where(model.book.path, model.solver.sheet)}: LibreOffice will show an error "
            f"value in {shown}{more_cells}, which Excel computes: it rounds a difference "
            f"within 2^-48 of its operands to 0 (1 - F9 with F9 = 1 - 2e-15 is 0 there), and "
            f"a power that underflows is #NUM! there",
            ExcelnetWarning,
            stacklevel=4,
        )
    return SheetFit(
        sheet=model.solver.sheet,
        parameters=problem.n,
        epochs=epochs,
        device=str(x.device),
        lr=more.pop("lr", None),
        initial_loss=initial,
        final_loss=final if isinstance(final, float) else math.nan,
        seconds=time.perf_counter() - start,
        losses=losses.kept if losses is not None else [initial],
        loss_every=losses.every if losses is not None else 1,
        last_loss=losses.last if losses is not None else None,
        params=values,
        history=history,
        valid_loss=_metric(model, metrics, "valid_loss"),
        accuracy=_metric(model, metrics, "accuracy"),
        method=method,
        goal=goal,
        constraints=sum(r.kind not in ("ignored",) for r in problem.rows),
        max_violation=worst,
        violations=violations,
        honoured=problem.honoured(),
        ignored=problem.ignored(how.used + used),
        solution=solution,
        message=message,
        interrupted=interrupted,
        error=error,
        libreoffice={f"{s}!{a1(r, c)}": v for (s, r, c), v in libreoffice.items()},
        notes=notes,
        precision=problem.precision,
        **more,
    )


def _error_cells(model: Model, libreoffice: bool) -> dict[tuple[str, int, int], str]:
    """Every cell that depends on the parameters and shows an error value, by Excel's rules or
    LibreOffice's: the blocks evaluated strictly in order, each error a NaN for the cells that
    read it (a block's readers take its kinds as they were when it was traced), so that an
    error reaches the sums and the objective that use it."""
    from excelnet.formula.site import current

    ctx = model.ctx
    ctx.strict, ctx.libreoffice = True, libreoffice
    out = {}
    try:
        with torch.no_grad():
            model.generation += 1
            for b in model.report_blocks:
                v = model._fit(b, current(b.thunk))
                errs = errors_of(v)
                if errs is not None and (errs != None).any():  # noqa: E711
                    bad = np.array(np.broadcast_to(errs != None, v.x.shape))  # noqa: E711
                    x = v.x.detach().clone()
                    x[torch.as_tensor(bad, device=x.device)] = math.nan
                    v = V(x, v.kind, v.text)
                    flat = np.broadcast_to(errs, v.x.shape).reshape(-1)
                    for i in np.flatnonzero(bad.reshape(-1)):
                        cell = (b.sheet, b.r0 + int(i) // b.cols, b.c0 + int(i) % b.cols)
                        out[cell] = str(flat[i])
                b.value = v
    finally:
        ctx.libreoffice = False
    return out
