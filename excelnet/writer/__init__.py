"""Writing new workbooks with XlsxWriter: the pieces every excelnet workbook shares."""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from pathlib import Path

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from excelnet.errors import ExcelnetError
from excelnet.xlsx.sheets import pages_wide, widths
from excelnet.xlsx.text import Worksheet as EscapingWorksheet

# A fixed timestamp: the same input and seed give a byte-identical file.
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


# Any function XlsxWriter would prefix with _xlfn. (dynamic-array and post-2010 functions).
_PREFIXED = re.compile(
    r"\b(?:ANCHORARRAY|BYCOL|BYROW|CHOOSE(?:COLS|ROWS)|DROP|EXPAND|FILTER|"
    r"[HV]STACK|LAMBDA|MAKEARRAY|MAP|RANDARRAY|REDUCE|SCAN|SINGLE|SEQUENCE|"
    r"SORT|SORTBY|SWITCH|TAKE|TEXTSPLIT|TO(?:COL|ROW)|UNIQUE|WRAP(?:COLS|ROWS)|"
    r"XLOOKUP|[A-Z]+\.[A-Z.0-9]+|[A-Z]{2,}S?)\("
)


_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})  # as XlsxWriter escapes
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")


def _function_names(formula: str) -> set[str]:
    """The names of the functions a formula calls that XlsxWriter might rewrite."""
    return {m.group(0)[:-1] for m in _PREFIXED.finditer(formula)}


