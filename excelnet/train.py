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
as a CUDA graph and replayed. On the CPU, when the time it saves exceeds what compiling costs
(which grows with the step's size), the same is traced into a flat program of tensor operations
once and torch.compile fuses it into native code. The numbers stay on the device until a chunk
ends; the losses are kept at bounded resolution (see Losses), for any number of epochs.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from excelnet.defaults import EPOCHS, LR, METHOD, METHODS
from excelnet.formula.compile import Model, a1
from excelnet.problem import Problem

ADAM_LR = 0.01
EXPLODE = 1e3  # a fixed step whose loss rises this many times the start's has diverged
GROW, SHRINK = 1.1, 0.5  # gd's own step after a step that lowered / raised the loss
LR_MAX = 1e12  # gd's own step grows no further (a linear objective against a bound)
SLACK = 1e-12  # gd: a rise this small (relative) is rounding, not a step too far
BETAS, EPS = (0.9, 0.999), 1e-8  # Adam's
MEMORY = 20  # L-BFGS: curvature pairs kept
ARMIJO = 1e-4  # L-BFGS: the decrease a step must make, relative to its first-order prediction
FTOL = 1e-15  # L-BFGS: a relative decrease below this ends an inner minimisation
INNER = 1e-2  # L-BFGS: the first inner minimisation's gradient tolerance (x max |gradient|)
MU, MU_GROW, MU_MAX = 10.0, 10.0, 1e10  # augmented Lagrangian penalty: start, growth, cap
OUTER = 100  # gd, adam: steps between multiplier updates
HISTORY_POINTS = 50  # rows of the history sheet per fit, at most
LOSS_POINTS = 10_000  # losses kept per fit, at most (then every 2nd, 4th, … epoch's)
CHUNK = 1_000  # epochs run by a fast engine between looks at the losses, at most
# What torch.compile costs, measured: ~3 s for any step, and more than linearly in the number
# of operations of its autograd graph: Titanic nn (22 operations) 3.4 s, a model of 200
# parameter ranges (408) 8 s, of 500 (1,008) 19 s; of 2,000 (4,009) about 225 s (issue 13).
# The compiled step ran 3-5x faster than the eager one.
COMPILE_BASE = 3.0
COMPILE_PER_OP = 0.002
COMPILE_PER_OP_SQUARED = 1.3e-5
COMPILED_SPEEDUP = 3.0
LOOK = 0.1  # seconds of eager steps between looks at the losses (progress), about
RECORD = 4  # per step: objective cell, max violation, minimised quantity, step size

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
    method: str = METHOD
    goal: str = ""  # "minimise Model!C7", "maximise …", "drive … to 5 (value of)"
    constraints: int = 0  # rows of Solver's constraint list applied (bounds and general)
    max_violation: float | None = None  # the largest, over every constraint, after the fit
    violations: dict[str, float] = field(repr=False, default_factory=dict)  # per constraint
    honoured: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)  # Solver names present, not used
    best_epoch: int = 0  # the epoch whose parameters were kept (0: the start)
    converged: bool = False  # lbfgs: stopped because steps no longer improved the objective

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
                "engine",
                "engine_note",
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


# -- what every method does at a point: value, gradient, feasibility, the best seen --------------


def evaluate(problem: Problem, x: torch.Tensor, lam: torch.Tensor, mu: torch.Tensor):
    """At x: the augmented Lagrangian L, its gradient, the objective cell f, the quantity
    minimised F and the largest constraint violation v."""
    x = x.detach().requires_grad_(True)
    f, big_f, c = problem.terms(x)
    loss = problem.lagrangian(big_f, c, lam, mu)
    (g,) = torch.autograd.grad(loss, x)
    with torch.no_grad():
        return loss.detach(), g, f.detach(), big_f.detach(), problem.violation(c.detach())


def better(F, v, best_F, best_v, tol: float, rho) -> torch.Tensor:
    """Whether (F, v) beats the best so far: feasible (v <= tol, Solver's precision) before
    infeasible; among feasible points the lower F + rho·v (an exact penalty when rho exceeds
    the multipliers' sum: what is left of the violation is not bought with objective), among
    infeasible ones the smaller violation."""
    ok = torch.isfinite(F) & torch.isfinite(v)
    feasible, best_feasible = v <= tol, best_v <= tol
    lower = F + rho * v < best_F + rho * best_v
    wins = (feasible & (~best_feasible | lower)) | (~feasible & ~best_feasible & (v < best_v))
    return ok & wins


