"""Recalculate every formula cell of a workbook, as a spreadsheet application does on load.

The same blocks and the same evaluator as a Solver model's compile, with nothing live: each
block is evaluated once, in dependency order, strictly (error values as Excel shows them). A
block excelnet cannot compute (an unknown function, a formula it cannot read, a circular
reference) keeps the values the file stores for it, so the cells that depend on it still
compute, and it is listed with the reason. Cells that call a volatile function (RAND, NOW) and
the cells that depend on them are `volatile`: a new value at every recalculation (RAND draws
each cell on its own, from a generator seeded afresh), which `check` does not compare.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from excelnet.formula.book import Book
from excelnet.formula.evaluator import Evaluator, flat, python_value
from excelnet.formula.functions import FUNCTIONS
from excelnet.formula.graph import (
    Block,
    Graph,
    a1,
    ancestors,
    calls,
    footprint,
    linked_note,
    readers,
    spread,
    topo,
    unknown_and_volatile,
)
from excelnet.formula.parse import Error, FormulaError, parse_ref
from excelnet.formula.values import BOOL, ERR, NUM, TEXT, Ctx, V, from_python

Cell = tuple[str, int, int]  # sheet, 0-based row and column


@dataclass
class Failure:
    """A block excelnet could not compute, and why."""

    sheet: str
    first: str  # its first cell, e.g. "B7"
    last: str
    formula: str
    reason: str
    cells: int
    unknown: list[str] = field(default_factory=list)  # functions excelnet does not know

    @property
    def where(self) -> str:
        span = self.first if self.first == self.last else f"{self.first}:{self.last}"
        return f"{self.sheet}!{span}"


class Calculation(Evaluator):
    """Every formula cell of a workbook, computed: `computed` holds each block and its value,
    `values` each cell's Python value; `failures` lists the blocks that kept their stored
    values instead."""

    def __init__(self, book: Book, device: str = "cpu"):
        super().__init__(book, Ctx(torch.device(device)), Graph(book))
        self.ctx.random = torch.Generator(self.ctx.device)
        self.ctx.random.seed()  # a new draw at every recalculation, as a spreadsheet's
        self.index, cyclic = self.graph.link([])
        self.computed: list[tuple[Block, V]] = []  # each block computed, and its value
        self.failures: list[Failure] = []
        cyclic = set(cyclic)
        self._values: dict[Block, V] = {}
        self._paths: dict[tuple, list[Block]] = {}
        for b in topo(set(self.graph.blocks)):
            if b in self._done:  # evaluated already, for an OFFSET or INDIRECT
                continue
            if b in cyclic:
                self._fail(b, "circular reference (the formula depends on its own result)")
            elif b.kind == "datatable":
                self._what_if(b)
            elif b.problem is not None:
                self._fail(b, b.problem)
            else:
                self._evaluate(b)
        self.volatile = self._volatile()

    def _evaluate(self, b: Block) -> None:
        try:
            value = self._constant(b)
        except FormulaError as e:
            if b.kind == "column" and b.rows > 1:  # what a column cannot do at once, its cells
                self._cell_by_cell(b)  # may (references or errors that differ by row)
            else:
                self._fail(b, str(e))
            return
        except Exception as e:  # a bug of excelnet's: say so, keep the file's values
            self._fail(b, f"excelnet could not compute it ({type(e).__name__}: {e})")
            return
        self.computed.append((b, value))
        self._values[b] = value

    # ---- What-If data tables
    def _what_if(self, b: Block) -> None:
        """A data table as Excel computes it: for each of its cells, the input cell(s) set to
        the values beside the table, the formula cells that depend on them computed again,
        and the formula's value kept; then everything as it was."""
        t = b.whatif
        grid = self._grid(b.sheet)
        inputs = []
        for text in (t.input1, t.input2) if t.two else (t.input1,):
            ref = parse_ref(text.replace("$", ""), b.sheet) if text else None
            if ref is None or ref.sheet != b.sheet:
                self._fail(b, f"the data table's input cell {text or '(deleted)'} is not a cell")
                return
            inputs.append((ref.r0, ref.c0))
        cells = []
        for i in range(b.rows):
            for j in range(b.cols):
                r, c = b.r0 + i, b.c0 + j
                if t.two:  # row input ← the row above, column input ← the column left
                    subs = [(b.r0 - 1, c), (r, b.c0 - 1)]
                    target = (b.r0 - 1, b.c0 - 1)
                elif t.row:
                    subs, target = [(b.r0 - 1, c)], (r, b.c0 - 1)
                else:
                    subs, target = [(r, b.c0 - 1)], (b.r0 - 1, c)
                cells.append((list(zip(inputs, subs, strict=True)), target))
        try:
            values = [self._substituted(b.sheet, grid, subs, target) for subs, target in cells]
        except FormulaError as e:
            self._fail(b, f"the data table's formula cells: {e}")
            return
        value = flat(
            from_python(np.array(values, dtype=object).reshape(1, b.rows, b.cols), self.ctx)
        )
        self._store(b, value)
        self._done.add(b)
        self.computed.append((b, value))
        self._values[b] = value

    def _substituted(self, sheet: str, grid, subs: list, target: tuple[int, int]) -> object:
        """The value of a cell with some cells of its sheet set to other cells' values."""
        inputs = tuple(cell for cell, _ in subs)
        path = self._path(sheet, inputs, target)
        saved = [(cell, grid.cell(*cell)) for cell in inputs]
        try:
            for cell, source in subs:
                x, k, text = grid.cell(*source)
                grid.put(*cell, np.array([[x]]), np.array([[k]], np.int8), np.array([[text]]))
            for x in path:
                if x.kind == "datatable" or x not in self._values:
                    raise FormulaError(f"{x.sheet}!{x.cell()} is not computed")
                self._constant(x)
            return _python(grid.cell(*target))
        finally:
            for (r, c), (x, k, text) in saved:
                grid.put(r, c, np.array([[x]]), np.array([[k]], np.int8), np.array([[text]]))
            for x in path:
                self._store(x, self._values[x])

    def _path(self, sheet: str, inputs: tuple, target: tuple[int, int]) -> list[Block]:
        """The blocks between input cells and a target cell, in the order to compute them."""
        key = (sheet, inputs, target)
        cached = self._paths.get(key)
        if cached is not None:
            return cached
        r, c = target
        found = [x for x in self.index.overlapping(sheet, r, r, c, c) if x.kind != "param"]
        users: dict[Block, list[Block]] = {}
        for x in self.graph.blocks:
            for d in x.deps:
                users.setdefault(d, []).append(x)
        moved = set()
        for x in self.graph.blocks:
            for ref in x.refs:
                lo, hi = footprint(ref, x)
                if ref.sheet == sheet and any(
                    lo <= ir <= hi and ref.c0 <= ic <= ref.c1 for ir, ic in inputs
                ):
                    moved.add(x)
                    break
        stack = list(moved)
        while stack:
            for u in users.get(stack.pop(), ()):
                if u not in moved:
                    moved.add(u)
                    stack.append(u)
        path = [x for x in topo(ancestors(found)) if x in moved]
        self._paths[key] = path
        return path

    @property
    def notes(self) -> list[str]:
        """What a user should know about the values computed: cells read from other
        workbooks come from the copy Excel last kept in this file."""
        return [linked_note(self.graph.linked)] if self.graph.linked else []

    def _volatile(self) -> set[Block]:
        """The blocks that call a volatile function, and every block that reads one (through
        its references or references computed, OFFSET or INDIRECT)."""
        users = readers(self.graph.blocks, self.reads)
        out = {b for b in self.graph.blocks if unknown_and_volatile(b.node)[1]}
        return spread(users, list(out), out)

    @cached_property
    def values(self) -> dict[Cell, object]:
        """Each computed cell's Python value (float, bool, str, Error)."""
        out: dict[Cell, object] = {}
        for b, v in self.computed:
            cells = block_cells(b)
            if v.numeric():  # most blocks: numbers only, in one transfer
                out.update(zip(cells, v.x.detach().cpu().reshape(-1).tolist(), strict=True))
            else:
                out.update((cell, python_value(v, i)) for i, cell in enumerate(cells))
        return out

    def _cell_by_cell(self, b: Block) -> None:
        cells = self.graph.split(b)
        self.index, _ = self.graph.link([])
        for cell in cells:
            if cell not in self._done:
                self._evaluate(cell) if cell.problem is None else self._fail(cell, cell.problem)

    def _fail(self, b: Block, reason: str) -> None:
        names = calls(b.node, known_to_excel=True) if b.node else []
        unknown = sorted({n for n in names if n not in FUNCTIONS})
        self.failures.append(
            Failure(b.sheet, b.cell(), b.cell(b.size - 1), b.formula or "", reason, b.size, unknown)
        )
        stored = self.book.stored(b.sheet)
        cells = [stored.get((b.r0 + i // b.cols, b.c0 + i % b.cols)) for i in range(b.size)]
        grid = np.array(cells, dtype=object).reshape(1, b.rows, b.cols)
        self._store(b, flat(from_python(grid, self.ctx)))  # what the file says, for its users
        self._done.add(b)

    def unknown_functions(self) -> Counter:
        """Functions excelnet does not know, with the number of formula cells using each."""
        counts: Counter = Counter()
        for f in self.failures:
            for name in f.unknown:
                counts[name] += f.cells
        return counts


def _python(cell: tuple[float, int, object]) -> object:
    """A grid cell (number, kind, text) as a Python value (None: blank)."""
    x, k, text = cell
    if k == NUM:
        return x
    if k == BOOL:
        return bool(x)
    if k == TEXT:
        return str(text)
    if k == ERR:
        return Error(str(text))
    return None


def block_cells(b: Block) -> list[Cell]:
    return [(b.sheet, r, c) for r in range(b.r0, b.r1 + 1) for c in range(b.c0, b.c1 + 1)]


def formula_count(book: Book) -> dict[str, int]:
    """Per sheet, the cells holding a formula or an array formula's result."""
    out = {}
    for sheet in book.sheets.values():
        boxes = [box for _, box in sheet.arrays.values()]
        boxes += [(t.r0, t.c0, t.r1, t.c1) for t in sheet.data_tables.values()]
        arrays = {
            (r, c) for r0, c0, r1, c1 in boxes for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)
        }
        out[sheet.name] = len(sheet.formulas) + len(arrays - sheet.formulas.keys())
    return out


def formula_cells(book: Book) -> list[Cell]:
    """Every cell holding a formula or an array formula's result, in sheet order."""
    out = []
    for sheet in book.sheets.values():
        cells = set(sheet.formulas)
        boxes = [box for _, box in sheet.arrays.values()]
        boxes += [(t.r0, t.c0, t.r1, t.c1) for t in sheet.data_tables.values()]
        for r0, c0, r1, c1 in boxes:
            cells.update((r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))
        out.extend((sheet.name, r, c) for r, c in sorted(cells))
    return out


def cell_name(cell: Cell) -> str:
    return f"{cell[0]}!{a1(cell[1], cell[2])}"
