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
from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.utils.formulas import FORMULAE

from excelnet.formula.book import Book, DataTable, Sheet, Table
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
    Structured,
    Union,
    parse,
    prepared,
    ref_text,
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
    kind: str  # "column" | "array" | "param" | "datatable" (What-If, see DataTable)
    formula: str | None = None
    node: Node | None = None
    refs: list[Ref] = field(default_factory=list)
    deps: set = field(default_factory=set)
    value: V | None = None  # flat over the rectangle, row-major: x of shape (rows*cols,)
    static_kind: np.ndarray | None = None  # kinds of a live block's output, fixed at trace
    static_text: np.ndarray | None = None
    thunk: object = None
    problem: str | None = None  # why it cannot be compiled (reported only if it is needed)
    picks: list[Ref] = field(default_factory=list)  # INDEX's ranges (of refs): read in part
    picked: set = field(default_factory=set)  # blocks only INDEX may read, left out of deps
    whatif: DataTable | None = None  # kind "datatable": the table
    notes: list[str] = field(default_factory=list)  # what its formula reads as an error value

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


class SplitRows(Exception):  # noqa: N818 (a signal, not an error)
    """A reference that stands for a different kind of thing in some rows of a column run than
    in others ([#This Row] of a table the run leaves): the run is computed cell by cell."""


_VALUE = Const(Error("#VALUE!"))


def _intersect_rows(
    sheet: str, d0: int, d1: int, c0: int, c1: int, at: Block | None, what: str, book: Book
) -> Node:
    """Columns c0:c1 of a sheet in the formula's own row, where that row is one of d0..d1
    (else #VALUE!): [#This Row] and the @ of a column. In a column run, a reference that moves
    down with the formula (relative rows), so that the run stays one block."""
    if at is None:
        raise FormulaError(f"{what}: the formula's row is needed, and it is in no cell")
    if at.kind == "array" and (at.r0, at.c0) in book.sheets[at.sheet].spills:
        r0 = r1 = at.r0  # a dynamic array's formula is in its anchor cell
    else:
        r0, r1 = at.r0, at.r1
    if r1 < d0 or r0 > d1:
        return _VALUE
    if not (d0 <= r0 and r1 <= d1):
        if at.kind == "column":
            raise SplitRows
        raise FormulaError(f"{what}: the array formula's rows are not all the table's")
    if at.kind == "array":
        return Ref(sheet, r0, c0, r1, c1)
    return Ref(sheet, r0, c0, r0, c1, True, True)


def _span(args: tuple) -> Node:
    """a:b of two references as one range where both are plain ranges of one sheet that move
    alike (Table1[a]:Table1[c], or a reference function's result is left to the evaluator)."""
    a, b = args
    if (
        isinstance(a, Ref)
        and isinstance(b, Ref)
        and a.sheet == b.sheet
        and len({a.rel_r0, a.rel_r1, b.rel_r0, b.rel_r1}) == 1
    ):
        rel = a.rel_r0
        return Ref(
            a.sheet,
            min(a.r0, b.r0),
            min(a.c0, b.c0),
            max(a.r1, b.r1),
            max(a.c1, b.c1),
            rel,
            rel,
        )
    return Op(":", args)