class FastWorksheet(EscapingWorksheet):
    """XlsxWriter's worksheet with two shortcuts that write the same bytes, faster:
    formulas that name no function XlsxWriter rewrites (excelnet's never do) skip its ~30
    regex substitutions, and `write_column` stores a whole column as XML fragments instead
    of a Python object per cell (a 100,000-row workbook has millions of cells)."""

    _plain = frozenset(
        {
            "SUM",
            "SUMPRODUCT",
            "SUMIF",
            "COUNTIF",
            "MAX",
            "MIN",
            "IF",
            "AND",
            "ISBLANK",
            "MODE",
            "LOG10",
            "MMULT",
            "AVERAGE",
            "SQRT",
            "EXP",
            "ABS",
        }
    )

    def __init__(self) -> None:
        super().__init__()
        # whole columns: (first row, column, each cell's XML after its r and s attributes
        # or None for an empty cell, format)
        self._columns: list[tuple[int, int, list[str | None], object]] = []

    def _prepare_formula(self, formula, expand_future_functions=False):
        if _function_names(formula) <= self._plain:
            return formula.removeprefix("{").removeprefix("=").removesuffix("}")
        return super()._prepare_formula(formula, expand_future_functions)

    # -- whole columns ----------------------------------------------------------------------
    def write_column(self, row: int, col: int, cells: list, cell_format=None) -> None:
        """Write numbers and text down from (row, col), as write_number / write_string would;
        None leaves a cell empty, and a str is always text, never a formula. Replaces what
        was written there before; nothing may be written there after it."""
        index = self.str_table._get_shared_string_index
        tails = [
            None
            if v is None
            else f' t="s"><v>{index(v)}</v></c>'
            if isinstance(v, str)
            else f"><v>{v:.16G}</v></c>"
            for v in cells
        ]
        self._add_column(row, col, tails, cell_format)

    def write_formulas(
        self, row: int, col: int, formulas: list[str], values: list[float], cell_format=None
    ) -> None:
        """Write formulas and their cached numbers down from (row, col), as write_formula
        would (same rules as write_column)."""
        texts = self._plain_texts(formulas)
        if texts is None:  # a function XlsxWriter rewrites: leave each formula to it
            for r, (f, v) in enumerate(zip(formulas, values, strict=True), start=row):
                self.write_formula(r, col, f, cell_format, v)
            return
        tails = [f"><f>{t}</f><v>{v}</v></c>" for t, v in zip(texts, values, strict=True)]
        self._add_column(row, col, tails, cell_format)

    def _plain_texts(self, formulas: list[str]) -> list[str] | None:
        """The formulas as XlsxWriter stores them (without "=", XML-escaped), or None if it
        would rewrite any. A column of copies has a handful of shapes (digits zeroed: they
        may be row numbers), and whether XlsxWriter rewrites depends on function names."""
        joined = "\0".join(formulas)  # NUL cannot occur in a formula (XML forbids it)
        shapes = set(joined.translate(_DIGITS_TO_ZERO).split("\0"))
        plain = frozenset(n.translate(_DIGITS_TO_ZERO) for n in self._plain)  # LOG10 → LOG00
        for shape in shapes:
            if not shape.startswith("=") or not _function_names(shape) <= plain:
                return None
        texts = ("\0" + joined).replace("\0=", "\0")[1:].split("\0")
        return [t.translate(_ESCAPE) if "&" in t or "<" in t or ">" in t else t for t in texts]

    def _add_column(self, row: int, col: int, tails: list[str | None], cell_format) -> None:
        for r in range(row, row + len(tails)):  # a later write replaces an earlier one
            if r in self.table:
                self.table[r].pop(col, None)
        present = [i for i, t in enumerate(tails) if t is not None]
        if present:
            self._check_dimensions(row + present[0], col)
            self._check_dimensions(row + present[-1], col)
        self._columns.append((row, col, tails, cell_format))

    def _column_xml(self, row: int, col: int, tails: list[str | None], fmt) -> list[str | None]:
        """Each cell's <c> element, as XlsxWriter's _write_cell writes it."""
        if fmt is None and col in self.col_info:
            fmt = self.col_info[col].column_format  # XlsxWriter falls back on the column's
        style = f' s="{fmt._get_xf_index()}"' if fmt is not None else ""
        letters = xl_col_to_name(col)
        return [
            None if t is None else f'<c r="{letters}{r}"{style}{t}'
            for r, t in enumerate(tails, start=row + 1)
        ]

    def _calculate_spans(self) -> None:
        super()._calculate_spans()
        if not self._columns:
            return
        spans = {k: tuple(int(x) - 1 for x in v.split(":")) for k, v in self.row_spans.items()}
        for row, col, tails, _ in self._columns:
            for block in {(row + i) // 16 for i, t in enumerate(tails) if t is not None}:
                lo, hi = spans.get(block, (col, col))
                spans[block] = (min(lo, col), max(hi, col))
        self.row_spans = {k: f"{lo + 1}:{hi + 1}" for k, (lo, hi) in spans.items()}

    def _write_rows(self) -> None:
        if not self._columns:
            return super()._write_rows()
        self._calculate_spans()
        # every column over the same rows, so that zip() lines up each row's cells
        top = min(row for row, *_ in self._columns)
        bottom = max(row + len(tails) for row, _, tails, _ in self._columns)
        self._number_formats()
        columns = sorted(self._columns, key=lambda c: c[1])
        padded = []
        for row, col, tails, fmt in columns:
            xml = self._column_xml(row, col, tails, fmt)
            padded.append([None] * (row - top) + xml + [None] * (bottom - row - len(xml)))
        bulk = ["".join(filter(None, cells)) for cells in zip(*padded, strict=True)]
        plain = self.default_row_height == self.original_row_height and self.excel_version != 2010
        for row_num in range(self.dim_rowmin, self.dim_rowmax + 1):
            mine = bulk[row_num - top] if top <= row_num < bottom else ""
            table = self.table.get(row_num)
            if not mine:
                if table or row_num in self.row_info or row_num in self.comments:
                    self._write_one_row(row_num)
                continue
            span = self.row_spans.get(row_num // 16)
            if row_num in self.row_info or not plain:
                self._write_row(row_num, span, self.row_info.get(row_num))
            else:
                self.fh.write(f'<row r="{row_num + 1}" spans="{span}">')
            if table:  # cells of both kinds in this row: merge them in column order
                here = [(c[1], xml[row_num - top]) for c, xml in zip(columns, padded, strict=True)]
                self._write_merged(row_num, table, {c: x for c, x in here if x is not None})
            else:
                self.fh.write(mine)
            self.fh.write("</row>")

    def _number_formats(self) -> None:
        """Give formats their indices in the order XlsxWriter would (the first cell of each
        in row-major order: it numbers a format when it first writes it)."""
        first = []
        for row, col, tails, fmt in self._columns:
            if fmt is None and col in self.col_info:
                fmt = self.col_info[col].column_format
            at = next((i for i, t in enumerate(tails) if t is not None), None)
            if fmt is not None and at is not None:
                first.append((row + at, col, fmt))
        for row, cells in self.table.items():
            for col, cell in cells.items():
                fmt = cell.format
                if fmt is None and row in self.row_info:
                    fmt = self.row_info[row].row_format
                if fmt is None and col in self.col_info:
                    fmt = self.col_info[col].column_format
                if fmt is not None:
                    first.append((row, col, fmt))
        for _, _, fmt in sorted(first, key=lambda f: f[:2]):
            fmt._get_xf_index()

    def _write_merged(self, row_num: int, table: dict, mine: dict[int, str]) -> None:
        for col in sorted(set(mine) | set(table)):
            if col in table:
                if col in mine:
                    raise ValueError(f"cell ({row_num}, {col}) written twice")
                self._write_cell(row_num, col, table[col])
            else:
                self.fh.write(mine[col])

    def _write_one_row(self, row_num: int) -> None:
        """A row XlsxWriter holds alone, written as its _write_rows writes it."""
        span, info = self.row_spans.get(row_num // 16), self.row_info.get(row_num)
        cells = self.table.get(row_num)
        if not cells:
            self._write_empty_row(row_num, span, info)
            return
        self._write_row(row_num, span, info)
        for col_num in range(self.dim_colmin, self.dim_colmax + 1):
            if col_num in cells:
                self._write_cell(row_num, col_num, cells[col_num])
        self._xml_end_tag("row")


def check_seed(seed: int) -> None:
    """numpy's generators take whole numbers from 0 on."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ExcelnetError(f"the seed must be a whole number, 0 or more, not {seed!r}")


def new_workbook(path: Path) -> tuple[Workbook, dict]:
    """A deterministic XlsxWriter workbook that never turns text into formulas, and its formats."""
    wb = xlsxwriter.Workbook(
        str(path),
        {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False},
    )
    wb.worksheet_class = FastWorksheet
    wb.set_properties({"created": CREATED, "title": "excelnet workbook", "author": "excelnet"})
    wb.set_calc_mode("auto")
    base = {"font_name": "Calibri", "font_size": 11}
    formats = {
        # headers wrap (a long one in a narrow column), their rows made tall enough by
        # print_setup
        "header": wb.add_format(
            {**base, "bold": True, "bg_color": "#D9E1F2", "bottom": 1, "text_wrap": True}
        ),
        "param": wb.add_format(
            {
                **base,
                "bold": True,
                "font_color": "#1F4E79",
                "bg_color": "#FFF2CC",
                "border": 1,
                "border_color": "#BF9000",
                "num_format": "0.0000",
            }
        ),
        "number": wb.add_format({**base, "num_format": "0.0000"}),
        "feature": wb.add_format({**base, "num_format": "0.000"}),
        "integer": wb.add_format({**base, "num_format": "0"}),
        "percent": wb.add_format({**base, "num_format": "0.0%"}),
        "metric": wb.add_format(
            {**base, "bold": True, "num_format": "0.0000", "bg_color": "#E2EFDA", "border": 1}
        ),
        "metric_pct": wb.add_format(
            {**base, "bold": True, "num_format": "0.0%", "bg_color": "#E2EFDA", "border": 1}
        ),
        "text": wb.add_format(base),
        "wrap": wb.add_format({**base, "text_wrap": True, "valign": "top"}),
        "title": wb.add_format({**base, "bold": True, "font_size": 14}),
        "note": wb.add_format({**base, "italic": True, "font_color": "#7F7F7F"}),
    }
    return wb, formats


def define_solver_model(wb: Workbook, sheet: str, objective: str, params: str) -> None:
    """Store a Solver model the way Excel does, as names scoped to `sheet`, so Excel's Solver
    opens pre-filled there and `excelnet fit` finds it: minimise `objective` by changing
    `params` (absolute refs on `sheet`), unconstrained."""
    names = {
        "solver_opt": f"={sheet}!{objective}",
        "solver_adj": f"={sheet}!{params}",
        "solver_typ": "=2",  # 1 maximise, 2 minimise, 3 value of
        "solver_neg": "=2",  # 2: do NOT force unconstrained variables to be non-negative
        "solver_eng": "=1",  # GRG Nonlinear
        "solver_lin": "=2",  # not a linear model
        "solver_num": "=0",  # no constraints
        "solver_val": "=0",
        "solver_ver": "=3",
    }
    for name, value in names.items():
        wb.define_name(f"{sheet}!{name}", value)


def define_metrics(wb: Workbook, sheet: str, valid_loss: str, accuracy: str | None) -> None:
    """Name the cells `excelnet fit` reports and charts besides the objective (absolute refs
    on `sheet`): the validation loss and, for a 0/1 target, the validation accuracy."""
    wb.define_name(f"{sheet}!excelnet_valid_loss", f"={sheet}!{valid_loss}")
    if accuracy is not None:
        wb.define_name(f"{sheet}!excelnet_accuracy", f"={sheet}!{accuracy}")


def print_setup(
    ws: Worksheet,
    header_row: int | None = None,
    area: tuple[int, int, int, int] | None = None,
    landscape: bool = True,
) -> None:
    """Print (and PDF) a sheet as wide as its columns need — one page wide, or for a wide
    sheet one page per section of SECTION_WIDTH characters, its first column repeated — and
    as many pages tall as it needs, with its header row repeated on every page and tall
    enough for its wrapped headers; `area` (first row, col, last row, col) limits what
    prints. Call it once the sheet's columns have their widths."""
    if landscape:
        ws.set_landscape()
    pages_wide(ws, area[3] if area is not None else None)
    if header_row is not None:
        ws.repeat_rows(header_row)
        _tall_enough(ws, header_row)
    if area is not None:
        ws.print_area(*area)


def _tall_enough(ws: Worksheet, row: int) -> None:
    """The header row as tall as its most wrapped header needs (LibreOffice does not grow a
    row the file gives no height)."""
    texts = getattr(ws, "headers", {}).get(row, {})
    if not texts or row in ws.row_info:
        return
    lines = max(
        math.ceil(len(text) / max(int(width * 0.95), 1))
        for c, text in texts.items()
        for width in widths(ws, c, c)
    )
    if lines > 1:
        ws.set_row(row, 15 * lines + 2)


def write_wrapped(ws: Worksheet, row: int, text: str, fmt, width: float) -> None:
    """Text in column A, wrapped, in a row tall enough for its lines: LibreOffice does not
    grow a row that the file gives no height, and wrapped lines would overlap the next."""
    per_line = max(int(width * 0.95), 1)  # Calibri 11: about one character per unit of width
    lines = max(1, math.ceil(len(text) / per_line))
    ws.set_row(row, 15 * lines + 2)
    ws.write_string(row, 0, text, fmt)


def write_header(ws: Worksheet, row: int, col: int, headers: list[str], fmt) -> None:
    """Headers along a row (print_setup makes the row tall enough for the wrapped ones)."""
    if not hasattr(ws, "headers"):
        ws.headers = {}
    for i, h in enumerate(headers):
        ws.write_string(row, col + i, h, fmt)
        ws.headers.setdefault(row, {})[col + i] = h
