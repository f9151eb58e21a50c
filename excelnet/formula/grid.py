"""A sheet's values as the compiler reads them: numbers, kinds and texts, cell by cell.

Most sheets are dense (a table from A1): they are held as three arrays over the cells in use,
and a reference reads them with one fancy index. A sheet with a few cells far apart (one at
XFD1048576) would need a dense box of billions of cells, so a sparse sheet is held as a
dictionary per column instead: the cost follows the cells that exist, not the bounding box.
Cells outside what is held read as blank either way.
"""

from __future__ import annotations

import numpy as np

from excelnet.formula.parse import Error, FormulaError
from excelnet.formula.values import BLANK, BOOL, ERR, NUM, TEXT

DENSE_CELLS = 1 << 22  # a box this small is dense whatever it holds
DENSITY = 8  # else dense when it holds at least one cell in DENSITY
WINDOW_CELLS = 1 << 26  # a reference larger than this (64M cells) is refused


def python_to_cell(v: object) -> tuple[float, int, object]:
    """A literal (float, bool, str, Error, None) as (number, kind, text)."""
    if v is None:
        return 0.0, BLANK, None
    if isinstance(v, bool):
        return float(v), BOOL, None
    if isinstance(v, float):
        return v, NUM, None
    if isinstance(v, Error):
        return 0.0, ERR, v.code
    return 0.0, TEXT, str(v)


_KIND = {float: NUM, str: TEXT}  # the exact types read in bulk; others by python_to_cell


class Grid:
    """One sheet's constant values: its literals, and the values of formula blocks evaluated as
    data (stored with `put`)."""

    def __init__(self, values: dict[tuple[int, int], object], rows: int, cols: int):
        self.rows, self.cols = rows, cols  # the box in use (0-based, exclusive)
        self.dense = rows * cols <= max(DENSE_CELLS, DENSITY * len(values))
        if self.dense:
            self.num = np.zeros((rows, cols))
            self.kind = np.full((rows, cols), BLANK, np.int8)
            self.text = np.full((rows, cols), None, dtype=object)
            self._fill(values)
        else:
            self.columns: dict[int, dict[int, tuple[float, int, object]]] = {}
            for (r, c), v in values.items():
                self.columns.setdefault(c, {})[r] = python_to_cell(v)

    def _fill(self, values: dict[tuple[int, int], object]) -> None:
        """The literals into the dense arrays: numbers and texts (nearly every cell) in bulk,
        the rest one by one (1.2M cells of a 100,000-row workbook: 0.2 s instead of 1 s)."""
        n = len(values)
        if not n:
            return
        at = np.fromiter((i for key in values for i in key), np.int64, 2 * n).reshape(n, 2)
        vals = list(values.values())
        kinds = np.fromiter((_KIND.get(type(v), -1) for v in vals), np.int8, n)
        plain = kinds == NUM
        rows, cols = at[plain, 0], at[plain, 1]
        self.num[rows, cols] = np.fromiter((v for v in vals if type(v) is float), float)
        self.kind[rows, cols] = NUM
        text = kinds == TEXT
        rows, cols = at[text, 0], at[text, 1]
        self.kind[rows, cols] = TEXT
        strings = np.empty(int(text.sum()), dtype=object)
        strings[:] = [v for v in vals if type(v) is str]
        self.text[rows, cols] = strings
        for i in np.flatnonzero(kinds < 0).tolist():
            r, c = at[i]
            self.num[r, c], self.kind[r, c], self.text[r, c] = python_to_cell(vals[i])

    def box(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, ...]:
        """Dense (num, kind, text) arrays of rows r0..r1 and columns c0..c1 (inclusive)."""
        h, w = r1 - r0 + 1, c1 - c0 + 1
        if h * w > WINDOW_CELLS:
            raise FormulaError(f"a range of {h * w:,} cells is more than excelnet reads at once")
        num, kind = np.zeros((h, w)), np.full((h, w), BLANK, np.int8)
        text = np.full((h, w), None, dtype=object)
        if self.dense:
            rr, cc = min(r1 + 1, self.rows), min(c1 + 1, self.cols)
            if rr > r0 and cc > c0:
                num[: rr - r0, : cc - c0] = self.num[r0:rr, c0:cc]
                kind[: rr - r0, : cc - c0] = self.kind[r0:rr, c0:cc]
                text[: rr - r0, : cc - c0] = self.text[r0:rr, c0:cc]
            return num, kind, text
        for c in range(c0, c1 + 1):
            for r, (x, k, t) in self.columns.get(c, {}).items():
                if r0 <= r <= r1:
                    num[r - r0, c - c0], kind[r - r0, c - c0], text[r - r0, c - c0] = x, k, t
        return num, kind, text

    def window(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
        """Cells at rows (n, h, 1) × cols (n or 1, 1, w): (num, kind, text), each (n, h, w)."""
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
        if self.dense and r1 < self.rows and c1 < self.cols:  # the common case: one index
            return self.num[rows, cols], self.kind[rows, cols], self.text[rows, cols]
        num, kind, text = self.box(r0, r1, c0, c1)
        rr, cc = rows - r0, cols - c0
        return num[rr, cc], kind[rr, cc], text[rr, cc]

    def put(self, r0: int, c0: int, num: np.ndarray, kind: np.ndarray, text: np.ndarray | None):
        """Store a block's values (2-D arrays) with its top-left cell at (r0, c0)."""
        h, w = num.shape
        if self.dense and (r0 + h > self.rows or c0 + w > self.cols):
            self._grow(r0 + h, c0 + w)
        if self.dense:
            self.num[r0 : r0 + h, c0 : c0 + w] = num
            self.kind[r0 : r0 + h, c0 : c0 + w] = kind
            if text is not None:
                self.text[r0 : r0 + h, c0 : c0 + w] = text
            return
        kind = np.broadcast_to(kind, (h, w))
        for i in range(h):
            for j in range(w):
                t = None if text is None else text[i, j]
                self.columns.setdefault(c0 + j, {})[r0 + i] = (float(num[i, j]), int(kind[i, j]), t)

    def _grow(self, rows: int, cols: int) -> None:
        rows, cols = max(rows, self.rows), max(cols, self.cols)
        num, kind = np.zeros((rows, cols)), np.full((rows, cols), BLANK, np.int8)
        text = np.full((rows, cols), None, dtype=object)
        num[: self.rows, : self.cols] = self.num
        kind[: self.rows, : self.cols] = self.kind
        text[: self.rows, : self.cols] = self.text
        self.num, self.kind, self.text, self.rows, self.cols = num, kind, text, rows, cols

    def cell(self, r: int, c: int) -> tuple[float, int, object]:
        num, kind, text = self.box(r, r, c, c)
        return float(num[0, 0]), int(kind[0, 0]), text[0, 0]