class Graph:
    """Every formula cell of a workbook, grouped into blocks, with their dependencies."""

    def __init__(self, book: Book):
        self.book = book
        self.linked: set[str] = set()  # other workbooks' sheets read (from the file's copies)
        self.blocks: list[Block] = []
        for sheet in book.sheets.values():
            for text, (r0, c0, r1, c1) in sheet.arrays.values():
                self.blocks.append(Block(sheet.name, r0, c0, r1, c1, "array", text))
            self._columns(sheet)
        for b in list(self.blocks):  # (a block split into cells parses its cells itself)
            self._parse(b)
        for sheet in book.sheets.values():
            for t in sheet.data_tables.values():
                self.blocks.append(self._data_table(sheet.name, t))

    def _data_table(self, sheet: str, t: DataTable) -> Block:
        """A What-If data table's block: it reads its input values and its formula cells (the
        row above it, the column left of it); see formula.calculation for how it is computed."""
        b = Block(sheet, t.r0, t.c0, t.r1, t.c1, "datatable")
        row_input = t.input1 if (t.two or t.row) else ""
        col_input = t.input2 if t.two else ("" if t.row else t.input1)
        b.formula = f"=TABLE({row_input or ''},{col_input or ''})"
        b.node = Const(Error("#N/A"))
        b.problem = "a What-If data table (TABLE): computed by calc and check, not in a model"
        above = Ref(sheet, t.r0 - 1, t.c0 - (1 if t.two else 0), t.r0 - 1, t.c1)
        left = Ref(sheet, t.r0, t.c0 - 1, t.r1, t.c0 - 1)
        b.refs = [r for r in (above, left) if r.r0 >= 0 and r.c0 >= 0]
        b.whatif = t
        return b

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
            value = b.kind == "column"
            b.node = self.resolve(parse(b.formula, b.sheet), b.sheet, 0, at=b, value=value)
        except SplitRows:  # [#This Row] or @ meets some of the run's rows, not all: by cell
            self.split(b)
            return
        except FormulaError as e:
            b.problem = str(e)
            b.node = Const(Error("#NAME?"))
        b.refs, b.picks = [], []
        collect_refs(b.node, b.refs, b.picks)
        if b.kind == "column" and b.rows > 1 and any(r.rel_r0 != r.rel_r1 for r in b.refs):
            self.split(b)  # a range that grows down the column: one block per cell
        elif b.kind == "column" and b.rows > 1 and sized_by_row(b.node):
            self.split(b)  # FILTER(…, A2) copied down: each cell's array a size of its own

    def resolve(
        self,
        node: Node,
        sheet: str,
        depth: int,
        whole: bool = False,
        at: Block | None = None,
        *,
        value: bool = False,
        keep: bool = False,
    ) -> Node:
        """Replace defined names by what they stand for (a relative name's references moved to
        the cell of `at` that uses it); bound whole columns and rows; structured references as
        the ranges they stand for, and @ (implicit intersection) and A1# (a spill) where the
        references are known. `at`: the block the formula is in ([#This Row] and @ need its
        rows; None: a formula of no cell, such as a Solver constraint's).

        In a formula that is not an array formula (`value`: a column block's, as _parse reads
        it), a range where one value is expected is read at the formula's own row or column,
        as if written @range (implicit intersection; functions/arguments.py says what each
        function's arguments expect); `keep`: this node is an argument that takes a reference,
        passed whole."""
        if isinstance(node, Name):
            key = local_name(node.name)
            if key in self._locals or node.name.lower().startswith(PARAMETERS):
                return Name(key)  # bound by LET or LAMBDA: the evaluator's environment
            text, scope = self._name(node.name, sheet)
            if text is None and "!" not in node.name and self.book.table(node.name):
                # a table's name alone: its data rows (Table1 is Table1[#Data])
                return self._structured(Structured(node.name, (), None, None, node.name), at)
            if text is None or depth > 20:
                if at is not None:
                    why = "names itself" if depth > 20 else "is no defined name or table"
                    at.notes.append(f"{node.name} {why} (#NAME?)")
                return Const(Error("#NAME?"))
            if at is not None:
                text = anchored(text, at.r0, at.c0)
            return self.resolve(
                parse(text, scope), scope, depth + 1, False, at, value=value, keep=keep
            )
        if isinstance(node, Structured):
            found = self._structured(node, at)
            if value and not keep and isinstance(found, Ref):
                return self._single(found, at)
            return found
        if isinstance(node, Ref):
            target = self.book.sheets.get(node.sheet)
            if target is None:
                if node.sheet.startswith("["):  # another workbook's, as the file copied it
                    return self._external(node, whole)
                return Const(Error("#REF!"))
            if value and not keep and at is not None and (node.r0, node.c0) != (node.r1, node.c1):
                return self._single(self.resolve(node, sheet, depth, True, at, value=False), at)
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
            args = tuple(self.resolve(a, sheet, depth, False, at, value=inner) for a in node.args)
            if node.op == ":":
                span = _span(args)
                if value and not keep and at is not None:
                    return self._single(span, at)
                return span
            return Op(node.op, args)
        if isinstance(node, Chain):
            return Chain(
                node.ops,
                tuple(self.resolve(a, sheet, depth, False, at, value=value) for a in node.args),
            )
        if isinstance(node, Union):
            return Union(tuple(self.resolve(a, sheet, depth, False, at) for a in node.areas))
        if isinstance(node, Call) and node.name in BINDERS:  # LET, LAMBDA: names of their own
            bound = BINDERS[node.name](node.args)
            if not all(isinstance(a, Name) for a in bound):
                raise FormulaError(f"{node.name} names its values with names, not {bound}")
            outer = self._locals
            self._locals = outer | {local_name(a.name) for a in bound}
            try:
                args = tuple(
                    Name(a.name.lower())
                    if any(a is n for n in bound)
                    else self.resolve(a, sheet, depth, False, at)
                    for a in node.args
                )  # a bound name as written: _xlop. marks a LAMBDA's optional parameter
            finally:
                self._locals = outer
            return Call(node.name, args, node.new)
        if isinstance(node, Call) and node.name not in FUNCTIONS:
            # a function of the workbook's own (a name defined as a LAMBDA), or one a LET bound
            key = local_name(node.name)
            if key in self._locals:
                f = Name(key)
            else:
                text, scope = self._name(node.name, sheet)
                f = None if text is None or depth > 20 else parse(text, scope)
                if f is not None and node.name.upper() in self._expanding:
                    raise FormulaError(f"{node.name} calls itself: a recursive LAMBDA")
            if f is not None:
                outer = self._expanding
                self._expanding = outer | {node.name.upper()}
                try:
                    f = self.resolve(f, sheet if key in self._locals else scope, depth + 1)
                finally:
                    self._expanding = outer
                args = tuple(self.resolve(a, sheet, depth, False, at) for a in node.args)
                return Op("invoke", (f, *args))
        if isinstance(node, Call):
            if node.name == "SINGLE" and len(node.args) == 1:  # @x, Excel 365's
                return self._single(self.resolve(node.args[0], sheet, depth, True, at), at)
            if node.name == "ANCHORARRAY" and len(node.args) == 1:  # A1#, a spill
                return self._spill(self.resolve(node.args[0], sheet, depth, False, at))
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
                        at,
                        value=value and kind != ARRAY,
                        keep=kind == REFERENCE and whole_ref,
                    )
                )
            args = tuple(args)
            if known is not None and known.resolve is not None:  # SUMIF's sum range, …
                args = known.resolve(args)
            call = Call(node.name, args, node.new)
            if node.name in RETURNS_REFERENCE and value and not keep and at is not None:
                return Op("@", (call,))  # the reference it returns, read at the formula's row
            return call
        return node

    _locals: frozenset = frozenset()  # the names LET and LAMBDA bind where resolve is
    _expanding: frozenset = frozenset()  # the workbook's LAMBDA names being resolved

    # ---- structured references, @ and spills
    def a1_formula(self, b: Block) -> str:
        """A block's formula with its structured references written as the A1 ranges they
        stand for in the block's first cell ([#This Row] as a row that moves: Data!$B7)."""
        text = b.formula or ""
        if "[" not in text:
            return text
        try:
            tokens = Tokenizer(prepared(text)).items
        except TokenizerError as e:
            raise FormulaError(f"cannot read formula {text!r}: {e}") from None
        out = []
        for tok in tokens:
            value = tok.value
            if tok.type == Token.OPERAND and tok.subtype == Token.RANGE and "[" in value:
                node = self.resolve(parse("=" + value, b.sheet), b.sheet, 0, at=b)
                if isinstance(node, Ref):
                    value = ref_text(node, b.sheet)
                elif isinstance(node, Const) and isinstance(node.value, Error):
                    value = node.value.code
            out.append(value)
        return "=" + "".join(out)

    def table_at(self, sheet: str, r: int, c: int) -> Table | None:
        """The table a cell is in, if any."""
        for t in self.book.sheets[sheet].tables:
            if t.r0 <= r <= t.r1 and t.c0 <= c <= t.c1:
                return t
        return None

    def _structured(self, node: Structured, at: Block | None) -> Node:
        """A structured reference as the range Excel defines for it."""
        if node.table is None:  # [Age]: the table the formula is in
            t = self.table_at(at.sheet, at.r0, at.c0) if at is not None else None
            if t is None:
                raise FormulaError(f"{node.text} names no table and the formula is in none")
            tsheet = at.sheet
        else:
            found = self.book.table(node.table)
            if found is None:
                raise FormulaError(f"{node.text}: the workbook has no table named {node.table}")
            tsheet, t = found
        c0, c1 = t.c0, t.c1
        if node.first is not None:
            a, b = t.column(node.first), t.column(node.last)
            if a is None or b is None:
                missing = node.first if a is None else node.last
                raise FormulaError(f"{node.text}: table {t.name} has no column {missing!r}")
            c0, c1 = min(a, b), max(a, b)
        d0, d1 = t.data
        items = node.items
        if items == ("#this row",):
            return _intersect_rows(tsheet, d0, d1, c0, c1, at, node.text, self.book)
        if items in ((), ("#data",)):
            r0, r1 = d0, d1
        elif items == ("#all",):
            r0, r1 = t.r0, t.r1
        elif items == ("#headers",):
            if not t.header_rows:
                return Const(Error("#REF!"))
            r0 = r1 = t.r0
        elif items == ("#totals",):
            if not t.totals_rows:
                return Const(Error("#REF!"))
            r0 = r1 = t.r1
        elif items == ("#data", "#headers"):
            r0, r1 = t.r0, d1
        else:  # #Data, #Totals
            r0, r1 = d0, t.r1
        if r1 < r0:
            return Const(Error("#REF!"))
        return Ref(tsheet, r0, c0, r1, c1)

    def _single(self, arg: Node, at: Block | None) -> Node:
        """@x: a range's one cell in the formula's row (a column) or column (a row): Excel's
        implicit intersection. What is no reference is kept for the evaluator (Op "@")."""
        if not isinstance(arg, Ref):
            return Op("@", (arg,))
        if arg.r0 == arg.r1 and arg.c0 == arg.c1:
            return arg
        if at is None:
            raise FormulaError("@ (implicit intersection) of a range outside a cell's formula")
        if arg.c0 == arg.c1:  # one column: the formula's row
            if at.kind == "column" and at.rows > 1 and arg.rel_r0 != arg.rel_r1:
                raise SplitRows
            if at.kind == "column" and arg.rel_r0 and arg.rel_r1:  # moves with the formula
                ok = arg.r0 <= at.r0 <= arg.r1
                return Ref(arg.sheet, at.r0, arg.c0, at.r0, arg.c0, True, True) if ok else _VALUE
            return _intersect_rows(arg.sheet, arg.r0, arg.r1, arg.c0, arg.c0, at, "@", self.book)
        if arg.r0 == arg.r1:  # one row: the formula's column
            if not arg.c0 <= at.c0 <= arg.c1:
                return _VALUE
            return Ref(arg.sheet, arg.r0, at.c0, arg.r1, at.c0, arg.rel_r0, arg.rel_r1)
        return _VALUE  # a 2-D range meets no one cell

    def _spill(self, arg: Node) -> Node:
        """A1# (ANCHORARRAY): the range the dynamic array anchored at A1 spilled over, as Excel
        last recorded it; #REF! where A1 holds no array formula."""
        if not isinstance(arg, Ref) or arg.r0 != arg.r1 or arg.c0 != arg.c1:
            raise FormulaError("# (a spill range) after a reference that is not one cell")
        sheet = self.book.sheets[arg.sheet]
        found = sheet.arrays.get((arg.r0, arg.c0))
        if found is None:
            return Const(Error("#REF!"))
        r0, c0, r1, c1 = found[1]
        return Ref(arg.sheet, r0, c0, r1, c1)

    def _external(self, node: Ref, whole: bool) -> Node:
        """A cell of another workbook, from the copy Excel keeps in this file."""
        cells = self.book.external(node.sheet)
        if cells is None:
            raise FormulaError(
                f"{node.sheet}: another workbook's sheet, of which the file keeps no copy"
            )
        self.linked.add(node.sheet)
        if node.r1 is None or node.c1 is None:
            last_row = max((r for r, _ in cells), default=0) if not whole else ROWS - 1
            last_col = max((c for _, c in cells), default=0) if not whole else COLUMNS - 1
            if node.r1 is None:
                return Ref(node.sheet, 0, node.c0, last_row, node.c1)
            return Ref(node.sheet, node.r0, 0, node.r1, last_col)
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
                b.deps, b.picked = set(), set()
                picks = set(map(id, b.picks))
                maybe = set()
                for ref in b.refs:
                    lo, hi = footprint(ref, b)
                    found = index.overlapping(ref.sheet, lo, hi, ref.c0, ref.c1)
                    if id(ref) in picks:
                        maybe |= found
                    else:
                        b.deps |= found
                b.picked = maybe - b.deps
                b.deps |= maybe
            cyclic = cycles(self.blocks)
            if any(b.picked for b in cyclic):
                # INDEX(H:H, …) in column H reads the cells it picks, not all of H: a cycle
                # only through INDEX's ranges is judged when INDEX runs (what it picks is
                # evaluated first, and a cell that picks itself is circular then)
                for b in cyclic:
                    b.deps -= b.picked
                cyclic = cycles(self.blocks)
                for b in self.blocks:
                    if b not in cyclic and b.picked and b.picked.isdisjoint(b.deps):
                        continue
                    b.deps |= b.picked  # (not part of a cycle: ordered as usual)
                    b.picked = set()
                cyclic = cycles(self.blocks)
            else:
                for b in self.blocks:
                    b.picked = set()
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


