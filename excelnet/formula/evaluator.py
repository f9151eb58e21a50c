"""Evaluating blocks: each block's formula as one vectorised torch computation over its cells,
with Excel's semantics (values.py) and functions (functions/); what does not depend on the
parameters once, as data, the rest as `Live` computations run every step."""

from __future__ import annotations

import numpy as np
import torch

from excelnet.formula import dates, values
from excelnet.formula.book import Book
from excelnet.formula.functions import FUNCTIONS, operator
from excelnet.formula.fuse import member
from excelnet.formula.graph import (
    Block,
    BlockIndex,
    Graph,
    excel_knows,
    position,
)
from excelnet.formula.grid import Grid
from excelnet.formula.lambdas import evaluate as evaluate_bound
from excelnet.formula.lambdas import special
from excelnet.formula.parse import (
    MISSING,
    Array,
    Call,
    Chain,
    Const,
    Error,
    FormulaError,
    Node,
    Op,
    Ref,
    Union,
)
from excelnet.formula.site import Live, Site, current
from excelnet.formula.values import (
    BLANK,
    ERR,
    NUM,
    TEXT,
    Ctx,
    V,
    error_value,
    errors_of,
    from_python,
    make,
    omitted,
    reshaped,
    scalar,
)

# -- evaluating blocks -------------------------------------------------------------------------


