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
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from excelnet.fitting.choice import choose, remember
from excelnet.fitting.engines import sized_threads
from excelnet.fitting.optimisers import runner
from excelnet.fitting.options import METHOD, FitOptions
from excelnet.fitting.problem import Problem
from excelnet.formula.graph import a1
from excelnet.formula.model import Model

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
                "starts",
                "best_start",
                "start_losses",
                "engine",
                "engine_note",
                "engine_choice",
                "engine_reason",
                "honoured",
                "ignored",
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


def _metric(model: Model, metrics: dict[str, tuple[str, int, int]], key: str) -> float | None:
    cell = metrics.get(key)
    if cell is None:
        return None
    v = model.value_at(*cell)
    return v if isinstance(v, float) else None


@sized_threads
def train(
    model: Model,
    options: FitOptions | None = None,
    progress=None,
    metrics: dict[str, tuple[str, int, int]] | None = None,
    problem: Problem | None = None,
) -> SheetFit:
    """Fit a compiled model as `options` say (default: FitOptions()) and keep the best
    parameters seen. The method: the one named, else gd when a fixed `lr` is given, else
    METHOD; `lr` fixes gd's step (or sets adam's). `history` logs the metrics every few
    epochs (rows of the history sheet). `compiled` picks the CPU engine: torch.compile
    (True), eager (False), or whichever is faster for this many epochs (None). `problem`
    carries the Solver model's goal and constraints (default: read from the model's Solver
    names)."""
    options = options or FitOptions()
    epochs, lr, compiled = options.epochs, options.lr, options.compiled
    method = options.chosen_method
    metrics = metrics or {}
    problem = problem or Problem(model)
    start = time.perf_counter()
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
    # without a look (a pack of the state, a transfer) costing every step
    chunk = 1 if run.engine == "eager" and progress is not None else fast
    losses = Losses()
    history = []
    diverged = None
    epoch = 0

    named = [k for k in ("valid_loss", "accuracy") if k in metrics]

    def row(at: int, loss: float | None, violation: float | None) -> tuple:
        """A history row: the metrics at the current point, from the blocks they need."""
        problem.restore(run.here())
        seen = dict(zip(named, model.glance([metrics[k] for k in named]), strict=True))
        return at, loss, seen.get("valid_loss"), seen.get("accuracy"), violation

    while epoch < epochs and not run.done:
        if options.history and epoch % every == 0:
            history.append(row(epoch, None, None))
        n = min(chunk, epochs - epoch, every - epoch % every)  # history rows fall on `every`
        began = time.perf_counter()
        rows = run.run(n).tolist()
        if run.engine == "eager" and progress is not None:
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
    step = run.step_size()
    problem.restore(best_x)
    violations = problem.row_violations()  # a strict evaluate of every dependent cell
    obj = model.solver.objective
    final = model.value_at(obj.sheet, obj.r0, obj.c0)
    history.append(
        (
            losses.count,
            final,
            _metric(model, metrics, "valid_loss"),
            _metric(model, metrics, "accuracy"),
            max(violations.values(), default=None),
        )
    )
    values = {}
    for b in model.params:
        for i, v in enumerate(b.value.x.detach().cpu().reshape(-1).tolist()):
            values[f"{b.sheet}!{a1(b.r0 + i // b.cols, b.c0 + i % b.cols)}"] = v
    cell = f"{obj.sheet}!{a1(obj.r0, obj.c0)}"
    goal = {1: f"maximise {cell}", 2: f"minimise {cell}"}.get(problem.goal)
    if problem.goal == 3:
        goal = f"drive {cell} to {float(problem.target):g} (value of)"
    return SheetFit(
        sheet=model.solver.sheet,
        parameters=problem.n,
        epochs=losses.count,
        device=str(x0.device),
        lr=step,
        initial_loss=initial,
        final_loss=final if isinstance(final, float) else math.nan,
        seconds=time.perf_counter() - start,
        losses=losses.kept,
        loss_every=losses.every,
        last_loss=losses.last,
        params=values,
        history=history,
        valid_loss=_metric(model, metrics, "valid_loss"),
        accuracy=_metric(model, metrics, "accuracy"),
        diverged=diverged,
        engine=run.engine,
        engine_note=run.note
        or (f"{', '.join(drawn)} drawn afresh at every evaluation: eager steps" if drawn else None),
        engine_choice=choice.engine,
        engine_reason=choice.reason,
        method=method,
        goal=goal,
        constraints=sum(r.kind != "ignored" for r in problem.rows),
        max_violation=max(violations.values(), default=None),
        violations=violations,
        honoured=problem.honoured(),
        ignored=problem.ignored(),
        best_epoch=best_epoch,
        converged=method == "lbfgs" and run.done,
    )