def _rho(lam: torch.Tensor) -> torch.Tensor:
    return 1.0 + 2.0 * lam.abs().sum()


def _keep_best(s: dict, x, F, v, tol: float, constrained: bool) -> dict:
    if constrained:
        b = better(F, v, s["best_F"], s["best_v"], tol, _rho(s["lam"]))
    else:  # every step is feasible: an infeasible start holds best_F = inf (see Steps)
        b = F < s["best_F"]  # false for NaN
    return {
        "best_x": torch.where(b, x, s["best_x"]),
        "best_F": torch.where(b, F, s["best_F"]),
        "best_v": torch.where(b, v, s["best_v"]),
        "best_t": torch.where(b, s["t"], s["best_t"]),
    }


# -- engines: a pure function of tensors, run eagerly, compiled, or as a CUDA graph --------------


def _let_go(model: Model) -> None:
    """Recompute every block that depends on the parameters without autograd, so that no
    graph made earlier (by the compile, or a step on another stream) stays alive."""
    with torch.no_grad():
        model.run(model.report_blocks)


def _compiled(fn: Callable, example: State) -> Callable:
    """fn traced once with fake tensors into a flat graph of tensor operations (a computation
    whose course depends on the numbers, such as an IF choosing text or a number, cannot be
    traced that way, and refuses), fused by torch.compile. Its result from `example` must
    equal fn's own, or it is not used."""
    from torch.fx.experimental.proxy_tensor import make_fx

    traced = make_fx(fn, tracing_mode="fake", _allow_non_fake_inputs=True)(*example)
    program = torch.compile(traced, dynamic=False)
    with torch.no_grad():
        got = program(*example)
    want = fn(*example)
    same = (
        torch.allclose(g, w, rtol=1e-9, atol=1e-12, equal_nan=True)
        for g, w in zip(got, want, strict=True)
    )
    if not all(same):
        raise RuntimeError("the compiled step differs from the eager step")

    def run(*xs: torch.Tensor):
        with torch.no_grad():
            return program(*xs)

    return run


class _Graph:
    """fn captured once as a CUDA graph over static input tensors. `feed_back`: the first
    outputs are copied over the inputs inside the graph (the next step's state), and the
    last output (a record) lands in a buffer row per replay."""

    def __init__(self, fn: Callable, example: State, model: Model, feed_back: bool, most: int):
        dev = example[0].device
        self.static = [e.detach().clone() for e in example]
        self.feed_back = feed_back
        self.buffer = torch.zeros(max(most, 1), RECORD, dtype=example[0].dtype, device=dev)
        self.index = torch.zeros(1, dtype=torch.long, device=dev)
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        # Warm-up and capture on one stream, each after every autograd graph made earlier is
        # let go: a graph the compile left on the default stream broke the first capture on an
        # H100. The warm-up runs every operation of the captured step once, bookkeeping too.
        _let_go(model)
        with torch.cuda.stream(side):
            for _ in range(3):
                out = fn(*self.static)
                if feed_back:
                    self._record(out[-1])
                    self.index.zero_()  # the buffer may hold a single row
            del out
            _let_go(model)
        torch.cuda.current_stream(dev).wait_stream(side)
        self.g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.g, stream=side):
            self.out = fn(*self.static)
            if feed_back:
                with torch.no_grad():
                    for s, o in zip(self.static, self.out[:-1], strict=True):
                        s.copy_(o)
                self._record(self.out[-1])

    def _record(self, row: torch.Tensor) -> None:
        self.buffer.index_copy_(0, self.index, row.reshape(1, -1))
        self.index += 1

    def load(self, xs: State) -> None:
        with torch.no_grad():
            for s, x in zip(self.static, xs, strict=True):
                if s is not x:
                    s.copy_(x)

    def __call__(self, *xs: torch.Tensor):
        self.load(list(xs))
        self.g.replay()
        return tuple(o.clone() for o in self.out)

    def loop(self, n: int) -> torch.Tensor:
        self.index.zero_()
        for _ in range(n):
            self.g.replay()
        return self.buffer[:n]


