"""`excelnet predict`: the model a workbook's formulas define, applied to new rows.

The rule: the per-row formulas — the blocks copied down the table's rows (features, units,
the prediction) and array formulas over those rows (MMULT) — run on the new rows; everything
else keeps the value it has in the workbook: the statistics (modes, maxima, computed from the
training rows), the fitted parameters, any other cell.

How: starting from the prediction column of the model sheet, follow its formulas' references
that move with the row (A2, features!A2:J2) to the blocks and the data columns they read, each
the same rows of its sheet. Those per-row columns are laid out side by side on one new sheet,
`predictions`: the new rows' data under the data sheet's headers, then each per-row formula,
its row references pointed at the new sheet's columns and every other reference (parameters,
named statistics) left pointing where it points. That sheet is the model applied to the new
rows, in both forms: excelnet's compiler evaluates it in memory (one compiler, as for `fit`),
and `--workbook` writes it into a copy of the workbook, live formulas that Excel and
LibreOffice recompute — and that `excelnet fit` refreshes after a new fit.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError
from openpyxl.utils import get_column_letter

from excelnet.data import MISSING_MARKS, Csv, number, read_csv
from excelnet.errors import ExcelnetError, where
from excelnet.formula.book import Book, Sheet, SolverModel
from excelnet.formula.graph import Block, Graph, a1
from excelnet.formula.model import Model
from excelnet.formula.parse import CopiedDown, Error, FormulaError, Ref, parse_ref
from excelnet.formula.values import Ctx
from excelnet.progress import Silent
from excelnet.writer.table import ID_NAME, TARGET_NAME
from excelnet.xlsx.atomic import atomic_path
from excelnet.xlsx.files import check_source, check_target, refuse_if_open
from excelnet.xlsx.read import read_book
from excelnet.xlsx.sheets import HEADER, Changes, render_sheet
from excelnet.xlsx.writeback import write_values

SHEET = "predictions"
PREDICTION = "Prediction"


# -- which cells run per row -----------------------------------------------------------------


@dataclass
class Plan:
    """The per-row part of a model: its blocks and data columns, each sheet's first table row."""

    book: Book
    sheet: str  # the model sheet
    prediction: Block
    rows: int  # the workbook's table rows
    tops: dict[str, int] = field(default_factory=dict)  # sheet -> 0-based first table row
    blocks: list[Block] = field(default_factory=list)  # per-row blocks, prediction first
    reads: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # literal cols
    refs: dict[int, list] = field(default_factory=dict)  # id(block) -> [(token i, Ref, per-row)]
    texts: dict[int, str] = field(default_factory=dict)  # id(block) -> its formula, in A1 form
    computed: set[int] = field(default_factory=set)  # data-sheet columns of other formulas

    @property
    def data(self) -> str:
        return next(iter(self.reads))

    def columns(self, sheet: str) -> range:
        """The columns of `sheet` that the new sheet holds."""
        cols = {c for b in self.blocks if b.sheet == sheet for c in range(b.c0, b.c1 + 1)}
        cols |= self.reads.get(sheet, set())
        if sheet == self.data:
            cols |= set(self.headers())
        return range(min(cols), max(cols) + 1)

    def headers(self) -> dict[int, str]:
        """The data sheet's column headers (the row above its first table row)."""
        s = self.book.sheets[self.data]
        row = self.tops[self.data] - 1
        return {
            c: str(v).strip()
            for (r, c), v in s.values.items()
            if r == row and isinstance(v, str) and v.strip() and c not in self.computed
        }


def _tokens(text: str, at: str) -> list[Token]:
    try:
        return Tokenizer(text).items
    except TokenizerError as e:
        raise ExcelnetError(f"{at}: cannot read formula {text!r}: {e}") from None