class Evaluator:
    """Evaluates a workbook's blocks: each block's formula becomes a tensor computation over the
    sheets' values. Blocks in `live` (those that depend on the parameters) are re-run every
    step; every other block is evaluated once and its values stored in its sheet's grid, where
    references read them as data. Shared by a Solver model and the whole-workbook calculation."""

    def __init__(self, book: Book, ctx: Ctx, graph: Graph | None = None):
        self.book, self.ctx = book, ctx
        ctx.date1904 = book.date1904
        self.graph = graph or Graph(book)
        self._grids: dict[str, Grid] = {}
        self.live: set[Block] = set()
        self.index = BlockIndex([])
        self._done: set[Block] = set()  # constant blocks evaluated and stored
        self.warnings: list[tuple[Block, str]] = []  # blocks that kept their stored values
        self._busy: set[Block] = set()  # being evaluated (a reference back to one is a cycle)
        self.fused: dict[int, tuple] = {}  # SUMPRODUCT calls computed as matrix products (fuse)
        self.generation = 0  # a new one for every run of the blocks (fused results are per run)
        self.env: dict = {}  # the names LET and LAMBDA bind where a formula is being built
        self.live_seen = False  # a LAMBDA called by MAP, … gave a Live (lambdas.py)
        # whether Live values run again at every step (a Solver model) or once (a whole-workbook
        # calculation, where only volatile functions make them)
        self.steps = False
        self.reads: dict[Block, set[Block]] = {}  # blocks read through references computed
        self.made: dict[tuple[int, int], tuple] = {}  # references computed, per node and block

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
        spill = (b.r0, b.c0) in self.book.sheets[b.sheet].spills
        if spill and (hh, ww) != (h, w) and (h, w) == (1, 1) and _one_error(v):
            v, hh, ww = _first(v), 1, 1  # an error is one value, whatever shape it came in
        if spill and (hh, ww) != (h, w):
            raise FormulaError(
                f"the dynamic array's result is {hh}×{ww} now; Excel recorded its spill as "
                f"{h}×{w} ({b.cell()}:{b.cell(b.size - 1)}), and would spill it anew"
            )
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
            s = self.book.sheets.get(sheet)
            if s is None:  # another workbook's sheet, as the file copied it (external links)
                cells = self.book.external(sheet) or {}
                rows = max((r for r, _ in cells), default=0) + 1
                cols = max((c for _, c in cells), default=0) + 1
                g = self._grids[sheet] = Grid(cells, rows, cols)
                return g
            g = self._grids[sheet] = Grid(s.values, s.max_row + 1, s.max_col + 1)
        return g

    def _store(self, b: Block, v: V) -> None:
        x = v.x.detach().cpu().numpy().reshape(b.rows, b.cols)
        kind = v.kinds().reshape(b.rows, b.cols) if not v.numeric() else np.int8(NUM)
        text = v.texts().reshape(b.rows, b.cols) if v.text is not None else None
        self._grid(b.sheet).put(b.r0, b.c0, x, kind, text)

    def _node(self, node: Node, b: Block):
        ctx = self.ctx
        if special(node):  # LET, LAMBDA, MAP, …, a name they bind, a function value's call
            return evaluate_bound(self, node, b)
        if isinstance(node, Const):
            value = node.value
            return omitted(ctx) if value is MISSING else scalar(value, ctx)
        if isinstance(node, Array):
            return from_python(np.array([list(r) for r in node.rows], dtype=object)[None], ctx)
        if isinstance(node, Ref):
            return self._reference(node, b)
        if isinstance(node, Op) and node.op == ":":  # OFFSET(…):B3: both ends references
            refs = self._made(node, b)
            if not isinstance(refs, list):
                for end in node.args:  # an end excelnet cannot read as a reference: say so
                    if not isinstance(end, (Ref, Op, Const)) and not (
                        isinstance(end, Call) and _REFERENCE_RESULTS.intersection({end.name})
                    ):
                        what = end.name if isinstance(end, Call) else type(end).__name__
                        raise FormulaError(
                            f"the range operator ':' with {what}(…) as an end: excelnet reads "
                            f"references only from {', '.join(sorted(_REFERENCE_RESULTS))}"
                        )
                return scalar(Error("#VALUE!"), ctx)
            return self._dynamic(refs, b)
        if isinstance(node, Op) and node.op == "@":  # @ of a reference a function returns
            got = self._intersected(node.args[0], b)
            if got is not None:
                return got
            arg = self._node(node.args[0], b)  # of what is no reference: its first value
            if isinstance(arg, Live):
                return Live(lambda: _first(current(arg)))
            return _first(arg)
        if isinstance(node, Op):
            args = [self._node(a, b) for a in node.args]
            if not any(isinstance(a, Live) for a in args):
                return _carry(operator(node.op, args, ctx), args)
            op = node.op
            return Live(lambda: operator(op, [current(a) for a in args], ctx))
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
            return Live(lambda: fold([current(a) for a in args]))
        if isinstance(node, Union):  # outside a function that takes several ranges
            return scalar(Error("#VALUE!"), ctx)
        if isinstance(node, Call):
            fused = self.fused.get(id(node))
            if fused is not None and b.kind == "column" and b.rows > 1:
                product, j = fused
                if product.prepare(lambda r: self._reference(r, b), current, self._param_rows):
                    return Live(lambda: member(product, j, ctx, self.generation, current))
            if node.name == "INDEX" and b.picked and node.args and isinstance(node.args[0], Ref):
                # a range that holds formulas which read this one: only the cells INDEX picks
                refs = Site(self, b).refs(node)
                if refs is not None:
                    return self._dynamic(refs, b)
                whole = node.args[0]  # (an error or a row past the range: INDEX says which)
                self._ensure(whole.sheet, whole.r0, whole.r1, whole.c0, whole.c1)
            known = FUNCTIONS.get(node.name)
            if known is None:
                if self.graph._name(node.name, b.sheet)[0] is not None:
                    raise FormulaError(f"{node.name} is a name defined by LAMBDA: not supported")
                if not excel_knows(node):  # a typo or a made-up name: #NAME? as in Excel
                    return scalar(Error("#NAME?"), ctx)
                raise FormulaError(f"function {node.name} is not supported")
            if known.refs:  # OFFSET, ROW, …: its arguments unevaluated; a value or references
                out = self._made(node, b)
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
            if known.volatile:  # RAND, NOW: a new value at every recalculation
                cells = (b.rows, 1, 1) if b.kind == "column" else (1, b.rows, b.cols)
                return Live(_drawn(fn, ctx, args, cells))
            if not any(isinstance(a, Live) for a in args):
                out = fn(ctx, args)
                return out if known.array_result else _carry(out, args)
            return Live(lambda: fn(ctx, [current(a) for a in args]))
        raise FormulaError(f"cannot evaluate {node!r}")

    def computed_references(self, b: Block) -> list[Ref]:
        """The references the functions of b's formula compute whose cells it reads (OFFSET,
        INDIRECT, INDEX or CHOOSE as a reference, A1:OFFSET(…)), each as it is for the rows
        of the block: where they point is found from the cells they read, which must hold
        data (evaluated already); the cells pointed at are not read."""
        out: list[Ref] = []
        stack = [b.node]
        while stack:
            node = stack.pop()
            known = FUNCTIONS.get(node.name) if isinstance(node, Call) else None
            if (isinstance(node, Op) and node.op == ":") or (known is not None and known.refs):
                got = self._made(node, b)  # ROW, COLUMNS, …: where a range is, not what it holds
                out.extend(got if isinstance(got, list) else ())
                continue
            if isinstance(node, (Op, Chain, Call)):
                stack.extend(node.args)
            elif isinstance(node, Union):
                stack.extend(node.areas)
        return out

    def _made(self, node: Call | Op, b: Block):
        """A reference function's result (references, or a value), or A1:OFFSET(…)'s
        references (None: not references), for block b: computed once, when the model's
        compile first asks where it points, and remembered (while the data it read stays)."""
        key = (id(node), id(b))
        hit = self.made.get(key)
        if hit is not None:
            return hit[2]
        site = Site(self, b)
        if isinstance(node, Op):
            out = site.refs(node)
        else:
            site.function = node.name
            out = FUNCTIONS[node.name].fn(site, list(node.args))
        if isinstance(out, list):  # (a value is not remembered: it may depend on the step)
            self.made[key] = (node, b, out)  # node and block kept: their ids stay theirs
        return out

    def _intersected(self, node: Node, b: Block):
        """A reference a function computes (INDEX(A1:B5,0,1), OFFSET(…)), read where one value
        is expected: each block row's reference met with that row (a column) or the block's
        column (a row), as a range written out is (graph's _single); #VALUE! where they do not
        meet. None where it is no reference known before the parameters move."""
        try:
            refs = Site(self, b).refs(node)
        except FormulaError:
            refs = None
        if not refs or len({r.sheet for r in refs}) != 1:
            return None
        n = b.rows if b.kind == "column" else 1
        rows, cols = np.zeros(n, int), np.zeros(n, int)
        bad = np.zeros(n, bool)
        for k in range(n):
            ref = refs[min(k, len(refs) - 1)]
            r, c = b.r0 + k, b.c0
            if ref.r1 is None or ref.c1 is None:
                return None
            if ref.r0 == ref.r1 and ref.c0 == ref.c1:
                rows[k], cols[k] = ref.r0, ref.c0
            elif ref.c0 == ref.c1:
                rows[k], cols[k], bad[k] = r, ref.c0, not ref.r0 <= r <= ref.r1
            elif ref.r0 == ref.r1:
                rows[k], cols[k], bad[k] = ref.r0, c, not ref.c0 <= c <= ref.c1
            else:
                bad[k] = True
        if bad.all():
            return error_value("#VALUE!", (n, 1, 1), self.ctx)
        good = int(np.flatnonzero(~bad)[0])  # the rows outside read a cell that is, then masked
        rows, cols = np.where(bad, rows[good], rows), np.where(bad, cols[good], cols)
        sheet = refs[0].sheet
        lo, hi = int(rows.min()), int(rows.max())
        found = self._ensure(sheet, lo, hi, int(cols.min()), int(cols.max()), b)
        self.reads.setdefault(b, set()).update(found)
        value = self._window(sheet, rows[:, None], cols[:, None])
        if not bad.any():
            return value
        outside = bad[:, None, None]
        if isinstance(value, Live):
            return Live(lambda: _value_error(current(value), outside))
        return _value_error(value, outside)

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
        found = self._ensure(
            first.sheet,
            int(r0.min()),
            int(r0.max()) + h - 1,
            int(c0.min()),
            int(c0.max()) + w - 1,
            b,
        )
        self.reads.setdefault(b, set()).update(found)
        return self._window(first.sheet, r0[:, None] + np.arange(h), c0[:, None] + np.arange(w))

    def _ensure(
        self, sheet: str, r0: int, r1: int, c0: int, c1: int, reader: Block | None = None
    ) -> set[Block]:
        """Evaluate the constant blocks inside a rectangle that have not been evaluated yet,
        for `reader`; returns every block there. A block that depends on the parameters must
        be one of the reader's dependencies (found by the model's compile, evaluated first)."""
        found = self.index.overlapping(sheet, r0, r1, c0, c1)
        for blk in sorted(found, key=position):
            if blk.kind == "param" or blk in self._done:
                continue
            if blk in self.live:
                if reader is not None and blk in reader.deps:
                    continue
                raise FormulaError(
                    f"OFFSET or INDIRECT reaching {blk.sheet}!{blk.cell()}, which depends on the "
                    f"parameters, is not supported"
                )
            if blk in self._busy:
                raise FormulaError(f"circular reference through {blk.sheet}!{blk.cell()}")
            self._constant(blk)
        return found

    def calendar(self):
        """The workbook's date system for what runs inside (dates.py: a context variable):
        every evaluation of formulas runs inside it."""
        return dates.calendar1904(self.ctx.date1904)

    def _constant(self, b: Block) -> V:
        """Evaluate a block that does not depend on the parameters, once; store its values."""
        self._busy.add(b)
        try:
            with self.calendar():
                thunk = self._node(b.node, b)
                value = self._fit(b, current(thunk))
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
                    return V(reshaped(src.value.x, shape), kind_out, text_out, True)

                return Live(whole)
            return Live(
                lambda: V(
                    reshaped(src.value.x, (-1,))[start : start + size].reshape(shape),
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
                        reshaped(src.value.x, (-1,))[start:stop:step].reshape(shape),
                        kind_out,
                        text_out,
                        True,
                    )
                )
        # the index in the range's shape: the gathered values come out in it, with no reshape
        index_t = torch.as_tensor(flat.reshape(shape) if values.LEAN else flat, device=ctx.device)

        def gather() -> V:
            parts = ([const_x] if parts_const else []) + [
                reshaped(s.value.x, (-1,)) for s in sources
            ]
            pool = torch.cat(parts) if len(parts) > 1 else parts[0]
            return V(reshaped(pool[index_t], shape), kind_out, text_out, True)

        return Live(gather)


