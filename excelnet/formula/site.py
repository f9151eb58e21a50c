"""Where a formula is evaluated, as the functions that act on references see it: a `Site` (the
block's cells, its arguments unevaluated, the evaluator that reads them), and `Live`, a
sub-expression that depends on the parameters and is evaluated again every step."""

from __future__ import annotations

import numpy as np

from excelnet.formula.functions.registry import FUNCTIONS
from excelnet.formula.parse import COLUMNS as SHEET_COLUMNS
from excelnet.formula.parse import (
    MISSING,
    Call,
    Const,
    Error,
    FormulaError,
    Node,
    Op,
    Ref,
)
from excelnet.formula.parse import ROWS as SHEET_ROWS
from excelnet.formula.values import (
    BLANK,
    ERR,
    TEXT,
    V,
    errors_of,
    format_number,
    from_python,
    to_number,
)


class Live:
    """A sub-expression that depends on the parameters: re-evaluated every step."""

    __slots__ = ("run",)

    def __init__(self, run):
        self.run = run


def current(value) -> V:
    """A Live's value now, or a constant value as it is."""
    return value.run() if isinstance(value, Live) else value


class Site:
    """A reference function's view of the formula it is in: the block's cells, its arguments
    unevaluated, and the evaluator to read them with."""

    def __init__(self, evaluator, block):
        self.ev, self.block = evaluator, block
        self.ctx, self.book = evaluator.ctx, evaluator.book
        self.sheet = block.sheet
        self.n = block.rows if block.kind == "column" else 1  # rows the result varies over
        self.function = "OFFSET"  # the reference function whose arguments are read

    def value(self, node: Node) -> V:
        """An argument's value. Where a reference points is found once: in a Solver model it
        must not depend on the parameters (nor on a random draw, drawn again every step)."""
        v = self.ev._node(node, self.block)
        if isinstance(v, Live):
            if not self.ev.steps:  # a whole-workbook calculation: a volatile function, once
                return current(v)
            raise FormulaError(
                f"{self.function}: where it points depends on the adjustable cells (or on a "
                f"volatile function such as RAND); a lookup trains only where its position is "
                f"data"
            )
        return v

    def refs(self, node: Node) -> list[Ref] | None:
        """The references an argument stands for, per block row; None if it is no reference."""
        if isinstance(node, Ref):
            if node.r1 is None or node.c1 is None:
                return [node]
            if self.block.kind == "column" and node.rel_r0 and self.n > 1:
                return [
                    Ref(node.sheet, node.r0 + k, node.c0, node.r1 + k, node.c1)
                    for k in range(self.n)
                ]
            return [node]
        if isinstance(node, Op) and node.op == ":":
            ends = [self.refs(a) for a in node.args]
            if any(e is None for e in ends):
                return None
            return span(*ends)
        if isinstance(node, Call):
            known = FUNCTIONS.get(node.name)
            outer, self.function = self.function, node.name
            try:
                if known is not None and known.refs:
                    out = known.fn(self, list(node.args))
                    return out if isinstance(out, list) else None
                if node.name in ("CHOOSE", "INDEX") and node.args:
                    return self._choose(node) if node.name == "CHOOSE" else self._index(node)
            finally:
                self.function = outer
        return None

    def _choose(self, node: Call) -> list[Ref] | None:
        """CHOOSE(k, A1, A2, …) as a reference, k per block row."""
        k, err = self.numbers(node.args[0])
        k = np.trunc(k).astype(np.int64)
        if err is not None or (k < 1).any() or (k >= len(node.args)).any():
            return None
        picked = {int(i): self.refs(node.args[int(i)]) for i in np.unique(k)}
        if any(refs is None for refs in picked.values()):
            return None
        if len(picked) == 1:
            return next(iter(picked.values()))
        return [picked[int(i)][min(row, len(picked[int(i)]) - 1)] for row, i in enumerate(k)]

    def _index(self, node: Call) -> list[Ref] | None:
        """INDEX(range, row, [column]) as a reference (row or column 0: all of them), the
        position per block row."""
        base = self.refs(node.args[0])
        if base is None or not 2 <= len(node.args) <= 3:
            return None
        base = [whole(self, b) for b in base]
        r, err = self.numbers(node.args[1], 0.0)
        c, err2 = self.numbers(node.args[2], 0.0) if len(node.args) == 3 else (np.zeros(1), None)
        if err or err2 or len({b.sheet for b in base}) > 1:
            return None
        n = max(len(base), len(r), len(c))
        k = np.arange(n)
        at = lambda a: np.asarray(a)[np.minimum(k, len(a) - 1)]  # noqa: E731  per block row
        r0, c0 = at([b.r0 for b in base]), at([b.c0 for b in base])
        h, w = at([b.r1 - b.r0 + 1 for b in base]), at([b.c1 - b.c0 + 1 for b in base])
        r, c = np.trunc(at(r)).astype(np.int64), np.trunc(at(c)).astype(np.int64)
        if len(node.args) == 2:  # INDEX(A1:D1, 3): a single row counts columns
            r, c = np.where(h == 1, 1, r), np.where(h == 1, r, c)
        if ((r < 0) | (r > h) | (c < 0) | (c > w)).any():
            return None
        top, left = np.where(r == 0, r0, r0 + r - 1), np.where(c == 0, c0, c0 + c - 1)
        bottom, right = np.where(r == 0, r0 + h - 1, top), np.where(c == 0, c0 + w - 1, left)
        corners = np.stack([top, left, bottom, right], 1)
        if len({(q[2] - q[0], q[3] - q[1]) for q in corners.tolist()}) != 1:
            return None  # ranges of different sizes down one column
        if (corners == corners[0]).all():
            return [Ref(base[0].sheet, *map(int, corners[0]))]
        return [Ref(base[0].sheet, *row) for row in corners.tolist()]

    def numbers(self, node: Node, default: float | None = None) -> tuple[np.ndarray, object]:
        """An argument as numbers per block row (n,), and its error if it has one."""
        if isinstance(node, Const) and node.value is MISSING:
            if default is None:
                raise FormulaError("an argument is missing")
            return np.full(self.n, default), None
        v = self.value(node)
        x, errs = to_number(v)
        errs = errors_of(v) if errs is None else errs
        if errs is not None and (errs != None).any():  # noqa: E711
            return np.zeros(self.n), next(e for e in errs.reshape(-1) if e is not None)
        flat = x.detach().cpu().numpy()[:, 0, 0]
        return np.broadcast_to(flat, (self.n,)) if flat.size == 1 else flat, None

    def texts(self, node: Node) -> list[object]:
        """An argument per block row as text (str), or an Error."""
        v = self.value(node)
        k, t = v.kinds()[:, 0, 0], v.texts()[:, 0, 0]
        x = v.x.detach().cpu().numpy()[:, 0, 0]
        out = []
        for i in range(v.shape[0]):
            if k[i] == ERR:
                out.append(Error(t[i]))
            elif k[i] == TEXT:
                out.append(str(t[i]))
            elif k[i] == BLANK:
                out.append("")
            else:
                out.append(("TRUE" if x[i] else "FALSE") if k[i] == 1 else format_number(x[i]))
        return out * self.n if len(out) == 1 and self.n > 1 else out

    def column(self, values: list[object]) -> V:
        """One value per block row (or one for all) as a V of shape (n, 1, 1)."""
        return from_python(np.array(values, dtype=object).reshape(-1, 1, 1), self.ctx)

    def sheet_names(self) -> list[str]:
        return list(self.book.sheets)


def span(a: list[Ref], b: list[Ref]) -> list[Ref] | None:
    """A1:B3 where each end is a reference: the smallest range holding both, per row."""
    out = []
    for k in range(max(len(a), len(b))):
        p, q = a[min(k, len(a) - 1)], b[min(k, len(b) - 1)]
        if p.sheet != q.sheet or None in (p.r1, p.c1, q.r1, q.c1):
            return None
        out.append(Ref(p.sheet, min(p.r0, q.r0), min(p.c0, q.c0), max(p.r1, q.r1), max(p.c1, q.c1)))
    return out


def whole(site: Site, ref: Ref) -> Ref:
    """A whole column or row bounded to the sheet."""
    if ref.r1 is None:
        return Ref(ref.sheet, 0, ref.c0, SHEET_ROWS - 1, ref.c1)
    if ref.c1 is None:
        return Ref(ref.sheet, ref.r0, 0, ref.r1, SHEET_COLUMNS - 1)
    return ref