# files write a name LET or LAMBDA binds _xlpm.name (an optional parameter: _xlop.name)
PARAMETERS = ("_xlpm.", "_xlop.")

# the arguments of LET and LAMBDA that are names they bind
BINDERS = {
    "LET": lambda args: args[0:-1:2],
    "LAMBDA": lambda args: args[:-1],
}


def local_name(name: str) -> str:
    """A name LET or LAMBDA binds, as the environment keys it (case ignored, no _xlpm.)."""
    key = name.lower()
    return key[6:] if key.startswith(PARAMETERS) else key


# functions whose array's size depends on their arguments' values (LAMBDA's: on its results)
SIZED_BY_VALUES = frozenset(
    "FILTER UNIQUE SEQUENCE TAKE DROP EXPAND WRAPROWS WRAPCOLS TEXTSPLIT CHOOSECOLS CHOOSEROWS "
    "TOCOL TOROW MAKEARRAY REDUCE LAMBDA".split()
)


def sized_by_row(node: Node) -> bool:
    """Whether a formula copied down computes, in different rows, arrays of different sizes:
    a function of SIZED_BY_VALUES over a reference that moves down the column."""
    for n in walk(node):
        if isinstance(n, Call) and n.name in SIZED_BY_VALUES:
            if any(isinstance(r, Ref) and r.rel_r0 for r in walk(n)):
                return True
    return False


