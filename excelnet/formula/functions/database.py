"""DATABASE: DSUM, DAVERAGE, DCOUNT, … — an aggregate over one field of the records of a
database range that meet a criteria range.

A database is a range whose first row names its fields; each row below is a record. The field
is a name (matched case-insensitively against the header row, as text: the header TRUE is the
field "true", the header 1 the field "1") or a column number (truncated; TRUE is 1). The
criteria range has field names in its first row and conditions below them: the conditions of
one row must all hold (AND), any row may hold (OR). An empty condition holds for every record
(an empty criteria row selects them all); a condition under a name that is no field of the
database holds for none. A condition is read as COUNTIF reads its criterion (criteria.py:
"<>a", ">=2024-07-01", TRUE, "=Apple", wildcards), except that plain text is a prefix:
"East" matches "Eastern", "=East" only "East".

Each function is its worksheet counterpart (SUM, AVERAGE, COUNT, …) over the field's cells of
the records that meet the criteria, the other cells left out as if empty; DSUM and DAVERAGE
pass gradients through the values they add up.
"""

from __future__ import annotations

import numpy as np
import torch

from excelnet.formula.functions import math, statistical  # noqa: F401  (SUM, AVERAGE, …)
from excelnet.formula.functions.criteria import Criterion, criterion
from excelnet.formula.functions.registry import FUNCTIONS, registrar
from excelnet.formula.parse import Error
from excelnet.formula.values import (
    BLANK,
    Ctx,
    Omitted,
    V,
    error_value,
    format_number,
    make,
    scalar,
)

excel = registrar("DATABASE")
ARGS = "rvr"  # every one's parameters: the database, the field (or left empty), the criteria


def _name(value) -> str | None:
    """A header or field name as the text Excel compares (None for an empty cell)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def _row(v: V, n: int) -> V:
    """Block row n of v (the last one where v has fewer rows)."""
    n = min(n, v.shape[0] - 1)
    kind = v.kinds()[n : n + 1] if isinstance(v.kind, np.ndarray) else v.kind
    text = None if v.text is None else v.texts()[n : n + 1]
    return V(v.x[n : n + 1], kind, text, v.ref)


def _headers(db: V) -> list[str | None]:
    names = [_name(db.item(0, 0, j)) for j in range(db.shape[2])]
    return [None if s is None else s.lower() for s in names]


def _column(db: V, field: V) -> int | Error | None:
    """The database column the field names (None: no field given, as DCOUNT allows)."""
    if isinstance(field, Omitted):
        return None
    if field.shape[1:] != (1, 1):
        return Error("#VALUE!")
    value = field.item(0, 0, 0)
    if isinstance(value, Error):
        return value
    if isinstance(value, str):
        names = _headers(db)
        return names.index(value.lower()) if value.lower() in names else Error("#VALUE!")
    if value is None:
        return Error("#VALUE!")
    j = int(float(value))  # a column number, truncated (TRUE is 1)
    return j - 1 if 1 <= j <= db.shape[2] else Error("#VALUE!")


def condition(value) -> Criterion | None:
    """One cell of a criteria range as a condition (None: empty, holds for every record)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value[0] not in "<>=":
        test = criterion(value)
        if isinstance(test.operand, str):  # plain text: the values that begin with it
            return criterion(value + "*")
        return test
    return criterion(value)


def _records(db: V, crit: V) -> np.ndarray | Error:
    """Which records (rows below the header) meet the criteria: bool (H-1,)."""
    if crit.shape[1] < 2:
        return Error("#VALUE!")
    names = _headers(db)
    records = V(db.x[:, 1:].detach(), db.kinds()[:, 1:], db.texts()[:, 1:])
    met = np.zeros(db.shape[1] - 1, bool)
    for i in range(1, crit.shape[1]):
        row = np.ones_like(met)
        for j in range(crit.shape[2]):
            test = condition(crit.item(0, i, j))
            if test is None:
                continue
            header = _name(crit.item(0, 0, j))
            if header is None or header.lower() not in names:
                row[:] = False
                break
            k = names.index(header.lower())
            field = V(
                records.x[:, :, k : k + 1],
                records.kinds()[:, :, k : k + 1],
                records.texts()[:, :, k : k + 1],
            )
            row &= test(field).cpu().numpy()[0, :, 0]
        met |= row
    return met


