"""What a Solver model asks for, as tensors: the quantity to minimise (Min, Max or Value Of),
bounds on the adjustable cells (kept by projection) and general constraints (kept by the
augmented Lagrangian in excelnet.fitting.train), read from the names Excel's Solver stores.

Bounds are constraints whose left-hand side is adjustable cells and whose right-hand side does
not depend on them; every other ≤, = or ≥ row is a general constraint, lhs − rhs, evaluated
every step like the objective. Solver's int, bin and dif rows make an integer model, which a
gradient method does not solve: refused, unless solver_rlx = 1 asks to ignore them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from excelnet.errors import ExcelnetError, where
from excelnet.formula.book import Book, Constraint, SolverModel
from excelnet.formula.graph import a1, collect_refs
from excelnet.formula.model import Model
from excelnet.formula.parse import Const, Error, FormulaError, Node, Ref, parse
from excelnet.formula.site import Live
from excelnet.formula.values import BLANK, BOOL, ERR, NUM, TEXT, V

PRECISION = 1e-6  # Solver's default constraint precision (solver_pre)
GOALS = {1: "maximise", 2: "minimise", 3: "value of"}

# Every other name Excel's Solver writes (Excel 2010+; solver_est, solver_nwt and solver_lin
# come from Excel 2007's) and LibreOffice's additions (24.2+), with why excelnet does not use it.
_ENGINE = "Solver's own engine settings; excelnet's --method picks the algorithm"
_LIMIT = "a limit of Solver's run; --epochs limits excelnet's"
_EXACT = "excelnet differentiates the formulas exactly"
_EVOLUTIONARY = "an Evolutionary or multistart setting"
_INTEGER = "an integer (branch and bound) setting; excelnet solves no integer models"
NOT_USED = {
    "solver_eng": _ENGINE,  # 1 GRG Nonlinear, 2 Simplex LP, 3 Evolutionary
    "solver_cvg": "GRG's convergence test; excelnet runs until steps stop improving",
    "solver_drv": _EXACT,  # 1 forward, 2 central differences
    "solver_est": _ENGINE,
    "solver_nwt": _ENGINE,
    "solver_lin": _ENGINE,
    "solver_scl": "automatic scaling of Solver's engines",
    "solver_itr": _LIMIT,
    "solver_tim": _LIMIT,
    "solver_sho": "shows Solver's iterations; no effect on the model",
    "solver_ver": "the Solver version that saved the model",
    "solver_val": "the target of Value Of; this model is not one",
    "solver_msl": _EVOLUTIONARY,
    "solver_ssz": _EVOLUTIONARY,
    "solver_rsd": _EVOLUTIONARY,
    "solver_mrt": _EVOLUTIONARY,
    "solver_mni": _EVOLUTIONARY,
    "solver_rbv": _EVOLUTIONARY,
    "solver_nod": _INTEGER,
    "solver_mip": _INTEGER,
    "solver_tol": _INTEGER,
    "solver_lo_eng": _ENGINE,  # LibreOffice's engine and its options
    "solver_eps": _ENGINE,
    "solver_bbd": _INTEGER,
    "solver_alg": _ENGINE,
}
for _key in (
    "lcy",
    "gvr",
    "vrt",
    "acr",
    "rsp",
    "prng",
    "slim",
    "stol",
    "enst",
    "asr",
    "smin",
    "smax",
    "crpb",
    "cog",
    "soc",
    "ccoeff",
    "mtpb",
    "lbsz",
):
    NOT_USED[f"solver_{_key}"] = "a setting of LibreOffice's DEPS and SCO solvers"


@dataclass
class Row:
    """One constraint as excelnet applies it."""

    constraint: Constraint
    kind: str  # "bound" | "general" | "ignored"
    lhs: int  # positions of its two sides in model.watched() (-1: not watched)
    rhs: int
    text: str  # 'Model!$B$2:$K$3 <= 5'


def _label(c: Constraint) -> str:
    return f"solver_lhs{c.index}"


def watch_list(book: Book, solver: SolverModel) -> list[tuple[str, Node, str]]:
    """The formulas the Solver model's constraints and Value Of target read, for
    Model(watch=...): each ≤, = or ≥ row's two sides, and solver_val. Bad right-hand sides
    (text, an error value, a missing sheet, unreadable) are refused here, naming the sheet and
    the name."""
    at = where(book.path, solver.sheet)
    out: list[tuple[str, Node, str]] = []
    for c in solver.constraints:
        if c.rel > 3:
            continue
        out.append((_label(c), c.lhs, solver.sheet))
        rhs = _side(c.rhs, f"solver_rhs{c.index}", book, solver, at)
        out.append((f"solver_rhs{c.index}", rhs, solver.sheet))
    if solver.goal == 3:
        out.append(
            ("solver_val", _side(solver.value, "solver_val", book, solver, at), solver.sheet)
        )
    return out


def _side(text: str, name: str, book: Book, solver: SolverModel, at: str) -> Node:
    """A right-hand side as stored: a number, a reference or a formula over cells."""
    try:
        node = parse(text if text.startswith("=") else "=" + text, solver.sheet)
    except FormulaError as e:
        raise ExcelnetError(
            f"{at}: {name} is {text!r}: not a number or a reference ({e})"
        ) from None
    if isinstance(node, Const) and isinstance(node.value, Error):
        raise ExcelnetError(f"{at}: {name} is the error value {node.value}; it must be a number")
    if isinstance(node, Const) and isinstance(node.value, str):
        raise ExcelnetError(f"{at}: {name} is the text {node.value!r}; it must be a number")
    refs: list[Ref] = []
    collect_refs(node, refs)
    for ref in refs:
        if ref.sheet not in book.sheets:
            raise ExcelnetError(f"{at}: {name} refers to a missing sheet {ref.sheet!r}")
    return node


class Problem:
    """A compiled Model with its Solver model's goal, bounds and constraints."""

    def __init__(self, model: Model):
        solver, self.model = model.solver, model
        self.at = at = where(model.book.path, solver.sheet)
        self.goal = solver.goal
        opts = solver.options
        self.precision = _positive(opts, "solver_pre", PRECISION, at)
        relax = opts.get("solver_rlx", "2").strip() == "1"
        if opts.get("solver_int", "").strip() in ("1", "true", "TRUE"):
            raise ExcelnetError(
                f"{at}: solver_int = 1 makes every variable an integer; excelnet does not "
                f"solve integer models (nothing was written)"
            )
        integer = [c for c in solver.constraints if c.rel > 3]
        if integer and not relax:
            c = integer[0]
            raise ExcelnetError(
                f"{at}: solver_rel{c.index} makes {_cells(c.lhs)} {c.relation} (an integer "
                f"model); excelnet does not solve integer models (nothing was written)"
            )
        dev, dtype = model.ctx.device, model.ctx.dtype
        self.leaves = model.parameters()  # the tensors the blocks read between fits
        self.no_residuals = torch.zeros(0, dtype=dtype, device=dev)
        self.no_violation = torch.zeros((), dtype=dtype, device=dev)
        self.sizes = [b.size for b in model.params]
        self.n = sum(self.sizes)
        labels = {label: i for i, (label, _) in enumerate(model.watch)}
        needed = {label for label, _, _ in watch_list(model.book, solver)}
        if not needed <= set(labels):
            raise ExcelnetError(
                f"{at}: the model was compiled without the formulas its constraints read "
                f"(compile it with watch=excelnet.fitting.problem.watch_list(book, solver))"
            )
        values = model.watched()  # strict: compile() ran the blocks strictly
        self.lo = torch.full((self.n,), -math.inf, dtype=dtype, device=dev)
        self.hi = torch.full((self.n,), math.inf, dtype=dtype, device=dev)
        has_lower = torch.zeros(self.n, dtype=torch.bool, device=dev)
        slot = {}  # (sheet, row, col) of every adjustable cell -> its place in the flat vector
        offset = 0
        for b in model.params:
            for k in range(b.size):
                slot[(b.sheet, b.r0 + k // b.cols, b.c0 + k % b.cols)] = offset + k
            offset += b.size
        self.rows: list[Row] = []
        self.target = None
        if self.goal == 3:
            self.target = self._constant(
                values[labels["solver_val"]], "solver_val", labels["solver_val"]
            )
            if self.target.numel() != 1:
                raise ExcelnetError(f"{at}: solver_val must be one number")
            self.target = self.target.reshape(())
        for c in solver.constraints:
            text = f"{_cells(c.lhs)} {c.relation} {c.rhs}"
            if c.rel > 3:
                self.rows.append(Row(c, "ignored", -1, -1, text))
                continue
            li, ri = labels[_label(c)], labels[f"solver_rhs{c.index}"]
            self._numbers(values[li], _label(c), c.lhs)
            rhs = values[ri]
            self._numbers(rhs, f"solver_rhs{c.index}", None)
            count = values[li].x.numel()
            if rhs.x.numel() not in (1, count):
                raise ExcelnetError(
                    f"{at}: solver_rhs{c.index} has {rhs.x.numel()} cells for the "
                    f"{count} cells of solver_lhs{c.index} ({_cells(c.lhs)})"
                )
            cells = [
                slot.get((c.lhs.sheet, r, col))
                for r in range(c.lhs.r0, c.lhs.r1 + 1)
                for col in range(c.lhs.c0, c.lhs.c1 + 1)
            ]
            live_rhs = self._depends(ri)
            if None in cells or live_rhs:
                self.rows.append(Row(c, "general", li, ri, text))
                continue
            self.rows.append(Row(c, "bound", li, ri, text))
            idx = torch.tensor(cells, device=dev)
            bound = rhs.x.detach().reshape(-1).expand(count).to(dtype)
            if c.rel in (1, 2):
                self.hi[idx] = torch.minimum(self.hi[idx], bound)
            if c.rel in (2, 3):
                self.lo[idx] = torch.maximum(self.lo[idx], bound)
                has_lower[idx] = True
        self.nonnegative = solver.nonnegative
        if solver.nonnegative:
            self.lo = torch.where(has_lower, self.lo, self.lo.clamp(min=0.0))
        empty = (self.lo > self.hi).nonzero()
        if len(empty):
            i = int(empty[0])
            raise ExcelnetError(
                f"{at}: no value of {self.cell_name(i)} satisfies its bounds "
                f"(>= {float(self.lo[i]):g} and <= {float(self.hi[i]):g})"
            )
        self.bounded = bool(torch.isfinite(self.lo).any() or torch.isfinite(self.hi).any())
        self.general = [r for r in self.rows if r.kind == "general"]
        self.equal = [r for r in self.general if r.constraint.rel == 2]
        self.unequal = [r for r in self.general if r.constraint.rel != 2]
        self.k = sum(values[r.lhs].x.numel() for r in self.unequal)  # residuals that are ≤ 0
        self.m = self.k + sum(values[r.lhs].x.numel() for r in self.equal)  # and all of them

    # ---- checks
    def _constant(self, v: V, name: str, index: int) -> torch.Tensor:
        self._numbers(v, name, None)
        if self._depends(index):
            raise ExcelnetError(
                f"{self.at}: {name} depends on the variable cells; it must be a number or "
                f"cells that do not"
            )
        return v.x.detach().reshape(-1)

    def _numbers(self, v: V, name: str, lhs: Ref | None) -> None:
        """A side holding text, an error or a boolean is refused, naming the name."""
        if v.numeric():
            return
        kinds = v.kinds().reshape(-1)
        bad = np.flatnonzero((kinds != NUM) & (kinds != BLANK))
        if not len(bad):
            return
        i = int(bad[0])
        what = {TEXT: "text", ERR: "the error value", BOOL: "the boolean"}[int(kinds[i])]
        shown = v.texts().reshape(-1)[i] if kinds[i] in (TEXT, ERR) else bool(v.x.reshape(-1)[i])
        cell = ""
        if lhs is not None:
            w = lhs.c1 - lhs.c0 + 1
            cell = f" (cell {lhs.sheet}!{a1(lhs.r0 + i // w, lhs.c0 + i % w)})"
        raise ExcelnetError(
            f"{self.at}: {name} holds {what} {shown!r}{cell}; a constraint compares numbers"
        )

    def _depends(self, i: int) -> bool:
        """Whether watched formula i depends on the adjustable cells."""
        return isinstance(self.model.watch_thunks[i], Live)

    def cell_name(self, i: int) -> str:
        for b in self.model.params:
            if i < b.size:
                return f"{b.sheet}!{b.cell(i)}"
            i -= b.size
        raise IndexError(i)

    # ---- the numbers, per step
    def start(self) -> torch.Tensor:
        """The model's own parameters, flat (a copy)."""
        return torch.cat([p.detach().reshape(-1) for p in self.leaves]).clone()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.lo, self.hi) if self.bounded else x

    def load(self, x: torch.Tensor) -> None:
        """Make x (flat) the parameters the model's blocks read."""
        if len(self.sizes) == 1:  # the common case: one range of adjustable cells
            self.model.params[0].value = V(x)
            return
        for b, piece in zip(self.model.params, x.split(self.sizes), strict=True):
            b.value = V(piece)

    def restore(self, x: torch.Tensor) -> None:
        """Put x into the model's own parameter tensors, which its blocks read again."""
        with torch.no_grad():
            for b, leaf, piece in zip(
                self.model.params, self.leaves, x.split(self.sizes), strict=True
            ):
                leaf.copy_(piece.detach())
                b.value = V(leaf)

    def terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """At flat parameters x: the objective cell's value f, the quantity minimised F (f,
        −f, or (f − target)² for Value Of), and the residuals of the general constraints, ≤/≥
        rows first (feasible where ≤ 0), then = rows (feasible where 0)."""
        self.load(x)
        f = self.model.objective_value()
        if self.goal == 1:
            big_f = -f
        elif self.goal == 2:
            big_f = f
        else:
            big_f = (f - self.target) ** 2
        if not self.general:
            return f, big_f, self.no_residuals
        values = self.model.watched()
        parts = []
        for r in self.unequal + self.equal:
            lhs, rhs = values[r.lhs].x.reshape(-1), values[r.rhs].x.reshape(-1)
            d = lhs - rhs
            parts.append(-d if r.constraint.rel == 3 else d)
        return f, big_f, torch.cat(parts)

    def violation(self, c: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """The largest violation among residuals c (0-d; 0 when there are none), and of the
        bounds by x when given (steps are projected: only the start may be outside)."""
        if not c.numel() and (x is None or not self.bounded):
            return self.no_violation
        parts = [c.new_zeros(1), c[: self.k].clamp(min=0.0), c[self.k :].abs()]
        if x is not None:
            parts += [(self.lo - x).clamp(min=0.0), (x - self.hi).clamp(min=0.0)]
        return torch.cat(parts).max()

    def lagrangian(
        self, big_f: torch.Tensor, c: torch.Tensor, lam: torch.Tensor, mu: torch.Tensor
    ) -> torch.Tensor:
        """The augmented Lagrangian (Powell-Hestenes-Rockafellar) of F with multipliers lam
        and penalty mu: F itself when there are no general constraints."""
        if not c.numel():
            return big_f
        k = self.k
        ci, li, ce, le = c[:k], lam[:k], c[k:], lam[k:]
        inequal = ((li + mu * ci).clamp(min=0.0) ** 2 - li**2).sum() / (2 * mu)
        return big_f + inequal + (le * ce).sum() + mu / 2 * (ce**2).sum()

    def multipliers(self, lam: torch.Tensor, c: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """The multipliers' first-order update after an inner minimisation."""
        k = self.k
        return torch.cat([(lam[:k] + mu * c[:k]).clamp(min=0.0), lam[k:] + mu * c[k:]])

    # ---- the report
    def row_violations(self) -> dict[str, float]:
        """Each constraint's largest violation at the model's current parameters (after a
        strict evaluate), bounds included."""
        self.model.evaluate()
        values = self.model.watched()
        out = {}
        for r in self.rows:
            if r.kind == "ignored":
                continue
            d = (values[r.lhs].x.reshape(-1) - values[r.rhs].x.reshape(-1)).detach()
            v = {1: d.clamp(min=0), 2: d.abs(), 3: (-d).clamp(min=0)}[r.constraint.rel]
            out[_label(r.constraint)] = float(v.max()) if v.numel() else 0.0
        if self.nonnegative:
            x = self.start()
            out["solver_neg"] = float((self.lo - x).clamp(min=0).max())
        return out

    def honoured(self) -> list[str]:
        """What excelnet applied, in words."""
        solver = self.model.solver
        o = solver.objective
        goal = f"{GOALS[self.goal]} {o.sheet}!{a1(o.r0, o.c0)}"
        if self.goal == 3:
            goal += f" = {float(self.target):g} (solver_val)"
        out = [goal]
        if self.nonnegative:
            out.append("solver_neg = 1: variable cells without a lower bound kept >= 0")
        elif "solver_neg" in solver.options:
            out.append("solver_neg = 2: variable cells may be negative")
        for r in self.rows:
            how = {
                "bound": "bound, by projection",
                "general": "general constraint",
                "ignored": "ignored (solver_rlx = 1)",
            }[r.kind]
            out.append(f"{_label(r.constraint)}: {r.text} ({how})")
        if self.general or self.bounded:
            out.append(f"solver_pre = {self.precision:g}: the feasibility tolerance")
        return out

    def ignored(self) -> dict[str, str]:
        """The Solver names present that excelnet does not use, and why."""
        opts = self.model.solver.options
        out = {}
        for k, v in opts.items():
            if k in ("solver_neg", "solver_pre", "solver_rlx", "solver_int") or (
                k == "solver_val" and self.goal == 3
            ):
                continue
            out[k] = f"{v}: {NOT_USED.get(k, 'not a Solver name excelnet knows')}"
        return out


def _cells(ref: Ref) -> str:
    one = (ref.r0, ref.c0) == (ref.r1, ref.c1)
    return f"{ref.sheet}!{a1(ref.r0, ref.c0)}" + ("" if one else f":{a1(ref.r1, ref.c1)}")


def _positive(opts: dict[str, str], key: str, default: float, at: str) -> float:
    if key not in opts:
        return default
    try:
        v = float(opts[key])
    except ValueError:
        v = -1.0
    if not (v > 0 and math.isfinite(v)):
        raise ExcelnetError(f"{at}: {key} is {opts[key]!r}, not a positive number")
    return v
