"""Compile the model a workbook's formulas define into torch.

The path from a Solver model's adjustable cells to its objective is found in the workbook's own
formulas. Each run of one formula copied down a column becomes one block, evaluated as one
vectorised tensor operation; an array formula is one block too. Blocks that do not depend on
the adjustable cells are evaluated once, as data (constant folding reaches inside formulas
too); the rest run every step, with autograd.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import torch
from openpyxl.utils import get_column_letter
from openpyxl.utils.formulas import FORMULAE

from excelnet.errors import ExcelnetError, where
from excelnet.formula.book import Book, Sheet, SolverModel
from excelnet.formula.functions import FUNCTIONS, operator
from excelnet.formula.functions.reference import Site
from excelnet.formula.functions.registry import newer_excel
from excelnet.formula.fuse import find_products, member
from excelnet.formula.grid import Grid
from excelnet.formula.parse import (
    COLUMNS,
    MISSING,
    ROWS,
    Array,
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
    BLANK,
    ERR,
    NUM,
    TEXT,
    Ctx,
    V,
    errors_of,
    from_python,
    make,
    omitted,
    scalar,
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


class Live:
    """A sub-expression that depends on the parameters: re-evaluated every step."""

    __slots__ = ("run",)

    def __init__(self, run):
        self.run = run


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
            b.node = self.resolve(parse(b.formula, b.sheet), b.sheet, 0)
        except FormulaError as e:
            b.problem = str(e)
            b.node = Const(Error("#NAME?"))
        b.refs = []
        collect_refs(b.node, b.refs)
        if b.kind == "column" and b.rows > 1 and any(r.rel_r0 != r.rel_r1 for r in b.refs):
            self.split(b)  # a range that grows down the column: one block per cell

    def resolve(self, node: Node, sheet: str, depth: int, whole: bool = False) -> Node:
        """Replace defined names by what they stand for; bound whole columns and rows."""
        if isinstance(node, Name):
            text, scope = self._name(node.name, sheet)
            if text is None or depth > 20:
                return Const(Error("#NAME?"))
            return self.resolve(parse(text, scope), scope, depth + 1)
        if isinstance(node, Ref):
            target = self.book.sheets.get(node.sheet)
            if target is None:
                return Const(Error("#REF!"))
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
            return Op(node.op, tuple(self.resolve(a, sheet, depth) for a in node.args))
        if isinstance(node, Chain):
            return Chain(node.ops, tuple(self.resolve(a, sheet, depth) for a in node.args))
        if isinstance(node, Union):
            return Union(tuple(self.resolve(a, sheet, depth) for a in node.areas))
        if isinstance(node, Call):
            known = FUNCTIONS.get(node.name)
            skip = known.positional if known is not None else ()
            counts = known is not None and known.blanks
            args = tuple(
                a if i in skip and isinstance(a, Ref) else self.resolve(a, sheet, depth, counts)
                for i, a in enumerate(node.args)
            )  # ROWS(C:C) is 1,048,576 rows, whatever the sheet holds
            if known is not None and known.resolve is not None:  # SUMIF's sum range, …
                args = known.resolve(args)
            return Call(node.name, args, node.new)
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

    def link(self, extra: list[Block]) -> tuple[_Index, list[Block]]:
        """Each block's dependencies (on other blocks and on `extra`, the parameters). A column
        run caught in a cycle is split into cells (a running total refers to the cell above);
        what is still cyclic after that is returned."""
        while True:
            index = _Index(self.blocks + extra)
            for b in self.blocks:
                b.deps = set()
                for ref in b.refs:
                    lo, hi = footprint(ref, b)
                    b.deps |= index.overlapping(ref.sheet, lo, hi, ref.c0, ref.c1)
            cyclic = _cycles(self.blocks)
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


def collect_refs(node: Node, out: list[Ref]) -> None:
    if isinstance(node, Ref):
        out.append(node)
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


class _Index:
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


# -- evaluating blocks -------------------------------------------------------------------------


class Evaluator:
    """Evaluates a workbook's blocks: each block's formula becomes a tensor computation over the
    sheets' values. Blocks in `live` (those that depend on the parameters) are re-run every
    step; every other block is evaluated once and its values stored in its sheet's grid, where
    references read them as data. Shared by a Solver model and the whole-workbook calculation."""

    def __init__(self, book: Book, ctx: Ctx, graph: Graph | None = None):
        self.book, self.ctx = book, ctx
        self.graph = graph or Graph(book)
        self._grids: dict[str, Grid] = {}
        self.live: set[Block] = set()
        self.index = _Index([])
        self._done: set[Block] = set()  # constant blocks evaluated and stored
        self.warnings: list[tuple[Block, str]] = []  # blocks that kept their stored values
        self._busy: set[Block] = set()  # being evaluated (a reference back to one is a cycle)
        self.fused: dict[int, tuple] = {}  # SUMPRODUCT calls computed as matrix products (fuse)
        self.generation = 0  # a new one for every run of the blocks (fused results are per run)

    # ---- pieces
    def _fit(self, b: Block, v: V) -> V:
        """A block's result laid out over its rectangle, flat, row-major. A formula's result
        is never blank: =A1 of an empty A1 is the number 0."""
        v = self._layout(b, v)
        if isinstance(v.kind, int) and v.kind == BLANK:
            return V(v.x)  # a blank's number is 0 already
        if isinstance(v.kind, np.ndarray) and (v.kind == BLANK).any():
            return make(v.x, np.where(v.kind == BLANK, NUM, v.kind).astype(np.int8), v.text)
        return v

    def _layout(self, b: Block, v: V) -> V:
        if b.kind == "column":
            n = b.rows
            if v.numeric() and v.x.shape == (n, 1, 1):  # the training path: as it is
                return V(v.x, v.kind)
            if v.at is not None and v.shape[1:] != (1, 1):
                v = _intersect(v, b)
            v = V(
                v.x[:, :1, :1],
                _sub(v.kind, (slice(None), slice(0, 1), slice(0, 1))),
                None if v.text is None else v.texts()[:, :1, :1],
            )
            x = v.x.expand(n, 1, 1).reshape(n) if v.x.shape[0] == 1 else v.x.reshape(n)
            if v.numeric():
                return V(x, v.kind)
            kind = np.broadcast_to(v.kinds(), (n, 1, 1)).reshape(n)
            text = np.broadcast_to(v.texts(), (n, 1, 1)).reshape(n)
            return make(x, kind, text)
        # an array formula: Excel repeats a single row/column and pads with #N/A
        h, w = b.rows, b.cols
        _, hh, ww = v.shape
        if (hh, ww) == (h, w) and v.numeric():  # the result fills the block as it is
            return V(v.x.reshape(-1), v.kind)
        ri = np.arange(h) if hh > 1 else np.zeros(h, int)
        ci = np.arange(w) if ww > 1 else np.zeros(w, int)
        outside = (ri[:, None] >= hh) | (ci[None, :] >= ww)
        ri, ci = np.minimum(ri, hh - 1), np.minimum(ci, ww - 1)
        flat = torch.as_tensor((ri[:, None] * ww + ci[None, :]).reshape(-1), device=v.x.device)
        x = v.x[0].reshape(-1)[flat]
        if v.numeric() and not outside.any():
            return V(x, v.kind)
        kind = v.kinds()[0][ri[:, None], ci[None, :]].copy()
        text = v.texts()[0][ri[:, None], ci[None, :]].copy()
        kind[outside], text[outside] = ERR, "#N/A"
        return make(x, kind.reshape(-1), text.reshape(-1))

    def _grid(self, sheet: str) -> Grid:
        """A sheet's constant values (read once, then the values of blocks evaluated as data)."""
        g = self._grids.get(sheet)
        if g is None:
            s = self.book.sheets[sheet]
            g = self._grids[sheet] = Grid(s.values, s.max_row + 1, s.max_col + 1)
        return g

    def _store(self, b: Block, v: V) -> None:
        x = v.x.detach().cpu().numpy().reshape(b.rows, b.cols)
        kind = v.kinds().reshape(b.rows, b.cols) if not v.numeric() else np.int8(NUM)
        text = v.texts().reshape(b.rows, b.cols) if v.text is not None else None
        self._grid(b.sheet).put(b.r0, b.c0, x, kind, text)

    def _node(self, node: Node, b: Block):
        ctx = self.ctx
        if isinstance(node, Const):
            value = node.value
            return omitted(ctx) if value is MISSING else scalar(value, ctx)
        if isinstance(node, Array):
            return from_python(np.array([list(r) for r in node.rows], dtype=object)[None], ctx)
        if isinstance(node, Ref):
            return self._reference(node, b)
        if isinstance(node, Op) and node.op == ":":  # OFFSET(…):B3: both ends references
            refs = Site(self, b).refs(node)
            if refs is None:
                return scalar(Error("#VALUE!"), ctx)
            return self._dynamic(refs, b)
        if isinstance(node, Op):
            args = [self._node(a, b) for a in node.args]
            if not any(isinstance(a, Live) for a in args):
                return _carry(operator(node.op, args, ctx), args)
            op = node.op
            return Live(lambda: operator(op, [_now(a) for a in args], ctx))
        if isinstance(node, Chain):
            args = [self._node(a, b) for a in node.args]
            ops = node.ops

            def fold(values: list[V]) -> V:
                acc = values[0]
                for op, v in zip(ops, values[1:], strict=True):
                    acc = operator(op, [acc, v], ctx)
                return acc

            if not any(isinstance(a, Live) for a in args):
                return _carry(fold(args), args)
            return Live(lambda: fold([_now(a) for a in args]))
        if isinstance(node, Union):  # outside a function that takes several ranges
            return scalar(Error("#VALUE!"), ctx)
        if isinstance(node, Call):
            fused = self.fused.get(id(node))
            if fused is not None and b.kind == "column" and b.rows > 1:
                product, j = fused
                if product.prepare(lambda r: self._reference(r, b), _now, self._param_rows):
                    return Live(lambda: member(product, j, ctx, self.generation, _now))
            known = FUNCTIONS.get(node.name)
            if known is None:
                if self.graph._name(node.name, b.sheet)[0] is not None:
                    raise FormulaError(f"{node.name} is a name defined by LAMBDA: not supported")
                if not excel_knows(node):  # a typo or a made-up name: #NAME? as in Excel
                    return scalar(Error("#NAME?"), ctx)
                raise FormulaError(f"function {node.name} is not supported")
            if known.refs:  # OFFSET, ROW, …: its arguments unevaluated; a value or references
                out = known.fn(Site(self, b), list(node.args))
                return self._dynamic(out, b) if isinstance(out, list) else out
            fn = known.fn
            args = []
            for a in node.args:
                if not isinstance(a, Union):
                    args.append(self._node(a, b))
                elif known.unions:  # SUM((A1:A3,C1:C3)): each area an argument of its own
                    args.extend(self._node(area, b) for area in a.areas)
                else:
                    raise FormulaError(f"{node.name} does not take a union of ranges")
            if not any(isinstance(a, Live) for a in args):
                out = fn(ctx, args)
                return out if known.array_result else _carry(out, args)
            return Live(lambda: fn(ctx, [_now(a) for a in args]))
        raise FormulaError(f"cannot evaluate {node!r}")

    def _param_rows(self, refs: list[Ref]):
        """One-row ranges that are consecutive rows of one range of adjustable cells, in
        order and of one width: a function giving them as one (rows, width) view of it."""
        first = refs[0]
        owner = [
            s
            for s in self.index.overlapping(first.sheet, first.r0, first.r0, first.c0, first.c1)
            if s.kind == "param"
        ]
        if len(owner) != 1:
            return None
        p = owner[0]
        for k, r in enumerate(refs):
            if (r.sheet, r.r0, r.c0, r.c1) != (first.sheet, first.r0 + k, first.c0, first.c1):
                return None
        if not (p.r0 <= first.r0 and first.r0 + len(refs) - 1 <= p.r1):
            return None
        if not (p.c0 <= first.c0 and first.c1 <= p.c1):
            return None
        rows = slice(first.r0 - p.r0, first.r0 - p.r0 + len(refs))
        cols = slice(first.c0 - p.c0, first.c1 - p.c0 + 1)
        whole_rows, whole_cols = len(refs) == p.rows, cols == slice(0, p.cols)

        def view() -> torch.Tensor:
            w = p.value.x.reshape(p.rows, p.cols)  # a view: the parameters are contiguous
            if whole_rows and whole_cols:
                return w
            return w[rows, cols]

        return view

    def _reference(self, ref: Ref, b: Block):
        rel = b.kind == "column" and ref.rel_r0 and b.rows > 1
        n = b.rows if rel else 1
        h = ref.r1 - ref.r0 + 1
        rows = ref.r0 + (np.arange(n)[:, None] if rel else 0) + np.arange(h)[None, :]
        cols = np.arange(ref.c0, ref.c1 + 1)[None, :]
        return self._window(ref.sheet, rows, cols)

    def _dynamic(self, refs: list[Ref], b: Block):
        """The value of references a function computed (OFFSET, INDIRECT): one per row of the
        block, or one for all. Their cells are not among the block's dependencies, so they
        are evaluated here if they have not been yet."""
        first = refs[0]
        h, w = first.r1 - first.r0 + 1, first.c1 - first.c0 + 1
        if any(
            r.sheet != first.sheet or (r.r1 - r.r0 + 1, r.c1 - r.c0 + 1) != (h, w) for r in refs
        ):
            raise FormulaError("references of different sheets or sizes down one column")
        r0 = np.array([r.r0 for r in refs])
        c0 = np.array([r.c0 for r in refs])
        self._ensure(
            first.sheet, int(r0.min()), int(r0.max()) + h - 1, int(c0.min()), int(c0.max()) + w - 1
        )
        return self._window(first.sheet, r0[:, None] + np.arange(h), c0[:, None] + np.arange(w))

    def _ensure(self, sheet: str, r0: int, r1: int, c0: int, c1: int) -> None:
        """Evaluate the constant blocks inside a rectangle that have not been evaluated yet."""
        for blk in sorted(self.index.overlapping(sheet, r0, r1, c0, c1), key=_position):
            if blk.kind == "param" or blk in self._done:
                continue
            if blk in self.live:
                raise FormulaError(
                    f"OFFSET or INDIRECT reaching {blk.sheet}!{blk.cell()}, which depends on the "
                    f"parameters, is not supported"
                )
            if blk in self._busy:
                raise FormulaError(f"circular reference through {blk.sheet}!{blk.cell()}")
            self._constant(blk)

    def _constant(self, b: Block) -> V:
        """Evaluate a block that does not depend on the parameters, once; store its values."""
        self._busy.add(b)
        try:
            thunk = self._node(b.node, b)
            value = self._fit(b, _now(thunk))
        finally:
            self._busy.discard(b)
        self._store(b, value)
        self._done.add(b)
        return value

    def _window(self, sheet: str, rows: np.ndarray, cols: np.ndarray):
        """Cells rows × cols of a sheet, per block row: rows (n, h), cols (1 or n, w)."""
        n, h, w = rows.shape[0], rows.shape[1], cols.shape[1]
        rr, cc = rows[:, :, None], cols[:, None, :]
        cx, ck, ct = self._grid(sheet).window(rr, cc)  # each (n, h, w)
        lo, hi = int(rows.min()), int(rows.max())
        sources = [
            s
            for s in self.index.overlapping(sheet, lo, hi, int(cols.min()), int(cols.max()))
            if s in self.live or s.kind == "param"
        ]
        ctx = self.ctx
        if not sources:
            has_text = (ck == TEXT).any() or (ck == ERR).any()
            v = make(
                torch.as_tensor(cx, dtype=ctx.dtype, device=ctx.device),
                ck,
                ct if has_text else None,
                ref=True,
            )
            if rows.shape[0] == 1 and cols.shape[0] == 1:
                h, w = rows.shape[1], cols.shape[1]  # a 2-D range meets no one cell: None
                v.at = (None, None) if h > 1 and w > 1 else (int(rows[0, 0]), int(cols[0, 0]))
            return v
        shape = (n, h, w)
        index = np.arange(n * h * w).reshape(shape)
        uses_const = np.ones(shape, bool)
        offset = n * h * w
        kinds, texts = [ck.reshape(-1)], [ct.reshape(-1)]
        sources = sorted(sources, key=lambda s: (s.r0, s.c0))
        for s in sources:
            inside = (rr >= s.r0) & (rr <= s.r1) & (cc >= s.c0) & (cc <= s.c1)
            inside = np.broadcast_to(inside, shape)
            pos = np.broadcast_to((rr - s.r0) * s.cols + (cc - s.c0), shape)
            index = np.where(inside, offset + pos, index)
            uses_const &= ~inside
            offset += s.size
            kinds.append(
                s.static_kind if s.static_kind is not None else np.full(s.size, NUM, np.int8)
            )
            texts.append(
                s.static_text if s.static_text is not None else np.full(s.size, None, object)
            )
        pool_kind = np.concatenate(kinds)[index]
        pool_text = np.concatenate(texts)[index]
        any_text = (pool_kind == TEXT).any() or (pool_kind == ERR).any()
        static = make(torch.zeros(0), pool_kind, pool_text if any_text else None)
        kind_out, text_out = static.kind, static.text
        const_x = torch.as_tensor(cx.reshape(-1), dtype=ctx.dtype, device=ctx.device)
        if not uses_const.any():  # drop the constant part of the pool
            index = index - n * h * w
            parts_const = False
        else:
            parts_const = True
        flat = index.reshape(-1)
        contiguous = (
            len(sources) == 1
            and not parts_const
            and np.array_equal(flat, np.arange(flat[0], flat[0] + flat.size))
        )
        if contiguous:
            start, size, src = int(flat[0]), flat.size, sources[0]
            if start == 0 and size == src.size:  # the whole block, usually in its own shape

                def whole() -> V:
                    x = src.value.x
                    return V(x if x.shape == shape else x.reshape(shape), kind_out, text_out, True)

                return Live(whole)
            return Live(
                lambda: V(
                    src.value.x.reshape(-1)[start : start + size].reshape(shape),
                    kind_out,
                    text_out,
                    True,
                )
            )
        if len(sources) == 1 and not parts_const and flat.size > 1:
            step = int(flat[1] - flat[0])
            if step > 0 and (np.diff(flat) == step).all():  # a column of an array block: a view
                src, start, stop = sources[0], int(flat[0]), int(flat[-1]) + 1
                return Live(
                    lambda: V(
                        src.value.x.reshape(-1)[start:stop:step].reshape(shape),
                        kind_out,
                        text_out,
                        True,
                    )
                )
        index_t = torch.as_tensor(flat, device=ctx.device)

        def gather() -> V:
            parts = ([const_x] if parts_const else []) + [s.value.x.reshape(-1) for s in sources]
            pool = torch.cat(parts) if len(parts) > 1 else parts[0]
            return V(pool[index_t].reshape(shape), kind_out, text_out, True)

        return Live(gather)


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
        # dependents of the parameters, forward
        users: dict[Block, list[Block]] = defaultdict(list)
        for b in self.graph.blocks:
            for d in b.deps:
                users[d].append(b)
        live: set[Block] = set()
        stack = list(self.params)
        while stack:
            for u in users[stack.pop()]:
                if u not in live:
                    live.add(u)
                    stack.append(u)
        if self.objective not in live:
            raise ExcelnetError(
                f"{where(self.book.path, obj.sheet, a1(obj.r0, obj.c0))}: the "
                f"objective does not depend on the adjustable cells "
                f"({', '.join(self._param_names())})"
            )
        self.live = live
        watched = set()  # the blocks the watched formulas read
        for _, node in self.watch:
            refs: list[Ref] = []
            collect_refs(node, refs)
            for ref in refs:
                found = index.overlapping(ref.sheet, ref.r0, ref.r1, ref.c0, ref.c1)
                watched |= {b for b in found if b.kind != "param"}
        needed = _ancestors([self.objective, *watched])
        self.train_blocks = [b for b in _topo(needed) if b in live]
        required = _ancestors([*live, *watched])
        self.order = _topo(required)
        self.report_blocks = [b for b in self.order if b in live]
        for b in self.order:
            if b.problem is not None:
                raise ExcelnetError(f"{where(self.book.path, b.sheet, b.cell())}: {b.problem}")

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
                        _as_number(sheet.values.get((p.r0 + k // p.cols, p.c0 + k % p.cols)))
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
        for b in self.order:
            if b in self._done:  # evaluated already, for an OFFSET or INDIRECT
                continue
            try:
                if b in self.live:
                    self._live(b)
                else:
                    self._data(b)
            except FormulaError as e:
                raise ExcelnetError(f"{where(self.book.path, b.sheet, b.cell())}: {e}") from None

        probe = Block(self.solver.sheet, 0, 0, 0, 0, "array")  # no row of a copied block
        self.watch_thunks = []
        for label, node in self.watch:
            try:
                self.watch_thunks.append(self._node(node, probe))
            except FormulaError as e:
                raise ExcelnetError(f"{self.at}: {label}: {e}") from None

    def _live(self, b: Block) -> None:
        """A block on the parameters' path: traced once, re-run every step."""
        unknown, volatile = _unknown_and_volatile(b.node)
        if unknown:
            raise FormulaError(
                f"function {', '.join(unknown)} is not supported, and the cell depends on the "
                f"adjustable cells"
            )
        if volatile:
            raise FormulaError(
                f"{', '.join(volatile)} changes at every recalculation, and the cell depends on "
                f"the adjustable cells"
            )
        thunk = self._node(b.node, b)
        b.thunk = thunk
        value = self._fit(b, _now(thunk))
        b.value = value
        b.static_kind = None if value.numeric() else value.kinds().copy()
        b.static_text = value.text

    def _data(self, b: Block) -> None:
        """A block the parameters do not reach: evaluated once, as data. One excelnet cannot
        compute (an unknown function) or should not (RAND, NOW: a new value each time) keeps
        the value the file stores for it, with a warning."""
        unknown, volatile = _unknown_and_volatile(b.node)
        if not unknown and not volatile:
            self._constant(b)
            return
        names = ", ".join(unknown + volatile)
        stored = self.book.stored(b.sheet)
        cells = [(b.r0 + i // b.cols, b.c0 + i % b.cols) for i in range(b.size)]
        if not all(c in stored for c in cells):
            why = "excelnet does not know it" if unknown else "it changes at every recalculation"
            raise FormulaError(
                f"uses {names} ({why}) and the file stores no value for it: run excelnet calc "
                f"on the workbook, or save it in Excel or LibreOffice, to store one"
            )
        grid = np.array([stored[c] for c in cells], dtype=object).reshape(1, b.rows, b.cols)
        self._store(b, _flat(from_python(grid, self.ctx)))
        self._done.add(b)
        self.warnings.append((b, names))

    def watched(self) -> list[V]:
        """The watched formulas' values at the parameters of the last run of the blocks."""
        return [_now(t) for t in self.watch_thunks]

    def parameters(self) -> list[torch.Tensor]:
        return [p.value.x for p in self.params]

    def run(self, blocks: list[Block]) -> None:
        self.generation += 1
        for b in blocks:
            t = b.thunk
            b.value = self._fit(b, _now(t))

    def objective_value(self) -> torch.Tensor:
        """Run the blocks the objective needs (non-strict) and return it, a 0-d tensor."""
        self.ctx.strict = False
        try:
            self.run(self.train_blocks)
        finally:
            self.ctx.strict = True
        x = self.objective.value.x
        if x.numel() == 1:  # a view, whose gradient is cheaper than a picked element's
            return x.reshape(())
        return x.reshape(-1)[self.objective_pos]

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
                return f"{where(self.book.path, b.sheet, b.cell(i))}: {errs.reshape(-1)[i]}"
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
                b for b in _topo(_ancestors(list(found))) if b in self.live
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
                return _python(b.value, (r - b.r0) * b.cols + (c - b.c0))
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
                out[(b.sheet, b.r0 + i // b.cols, b.c0 + i % b.cols)] = _python(v, i)
        return out


def _now(value) -> V:
    """A Live's value now, or a constant value as it is."""
    return value.run() if isinstance(value, Live) else value


def _carry(out: V, args: list) -> V:
    """A result cell for cell over range arguments stays where those ranges are: in a one-cell
    formula, FISHER(G:G) or A1:A9*2 is read in the formula's row, CEILING(AM:AM,47:47) at the
    formula's row of AM and column of row 47 (implicit intersection). Per axis, the origin of
    the range that spans it (None: a 2-D range, which meets no one cell; "first": an array)."""
    ranges = [a for a in args if isinstance(a, V) and a.at is not None]
    if not ranges or not isinstance(out, V) or out.at is not None or out.shape[1:] == (1, 1):
        return out

    def origin(axis: int) -> int | str | None:
        size = out.shape[1 + axis]
        if size == 1:
            return 0
        return next((a.at[axis] for a in ranges if a.shape[1 + axis] == size), "first")

    out.at = (origin(0), origin(1))
    return out


def _intersect(v: V, b: Block) -> V:
    """A range where one value belongs: Excel's implicit intersection. A one-column range gives
    the cell in the formula's row, a one-row range the cell in its column; a 2-D range, or a
    row or column outside the range, is #VALUE!."""
    _, h, w = v.shape

    def pick(size: int, origin, here: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if size == 1 or origin == "first":
            return np.zeros(here.size, int), np.ones(here.size, bool)
        if origin is None:
            return np.zeros(here.size, int), np.zeros(here.size, bool)
        pos = here - origin
        ok = (pos >= 0) & (pos < size)
        return np.where(ok, pos, 0), ok

    i, ok_r = pick(h, v.at[0], np.arange(b.r0, b.r1 + 1))
    j, ok_c = pick(w, v.at[1], np.full(b.rows, b.c0))
    ok = ok_r & ok_c
    k = np.arange(b.rows) if v.shape[0] == b.rows else np.zeros(b.rows, int)  # per block row
    x = v.x[torch.as_tensor(k), torch.as_tensor(i), torch.as_tensor(j)].reshape(-1, 1, 1)
    kind = v.kinds()[k, i, j].reshape(-1, 1, 1).copy()
    text = v.texts()[k, i, j].reshape(-1, 1, 1).copy()
    kind[~ok], text[~ok] = ERR, "#VALUE!"
    return make(x, kind, text)


def _position(b: Block) -> tuple[str, int, int]:
    return (b.sheet, b.c0, b.r0)


def calls(node: Node, known_to_excel: bool = False) -> list[str]:
    """The names of the functions a formula calls (only those Excel has, if asked)."""
    return [
        n.name for n in walk(node) if isinstance(n, Call) and (not known_to_excel or excel_knows(n))
    ]


def excel_knows(call: Call) -> bool:
    """Whether Excel has the function (else a call to it is #NAME?, as Excel shows it)."""
    return call.new or call.name in FORMULAE or newer_excel(call.name) or call.name in FUNCTIONS


def _unknown_and_volatile(node: Node | None) -> tuple[list[str], list[str]]:
    names = sorted(set(calls(node, known_to_excel=True))) if node is not None else []
    unknown = [n for n in names if n not in FUNCTIONS]
    volatile = [n for n in names if n in FUNCTIONS and FUNCTIONS[n].volatile]
    return unknown, volatile


def _flat(v: V) -> V:
    """A (1, rows, cols) value laid out flat, as a block's value is."""
    v.x = v.x.reshape(-1)
    if isinstance(v.kind, np.ndarray):
        v.kind = v.kind.reshape(-1)
    if v.text is not None:
        v.text = v.text.reshape(-1)
    return v


def _python(v: V, i: int) -> object:
    """Element i of a block's flat value as a Python value."""
    k = NUM if v.numeric() else int(v.kinds().reshape(-1)[i])
    if k == NUM:
        return float(v.x.reshape(-1)[i])
    if k == ERR:
        return Error(str(v.texts().reshape(-1)[i]))
    if k == TEXT:
        return str(v.texts().reshape(-1)[i])
    if k == BLANK:
        return 0.0
    return bool(v.x.reshape(-1)[i])


def _sub(kind, sl):
    return kind[sl] if isinstance(kind, np.ndarray) else kind


def _as_number(v) -> float:
    return 0.0 if v is None else float(v)


def _ancestors(roots: list[Block]) -> set[Block]:
    seen, stack = set(roots), list(roots)
    while stack:
        for d in stack.pop().deps:
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return seen


def _topo(blocks: set[Block]) -> list[Block]:
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


def _cycles(blocks: list[Block]) -> list[Block]:
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


def compile_models(
    book: Book, sheet: str | None = None, device: str = "cpu", dtype: torch.dtype = torch.float64
) -> list[Model]:
    """Compile the Solver model of every sheet that has one (or of `sheet`): what `fit` does
    before it trains (excelnet.pipeline.compile_book), for code that drives the models itself."""
    from excelnet.pipeline import compile_book

    return compile_book(book, sheet, torch.device(device), dtype)