def _selected(db: V, column: int, met: np.ndarray) -> V:
    """The field's cells of the records met, the others empty: a range (1, H-1, 1)."""
    keep = torch.as_tensor(met, device=db.x.device)
    x = db.x[0, 1:, column]
    x = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
    kind = db.kinds()[0, 1:, column].copy()
    kind[~met] = BLANK
    text = db.texts()[0, 1:, column].copy()
    text[~met] = None
    return make(x.reshape(1, -1, 1), kind.reshape(1, -1, 1), text.reshape(1, -1, 1), ref=True)


def _stacked(ctx: Ctx, rows: list[V]) -> V:
    """Results (1, 1, 1) of the block's rows as one value (N, 1, 1)."""
    if len(rows) == 1:
        return rows[0]
    x = torch.cat([r.x for r in rows])
    kind = np.concatenate([r.kinds() for r in rows])
    text = np.concatenate([r.texts() for r in rows])
    return make(x, kind, text)


def _database(ctx: Ctx, args: list[V], aggregate) -> V:
    """aggregate(ctx, column V or None, records met) for each row of a copied-down block."""
    db, field, crit = args
    rows = []
    for n in range(max(v.shape[0] for v in args)):
        d, c = _row(db, n), _row(crit, n)
        column = _column(d, field if isinstance(field, Omitted) else _row(field, n))
        met = _records(d, c) if d.shape[1] >= 2 else Error("#VALUE!")
        wrong = next((e for e in (column, met) if isinstance(e, Error)), None)
        if wrong is not None:
            rows.append(error_value(wrong.code, (1, 1, 1), ctx))
        else:
            rows.append(aggregate(ctx, None if column is None else _selected(d, column, met), met))
    return _stacked(ctx, rows)


def _like(worksheet: str):
    """A database function that is the worksheet function `worksheet` over the field."""

    def aggregate(ctx, values, met):
        return FUNCTIONS[worksheet].fn(ctx, [values])

    return lambda ctx, args: _database(ctx, args, aggregate)


# Each passes gradients where its worksheet function does.
for _name_, _worksheet in (
    ("DSUM", "SUM"),
    ("DAVERAGE", "AVERAGE"),
    ("DMIN", "MIN"),
    ("DMAX", "MAX"),
    ("DPRODUCT", "PRODUCT"),
    ("DSTDEV", "STDEV.S"),
    ("DSTDEVP", "STDEV.P"),
    ("DVAR", "VAR.S"),
    ("DVARP", "VAR.P"),
):
    excel(_name_, args=ARGS, gradient=FUNCTIONS[_worksheet].gradient)(_like(_worksheet))


def _count(worksheet: str):
    """DCOUNT/DCOUNTA: the worksheet count over the field, or the records met without one."""

    def aggregate(ctx, values, met):
        if values is None:
            return scalar(float(met.sum()), ctx)
        return FUNCTIONS[worksheet].fn(ctx, [values])

    return aggregate


@excel("DCOUNT", args=ARGS, gradient=False)
def f_dcount(ctx, args):
    return _database(ctx, args, _count("COUNT"))


@excel("DCOUNTA", args=ARGS, gradient=False)
def f_dcounta(ctx, args):
    return _database(ctx, args, _count("COUNTA"))


def _get(ctx, values, met):
    """DGET: the field of the one record met; none is #VALUE!, more than one #NUM!."""
    if values is None:
        return error_value("#VALUE!", (1, 1, 1), ctx)
    if met.sum() != 1:
        return error_value("#VALUE!" if not met.any() else "#NUM!", (1, 1, 1), ctx)
    i = int(np.flatnonzero(met)[0])
    kind = values.kinds()[:, i : i + 1]
    if kind[0, 0, 0] == BLANK:  # an empty cell, as a reference to it reads: 0
        return scalar(0.0, ctx)
    return make(values.x[:, i : i + 1], kind, values.texts()[:, i : i + 1])


@excel("DGET", args=ARGS)  # the value it picks keeps its gradient, as INDEX's does
def f_dget(ctx, args):
    return _database(ctx, args, _get)