def _engine(fn: Callable, example: State, model: Model, kind: str, loop: bool, most: int):
    """(runner, engine name, why the engine `kind` was not used). The runner is fn itself
    ("eager"), its compiled twin ("compiled") or a _Graph ("cuda graph")."""
    if kind == "cuda graph":
        try:
            return _Graph(fn, example, model, loop, most), "cuda graph", None
        except Exception as e:  # a computation that cannot be captured: run it eagerly
            why = f"CUDA graph capture failed ({type(e).__name__}: {e})"
    elif kind == "compiled":
        try:
            return _compiled(fn, example), "compiled", None
        except Exception as e:  # cannot be traced or compiled here: run it eagerly
            why = f"torch.compile could not be used ({type(e).__name__}: {e})"
    else:
        return fn, "eager", None
    return fn, "eager", why.splitlines()[0][:300]


# -- the methods -------------------------------------------------------------------------------


class Multipliers:
    """The augmented Lagrangian's multipliers and penalty: after each inner minimisation the
    multipliers move by mu × residual, and mu grows when the violation did not fall to a
    quarter."""

    def __init__(self, problem: Problem, x: torch.Tensor):
        self.problem = problem
        self.lam = x.new_zeros(problem.m)
        self.mu = x.new_tensor(MU)
        self.last = math.inf

    def update(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            problem = self.problem
            problem.load(x)
            _, _, c = problem.terms(x)
            v = float(problem.violation(c))
            self.lam = problem.multipliers(self.lam, c, self.mu)
            if v > 0.25 * self.last:
                self.mu = torch.clamp(self.mu * MU_GROW, max=MU_MAX)
            self.last = v


class Layout:
    """Named parts of one flat state tensor: a compiled program or a CUDA graph then takes one
    input and gives one output for the whole state (each more costs a copy or a check per
    step). Parts of size 1 are scalars (0-d views)."""

    def __init__(self, sizes: dict[str, int], scalars: set[str]):
        self.parts, at = {}, 0
        for k, n in sizes.items():
            self.parts[k] = (at, n, k in scalars)
            at += n

    def pack(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([values[k].reshape(-1) for k in self.parts])

    def unpack(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            k: flat[at] if scalar else flat[at : at + n]
            for k, (at, n, scalar) in self.parts.items()
        }


class Steps:
    """gd or adam: one step as a pure function of the state, run n at a time by an engine.
    The start (as the workbook has it, perhaps outside the bounds, with its quantity
    minimised F0 and violation v0) is the first best."""

    done = False

    def __init__(self, problem: Problem, method: str, lr: float | None, start, kind, most):
        x0, big_f0, v0 = start
        self.problem, self.method, self.tol = problem, method, problem.precision
        self.fixed = lr is not None
        self.adaptive = method == "gd" and not self.fixed
        lr = lr if lr is not None else (LR if method == "gd" else ADAM_LR)
        x = problem.project(x0)
        self.multipliers = Multipliers(problem, x)
        zero = x.new_zeros(())
        if not problem.m and v0 > self.tol:  # a start outside the bounds: any step beats it
            big_f0 = big_f0 + math.inf
        s = {
            "x": x,
            "t": zero,
            "lr": zero + lr,
            "lam": self.multipliers.lam,
            "mu": self.multipliers.mu,
            "best_x": x0,
            "best_F": big_f0,
            "best_v": v0,
            "best_t": zero,
        }
        if method == "adam":
            s.update(m=torch.zeros_like(x), v2=torch.zeros_like(x))
        elif self.adaptive:
            s.update(
                base_x=x,
                base_g=torch.zeros_like(x),
                base_L=zero + math.inf,
                base_f=zero,
                base_v=zero,
            )
        scalars = {k for k, v in s.items() if v.dim() == 0}
        self.layout = Layout({k: v.numel() for k, v in s.items()}, scalars)
        self.state = self.layout.pack(s)
        self.since_outer = 0
        self.run_fn, self.engine, self.note = _engine(
            lambda flat: self.fn(flat), [self.state], problem.model, kind, True, most
        )
        # Eager on the CPU, a number costs nothing to read: the best point is kept in Python,
        # five tensor operations fewer per step (with constraints the rule needs the tensors)
        self.python_best = self.engine == "eager" and x.device.type == "cpu" and not problem.m

    def fn(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step on the packed state (what the compiled program and CUDA graph run)."""
        new, record = self.step(self.layout.unpack(state))
        return self.layout.pack(new), record

    def step(self, s: dict, keep: bool = True) -> tuple[dict, torch.Tensor]:
        """One step: the state's parts after it, and its record (`keep`: the best point
        seen is part of the state)."""
        problem = self.problem
        loss, g, f, big_f, v = evaluate(problem, s["x"], s["lam"], s["mu"])
        with torch.no_grad():  # the bookkeeping needs no gradient
            return self._update(s, loss, g, f, big_f, v, keep)

    def _update(self, s: dict, loss, g, f, big_f, v, keep=True) -> tuple[dict, torch.Tensor]:
        problem = self.problem
        best = _keep_best(s, s["x"], big_f, v, self.tol, problem.m > 0) if keep else {}
        new = dict(s, **best, t=s["t"] + 1)
        if self.method == "adam":
            b1, b2 = BETAS
            m = b1 * s["m"] + (1 - b1) * g
            v2 = b2 * s["v2"] + (1 - b2) * g * g
            n = s["t"] + 1
            step = m / (1 - b1**n) / ((v2 / (1 - b2**n)).sqrt() + EPS)
            new.update(m=m, v2=v2, x=problem.project(s["x"] - s["lr"] * step))
            record = (f, v, big_f, s["lr"])
        elif self.fixed:
            new.update(x=problem.project(s["x"] - s["lr"] * g))
            record = (f, v, big_f, s["lr"])
        else:  # accept the point if the loss did not rise (beyond rounding) above the lowest
            # accepted, else step back with half the step; grow it after a step that lowered it
            ok = torch.isfinite(loss) & (loss <= s["base_L"] + SLACK * s["base_L"].abs())
            base = {
                k: torch.where(ok, now, s[k])
                for k, now in (
                    ("base_x", s["x"]),
                    ("base_g", g),
                    ("base_L", torch.minimum(loss, s["base_L"])),
                    ("base_f", f),
                    ("base_v", v),
                )
            }
            lower = (s["lr"] * GROW).clamp(max=LR_MAX)
            lr = torch.where(ok, torch.where(loss < s["base_L"], lower, s["lr"]), s["lr"] * SHRINK)
            new.update(base, lr=lr, x=problem.project(base["base_x"] - lr * base["base_g"]))
            record = (base["base_f"], base["base_v"], big_f, lr)
        return new, torch.stack(record)

    def run(self, n: int) -> torch.Tensor:
        """n steps; their records (objective cell, violation, quantity minimised, step)."""
        if isinstance(self.run_fn, _Graph):
            self.run_fn.load([self.state])
            rows = self.run_fn.loop(n).clone()
            self.state = self.run_fn.static[0].clone()
        elif self.engine == "eager":  # parts as they are: packing costs ops that do not fuse
            out = []
            s = self.layout.unpack(self.state)
            if self.python_best:
                best = [s["best_x"], float(s["best_F"]), s["best_v"], s["best_t"]]
            for _ in range(n):
                before = s
                s, row = self.step(s, keep=not self.python_best)
                out.append(row)
                if self.python_best:
                    big_f = row[2].item()  # the quantity minimised at the point stepped from
                    if big_f < best[1]:  # as _keep_best: false for NaN
                        best = [before["x"], big_f, self.problem.no_violation, before["t"]]
            if self.python_best:
                s = dict(
                    s,
                    best_x=best[0],
                    best_F=s["t"].new_tensor(best[1]),
                    best_v=best[2],
                    best_t=best[3],
                )
            self.state = self.layout.pack(s)
            rows = torch.stack(out)
        else:
            out = []
            state = self.state
            for _ in range(n):
                state, row = self.run_fn(state)
                out.append(row)
            self.state = state
            rows = torch.stack(out)
        self.since_outer += n
        if self.problem.m and self.since_outer >= OUTER:
            self._outer()
        return rows

    def _outer(self) -> None:
        """Update the multipliers; gd measures the loss afresh from its accepted point."""
        self.since_outer = 0
        s = self.layout.unpack(self.state)
        here = s["base_x"] if self.adaptive else s["x"]
        self.multipliers.update(here)
        s.update(lam=self.multipliers.lam, mu=self.multipliers.mu)
        if self.adaptive:
            s.update(x=here, base_L=torch.full_like(s["base_L"], math.inf))
        self.state = self.layout.pack(s)

    def here(self) -> torch.Tensor:
        s = self.layout.unpack(self.state)
        return (s["base_x"] if self.adaptive else s["x"]).clone()

    def best(self) -> tuple[torch.Tensor, int]:
        s = self.layout.unpack(self.state)
        return s["best_x"].clone(), int(s["best_t"])

    def step_size(self) -> float:
        return float(self.layout.unpack(self.state)["lr"])


class LBFGS:
    """Projected L-BFGS: the two-loop recursion on the variables not held at a bound, and a
    backtracking (Armijo) line search along the projected path. With general constraints each
    inner minimisation ends when its steps stop improving, then the multipliers move."""

    method = "lbfgs"

    def __init__(self, problem: Problem, start, kind: str, most: int):
        x0, big_f0, v0 = start
        self.problem, self.tol = problem, problem.precision
        self.x = problem.project(x0)
        self.multipliers = Multipliers(problem, self.x)

        def fg(x, lam, mu):
            return evaluate(problem, x, lam, mu)

        example = [self.x, self.multipliers.lam, self.multipliers.mu]
        self.fg, self.engine, self.note = _engine(fg, example, problem.model, kind, False, most)
        self.evaluations = 0
        self.done = False
        self._reset()
        self.best_x, self.best_F, self.best_v, self.best_t = x0.clone(), big_f0, v0, 0
        self.t = 0
        self._point(self.x)
        # inner minimisations start loose and tighten (x0.1 each): early multipliers are rough
        self.omega = INNER * max(1.0, float(self.g.abs().max()))

    def _reset(self) -> None:
        self.s: list[torch.Tensor] = []
        self.y: list[torch.Tensor] = []
        self.flat = 0  # iterations in a row that did not lower the loss measurably

    def _call(self, x: torch.Tensor):
        self.evaluations += 1
        loss, g, f, big_f, v = self.fg(x, self.multipliers.lam, self.multipliers.mu)
        rho = _rho(self.multipliers.lam)
        if bool(better(big_f, v, self.best_F, self.best_v, self.tol, rho)):
            self.best_x, self.best_F, self.best_v, self.best_t = x.clone(), big_f, v, self.t
        return loss, g, f, big_f, v

    def _point(self, x: torch.Tensor) -> None:
        self.x = x
        self.loss, self.g, self.f, self.F, self.v = self._call(x)

    def _direction(self) -> torch.Tensor:
        """Quasi-Newton on the free variables, the gradient (scaled alike) on those at or
        within a projected-gradient step of a bound they are pushed against (Bertsekas'
        two-metric projection: the line search's projection puts those on their bound). The
        inverse Hessian is L-BFGS's, in its compact form (Byrd, Nocedal and Schnabel): a few
        small matrix operations instead of a loop over the pairs."""
        p, x, g = self.problem, self.x, self.g
        eps = (p.project(x - g) - x).abs().max() if p.bounded else 0.0
        held = ((x <= p.lo + eps) & (g > 0)) | ((x >= p.hi - eps) & (g < 0))
        free = (~held).to(g.dtype)
        if not self.s:
            return -g
        S, Y = torch.stack(self.s) * free, torch.stack(self.y) * free  # pairs, on the free
        curved = (S * Y).sum(1) > 1e-12 * (Y * Y).sum(1)  # pairs that still hold curvature
        S, Y = S * curved[:, None], Y * curved[:, None]
        sy = _products(S, Y)
        R = sy.triu() + torch.diag((~curved).to(g.dtype))  # uncurved pairs fall out
        gamma = (self.s[-1] @ self.y[-1]) / (self.y[-1] @ self.y[-1])
        q = g * free
        u = torch.linalg.solve_triangular(R, (S * q).sum(1, keepdim=True), upper=True)
        w = sy.diagonal()[:, None] * u + gamma * (_products(Y, Y) @ u - (Y * q).sum(1)[:, None])
        top = torch.linalg.solve_triangular(R.T, w, upper=False)
        hq = gamma * q + (S * top).sum(0) - gamma * (Y * u).sum(0)
        return -(hq * free + g * (1 - free) * gamma)

    def _inner_done(self, exact: bool = True) -> None:
        """An inner minimisation ended (exact: its steps stopped improving, rather than its
        gradient falling below the current tolerance): done, or move the multipliers and go
        on."""
        if not self.problem.m:
            self.done = True
            return
        before, mu = self.multipliers.last, float(self.multipliers.mu)
        self.multipliers.update(self.x)
        now = self.multipliers.last
        if exact and (now <= self.tol * 1e-3 or (now <= self.tol and now >= 0.99 * before)):
            self.done = True
            return
        self.omega *= 0.1
        if float(self.multipliers.mu) != mu:  # the curvature changed with the penalty
            self._reset()
        self.flat = 0
        self._point(self.x)

    def run(self, n: int) -> torch.Tensor:
        rows = []
        for _ in range(n):
            if self.done:
                break
            rows.append(torch.stack([self.f, self.v, self.F, self.x.new_tensor(0.0)]))
            self.t += 1
            d = self._direction()
            slope = self.g @ d
            if not slope < 0:  # not downhill: forget the curvature, go along the gradient
                self._reset()
                d = self._direction()
                slope = self.g @ d
                if not slope < 0:
                    self._inner_done()
                    continue
            # the first step no longer than the lesson's (a long one can land a ReLU net where
            # every unit is off and the gradient is zero), nor moving any cell by more than 1
            step = 1.0 if self.s else min(LR, 1.0 / max(float(d.abs().max()), 1e-300))
            for _ in range(30):
                x = self.problem.project(self.x + step * d)
                loss, g, f, big_f, v = self._call(x)
                if bool(loss <= self.loss + ARMIJO * (self.g @ (x - self.x))):
                    break
                step *= 0.5
            else:
                self._inner_done()
                continue
            rows[-1][3] = step
            s, y = x - self.x, g - self.g
            if float(s @ y) > 1e-12 * float(y @ y):
                self.s, self.y = (self.s + [s])[-MEMORY:], (self.y + [y])[-MEMORY:]
            drop = float(self.loss - loss)
            self.flat = self.flat + 1 if drop <= FTOL * max(abs(float(loss)), 1e-300) else 0
            self.x, self.loss, self.g, self.f, self.F, self.v = x, loss, g, f, big_f, v
            if self.flat >= 3 or not bool((s != 0).any()):
                self._inner_done()
            elif self.problem.m and float((self.problem.project(x - g) - x).abs().max()) <= (
                self.omega
            ):
                self._inner_done(exact=False)
        return torch.stack(rows) if rows else self.x.new_zeros(0, RECORD)

    def here(self) -> torch.Tensor:
        return self.x.clone()

    def best(self) -> tuple[torch.Tensor, int]:
        return self.best_x.clone(), self.best_t

    def step_size(self) -> None:
        return None


def _products(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.T for L-BFGS's few pairs: elementwise while small, since a threaded BLAS call
    on a 20 x 20 product waits far longer than it computes when the other cores are busy."""
    if a.shape[0] * b.shape[0] * a.shape[1] <= 1 << 20:
        return (a[:, None, :] * b[None, :, :]).sum(-1)
    return a @ b.T


# -- the loop ----------------------------------------------------------------------------------


def runner(problem: Problem, method: str, lr: float | None, kind: str, most: int):
    """The method's runner on `kind`'s engine, from the model's own parameters, and the
    objective cell and the quantity minimised there."""
    x0 = problem.start()
    with torch.no_grad():
        f0, big_f0, c0 = problem.terms(x0)
        v0 = problem.violation(c0, x0)
    begin = (x0, big_f0.detach(), v0.detach())
    if not math.isfinite(float(f0)):
        run = None
    elif method == "lbfgs":
        run = LBFGS(problem, begin, kind, most)
    else:
        run = Steps(problem, method, lr, begin, kind, most)
    problem.restore(x0)  # tracing and capture leave the blocks reading other tensors
    return run, (float(f0), float(big_f0))


def _operations(problem: Problem, x: torch.Tensor, lam: torch.Tensor, mu: torch.Tensor) -> int:
    """How many operations the autograd graph of one evaluation holds: what a compile costs."""
    x = x.detach().requires_grad_(True)
    _, big_f, c = problem.terms(x)
    seen, todo = set(), [problem.lagrangian(big_f, c, lam, mu).grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(n for n, _ in node.next_functions)
    return len(seen)


def compile_pays(problem: Problem, x0: torch.Tensor, epochs: int) -> bool:
    """Whether torch.compile's one-time cost (by the size of the step) is less than the time
    it saves over `epochs` eager evaluations (timed after one warm-up)."""
    lam, mu = x0.new_zeros(problem.m), x0.new_tensor(MU)
    with threads(threads_for(problem.model)):  # timed as the fit would run them
        evaluate(problem, x0, lam, mu)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            evaluate(problem, x0, lam, mu)
            times.append(time.perf_counter() - t)
    eager = min(times)  # the machine's speed, not a moment when other work held it
    saved = epochs * eager * (1 - 1 / COMPILED_SPEEDUP)
    ops = _operations(problem, x0, lam, mu)
    return saved > COMPILE_BASE + COMPILE_PER_OP * ops + COMPILE_PER_OP_SQUARED * ops**2


def _metric(model: Model, metrics: dict[str, tuple[str, int, int]], key: str) -> float | None:
    cell = metrics.get(key)
    if cell is None:
        return None
    v = model.value_at(*cell)
    return v if isinstance(v, float) else None


PARALLEL = 50_000  # cells in the step's largest block from which a second thread pays
THREADS = torch.get_num_threads()  # torch's own choice, for the steps of large models


def threads_for(model: Model) -> int:
    """Intra-op threads for a model's steps. A small step's operations are too short to
    share out: waking a second thread costs more than it saves, and on a machine busy with
    other work it cost up to 10x (issue 15). Large ones (100,000 rows) use torch's own."""
    largest = max((b.size for b in model.train_blocks), default=1)
    return 1 if largest < PARALLEL else THREADS


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sized_threads(fit: Callable) -> Callable:
    """fit(model, …) run with the threads chosen by the model's size."""

    @functools.wraps(fit)
    def run(model: Model, *args, **kwargs):
        with threads(threads_for(model)):
            return fit(model, *args, **kwargs)

    return run


@_sized_threads
def train(
    model: Model,
    epochs: int = EPOCHS,
    lr: float | None = None,
    progress=None,
    metrics: dict[str, tuple[str, int, int]] | None = None,
    record: bool = True,
    compiled: bool | None = None,
    method: str | None = None,
    problem: Problem | None = None,
) -> SheetFit:
    """Fit a compiled model by `method` (default: gd when `lr` is given, else METHOD); keep
    the best parameters seen. `lr` fixes gd's step (or sets adam's). `record` logs the
    metrics every few epochs (rows of the history sheet). `compiled` picks the CPU engine:
    torch.compile (True), eager (False), or whichever is faster for this many epochs (None).
    `problem` carries the Solver model's goal and constraints (default: read from the
    model's Solver names)."""
    method = method or ("gd" if lr is not None else METHOD)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose gd, adam or lbfgs")
    if lr is not None and method == "lbfgs":
        raise ValueError(
            "a fixed learning rate is for the methods gd and adam; lbfgs finds its steps by "
            "line search"
        )
    metrics = metrics or {}
    problem = problem or Problem(model)
    start = time.perf_counter()
    every = max(1, epochs // HISTORY_POINTS)  # a history row every `every` epochs
    x0 = problem.start()
    if compiled is None and x0.device.type == "cpu":  # worth seconds once?
        compiled = compile_pays(problem, x0, epochs)
    kind = "cuda graph" if x0.device.type == "cuda" else "compiled" if compiled else "eager"
    fast = min(every, CHUNK)  # steps a fast engine runs between looks (its buffer's rows)
    run, (initial, f0_big) = runner(problem, method, lr, kind, fast)
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
        if record and epoch % every == 0:
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
        engine_note=run.note,
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