def plan(book: Book, solver: SolverModel, column: str = PREDICTION) -> Plan:
    """Find the prediction column of the model sheet and the per-row part of its formulas."""
    sheet = book.sheets[solver.sheet]
    graph = Graph(book)
    by_col: dict[tuple[str, int], list[Block]] = defaultdict(list)
    for b in graph.blocks:
        for c in range(b.c0, b.c1 + 1):
            by_col[(b.sheet, c)].append(b)
    heads = sorted(
        (r, c)
        for (r, c), v in sheet.values.items()
        if isinstance(v, str) and v.strip().lower() == column.lower()
    )
    found = [
        b
        for r, c in heads
        for b in by_col[(sheet.name, c)]
        if b.kind == "column" and b.r0 == r + 1 and b.c0 == c
    ]
    if not found:
        at = f"{where(book.path, sheet.name)}: no column headed {column!r} with formulas below it"
        raise ExcelnetError(
            f"{at} (the per-row prediction); name the header with column=",
            f"{at} (the per-row prediction); name the header with --column",
        )
    p = Plan(book, sheet.name, found[0], found[0].rows, {sheet.name: found[0].r0})
    params = solver.adjustable
    todo = [p.prediction]
    p.blocks.append(p.prediction)
    while todo:
        b = todo.pop()
        at = where(book.path, b.sheet, b.cell())
        home_top = p.tops[b.sheet]
        if b.r0 != home_top or b.rows != p.rows:
            raise ExcelnetError(
                f"{at}: the prediction reads {b.sheet}!{b.cell()}:{b.cell(b.size - 1)}, which "
                f"does not span the table's {p.rows} rows (from row {home_top + 1})"
            )
        found_refs = []
        try:  # structured references (Excel Tables) as the A1 ranges they stand for here
            p.texts[id(b)] = graph.a1_formula(b)
        except FormulaError as e:
            raise ExcelnetError(f"{at}: {e}") from None
        for i, tok in enumerate(_tokens(p.texts[id(b)], at)):
            if tok.type != Token.OPERAND or tok.subtype != Token.RANGE:
                continue
            try:
                ref = parse_ref(tok.value, b.sheet)
            except FormulaError as e:
                raise ExcelnetError(f"{at}: {e}") from None
            if ref is None or ref.sheet not in book.sheets:
                found_refs.append((i, ref, False))
                continue
            per_row = _per_row(p, b, ref, params, at)
            found_refs.append((i, ref, per_row))
            if not per_row:
                continue
            top = ref.r0  # the row the block's first cell reads
            if p.tops.setdefault(ref.sheet, top) != top:
                raise ExcelnetError(
                    f"{at}: {tok.value} reads another row of the table than the formula's own; "
                    f"predict runs each new row on its own"
                )
            for c in range(ref.c0, ref.c1 + 1):
                hits = [
                    s for s in by_col[(ref.sheet, c)] if s.r0 <= top + p.rows - 1 and s.r1 >= top
                ]
                if not hits:
                    p.reads[ref.sheet].add(c)
                    continue
                s = hits[0]
                if len(hits) > 1 or s.r0 != top or s.rows != p.rows:
                    raise ExcelnetError(
                        f"{where(book.path, ref.sheet, a1(top, c))}: the prediction reads this "
                        f"column, which is not one formula copied down the table's {p.rows} rows"
                    )
                if s not in p.blocks:
                    p.blocks.append(s)
                    todo.append(s)
        p.refs[id(b)] = found_refs
    if len(p.reads) != 1:
        sheets = ", ".join(sorted(p.reads)) or "none"
        raise ExcelnetError(
            f"{where(book.path, sheet.name)}: the prediction's per-row formulas read values on "
            f"{'these sheets: ' + sheets if p.reads else 'no sheet'}; predict puts the new rows "
            f"on one data sheet"
        )
    top = p.tops[p.data]
    p.computed = {  # formula columns that are not per-row: neither data nor part of the model
        c
        for b in graph.blocks
        if b.sheet == p.data and b not in p.blocks and b.r0 <= top + p.rows - 1 and b.r1 >= top
        for c in range(b.c0, b.c1 + 1)
    }
    if p.tops[p.data] < 1:
        raise ExcelnetError(
            f"{where(book.path, p.data)}: the data has no header row above it; predict matches "
            f"the new rows' columns by header"
        )
    headers = p.headers()
    for c in sorted(p.reads[p.data]):
        if c not in headers:
            raise ExcelnetError(
                f"{where(book.path, p.data, a1(p.tops[p.data] - 1, c))}: the model reads the "
                f"column below, which has no header; predict matches columns by header"
            )
    return p