def linked_note(linked: set[str]) -> str:
    """The one warning for values read from other workbooks (external links)."""
    return (
        f"values of other workbooks ({', '.join(sorted(linked))}) are the copies Excel kept in "
        f"this file when it last saved it, not the workbooks themselves"
    )


# functions whose result is one of their arguments, a reference if that is one
PASS_REFERENCE = frozenset({"IF", "IFS", "CHOOSE", "IFERROR", "IFNA"})
# functions that compute a reference
RETURNS_REFERENCE = frozenset({"INDEX", "OFFSET", "INDIRECT"})

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


def collect_refs(node: Node, out: list[Ref], picks: list[Ref] | None = None) -> None:
    """The references a formula reads, into `out`; those of them that are INDEX's range, of
    which it reads only the cells it picks, into `picks` too."""
    if isinstance(node, Ref):
        out.append(node)
    elif isinstance(node, Call):
        known = FUNCTIONS.get(node.name)
        skip = known.positional if known is not None else ()
        for i, a in enumerate(node.args):
            if not (i in skip and isinstance(a, Ref)):  # ROW(A1) does not read A1
                collect_refs(a, out, picks)
                if picks is not None and i == 0 and node.name == "INDEX" and isinstance(a, Ref):
                    picks.append(a)
    elif isinstance(node, (Op, Chain)):
        for a in node.args:
            collect_refs(a, out, picks)
    elif isinstance(node, Union):
        for a in node.areas:
            collect_refs(a, out, picks)


