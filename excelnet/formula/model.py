"""One Solver model, compiled: the path from its adjustable cells to its objective (and the
constraints' cells) found in the workbook's own formulas, the blocks on it run every step with
autograd, everything else evaluated once as data (constant folding reaches inside formulas)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from excelnet.errors import ExcelnetError, where
from excelnet.formula.book import Book, SolverModel
from excelnet.formula.evaluator import Evaluator, flat, python_value
from excelnet.formula.fuse import find_products
from excelnet.formula.graph import (
    Block,
    Graph,
    a1,
    ancestors,
    collect_refs,
    computes_references,
    cycles,
    footprint,
    readers,
    spread,
    topo,
    unknown_and_volatile,
)
from excelnet.formula.parse import (
    Error,
    FormulaError,
    Node,
    Ref,
)
from excelnet.formula.site import current
from excelnet.formula.values import (
    BLANK,
    ERR,
    NUM,
    TEXT,
    Ctx,
    V,
    errors_of,
    from_python,
    reshaped,
)

# -- one Solver model, compiled ----------------------------------------------------------------


class Model(Evaluator):
    """The compiled model of one Solver model: parameters, objective, and every cell that
    depends on the parameters (for write-back). `watch`: more formulas, as (label, AST, sheet),
    whose values each step needs too (the two sides of Solver's constraints)."""

    def __init__(
        self,
        book: Book,
        solver: SolverModel,
        ctx: Ctx,
        graph: Graph | None = None,
        watch: list[tuple[str, Node, str]] = (),
    ):
        super().__init__(book, ctx, graph)
        self.steps = True
        self.solver = solver
        self.at = where(book.path, solver.sheet)
        self._glances: dict[tuple, list[Block]] = {}  # cells -> the blocks they need
        self.watch = []
        for label, node, sheet in watch:
            try:
                self.watch.append((label, self.graph.resolve(node, sheet, 0)))
            except FormulaError as e:
                raise ExcelnetError(f"{self.at}: {label}: {e}") from None
        self._build()

    # ---- structure
    def _build(self) -> None:
        self.params: list[Block] = []
        for ref in self.solver.adjustable:
            target = self.book.sheets.get(ref.sheet)
            if target is None:
                raise ExcelnetError(
                    f"{self.at}: solver_adj refers to a missing sheet {ref.sheet!r}"
                )
            p = Block(ref.sheet, ref.r0, ref.c0, ref.r1, ref.c1, "param")
            for r in range(p.r0, p.r1 + 1):
                for c in range(p.c0, p.c1 + 1):
                    if (r, c) in target.formulas or any(
                        r0 <= r <= r1 and c0 <= c <= c1
                        for _, (r0, c0, r1, c1) in target.arrays.values()
                    ):
                        raise ExcelnetError(
                            f"{where(self.book.path, ref.sheet, a1(r, c))}: adjustable cell "
                            f"holds a formula; Solver's variable cells must hold numbers"
                        )
                    v = target.values.get((r, c))
                    if v is not None and (isinstance(v, (str, bool, Error))):
                        raise ExcelnetError(
                            f"{where(self.book.path, ref.sheet, a1(r, c))}: adjustable cell "
                            f"holds {v!r}; it must hold a number"
                        )
            self.params.append(p)

        index, cyclic = self.graph.link(self.params)
        if cyclic:
            b = min(cyclic, key=lambda b: (b.sheet, b.r0, b.c0))
            raise ExcelnetError(
                f"{where(self.book.path, b.sheet, b.cell())}: circular "
                f"reference (the formula depends on its own result)"
            )
        self.index = index

        obj = self.solver.objective
        found = index.overlapping(obj.sheet, obj.r0, obj.r0, obj.c0, obj.c0)
        found = [b for b in found if b.kind != "param"]
        if not found:
            raise ExcelnetError(
                f"{where(self.book.path, obj.sheet, a1(obj.r0, obj.c0))}: the "
                f"objective (solver_opt) is not a formula"
            )
        self.objective = found[0]
        self.objective_pos = (obj.r0 - self.objective.r0) * self.objective.cols + (
            obj.c0 - self.objective.c0
        )
        # blocks that call RAND, NOW, …: a new value at every recalculation, as Solver's are
        self.drawn = [b for b in self.graph.blocks if unknown_and_volatile(b.node)[1]]
        self.unresolved: dict[Block, str] = {}  # blocks whose computed references failed
        if self._discover() and (cyclic := cycles(self.graph.blocks)):
            b = min(cyclic, key=lambda b: (b.sheet, b.r0, b.c0))
            raise ExcelnetError(
                f"{where(self.book.path, b.sheet, b.cell())}: circular "
                f"reference (the formula depends on its own result)"
            )
        if self.objective not in self._reach(self.params):
            for b in topo(ancestors([self.objective])):
                if b in self.unresolved:  # an OFFSET that could not say where it points
                    raise ExcelnetError(
                        f"{where(self.book.path, b.sheet, b.cell())}: {self.unresolved[b]}"
                    )
                why = b.problem or "; ".join(b.notes)  # something read as an error value?
                if why:
                    raise ExcelnetError(
                        f"{where(self.book.path, b.sheet, b.cell())}: {why} — the objective "
                        f"({obj.sheet}!{a1(obj.r0, obj.c0)}) depends on this cell, and "
                        f"through it cannot reach the adjustable cells"
                    )
            raise ExcelnetError(
                f"{where(self.book.path, obj.sheet, a1(obj.r0, obj.c0))}: the "
                f"objective does not depend on the adjustable cells "
                f"({', '.join(self._param_names())})"
            )
        live = self.live
        watched = set()  # the blocks the watched formulas read
        for _, node in self.watch:
            refs: list[Ref] = []
            collect_refs(node, refs)
            for ref in refs:
                found = index.overlapping(ref.sheet, ref.r0, ref.r1, ref.c0, ref.c1)
                watched |= {b for b in found if b.kind != "param"}
        needed = ancestors([self.objective, *watched])
        self.train_blocks = [b for b in topo(needed) if b in live]
        required = ancestors([*live, *watched])
        self.order = topo(required)
        self.report_blocks = [b for b in self.order if b in live]
        for b in self.order:
            problem = b.problem or (self.unresolved.get(b) if b in live else None)
            if problem is not None:
                raise ExcelnetError(f"{where(self.book.path, b.sheet, b.cell())}: {problem}")

    def _users(self) -> dict[Block, list[Block]]:
        return readers(self.graph.blocks)  # (what INDEX may pick is read when it runs)

    def _reach(self, roots: list[Block], users=None, out: set[Block] | None = None) -> set[Block]:
        """The roots that are formulas, and every block that depends on one of the roots
        (added to `out`, if given, which holds blocks reached already)."""
        users = self._users() if users is None else users
        out = set() if out is None else out
        fresh = [b for b in roots if b not in out]
        out.update(b for b in fresh if b.kind != "param")
        return spread(users, fresh, out)

    def _discover(self) -> bool:
        """Dependencies through references that functions compute (OFFSET(table, MATCH(id,
        ids), 0), INDIRECT, INDEX or CHOOSE as a reference): where each points is found from
        data, once, and the blocks it reaches become dependencies of the block that reads them
        (an embedding looked up by id trains the rows it picks). Blocks are evaluated as data
        in dependency order, as far as finding those positions needs; the liveness this
        assumed is checked at the end (a dependency found late may make a block evaluated as
        data depend on the parameters), and the round run again with what was found."""
        self.live = self._reach(self.params + self.drawn)
        dynamic = {b for b in self.graph.blocks if computes_references(b.node)}
        if not dynamic:
            return False
        for _ in range(len(dynamic) + 2):
            self._grids, self._done, self.reads, self.made = {}, set(), {}, {}
            self.unresolved = {}
            grew = False
            users = self._users()
            for b in topo(ancestors(list(dynamic))):
                if b in self._done:  # evaluated already, for an OFFSET or INDIRECT
                    continue
                if b in dynamic:
                    try:
                        refs = self.computed_references(b)
                    except FormulaError as e:
                        self.unresolved[b] = str(e)
                        continue
                    found = set()
                    for sheet, r0, r1, c0, c1 in rectangles(refs):
                        found |= self.index.overlapping(sheet, r0, r1, c0, c1)
                    for f in found - b.deps:
                        users[f].append(b)
                        b.deps.add(f)
                        grew = True
                    if b not in self.live and any(
                        f in self.live or f.kind == "param" for f in found
                    ):
                        self._reach([b], users, self.live)
                if b not in self.live:
                    try:
                        self._data(b)
                    except FormulaError as e:  # said again by the compile, if it is needed
                        self.unresolved[b] = str(e)
            live = self._reach(self.params + self.drawn, users)
            settled = not grew or (not self.unresolved and not (self._done & live))
            self.live = live
            if settled:
                break
        return True

    def redrawn(self) -> list[str]:
        """The volatile functions (RAND, …) the objective's blocks call: a new value at every
        evaluation."""
        drawn = set(self.drawn)
        return sorted(
            {n for b in self.train_blocks if b in drawn for n in unknown_and_volatile(b.node)[1]}
        )

    def _param_names(self) -> list[str]:
        return [f"{p.sheet}!{p.cell()}:{p.cell(p.size - 1)}" for p in self.params]

    # ---- evaluation
    def compile(self, params: list[torch.Tensor] | None = None, fuse: bool = True) -> None:
        """Evaluate the constants once and build the per-step computation. `params` (flat
        float tensors, one per adjustable range) default to the workbook's values. `fuse`:
        compute what formulas compute as a whole as one (see fuse.py); off, every block
        alone (what the tests compare with)."""
        ctx = self.ctx
        for i, p in enumerate(self.params):
            if params is not None:
                x = params[i].detach().to(ctx.device, ctx.dtype).reshape(-1).clone()
            else:
                sheet = self.book.sheets[p.sheet]
                x = torch.tensor(
                    [
                        as_number(sheet.values.get((p.r0 + k // p.cols, p.c0 + k % p.cols)))
                        for k in range(p.size)
                    ],
                    dtype=ctx.dtype,
                    device=ctx.device,
                )
            p.value = V(x.requires_grad_(True))
        sources = set(self.live) | set(self.params)

        def moves(ref: Ref, b: Block) -> bool:
            lo, hi = footprint(ref, b)
            return bool(self.index.overlapping(ref.sheet, lo, hi, ref.c0, ref.c1) & sources)

        self.fused = find_products(self.report_blocks, moves) if fuse else {}
        with self.calendar():
            for b in self.order:
                if b in self._done:  # evaluated already, for an OFFSET or INDIRECT
                    continue
                try:
                    if b in self.live:
                        self._live(b)
                    else:
                        self._data(b)
                except FormulaError as e:
                    at = where(self.book.path, b.sheet, b.cell())
                    raise ExcelnetError(f"{at}: {e}") from None

            probe = Block(self.solver.sheet, 0, 0, 0, 0, "array")  # no row of a copied block
            self.watch_thunks = []
            for label, node in self.watch:
                try:
                    self.watch_thunks.append(self._node(node, probe))
                except FormulaError as e:
                    raise ExcelnetError(f"{self.at}: {label}: {e}") from None

    def _live(self, b: Block) -> None:
        """A block on the parameters' path, or one that calls a volatile function (RAND):
        traced once, re-run every step."""
        unknown, _ = unknown_and_volatile(b.node)
        if unknown:
            raise FormulaError(
                f"function {', '.join(unknown)} is not supported, and the cell depends on the "
                f"adjustable cells"
            )
        thunk = self._node(b.node, b)
        b.thunk = thunk
        value = self._fit(b, current(thunk))
        b.value = value
        b.static_kind = None if value.numeric() else value.kinds().copy()
        b.static_text = value.text

    def _data(self, b: Block) -> None:
        """A block the parameters do not reach: evaluated once, as data. One excelnet cannot
        compute (an unknown function) keeps the value the file stores for it, with a warning.
        (One that calls a volatile function, RAND, is live: drawn again every step.)"""
        unknown, _ = unknown_and_volatile(b.node)
        if not unknown:
            self._constant(b)
            return
        names = ", ".join(unknown)
        stored = self.book.stored(b.sheet)
        cells = [(b.r0 + i // b.cols, b.c0 + i % b.cols) for i in range(b.size)]
        if not all(c in stored for c in cells):
            raise FormulaError(
                f"uses {names} (excelnet does not know it) and the file stores no value for "
                f"it: run excelnet calc on the workbook, or save it in Excel or LibreOffice, to "
                f"store one"
            )
        grid = np.array([stored[c] for c in cells], dtype=object).reshape(1, b.rows, b.cols)
        self._store(b, flat(from_python(grid, self.ctx)))
        self._done.add(b)
        self.warnings.append((b, names))

    def watched(self) -> list[V]:
        """The watched formulas' values at the parameters of the last run of the blocks."""
        with self.calendar():
            return [current(t) for t in self.watch_thunks]

    def parameters(self) -> list[torch.Tensor]:
        return [p.value.x for p in self.params]

    def run(self, blocks: list[Block]) -> None:
        self.generation += 1
        with self.calendar():
            for b in blocks:
                b.value = self._fit(b, current(b.thunk))

    def objective_value(self) -> torch.Tensor:
        """Run the blocks the objective needs (non-strict) and return it, a 0-d tensor."""
        self.ctx.strict = False
        try:
            self.run(self.train_blocks)
        finally:
            self.ctx.strict = True
        x = self.objective.value.x
        if x.numel() == 1:  # a view, whose gradient is cheaper than a picked element's
            return reshaped(x, ())
        return reshaped(x, (-1,))[self.objective_pos]

    def objective_error(self) -> str | None:
        """After a strict run: why the objective is an error value, naming the first cell."""
        v = self.objective.value
        k = v.kinds()[self.objective_pos] if not v.numeric() else NUM
        if k == NUM:
            return None
        what = v.texts()[self.objective_pos] if k == ERR else "not a number"
        for b in self.train_blocks:  # an error value typed into an input cell?
            for ref in b.refs:
                lo, hi = footprint(ref, b)
                if ref.sheet not in self._grids:
                    continue
                _, kind, text = self._grids[ref.sheet].box(lo, hi, ref.c0, ref.c1)
                hits = np.argwhere(kind == ERR)
                if len(hits):
                    i, j = int(hits[0][0]), int(hits[0][1])
                    cell = a1(i + lo, j + ref.c0)
                    return f"{where(self.book.path, ref.sheet, cell)}: input holds {text[i, j]}"
        for b in self.train_blocks:
            errs = errors_of(b.value)
            if errs is not None:
                i = int(np.flatnonzero(errs.reshape(-1) != None)[0])  # noqa: E711
                why = "; ".join(b.notes) or errs.reshape(-1)[i]  # a name that is not defined
                return f"{where(self.book.path, b.sheet, b.cell(i))}: {why}"
        return f"the objective is {what}"

    def evaluate(self) -> None:
        """Strict evaluation of every cell that depends on the parameters (for write-back)."""
        self.ctx.strict = True
        with torch.no_grad():
            self.run(self.report_blocks)

    def glance(self, cells: list[tuple[str, int, int]]) -> list[float | None]:
        """The numbers in some cells that depend on the parameters (a history row's
        validation loss and accuracy), running only the blocks they need, without gradient
        or error bookkeeping: None where a cell is not a finite number."""
        key = tuple(cells)
        blocks = self._glances.get(key)
        if blocks is None:
            found = set()
            for sheet, r, c in cells:
                found |= {b for b in self.index.overlapping(sheet, r, r, c, c) if b in self.live}
            blocks = self._glances[key] = [
                b for b in topo(ancestors(list(found))) if b in self.live
            ]
        self.ctx.strict = False
        try:
            with torch.no_grad():
                self.run(blocks)
        finally:
            self.ctx.strict = True
        out = []
        for cell in cells:
            v = self.value_at(*cell)
            out.append(v if isinstance(v, float) and math.isfinite(v) else None)
        return out

    def value_at(self, sheet: str, r: int, c: int) -> object:
        """The current value of one cell that depends on the parameters (None if it doesn't)."""
        for b in self.index.overlapping(sheet, r, r, c, c):
            if b in self.live or b.kind == "param":
                return python_value(b.value, (r - b.r0) * b.cols + (c - b.c0))
        return None

    def constant_at(self, sheet: str, r: int, c: int) -> object:
        """The value of a cell that does not depend on the parameters, as the model read or
        computed it once (a literal, or a formula evaluated as data); None if blank or unread."""
        g = self._grids.get(sheet)
        if g is None:
            return None
        x, k, t = g.cell(r, c)
        if k == BLANK:
            return None
        if k == NUM:
            return x
        if k == ERR:
            return Error(str(t))
        return str(t) if k == TEXT else bool(x)

    def values(self) -> dict[tuple[str, int, int], object]:
        """Python values of the parameters and every dependent formula cell (after evaluate)."""
        out: dict[tuple[str, int, int], object] = {}
        for b in self.params + self.report_blocks:
            v = b.value
            if v.numeric():  # the common case, in one transfer
                for i, x in enumerate(v.x.detach().cpu().reshape(-1).tolist()):
                    out[(b.sheet, b.r0 + i // b.cols, b.c0 + i % b.cols)] = x
                continue
            for i in range(b.size):
                out[(b.sheet, b.r0 + i // b.cols, b.c0 + i % b.cols)] = python_value(v, i)
        return out


def rectangles(refs: list[Ref]):
    """The cells of some references as few rectangles: (sheet, r0, r1, c0, c1), the row spans
    of each sheet and columns merged (a lookup copied down 100,000 rows: one or a few)."""
    sheets: dict[str, list[tuple[int, int, int, int]]] = defaultdict(list)
    for r in refs:
        sheets[r.sheet].append((r.c0, r.c1, r.r0, r.r1))
    for sheet, corners in sheets.items():
        a = np.unique(np.array(corners, dtype=np.int64), axis=0)  # by columns, then rows
        for c0, c1 in np.unique(a[:, :2], axis=0).tolist():
            rows = a[(a[:, 0] == c0) & (a[:, 1] == c1), 2:]  # sorted by first row
            reach = np.maximum.accumulate(rows[:, 1])
            starts = np.flatnonzero(np.r_[True, rows[1:, 0] > reach[:-1] + 1])
            ends = np.r_[starts[1:], len(rows)] - 1
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                yield sheet, int(rows[s, 0]), int(reach[e]), c0, c1


def as_number(v) -> float:
    return 0.0 if v is None else float(v)