def _per_row(p: Plan, b: Block, ref: Ref, params: list[Ref], at: str) -> bool:
    """Does this reference of a per-row block read the same row of the table (True), or a
    cell that keeps its value (False)?"""
    if b.kind == "array":  # a range over all the table's rows, unless it holds parameters
        touches = any(
            q.sheet == ref.sheet
            and q.r0 <= (ref.r1 or 0)
            and q.r1 >= ref.r0
            and q.c0 <= (ref.c1 or 0)
            and q.c1 >= ref.c0
            for q in params
        )
        return ref.r1 is not None and ref.r1 - ref.r0 + 1 == p.rows and not touches
    if ref.r1 is None or ref.c1 is None or not (ref.rel_r0 or ref.rel_r1):
        return False
    if not (ref.rel_r0 and ref.rel_r1) or ref.r0 != ref.r1:
        raise ExcelnetError(
            f"{at}: a reference over several rows that moves down the column; predict "
            f"runs each new row on its own"
        )
    return True


# -- the predictions sheet ---------------------------------------------------------------------


@dataclass
class Layout:
    """Where each per-row column goes on the predictions sheet (0-based columns)."""

    plan: Plan
    where: dict[tuple[str, int], int]  # (sheet, column) -> column on the predictions sheet
    header: list[str | None]
    rows: int  # new rows

    def cell(self, sheet: str, c: int, row: int = 1, absolute: bool = False) -> str:
        letters = get_column_letter(self.where[(sheet, c)] + 1)
        return f"${letters}${row + 1}" if absolute else f"{letters}{row + 1}"


def layout(p: Plan, rows: int) -> Layout:
    """Data columns first, then each sheet's per-row columns in the order they are computed."""
    order = [p.data] + [s for s in reversed(list(p.tops)) if s != p.data]
    where_, header, col = {}, [], 0
    heads = p.headers()
    for sheet in order:
        s = p.book.sheets[sheet]
        for c in p.columns(sheet):
            where_[(sheet, c)] = col
            if sheet == p.data and c in heads:
                header.append(heads[c])
            elif any(b.sheet == sheet and b.c0 <= c <= b.c1 for b in p.blocks):
                v = s.values.get((p.tops[sheet] - 1, c))
                header.append(
                    str(v) if isinstance(v, str) else f"{sheet}!{get_column_letter(c + 1)}"
                )
            else:
                header.append(None)
            col += 1
    return Layout(p, where_, header, rows)


def translate(p: Plan, lay: Layout, b: Block) -> str:
    """A per-row block's first formula as written on the predictions sheet (row 2)."""
    tokens = _tokens(p.texts[id(b)], where(p.book.path, b.sheet, b.cell()))
    refs = {i: (ref, per_row) for i, ref, per_row in p.refs[id(b)]}
    home = p.book.sheets[b.sheet]
    out = []
    for i, tok in enumerate(tokens):
        text = tok.value
        if i in refs:
            ref, per_row = refs[i]
            if per_row:
                absolute = b.kind == "array"
                last = lay.rows if absolute else 1
                first = lay.cell(ref.sheet, ref.c0, 1, absolute)
                end = lay.cell(ref.sheet, ref.c1, last, absolute)
                text = first if first == end else f"{first}:{end}"
            elif "!" not in text and (ref is not None or _scoped(home, text)):
                text = f"{_sheet_prefix(b.sheet)}!{text}"  # a cell, or a name of this sheet
        out.append(text)
    return "=" + "".join(out)


