"""`excelnet calc` and `excelnet check`: recalculate every formula cell of any workbook.

calc stores the results as the formula cells' cached values (the zip patch `fit` uses, so
everything else stays byte-identical): pandas, openpyxl's data_only=True and file previewers
then see numbers in files written without them. check compares the results with the values the
file stores, as the application that saved it computed them, except in cells that depend on a
volatile function (RAND, NOW: a new value at every recalculation), which it lists apart.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from excelnet.errors import ExcelnetWarning
from excelnet.formula.calculation import Calculation, Failure, block_cells, cell_name, formula_count
from excelnet.formula.parse import Error
from excelnet.progress import Silent
from excelnet.xlsx.files import check_source, check_target, lock, refuse_if_open
from excelnet.xlsx.read import read_book
from excelnet.xlsx.writeback import write_values

RTOL = 1e-9  # numbers agree to this relative difference (or both within ATOL of zero)
ATOL = 1e-15


def same(stored: object, computed: object) -> bool:
    """Whether a computed value equals the stored one: numbers within RTOL, text, booleans and
    error values exactly; empty text equals nothing stored (Excel stores ="" without a value)."""
    if stored is None and computed == "":
        return True
    if isinstance(stored, bool) or isinstance(computed, bool):
        return type(stored) is type(computed) and stored == computed
    if isinstance(stored, float) and isinstance(computed, float):
        if math.isnan(computed):
            return False
        return abs(stored - computed) <= max(RTOL * max(abs(stored), abs(computed)), ATOL)
    return stored == computed


@dataclass
class Difference:
    cell: str
    formula: str
    stored: object
    computed: object

    def summary(self) -> dict:
        return {
            "cell": self.cell,
            "formula": self.formula,
            "stored": _plain(self.stored),
            "computed": _plain(self.computed),
        }


@dataclass
class Volatile:
    """Cells that depend on a volatile function: computed, not compared."""

    cells: str  # "Sheet!A2:A9"
    formula: str
    count: int

    def summary(self) -> dict:
        return {"cells": self.cells, "formula": self.formula, "count": self.count}


@dataclass
class SheetReport:
    sheet: str
    formula_cells: int = 0
    computed: int = 0
    equal: int = 0
    different: list[Difference] = field(default_factory=list)
    not_computed: list[Failure] = field(default_factory=list)
    unknown: Counter = field(default_factory=Counter)
    volatile: list[Volatile] = field(default_factory=list)  # not compared

    def summary(self) -> dict:
        return {
            "sheet": self.sheet,
            "formula_cells": self.formula_cells,
            "computed": self.computed,
            "equal": self.equal,
            "different": [d.summary() for d in self.different],
            "not_computed": [
                {"cells": f.where, "formula": f.formula, "reason": f.reason}
                for f in self.not_computed
            ],
            "unknown_functions": dict(self.unknown.most_common()),
            "volatile": [v.summary() for v in self.volatile],
        }


def _reports(path: Path, progress: Silent) -> tuple[Calculation, list[SheetReport]]:
    with progress.phase(f"reading {path}"):
        book = read_book(path, cached=True)
    with progress.phase(f"computing the formulas of {path.name}"):
        calc = Calculation(book)
    reports = {name: SheetReport(name, count) for name, count in formula_count(book).items()}
    for f in calc.failures:
        reports[f.sheet].not_computed.append(f)
        reports[f.sheet].unknown.update({name: f.cells for name in f.unknown})
    for note in calc.notes:
        warnings.warn(f"{path}: {note}", ExcelnetWarning, stacklevel=3)
    for b, v in calc.computed:
        report = reports[b.sheet]
        report.computed += b.size
        if b in calc.volatile:  # a new value at every recalculation: nothing to compare with
            span = b.cell() if b.size == 1 else f"{b.cell()}:{b.cell(b.size - 1)}"
            text = _formula(book, b, b.r0, b.c0)
            report.volatile.append(Volatile(f"{b.sheet}!{span}", text, b.size))
            continue
        stored = book.sheets[b.sheet].cached
        want = [stored.get((r, c)) for r in range(b.r0, b.r1 + 1) for c in range(b.c0, b.c1 + 1)]
        if v.numeric() and all(type(w) is float for w in want):  # one comparison for all
            got = v.x.detach().cpu().reshape(-1).numpy()
            w = np.array(want)
            ok = np.abs(w - got) <= np.maximum(RTOL * np.maximum(np.abs(w), np.abs(got)), ATOL)
            report.equal += int(ok.sum())
            bad = np.flatnonzero(~ok)
        else:
            got = [calc.values[cell] for cell in block_cells(b)]
            bad = [i for i, (w, g) in enumerate(zip(want, got, strict=True)) if not same(w, g)]
            report.equal += b.size - len(bad)
        for i in bad:
            cell = (b.sheet, b.r0 + i // b.cols, b.c0 + i % b.cols)
            text = _formula(book, b, *cell[1:])
            report.different.append(Difference(cell_name(cell), text, want[i], calc.values[cell]))
    return calc, list(reports.values())


def exit_code(reports: list[SheetReport]) -> int:
    """check's exit code: 0 when every formula cell was computed and each one that does not
    change at every recalculation equals the value the file stores; else 1."""
    return 1 if any(r.different or r.not_computed for r in reports) else 0


def _formula(book, b, r: int, c: int) -> str:
    """The formula of a cell of block b as the sheet shows it ({…}: an array formula)."""
    if b.kind == "column":
        return book.sheets[b.sheet].formulas.get((r, c), "") or ""
    return "{" + (b.formula or "") + "}"


def check(path: str | Path, progress: Silent | None = None) -> list[SheetReport]:
    """Recompute every formula cell and compare with the values stored in the file."""
    path = Path(path)
    check_source(path)
    _, reports = _reports(path, progress or Silent())
    return reports


def calc(
    path: str | Path,
    out: str | Path | None = None,
    progress: Silent | None = None,
    force: bool = False,
) -> list[SheetReport]:
    """Recompute every formula cell and store the results as the cells' cached values, in
    `out` (default: the workbook). Cells excelnet cannot compute keep what they had.
    `progress` shows each phase (excelnet.progress); `force` replaces a read-only `out`.
    excelnet's lock keeps other excelnet processes off the workbook while it works."""
    path = Path(path)
    out = Path(out) if out is not None else path
    progress = progress or Silent()
    check_source(path)
    check_target(out, force)
    refuse_if_open(path, out)
    with lock(progress, path, out):
        result, reports = _reports(path, progress)
        updates: dict[str, dict] = {}
        for (sheet, r, c), value in result.values.items():
            updates.setdefault(sheet, {})[(r, c)] = value
        with progress.phase(f"writing {out}"):
            write_values(path, updates, out, force=force)
    return reports


def _plain(v: object) -> object:
    return v.code if isinstance(v, Error) else v