def computes_references(node: Node | None) -> bool:
    """Whether a formula may read cells through a reference a function computes (OFFSET,
    INDIRECT, A1:INDEX(…)): cells that are not among its references, found as it is evaluated."""
    return node is not None and any(
        (isinstance(n, Op) and n.op == ":") or (isinstance(n, Call) and n.name in MAKE_REFERENCES)
        for n in walk(node)
    )


MAKE_REFERENCES = ("OFFSET", "INDIRECT")  # the functions whose result is a reference


def footprint(ref: Ref, b: Block) -> tuple[int, int]:
    """Rows a reference covers over all the cells of block b."""
    shift = b.rows - 1 if (b.kind == "column" and ref.rel_r0) else 0
    return ref.r0, ref.r1 + shift


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


def readers(blocks, also=None) -> dict[Block, list[Block]]:
    """Each block's readers: the blocks whose formulas depend on it (its references, what
    INDEX may pick, and `also`'s extra dependencies per block: references computed)."""
    users: dict[Block, list[Block]] = defaultdict(list)
    for b in blocks:
        extra = also.get(b, ()) if also is not None else ()
        for d in b.deps | b.picked | set(extra):
            users[d].append(b)
    return users


def spread(users: dict[Block, list[Block]], start, out: set[Block]) -> set[Block]:
    """`out` with every block that depends, through `users`, on one of `start`."""
    stack = list(start)
    while stack:
        for u in users.get(stack.pop(), ()):
            if u not in out:
                out.add(u)
                stack.append(u)
    return out


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