def _sheet_prefix(name: str) -> str:
    """A sheet's name as a formula writes it before "!": quoted unless plain."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) and not re.fullmatch(
        r"[A-Za-z]{1,3}[0-9]+|[RrCc][0-9]*|[Rr][0-9]*[Cc][0-9]*", name
    )
    return name if plain else "'" + name.replace("'", "''") + "'"


def _scoped(sheet: Sheet, name: str) -> bool:
    return name.lower() in {n.lower() for n in sheet.names}


@dataclass
class NewRows:
    """The new rows, as the data sheet's columns will hold them."""

    table: Csv
    values: dict[int, list[float | str | None]]  # data column -> one value per row


def new_rows(p: Plan, table: Csv) -> NewRows:
    """Match the CSV's columns to the data sheet's by header; check numbers where the data
    sheet's column holds numbers."""
    heads = p.headers()
    needed = sorted(heads[c] for c in p.reads[p.data])
    missing = [h for h in needed if h not in table.header]
    if missing:
        extra = [h for h in table.header if h not in heads.values()]
        also = f"; the CSV has {', '.join(extra)}, which the data sheet has not" if extra else ""
        raise ExcelnetError(
            f"{table.path}: line 1: missing column(s) {', '.join(missing)} that the model reads "
            f"(matched by the headers of sheet {p.data}){also}"
        )
    data = p.book.sheets[p.data]
    top = p.tops[p.data]
    values = {}
    formulas = {c for b in p.blocks if b.sheet == p.data for c in range(b.c0, b.c1 + 1)}
    for c, h in heads.items():
        if c in formulas:  # a per-row formula on the data sheet itself: it runs, not the CSV
            continue
        if h not in table.header:
            values[c] = [None] * len(table.rows)
            continue
        train = [data.values.get((r, c)) for r in range(top, top + p.rows)]
        numeric = any(isinstance(v, float) for v in train) and all(
            v is None or isinstance(v, float) for v in train
        )
        raw = table.column(h)
        values[c] = [
            None if v in MISSING_MARKS else number(table.path, line, h, v) if numeric else v
            for v, line in zip(raw, table.lines, strict=True)
        ]
    return NewRows(table, values)


def predictions_sheet(p: Plan, lay: Layout, rows: NewRows, name: str) -> Sheet:
    """The predictions sheet as the compiler reads a sheet: headers, data, per-row formulas."""
    s = Sheet(name)
    m = lay.rows
    for c, h in enumerate(lay.header):
        if h is not None:
            s.values[(0, c)] = h
    for c, column in rows.values.items():
        for r, v in enumerate(column, start=1):
            if v is not None:
                s.values[(r, lay.where[(p.data, c)])] = v
    for b in p.blocks:
        text = translate(p, lay, b)
        col = lay.where[(b.sheet, b.c0)]
        if b.kind == "array":
            right = lay.where[(b.sheet, b.c1)]
            s.arrays[(1, col)] = (text, (1, col, m, right))
        else:
            down = CopiedDown(text, 2)
            for r in range(m):
                s.formulas[(1 + r, col)] = down.at(r)
    s.max_row, s.max_col = m, len(lay.header) - 1
    return s


# -- evaluation and output ---------------------------------------------------------------------


@dataclass
class Predicted:
    sheet: Sheet  # the predictions sheet (formulas, data)
    cached: dict[tuple[int, int], object]  # every formula cell's value
    values: list[float]  # the prediction of each new row
    column: int  # the prediction's column on the predictions sheet