# the functions whose result excelnet reads as a reference (Site.refs): the ends of a:b
_REFERENCE_RESULTS = frozenset(
    {"OFFSET", "INDIRECT", "INDEX", "CHOOSE"} | {n for n, f in FUNCTIONS.items() if f.refs}
)


def _one_error(v: V) -> bool:
    """Whether every element of a value is one and the same error."""
    errs = errors_of(v)
    return errs is not None and bool((errs != None).all()) and len(set(errs.reshape(-1))) == 1  # noqa: E711


def _first(v: V) -> V:
    """The top-left value of each row's array (what @ makes of an array that is no range)."""
    if v.shape[1:] == (1, 1):
        return v
    return V(
        v.x[:, :1, :1],
        _sub(v.kind, (slice(None), slice(0, 1), slice(0, 1))),
        None if v.text is None else v.texts()[:, :1, :1],
    )


def _drawn(fn, ctx: Ctx, args: list, cells: tuple[int, int, int]):
    """A volatile function's computation, run again at every recalculation: draws (RAND) one
    for each of the block's cells, each independent (ctx.draws)."""

    def draw() -> V:
        ctx.draws = cells
        try:
            return fn(ctx, [current(a) for a in args])
        finally:
            ctx.draws = (1, 1, 1)

    return draw


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


def _value_error(v: V, where: np.ndarray) -> V:
    """v with #VALUE! where `where` (broadcast over its shape) is true."""
    shape = v.shape
    where = np.broadcast_to(where, shape)
    kind = v.kinds().copy()
    text = np.array(v.texts(), dtype=object)
    kind[where], text[where] = ERR, "#VALUE!"
    return make(v.x, kind, text)


def flat(v: V) -> V:
    """A (1, rows, cols) value laid out flat, as a block's value is."""
    v.x = v.x.reshape(-1)
    if isinstance(v.kind, np.ndarray):
        v.kind = v.kind.reshape(-1)
    if v.text is not None:
        v.text = v.text.reshape(-1)
    return v


def python_value(v: V, i: int) -> object:
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
