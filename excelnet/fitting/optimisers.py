"""The methods, as Solver's: "gd" (the lesson's gradient descent; with --lr a fixed step, else
one that backs off and grows on its own), "adam", "lbfgs" (quasi-Newton with a line search, the
nearest thing to Solver's GRG); bounds by projection, general constraints by an augmented
Lagrangian; the best point seen kept."""

from __future__ import annotations

import math

import torch

from excelnet.fitting.engines import RECORD, CudaGraph, engine
from excelnet.fitting.options import LR
from excelnet.fitting.problem import Problem

ADAM_LR = 0.01
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


# -- what every method does at a point: value, gradient, feasibility, the best seen --------------


def evaluate(problem: Problem, x: torch.Tensor, lam: torch.Tensor, mu: torch.Tensor):
    """At x: the augmented Lagrangian L, its gradient, the objective cell f, the quantity
    minimised F and the largest constraint violation v."""
    x = x.detach().requires_grad_(True)
    f, big_f, c = problem.terms(x)
    loss = problem.lagrangian(big_f, c, lam, mu)
    (g,) = torch.autograd.grad(loss, x)
    with torch.no_grad():
        # A point the sheet cannot compute — an error value on the objective's path (EXP past
        # 709.78 is #NUM!, a division by 0 #DIV/0!) that float arithmetic carried on to a
        # finite number (1/(1+EXP(800)) is 0 in floats) — is a failed step, never the best
        # point: its values are NaN. Problem.suspect finds those behind a guarded operation; a
        # NaN in the gradient (0 × inf in the chain rule) those behind any other.
        ok = ~torch.isnan(g).any()
        bad = problem.suspect(x)
        if isinstance(bad, torch.Tensor):
            ok = ok & ~bad
        elif bad:
            ok = torch.zeros_like(ok)
        nan = torch.full_like(loss, math.nan)
        loss, f, big_f = (torch.where(ok, t.detach(), nan) for t in (loss, f, big_f))
        return loss, g, f, big_f, problem.violation(c.detach())


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
        problem.exact = kind == "eager"  # traced steps cannot look at a point strictly
        self.run_fn, self.engine, self.note = engine(
            lambda flat: self.fn(flat), [self.state], problem.model, kind, True, most
        )
        problem.exact = self.engine == "eager"
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
        if isinstance(self.run_fn, CudaGraph):
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
        problem.exact = kind == "eager"
        self.fg, self.engine, self.note = engine(fg, example, problem.model, kind, False, most)
        problem.exact = self.engine == "eager"
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
        if self.problem.m:
            rho = _rho(self.multipliers.lam)
            wins = bool(better(big_f, v, self.best_F, self.best_v, self.tol, rho))
        else:  # `better` with no residuals (every step is feasible, rho is 1), in numbers: a
            # dozen tensor operations fewer per evaluation
            F, best_v = float(big_f), float(self.best_v)
            wins = math.isfinite(F) and (best_v > self.tol or F < float(self.best_F) + best_v)
        if wins:
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