def evaluate(book: Book, solver: SolverModel, p: Plan, lay: Layout, sheet: Sheet) -> Predicted:
    book.sheets[sheet.name] = sheet
    try:
        col = lay.where[(p.sheet, p.prediction.c0)]
        objective = Ref(sheet.name, 1, col, 1, col)
        model = Model(
            book, SolverModel(sheet.name, objective, solver.adjustable, 2), Ctx(torch.device("cpu"))
        )
        model.compile()
        model.evaluate()
        live = model.values()
        cached = {}
        for r, c in [*sheet.formulas, *_array_cells(sheet)]:
            v = live.get((sheet.name, r, c))
            cached[(r, c)] = v if v is not None else model.constant_at(sheet.name, r, c)
    finally:
        del book.sheets[sheet.name]
    values = [cached[(1 + r, col)] for r in range(lay.rows)]
    return Predicted(sheet, cached, values, col)


def _array_cells(sheet: Sheet):
    for _, (r0, c0, r1, c1) in sheet.arrays.values():
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                yield r, c


def _check(pred: Predicted, lay: Layout, table: Csv) -> None:
    """A prediction that is not a number names its row and the first per-row column at fault."""
    for r, v in enumerate(pred.values):
        if isinstance(v, float):
            continue
        for c, header in enumerate(lay.header):
            got = pred.cached.get((1 + r, c))
            if isinstance(got, Error) or c == pred.column:
                raise ExcelnetError(
                    f"{table.path}: line {table.lines[r]}: the prediction is not a number: "
                    f"{header or get_column_letter(c + 1)} is {got if got is not None else 'empty'}"
                )


def _kaggle(book: Book, p: Plan, table: Csv, values: list[float]) -> pd.DataFrame:
    """Kaggle's submission: the id column and the target, as the training data writes it."""
    data = book.sheets[p.data]

    def named(name: str) -> tuple[str, int] | None:
        text = book.names.get(name)
        ref = parse_ref(text.lstrip("="), p.data) if text else None
        if ref is None or ref.sheet != p.data:
            return None
        header = data.values.get((ref.r0, ref.c0))
        return (header, ref.c0) if isinstance(header, str) else None

    target = named(TARGET_NAME)
    if target is None:
        need = (
            f"needs the workbook's target column: the name {TARGET_NAME} (excelnet build sets "
            f"it) naming its header on sheet {p.data}"
        )
        raise ExcelnetError(f"{book.path}: kaggle=True {need}", f"{book.path}: --kaggle {need}")
    ident = named(ID_NAME)
    id_header = ident[0] if ident else table.header[0]
    if id_header not in table.header:
        missing = f"{table.path}: line 1: no id column {id_header!r}"
        raise ExcelnetError(f"{missing} for kaggle=True", f"{missing} for --kaggle")
    top = p.tops[p.data]
    train = [data.values.get((r, target[1])) for r in range(top, top + p.rows)]
    train = [v for v in train if v is not None]
    if train and all(isinstance(v, float) for v in train) and set(train) <= {0.0, 1.0}:
        answer = [int(v > 0.5) for v in values]
    elif train and all(isinstance(v, str) for v in train) and len({v.lower() for v in train}) == 2:
        from excelnet.writer.recipe import two_values

        no, yes = two_values(train)
        answer = [yes if v > 0.5 else no for v in values]
    else:
        answer = values
    return pd.DataFrame({id_header: table.column(id_header), target[0]: answer})


def _unique(header: str, taken: list[str]) -> str:
    name, k = header, 2
    while name in taken:
        name, k = f"{header} ({k})", k + 1
    return name


