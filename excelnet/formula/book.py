"""The engine's workbook: cells, formulas, literal values, names and Solver models by sheet,
as a source (the file: excelnet.xlsx.read; a live workbook: excelnet.live.source) fills it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from excelnet.errors import ExcelnetError, where
from excelnet.formula.parse import (
    FormulaError,
    Ref,
    parse,
    split_union,
)

Cell = tuple[int, int]  # 0-based (row, col)
MAX_ADJUSTABLE = 1_000_000  # parameters a Solver model may have (each one a cell)


@dataclass
class TableColumn:
    """One column of an Excel Table: its header text and, for a calculated column, the formula
    Excel fills it with (without "=")."""

    name: str
    formula: str | None = None
    totals_formula: str | None = None  # the totals row's formula, if a custom one
    totals_function: str | None = None  # sum, average, … (SUBTOTAL), custom, none


@dataclass
class Table:
    """An Excel Table (Insert → Table; a "list object"): a range with a header row, data rows
    and maybe a totals row, whose name and column names formulas use (structured references,
    Table1[Age], Table1[[#This Row],[Age]]). Tables are named workbook-wide."""

    name: str  # displayName: the name formulas use
    r0: int  # the whole table (ref), 0-based, inclusive: header and totals rows too
    c0: int
    r1: int
    c1: int
    columns: list[TableColumn] = field(default_factory=list)
    header_rows: int = 1  # headerRowCount: 0 or 1
    totals_rows: int = 0  # totalsRowCount: 0 or 1
    part: str | None = None  # where a file keeps it (xl/tables/table1.xml)

    @property
    def data(self) -> tuple[int, int]:
        """The first and last data row (0-based)."""
        return self.r0 + self.header_rows, self.r1 - self.totals_rows

    def column(self, name: str) -> int | None:
        """The sheet column (0-based) of a column name, compared as Excel does (any case)."""
        key = name.casefold()
        for i, col in enumerate(self.columns):
            if col.name.casefold() == key:
                return self.c0 + i
        return None


@dataclass
class DataTable:
    """A What-If data table (Data → What-If Analysis → Data Table; {=TABLE(r1,r2)}): the cells
    `ref` hold the formula cells' values with the input cell(s) set to the values beside them.
    One variable: r1 is the input cell, its values down the column left of ref (dtr False) or
    along the row above it (dtr True), the formulas in the row above (or the column left).
    Two variables (dt2D): r1 the row input cell (values along the row above), r2 the column
    input cell (values down the column left), the formula in the corner between them."""

    r0: int
    c0: int
    r1: int
    c1: int
    two: bool  # dt2D
    row: bool  # dtr: a one-variable table whose input values run along a row
    input1: str | None  # r1, as stored (A1), None if deleted (del1)
    input2: str | None = None


@dataclass
class Sheet:
    name: str
    formulas: dict[Cell, str] = field(default_factory=dict)
    arrays: dict[Cell, tuple[str, tuple[int, int, int, int]]] = field(default_factory=dict)
    values: dict[Cell, object] = field(default_factory=dict)  # literal cells
    names: dict[str, str] = field(default_factory=dict)  # sheet-scoped defined names
    cached: dict[Cell, object] = field(default_factory=dict)  # formula cells' stored values
    rich: dict[Cell, int] = field(default_factory=dict)  # error cells with value metadata
    max_row: int = 0  # 0-based, inclusive
    max_col: int = 0
    tables: list[Table] = field(default_factory=list)  # Excel Tables on the sheet
    spills: set[Cell] = field(default_factory=set)  # anchors of Excel 365 dynamic arrays
    data_tables: dict[Cell, DataTable] = field(default_factory=dict)  # What-If tables by anchor


RELATIONS = {1: "<=", 2: "=", 3: ">=", 4: "int", 5: "bin", 6: "dif"}  # solver_relN codes


@dataclass
class Constraint:
    """One row of Solver's constraint list: solver_lhsN, solver_relN, solver_rhsN."""

    index: int  # the N in the names
    lhs: Ref
    rel: int  # a key of RELATIONS
    rhs: str  # as stored: a number, a reference, a formula, or "integer"/"binary"/"AllDifferent"

    @property
    def relation(self) -> str:
        return RELATIONS[self.rel]


@dataclass
class SolverModel:
    sheet: str
    objective: Ref
    adjustable: list[Ref]
    goal: int  # 1 maximise, 2 minimise, 3 value of
    value: str | None = None  # solver_val: the target of "value of", as stored
    nonnegative: bool = False  # solver_neg = 1: unbounded-below variables stay >= 0
    constraints: list[Constraint] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)  # every other solver_* name, as stored


@dataclass
class Book:
    path: Path
    sheets: dict[str, Sheet]
    names: dict[str, str]  # workbook-level defined names
    cached: bool = False  # were the formula cells' stored values read?
    # the source's way to read them later (a file is read again with them); None: none stored
    reread: Callable[[], Book] | None = field(default=None, repr=False, compare=False)
    # other workbooks' cells as Excel last copied them into this file (external links), by the
    # sheet name formulas use: "[1]WACC" → {cell: value}
    externals: dict[str, dict[Cell, object]] = field(default_factory=dict)

    def table(self, name: str) -> tuple[str, Table] | None:
        """The sheet and Table of a table's name (any case), or None."""
        key = name.casefold()
        for sheet in self.sheets.values():
            for t in sheet.tables:
                if t.name.casefold() == key:
                    return sheet.name, t
        return None

    def external(self, sheet: str) -> dict[Cell, object] | None:
        """The cached cells of an external sheet ("[1]WACC", any case), or None."""
        key = sheet.casefold()
        for name, cells in self.externals.items():
            if name.casefold() == key:
                return cells
        return None

    def stored(self, sheet: str) -> dict[Cell, object]:
        """The values the file stores for a sheet's formula cells (read on first use)."""
        if not self.cached and self.reread is not None:
            again = self.reread()
            for name, s in self.sheets.items():
                if name in again.sheets:
                    s.cached = again.sheets[name].cached
            self.cached = True
        return self.sheets[sheet].cached or {}

    def solver_models(self, only: str | None = None) -> list[SolverModel]:
        """The Solver model of every sheet that has one (or of `only`), checked."""
        if only is not None and only not in self.sheets:
            raise ExcelnetError(f"{where(self.path)}: no sheet named {only!r}")
        found = []
        for sheet in self.sheets.values():
            if only is not None and sheet.name != only:
                continue
            names = sheet.names
            if not any(k in names for k in ("solver_opt", "solver_adj", "solver_typ")):
                if only is not None:
                    raise ExcelnetError(
                        f"{where(self.path, sheet.name)}: no Solver model (the sheet-scoped "
                        f"names solver_opt, solver_adj and solver_typ)"
                    )
                continue
            found.append(self._solver_model(sheet))
        if not found:
            raise ExcelnetError(
                f"{where(self.path)}: no sheet carries a Solver model "
                f"(sheet-scoped names solver_opt, solver_adj, solver_typ)"
            )
        return found

    def _solver_model(self, sheet: Sheet) -> SolverModel:
        at = where(self.path, sheet.name)
        names = {
            k: v.lstrip("=").strip() for k, v in sheet.names.items() if k.startswith("solver_")
        }
        for key in ("solver_opt", "solver_adj", "solver_typ"):
            if key not in names:
                raise ExcelnetError(f"{at}: Solver model is missing the name {key}")
        goal = _code(names, "solver_typ", (1, 2, 3), at)
        if goal == 3 and "solver_val" not in names:
            raise ExcelnetError(f"{at}: solver_typ is 3 (Value Of) but solver_val is missing")
        nonnegative = _code(names, "solver_neg", (1, 2), at, default=2) == 1
        objective = _ref_or_fail(names["solver_opt"], sheet.name, f"{at}: solver_opt")
        if (objective.r0, objective.c0) != (objective.r1, objective.c1):
            raise ExcelnetError(f"{at}: solver_opt must name one cell, not a range")
        adjustable = [
            _ref_or_fail(part, sheet.name, f"{at}: solver_adj")
            for part in split_union(names["solver_adj"].strip("()"))
            if part
        ]
        cells = sum((r.r1 - r.r0 + 1) * (r.c1 - r.c0 + 1) for r in adjustable)
        if cells > MAX_ADJUSTABLE:
            raise ExcelnetError(
                f"{at}: solver_adj ({names['solver_adj'][:60]}) names {cells:,} cells; "
                f"excelnet fits at most {MAX_ADJUSTABLE:,} adjustable cells (Excel's Solver: 200)"
            )
        constraints = self._constraints(sheet.name, names, at)
        parts = re.compile(r"solver_(lhs|rel|rhs)\d+$")
        structural = {"solver_opt", "solver_adj", "solver_typ", "solver_num"}
        options = {k: v for k, v in names.items() if k not in structural and not parts.match(k)}
        value = names.get("solver_val") if goal == 3 else None
        return SolverModel(
            sheet.name, objective, adjustable, goal, value, nonnegative, constraints, options
        )

    def _constraints(self, sheet: str, names: dict[str, str], at: str) -> list[Constraint]:
        """solver_num constraints, each three names; one that is missing, or extra, is bad."""
        count = _code(names, "solver_num", None, at, default=0)
        present = {int(m[1]) for k in names if (m := re.match(r"solver_(?:lhs|rel|rhs)(\d+)$", k))}
        extra = sorted(n for n in present if not 1 <= n <= count)
        if extra:
            name = next(
                f"solver_{p}{extra[0]}"
                for p in ("lhs", "rel", "rhs")
                if f"solver_{p}{extra[0]}" in names
            )
            raise ExcelnetError(
                f"{at}: solver_num is {count} but the sheet names {name}; the constraint "
                f"names must be numbered 1 to solver_num"
            )
        out = []
        for n in range(1, count + 1):
            for p in ("lhs", "rel", "rhs"):
                if f"solver_{p}{n}" not in names:
                    raise ExcelnetError(f"{at}: solver_num is {count} but solver_{p}{n} is missing")
            rel = _code(names, f"solver_rel{n}", tuple(RELATIONS), at)
            lhs = _ref_or_fail(names[f"solver_lhs{n}"], sheet, f"{at}: solver_lhs{n}")
            if lhs.sheet not in self.sheets:
                raise ExcelnetError(f"{at}: solver_lhs{n} refers to a missing sheet {lhs.sheet!r}")
            out.append(Constraint(n, lhs, rel, names[f"solver_rhs{n}"]))
        return out


def _code(
    names: dict[str, str], key: str, allowed: tuple[int, ...] | None, at: str, default=None
) -> int:
    """A Solver name that holds a whole-number code (solver_typ, solver_relN, ...)."""
    if key not in names and default is not None:
        return default
    text = names[key]
    try:
        code = float(text)
        ok = code == int(code) and (int(code) in allowed if allowed else code >= 0)
    except ValueError:
        ok = False
    if not ok:
        what = ", ".join(map(str, allowed)) if allowed else "a count (0 or more)"
        if key.startswith("solver_rel"):
            what = "a relation code 1-6 (1 <=, 2 =, 3 >=, 4 int, 5 bin, 6 dif)"
        raise ExcelnetError(f"{at}: {key} is {text!r}, not {what}")
    return int(code)


def _ref_or_fail(text: str, sheet: str, what: str) -> Ref:
    try:
        node = parse(text, sheet)
    except FormulaError:
        node = None
    if not isinstance(node, Ref) or node.r1 is None or node.c1 is None:
        raise ExcelnetError(f"{what} is {text!r}, not a cell or range reference")
    return node
