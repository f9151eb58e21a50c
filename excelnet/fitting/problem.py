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
from excelnet.formula.functions.kit import watch_guards
from excelnet.formula.graph import a1, collect_refs
from excelnet.formula.model import Model
from excelnet.formula.parse import Const, Error, FormulaError, Node, Ref, parse
from excelnet.formula.site import Live
from excelnet.formula.values import BLANK, BOOL, ERR, NUM, TEXT, V, errors_of

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
        self.relaxed = opts.get("solver_rlx", "2").strip() == "1"
        # solver_int (older Solvers): every variable an integer
        self.all_integer = not self.relaxed and opts.get("solver_int", "").strip() in (
            "1",
            "true",
            "TRUE",
        )
        dev, dtype = model.ctx.device, model.ctx.dtype
        self.leaves = model.parameters()  # the tensors the blocks read between fits
        self.x0 = self.start()  # the start, which a fit's last step replaces in the leaves
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
        self.linear = False  # set when HiGHS solves it (excelnet.fitting.linear)
        self.smell: torch.Tensor | None = None  # see terms() and suspect()
        self.exact = True  # steps run eagerly: suspect() may evaluate strictly
        self._start_errors: dict | None = None
        self._slot = slot = {}  # (sheet, row, col) of each adjustable cell -> its place in x
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
        self.integer = np.zeros(self.n, dtype=bool)  # int, bin and dif cells
        self.binary = np.zeros(self.n, dtype=bool)
        self.alldifferent: list[list[int]] = []  # each dif row's cells (positions)
        for c in solver.constraints:
            text = f"{_cells(c.lhs)} {c.relation} {c.rhs}"
            if c.rel > 3:
                if self.relaxed:
                    self.rows.append(Row(c, "ignored", -1, -1, text))
                    continue
                self.rows.append(Row(c, "integer", -1, -1, text))
                where_ = [slot.get((c.lhs.sheet, r, col)) for r, col in _each(c.lhs)]
                if None in where_:
                    r, col = list(_each(c.lhs))[where_.index(None)]
                    raise ExcelnetError(
                        f"{at}: solver_rel{c.index} makes {_cells(c.lhs)} {c.relation}, but "
                        f"{c.lhs.sheet}!{a1(r, col)} is not a variable cell (Excel's Solver "
                        f"allows int, bin and dif on variable cells only)"
                    )
                self.integer[where_] = True
                if c.rel == 5:
                    self.binary[where_] = True
                elif c.rel == 6:
                    self.alldifferent.append(where_)
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
        if self.all_integer:
            self.integer[:] = True
        if self.binary.any():  # bin: 0 or 1, an integer within [0, 1]
            b = torch.as_tensor(self.binary, device=dev)
            self.lo = torch.where(b, self.lo.clamp(min=0.0), self.lo)
            self.hi = torch.where(b, self.hi.clamp(max=1.0), self.hi)
        for cells in self.alldifferent:  # dif: a permutation of 1..N
            idx = torch.tensor(cells, device=dev)
            self.lo[idx] = self.lo[idx].clamp(min=1.0)
            self.hi[idx] = self.hi[idx].clamp(max=float(len(cells)))
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
        with watch_guards() as guards:
            f = self.model.objective_value()
            values = self.model.watched() if self.general else []
        # whether a guarded operation met a place where Excel shows an error (see suspect)
        self.smell = torch.stack([~ok.all() for ok in guards]).any() if guards else None
        if self.goal == 1:
            big_f = -f
        elif self.goal == 2:
            big_f = f
        else:
            big_f = (f - self.target) ** 2
        if not self.general:
            return f, big_f, self.no_residuals
        return f, big_f, torch.cat(self._parts(values))

    def _parts(self, values: list[V]) -> list[torch.Tensor]:
        """The residuals of each general constraint, ≤/≥ rows first, then = rows."""
        parts = []
        for r in self.unequal + self.equal:
            lhs, rhs = values[r.lhs].x.reshape(-1), values[r.rhs].x.reshape(-1)
            d = lhs - rhs
            parts.append(-d if r.constraint.rel == 3 else d)
        return parts

    def residual_parts(self, x: torch.Tensor) -> list[torch.Tensor]:
        """At x: the residuals, one tensor per general constraint (in terms' order), each with
        a graph of its own ancestors only (a backward pass through one is short)."""
        self.load(x)
        self.model.objective_value()
        return self._parts(self.model.watched())

    def suspect(self, x: torch.Tensor) -> torch.Tensor | bool:
        """After terms(x): whether x is a point the sheet cannot compute. Training evaluates
        without Excel's error values (fast); a guarded operation (EXP, LN, a division, a
        power) that met an input where Excel shows an error says to look. Eager steps (exact)
        then evaluate x by Excel's rules: an error in a cell the objective or a constraint
        reads, where the start had none, makes x unusable; an IF's branch not taken does not.
        Traced steps (compiled, a CUDA graph: no look possible) count every such point as
        unusable (a 0-d tensor)."""
        smell = self.smell
        if smell is None:
            return False
        if not self.exact:
            return smell
        return bool(smell) and self.error_at(x) is not None

    def error_at(self, x: torch.Tensor) -> str | None:
        """The first cell the objective or a constraint reads that shows an error at x, by
        Excel's rules, and did not at the start ('Sheet!B7 #NUM!'); None if there is none."""
        m = self.model
        for point in ([self.x0] if self._start_errors is None else []) + [x]:
            self.load(point.detach())
            m.ctx.strict = True
            with torch.no_grad():
                m.run(m.train_blocks)
            if self._start_errors is None:
                self._start_errors = self._collect()
        return self.error_now(x)

    def error_now(self, x: torch.Tensor | None = None) -> str | None:
        """error_at x, the point the blocks were last run at strictly (the start's errors are
        found, when there are any here to compare with, by running the start too: then x,
        given, is run again)."""
        for (label, _), v in zip(self.model.watch, self.model.watched(), strict=True):
            errs = errors_of(v)
            if errs is not None and (errs != None).any():  # noqa: E711
                return f"{label} {next(e for e in errs.reshape(-1) if e is not None)}"
        found = self._collect()
        if found and self._start_errors is None:
            if x is None:
                raise RuntimeError("error_now: the start's errors are not known")
            error = self.error_at(x)
            self.restore(x)
            return error
        for key, code in found.items():
            if key not in self._start_errors:
                return f"{key[0]}!{a1(key[1], key[2])} {code}"
        return None

    def _collect(self) -> dict[tuple[str, int, int], str]:
        """The cells with an error value among those the objective and constraints read."""
        out = {}
        for b in self.model.train_blocks:
            errs = errors_of(b.value)
            if errs is None:
                continue
            flat = errs.reshape(-1)
            for i in np.flatnonzero(flat != None):  # noqa: E711
                r, c = b.r0 + int(i) // b.cols, b.c0 + int(i) % b.cols
                out[(b.sheet, r, c)] = str(flat[i])
        return out

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
        x = self.start()
        for r in self.rows:
            if r.kind == "ignored":
                continue
            if r.kind == "integer":
                out[_label(r.constraint)] = self._integer_violation(r.constraint, x)
                continue
            d = (values[r.lhs].x.reshape(-1) - values[r.rhs].x.reshape(-1)).detach()
            v = {1: d.clamp(min=0), 2: d.abs(), 3: (-d).clamp(min=0)}[r.constraint.rel]
            out[_label(r.constraint)] = float(v.max()) if v.numel() else 0.0
        if self.nonnegative:
            out["solver_neg"] = float((self.lo - x).clamp(min=0).max())
        return out

    def _integer_violation(self, c: Constraint, x: torch.Tensor) -> float:
        """How far an int, bin or dif row is from holding at x: the largest distance of a cell
        from a whole number (from 0 or 1, for bin); for dif, 1 unless the cells hold 1..N."""
        cells = [self._slot[(c.lhs.sheet, r, col)] for r, col in _each(c.lhs)]
        v = x[cells].detach().cpu().double()
        if c.rel == 5:
            return float(torch.minimum(v.abs(), (v - 1).abs()).max())
        far = float((v - v.round()).abs().max())
        if c.rel == 6 and sorted(v.round().tolist()) != list(range(1, len(cells) + 1)):
            return max(far, 1.0)
        return far

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
                "integer": "integer, by branch and bound" if self.linear else "integer",
            }[r.kind]
            out.append(f"{_label(r.constraint)}: {r.text} ({how})")
        if self.general or self.bounded:
            out.append(f"solver_pre = {self.precision:g}: the feasibility tolerance")
        return out

    @property
    def engine(self) -> int:
        """Solver's engine as the file names it: solver_eng 1 GRG Nonlinear, 2 Simplex LP, 3
        Evolutionary (Excel 2007's solver_lin = 1, Assume Linear Model, is Simplex LP)."""
        opts = self.model.solver.options
        eng = opts.get("solver_eng", "").strip()
        if eng in ("1", "2", "3"):
            return int(eng)
        return 2 if opts.get("solver_lin", "").strip() == "1" else 1

    def option(self, key: str, default: float) -> float:
        """A number among the Solver options (a limit, a tolerance), or `default` when it is
        missing or not a number at or above 0."""
        try:
            v = float(self.model.solver.options.get(key, "").strip())
        except ValueError:
            return default
        return v if v >= 0 and math.isfinite(v) else default

    def ignored(self, used: tuple[str, ...] = ()) -> dict[str, str]:
        """The Solver names present that excelnet does not use (those `used` by the method
        that ran aside), and why."""
        opts = self.model.solver.options
        out = {}
        for k, v in opts.items():
            if k in ("solver_neg", "solver_pre", "solver_rlx", "solver_int", *used) or (
                k == "solver_val" and self.goal == 3
            ):
                continue
            out[k] = f"{v}: {NOT_USED.get(k, 'not a Solver name excelnet knows')}"
        return out


def _each(ref: Ref):
    """The (row, column) of every cell of a range, row by row."""
    for r in range(ref.r0, ref.r1 + 1):
        for c in range(ref.c0, ref.c1 + 1):
            yield r, c


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