def predict(
    book: str | Path,
    sheet: str,
    csv_path: str | Path,
    out: str | Path | None = None,
    workbook: str | Path | None = None,
    kaggle: bool = False,
    column: str = PREDICTION,
    progress: Silent | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Apply the model of `sheet` (its Solver model, read from the workbook's formulas) to the
    rows of a CSV with the data sheet's headers. Returns the rows (the CSV's columns as text)
    with a Prediction column — or with `kaggle`, Kaggle's submission: the id and the target
    (0/1 for a 0/1 target: prediction > 0.5). `out` writes that table as CSV; `workbook`
    writes a copy of the workbook with a `predictions` sheet of live formulas. `progress`
    shows each phase (excelnet.progress); `force` replaces read-only outputs."""
    book_path = Path(book)
    progress = progress or Silent()
    check_source(book_path)
    for target in (out, workbook):  # both checked before anything is written
        if target is not None:
            check_target(Path(target), force)
    if workbook is not None:
        workbook = Path(workbook)
        if workbook.resolve() == book_path.resolve():
            other = f"name a file other than {book_path.name}"
            raise ExcelnetError(
                f"{workbook}: workbook= writes a copy; {other}",
                f"{workbook}: --workbook writes a copy; {other}",
            )
        if workbook.suffix.lower() != book_path.suffix.lower():
            raise ExcelnetError(
                f"{workbook}: a copy of {book_path.name} must keep its extension "
                f"({book_path.suffix})"
            )
        refuse_if_open(workbook)
    table = read_csv(csv_path, what="data")
    with progress.phase(f"reading {book_path}"):
        wb = read_book(book_path, needed_by=sheet)
    (solver,) = wb.solver_models(sheet)
    p = plan(wb, solver, column)
    rows = new_rows(p, table)
    lay = layout(p, len(table.rows))
    name = SHEET
    if name in wb.sheets or any(s.lower() == name for s in wb.sheets):
        if workbook is not None:
            raise ExcelnetError(
                f"{where(book_path, name)}: the workbook already has a sheet named {name!r}; "
                f"rename it, or predict from the workbook without it"
            )
        name = "excelnet " + name
    with progress.phase(f"computing the predictions of {len(table.rows):,} rows"):
        pred = evaluate(wb, solver, p, lay, predictions_sheet(p, lay, rows, name))
    _check(pred, lay, table)
    if kaggle:
        result = _kaggle(wb, p, table, pred.values)
    else:
        result = pd.DataFrame({h: table.column(h) for h in table.header})
        result[_unique(lay.header[pred.column] or PREDICTION, table.header)] = pred.values
    if out is not None:
        with progress.phase(f"writing {out}"), atomic_path(out, force) as tmp:
            tmp.write_text(_csv_text(result), encoding="utf-8")
    if workbook is not None:
        with progress.phase(f"writing {workbook}"):
            _write_workbook(book_path, workbook, pred, lay, force)
    return result


def _csv_text(frame: pd.DataFrame) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(frame.columns)
    for row in frame.itertuples(index=False):
        w.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def _write_workbook(book: Path, out: Path, pred: Predicted, lay: Layout, force: bool) -> None:
    s = pred.sheet

    def fill(wb, ws) -> None:
        ws.freeze_panes(1, 0)
        ws.set_column(0, max(len(lay.header) - 1, 0), 12)
        header = wb.add_format(HEADER)
        for (r, c), v in sorted(s.values.items()):
            if isinstance(v, str):
                ws.write_string(r, c, v, header if r == 0 else None)
            else:
                ws.write_number(r, c, v)
        for (r, c), text in s.formulas.items():
            ws.write_formula(r, c, text, None, _cached(pred.cached[(r, c)]))
        for (r0, c0), (text, (_, _, r1, c1)) in s.arrays.items():
            ws.write_array_formula(r0, c0, r1, c1, text, None, _cached(pred.cached[(r0, c0)]))
            for r in range(r0, r1 + 1):
                for c in range(c0, c1 + 1):
                    if (r, c) != (r0, c0):
                        v = _cached(pred.cached[(r, c)])
                        (ws.write_string if isinstance(v, str) else ws.write_number)(r, c, v)

    changes = Changes()
    changes.place(book, SHEET, render_sheet(SHEET, fill))
    write_values(book, {}, out, extra=changes.extra, replace=changes.replace, force=force)


def _cached(v: object) -> float | str:
    if v is None:
        return 0.0
    if isinstance(v, (Error, bool)):
        return str(v).upper() if isinstance(v, bool) else v.code
    return v
