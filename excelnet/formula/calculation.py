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

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from excelnet.formula.book import Book
from excelnet.formula.evaluator import Evaluator, flat, python_value
from excelnet.formula.functions import FUNCTIONS
from excelnet.formula.graph import Block, Graph, a1, calls, topo, unknown_and_volatile
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import Ctx, V, from_python

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
        for b in topo(set(self.graph.blocks)):
            if b in self._done:  # evaluated already, for an OFFSET or INDIRECT
                continue
            if b in cyclic:
                self._fail(b, "circular reference (the formula depends on its own result)")
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

    def _volatile(self) -> set[Block]:
        """The blocks that call a volatile function, and every block that reads one (through
        its references or references computed, OFFSET or INDIRECT)."""
        users: dict[Block, list[Block]] = defaultdict(list)
        for b in self.graph.blocks:
            for d in b.deps | self.reads.get(b, set()):
                users[d].append(b)
        out = {b for b in self.graph.blocks if unknown_and_volatile(b.node)[1]}
        stack = list(out)
        while stack:
            for u in users[stack.pop()]:
                if u not in out:
                    out.add(u)
                    stack.append(u)
        return out

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


def block_cells(b: Block) -> list[Cell]:
    return [(b.sheet, r, c) for r in range(b.r0, b.r1 + 1) for c in range(b.c0, b.c1 + 1)]


def formula_count(book: Book) -> dict[str, int]:
    """Per sheet, the cells holding a formula or an array formula's result."""
    out = {}
    for sheet in book.sheets.values():
        arrays = {
            (r, c)
            for _, (r0, c0, r1, c1) in sheet.arrays.values()
            for r in range(r0, r1 + 1)
            for c in range(c0, c1 + 1)
        }
        out[sheet.name] = len(sheet.formulas) + len(arrays - sheet.formulas.keys())
    return out


def formula_cells(book: Book) -> list[Cell]:
    """Every cell holding a formula or an array formula's result, in sheet order."""
    out = []
    for sheet in book.sheets.values():
        cells = set(sheet.formulas)
        for _, (r0, c0, r1, c1) in sheet.arrays.values():
            cells.update((r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))
        out.extend((sheet.name, r, c) for r, c in sorted(cells))
    return out


def cell_name(cell: Cell) -> str:
    return f"{cell[0]}!{a1(cell[1], cell[2])}"
