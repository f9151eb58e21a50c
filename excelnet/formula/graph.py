"""The block graph of a workbook: every formula cell, a run of one formula copied down a column
or an array formula grouped into one block, with the blocks each reads (its dependencies);
the order to evaluate them in and the cycles among them."""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.utils.formulas import FORMULAE

from excelnet.formula.book import Book, Sheet
from excelnet.formula.functions import FUNCTIONS
from excelnet.formula.functions.arguments import ARRAY, REFERENCE, argument_class
from excelnet.formula.functions.registry import newer_excel
from excelnet.formula.parse import (
    COLUMNS,
    ROWS,
    Call,
    Chain,
    Const,
    CopiedDown,
    Error,
    FormulaError,
    Name,
    Node,
    Op,
    Ref,
    Union,
    parse,
    walk,
)
from excelnet.formula.values import (
    V,
)


def a1(r: int, c: int) -> str:
    return f"{get_column_letter(c + 1)}{r + 1}"


@dataclass(eq=False)
class Block:
    """A rectangle of cells computed together: a column run of one copied formula, an array
    formula, or (kind 'param') a range of adjustable cells."""

    sheet: str
    r0: int
    c0: int
    r1: int
    c1: int
    kind: str  # "column" | "array" | "param"
    formula: str | None = None
    node: Node | None = None
    refs: list[Ref] = field(default_factory=list)
    deps: set = field(default_factory=set)
    value: V | None = None  # flat over the rectangle, row-major: x of shape (rows*cols,)
    static_kind: np.ndarray | None = None  # kinds of a live block's output, fixed at trace
    static_text: np.ndarray | None = None
    thunk: object = None
    problem: str | None = None  # why it cannot be compiled (reported only if it is needed)

    @property
    def rows(self) -> int:
        return self.r1 - self.r0 + 1

    @property
    def cols(self) -> int:
        return self.c1 - self.c0 + 1

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def cell(self, i: int = 0) -> str:
        return a1(self.r0 + i // self.cols, self.c0 + i % self.cols)

    def __repr__(self) -> str:
        return f"Block({self.sheet}!{self.cell()}:{self.cell(self.size - 1)} {self.kind})"


# -- the block graph of a whole workbook ------------------------------------------------------


class Graph:
    """Every formula cell of a workbook, grouped into blocks, with their dependencies."""

    def __init__(self, book: Book):
        self.book = book
        self.blocks: list[Block] = []
        for sheet in book.sheets.values():
            for text, (r0, c0, r1, c1) in sheet.arrays.values():
                self.blocks.append(Block(sheet.name, r0, c0, r1, c1, "array", text))
            self._columns(sheet)
        for b in self.blocks:
            self._parse(b)

    def _columns(self, sheet: Sheet) -> None:
        """A block for each run of one formula copied down a column (CopiedDown), columns in
        the order the sheet's formulas first meet them. A sheet may hold millions of formula
        cells: they are sorted by numpy and compared a run at a time, not cell by cell."""
        keys, texts = list(sheet.formulas), list(sheet.formulas.values())
        if not keys:
            return
        rows = np.fromiter(map(itemgetter(0), keys), np.int64, len(keys))
        cols = np.fromiter(map(itemgetter(1), keys), np.int64, len(keys))
        order = np.lexsort((rows, cols))  # by column, then by row
        rows, cols = rows[order], cols[order]
        texts = list(map(texts.__getitem__, order.tolist()))
        # stretches of consecutive rows in one column; a run never crosses their ends
        ends = np.flatnonzero((np.diff(cols) != 0) | (np.diff(rows) != 1)) + 1
        stretches = np.stack([np.r_[0, ends], np.r_[ends, len(keys)]], 1).tolist()
        by_col: dict[int, list[list[int]]] = defaultdict(list)
        for start, stop in stretches:
            by_col[int(cols[start])].append([start, stop])
        rows = rows.tolist()
        for c in dict.fromkeys(map(itemgetter(1), keys)):
            for start, stop in by_col[c]:
                while start < stop:
                    run = CopiedDown(texts[start], rows[start] + 1)
                    last = start + run.following(texts, start + 1, stop)
                    self._column(sheet.name, rows[start], rows[last], c)
                    start = last + 1

    def _column(self, sheet: str, r0: int, r1: int, c: int) -> None:
        text = self.book.sheets[sheet].formulas[(r0, c)]
        self.blocks.append(Block(sheet, r0, c, r1, c, "column", text))

    def _parse(self, b: Block) -> None:
        try:
            # a formula cell is not an array formula: where it expects one value, a range is
            # read at the cell's own row or column (implicit intersection, arguments.py)
            b.node = self.resolve(parse(b.formula, b.sheet), b.sheet, 0, block=b)
        except FormulaError as e:
            b.problem = str(e)
            b.node = Const(Error("#NAME?"))
        b.refs = []
        collect_refs(b.node, b.refs)
        if b.kind == "column" and b.rows > 1 and any(r.rel_r0 != r.rel_r1 for r in b.refs):
            self.split(b)  # a range that grows down the column: one block per cell

    def resolve(
        self,
        node: Node,
        sheet: str,
        depth: int,
        whole: bool = False,
        *,
        block: Block | None = None,
        value: bool | None = None,
        keep: bool = False,
    ) -> Node:
        """Replace defined names by what they stand for (a relative name's references moved
        to the cell of `block` that uses it); bound whole columns and rows. In `block`'s
        formula, unless it is an array formula (`value`: True by default then), a range
        where one value is expected becomes its cell in the formula's row or column (or
        #VALUE!); `keep`: this node is an argument that takes a reference, kept whole."""
        if value is None:
            value = block is not None and block.kind == "column"
        if isinstance(node, Name):
            text, scope = self._name(node.name, sheet)
            if text is None or depth > 20:
                return Const(Error("#NAME?"))
            if block is not None:
                text = anchored(text, block.r0, block.c0)
            return self.resolve(
                parse(text, scope), scope, depth + 1, whole, block=block, value=value, keep=keep
            )
        if isinstance(node, Ref):
            target = self.book.sheets.get(node.sheet)
            if target is None:
                return Const(Error("#REF!"))
            if value and not keep and block is not None:
                return intersect(node, block)
            # a whole column or row is read as far as the sheet's used range, except where a
            # function counts its empty cells (COUNTBLANK(G:G) counts to row 1,048,576)
            last_row = ROWS - 1 if whole else target.max_row
            last_col = COLUMNS - 1 if whole else target.max_col
            if node.r1 is None:
                return Ref(node.sheet, 0, node.c0, last_row, node.c1)
            if node.c1 is None:
                return Ref(node.sheet, node.r0, 0, node.r1, last_col)
            return node
        if isinstance(node, Op):
            inner = value and node.op != ":"  # A1:OFFSET(…): both ends stay references
            op = Op(
                node.op,
                tuple(self.resolve(a, sheet, depth, block=block, value=inner) for a in node.args),
            )
            return deref(op) if node.op == ":" and value and not keep else op
        if isinstance(node, Chain):
            return Chain(
                node.ops,
                tuple(self.resolve(a, sheet, depth, block=block, value=value) for a in node.args),
            )
        if isinstance(node, Union):
            return Union(
                tuple(self.resolve(a, sheet, depth, block=block, value=False) for a in node.areas)
            )
        if isinstance(node, Call):
            known = FUNCTIONS.get(node.name)
            skip = known.positional if known is not None else ()
            counts = known is not None and known.blanks
            args = []
            for i, a in enumerate(node.args):
                if i in skip and isinstance(a, Ref):  # ROWS(C:C) is 1,048,576 rows, whatever
                    args.append(a)  # the sheet holds
                    continue
                kind = argument_class(node.name, i) if value else ARRAY
                # IF(c,A1:A9,B1:B9) is a reference where its result is one (SUM(IF(…))),
                # else a value: each branch read at the formula's row, as the result would be
                whole_ref = keep if node.name in PASS_REFERENCE else True
                args.append(
                    self.resolve(
                        a,
                        sheet,
                        depth,
                        counts,
                        block=block,
                        value=value and kind != ARRAY,
                        keep=kind == REFERENCE and whole_ref,
                    )
                )
            args = tuple(args)
            if known is not None and known.resolve is not None:  # SUMIF's sum range, …
                args = known.resolve(args)
            call = Call(node.name, args, node.new)
            if node.name in RETURNS_REFERENCE and value and not keep:
                return deref(call)
            return call
        return node

    def _name(self, name: str, sheet: str) -> tuple[str | None, str]:
        if "!" in name:
            scope, bare = name.split("!", 1)
            s = self.book.sheets.get(scope)
            return (s.names.get(bare) if s else None), scope
        s = self.book.sheets[sheet]
        for key, text in s.names.items():
            if key.lower() == name.lower():
                return text, sheet
        for key, text in self.book.names.items():
            if key.lower() == name.lower():
                return text, sheet
        return None, sheet

    def link(self, extra: list[Block]) -> tuple[BlockIndex, list[Block]]:
        """Each block's dependencies (on other blocks and on `extra`, the parameters). A column
        run caught in a cycle is split into cells (a running total refers to the cell above);
        what is still cyclic after that is returned."""
        while True:
            index = BlockIndex(self.blocks + extra)
            for b in self.blocks:
                b.deps = set()
                for ref in b.refs:
                    lo, hi = footprint(ref, b)
                    b.deps |= index.overlapping(ref.sheet, lo, hi, ref.c0, ref.c1)
            cyclic = cycles(self.blocks)
            splittable = [b for b in cyclic if b.kind == "column" and b.rows > 1]
            if not splittable:
                return index, cyclic
            for b in splittable:
                self.split(b)

    def split(self, b: Block) -> list[Block]:
        """Replace a column run by one block per cell; returns them."""
        self.blocks.remove(b)
        cells = []
        for r in range(b.r0, b.r1 + 1):
            one = Block(
                b.sheet, r, b.c0, r, b.c1, "column", self.book.sheets[b.sheet].formulas[(r, b.c0)]
            )
            self.blocks.append(one)
            self._parse(one)
            cells.append(one)
        return cells


# functions whose result is one of their arguments, a reference if that is one
PASS_REFERENCE = frozenset({"IF", "IFS", "CHOOSE", "IFERROR", "IFNA"})
# functions that compute a reference
RETURNS_REFERENCE = frozenset({"INDEX", "OFFSET", "INDIRECT"})


INTERSECT = "@"  # Excel 365 writes implicit intersection so: a call of this name (see below)


def deref(node: Node) -> Call:
    """A reference that a function (INDEX, OFFSET, INDIRECT) or A1:B3's colon computes, read
    where one value is expected in a formula that is not an array formula: a call of "@",
    which the evaluator computes by intersecting the reference, once known, with the
    formula's row or column, as a range written out is."""
    return Call(INTERSECT, (node,))


def collect_refs(node: Node, out: list[Ref]) -> None:
    if isinstance(node, Ref):
        out.append(node)
    elif isinstance(node, Isect):
        out.append(node.cell)
    elif isinstance(node, Call):
        known = FUNCTIONS.get(node.name)
        skip = known.positional if known is not None else ()
        for i, a in enumerate(node.args):
            if not (i in skip and isinstance(a, Ref)):  # ROW(A1) does not read A1
                collect_refs(a, out)
    elif isinstance(node, (Op, Chain)):
        for a in node.args:
            collect_refs(a, out)
    elif isinstance(node, Union):
        for a in node.areas:
            collect_refs(a, out)


def footprint(ref: Ref, b: Block) -> tuple[int, int]:
    """Rows a reference covers over all the cells of block b."""
    shift = b.rows - 1 if (b.kind == "column" and ref.rel_r0) else 0
    return ref.r0, ref.r1 + shift


@dataclass(frozen=True)
class Isect:
    """A fixed one-column range read where one value is expected, by a column of formulas only
    some of whose rows it spans: `cell`, the formula's own row of the range's column (a
    reference copied down with the block), and #VALUE! in the rows outside `rows` (first,
    last)."""

    cell: Ref
    rows: tuple[int, int]


def intersect(ref: Ref, b: Block) -> Node:
    """A range where one value is expected, read by the formula cells of block b (not an
    array formula): Excel's implicit intersection. A one-column range gives the cell in the
    formula's row, a one-row range the cell in its column; a 2-D range, or a row or column
    outside the range, is #VALUE!. A range that grows down a copied column (A$1:A1) is kept
    whole, for the block to be split into cells first."""
    if ref.r1 is None:  # whole columns: every row meets them
        if ref.c0 != ref.c1:
            return Const(Error("#VALUE!"))
        return Ref(ref.sheet, b.r0, ref.c0, b.r0, ref.c0, True, True)
    if ref.c1 is None:  # whole rows: every column meets them
        if ref.r0 != ref.r1:
            return Const(Error("#VALUE!"))
        return Ref(ref.sheet, ref.r0, b.c0, ref.r0, b.c0, ref.rel_r0, ref.rel_r1)
    if ref.r0 == ref.r1 and ref.c0 == ref.c1:
        return ref
    if ref.r0 != ref.r1 and ref.c0 != ref.c1:
        return Const(Error("#VALUE!"))
    if ref.r0 == ref.r1:  # one row: the formula's column
        if not ref.c0 <= b.c0 <= ref.c1:
            return Const(Error("#VALUE!"))
        return Ref(ref.sheet, ref.r0, b.c0, ref.r0, b.c0, ref.rel_r0, ref.rel_r1)
    n = b.rows if b.kind == "column" else 1
    if n > 1 and ref.rel_r0 != ref.rel_r1:
        return ref
    cell = Ref(ref.sheet, b.r0, ref.c0, b.r0, ref.c0, True, True)
    if n == 1 or ref.rel_r0:  # the range moves with the formula: in or out for every row
        return cell if ref.r0 <= b.r0 <= ref.r1 else Const(Error("#VALUE!"))
    if ref.r0 <= b.r0 and b.r1 <= ref.r1:
        return cell
    if b.r1 < ref.r0 or ref.r1 < b.r0:
        return Const(Error("#VALUE!"))
    return Isect(cell, (ref.r0, ref.r1))


_ANCHORED = re.compile(
    r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|(?<![\w.$])(\$?)([A-Za-z]{1,3})(\$?)(\d+)(?![\w(!])'
)


def anchored(text: str, dr: int, dc: int) -> str:
    """A defined name's formula as the cell (dr, dc) reads it: Excel stores a relative name
    (B1 without $) relative to A1, so that in C5 it means D5; absolute parts stay. Past the
    sheet's edge a reference wraps around, as in Excel."""
    if dr == 0 and dc == 0:
        return text

    def sub(m: re.Match) -> str:
        if m.group(2) is None:  # a string or a quoted sheet name
            return m.group(0)
        col_abs, letters, row_abs, digits = m.group(1), m.group(2), m.group(3), m.group(4)
        col = column_index_from_string(letters.upper()) - 1
        row = int(digits) - 1
        if col >= COLUMNS or row >= ROWS:
            return m.group(0)
        if not col_abs:
            col = (col + dc) % COLUMNS
        if not row_abs:
            row = (row + dr) % ROWS
        return f"{col_abs}{get_column_letter(col + 1)}{row_abs}{row + 1}"

    return _ANCHORED.sub(sub, text)


def position(b: Block) -> tuple[str, int, int]:
    return (b.sheet, b.c0, b.r0)


def calls(node: Node, known_to_excel: bool = False) -> list[str]:
    """The names of the functions a formula calls (only those Excel has, if asked)."""
    return [
        n.name for n in walk(node) if isinstance(n, Call) and (not known_to_excel or excel_knows(n))
    ]


def excel_knows(call: Call) -> bool:
    """Whether Excel has the function (else a call to it is #NAME?, as Excel shows it)."""
    return call.new or call.name in FORMULAE or newer_excel(call.name) or call.name in FUNCTIONS


def unknown_and_volatile(node: Node | None) -> tuple[list[str], list[str]]:
    names = sorted(set(calls(node, known_to_excel=True))) if node is not None else []
    unknown = [n for n in names if n not in FUNCTIONS]
    volatile = [n for n in names if n in FUNCTIONS and FUNCTIONS[n].volatile]
    return unknown, volatile


def ancestors(roots: list[Block]) -> set[Block]:
    seen, stack = set(roots), list(roots)
    while stack:
        for d in stack.pop().deps:
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return seen


def topo(blocks: set[Block]) -> list[Block]:
    """Dependencies first (parameters are not in the list: they have no formula)."""
    order, state = [], {}
    for root in sorted(blocks, key=lambda b: (b.sheet, b.c0, b.r0)):
        if root.kind == "param" or root in state:
            continue
        stack = [(root, iter(sorted(root.deps, key=lambda b: (b.sheet, b.c0, b.r0))))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            for d in it:
                if d.kind != "param" and d in blocks and d not in state:
                    state[d] = 1
                    stack.append((d, iter(sorted(d.deps, key=lambda b: (b.sheet, b.c0, b.r0)))))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def cycles(blocks: list[Block]) -> list[Block]:
    """Blocks on a dependency cycle (Tarjan's strongly connected components, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in blocks:
        if root in index:
            continue
        work = [(root, iter(root.deps))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for d in it:
                if d.kind == "param":
                    continue
                if d not in index:
                    index[d] = low[d] = counter
                    counter += 1
                    stack.append(d)
                    on.add(d)
                    work.append((d, iter(d.deps)))
                    advanced = True
                    break
                if d in on:
                    low[node] = min(low[node], index[d])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x is node:
                        break
                if len(comp) > 1 or node in node.deps:
                    out.extend(comp)
    return out


class BlockIndex:
    """Which block holds which cells: per (sheet, column), blocks sorted by row."""

    def __init__(self, blocks: list[Block]):
        cols: dict[tuple[str, int], list[Block]] = defaultdict(list)
        for b in blocks:
            for c in range(b.c0, b.c1 + 1):
                cols[(b.sheet, c)].append(b)
        self.cols = {k: sorted(v, key=lambda b: b.r0) for k, v in cols.items()}
        self.ends = {k: [b.r1 for b in v] for k, v in self.cols.items()}

    def overlapping(self, sheet: str, r0: int, r1: int, c0: int, c1: int) -> set[Block]:
        found = set()
        for c in range(c0, c1 + 1):
            blocks = self.cols.get((sheet, c))
            if not blocks:
                continue
            i = bisect.bisect_left(self.ends[(sheet, c)], r0)
            while i < len(blocks) and blocks[i].r0 <= r1:
                found.add(blocks[i])
                i += 1
        return found
