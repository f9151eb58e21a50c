"""Excel's dynamic-array functions (Excel 365): FILTER, SORT, SORTBY, UNIQUE, SEQUENCE, TAKE,
DROP, VSTACK, HSTACK, TOCOL, TOROW, CHOOSECOLS, CHOOSEROWS, EXPAND, WRAPROWS, WRAPCOLS,
TEXTSPLIT. Each returns an array whose size may depend on the data: the selection (which rows,
in which order) is worked out as data, the values are gathered from the argument's tensor, so
gradients pass through to the values that are kept. A copied-down block's rows are computed
one by one (each row's array its own size; a smaller one padded with #N/A)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from excelnet.formula.functions.information import ERROR_NUMBERS
from excelnet.formula.functions.registry import registrar
from excelnet.formula.values import (
    BLANK,
    BOOL,
    ERR,
    NUM,
    TEXT,
    Omitted,
    V,
    error_value,
    errors_of,
    make,
    to_bool,
    to_number,
    to_text,
)

lookup = registrar("LOOKUP_AND_REFERENCE")
maths = registrar("MATH_AND_TRIGONOMETRY")
texts = registrar("TEXT")


class Bad(Exception):
    """An argument that makes the whole result one error value."""

    def __init__(self, code: str):
        self.code = code


# -- pieces ----------------------------------------------------------------------------------


def row_of(v: V, k: int) -> V:
    """Row k of a copied-down value (a value of one row is every row's)."""
    if v.shape[0] == 1:
        return v
    sl = slice(k, k + 1)
    kind = v.kind[sl] if isinstance(v.kind, np.ndarray) and v.kind.shape[0] > 1 else v.kind
    text = None if v.text is None else v.texts()[sl]
    out = make(v.x[sl], kind, text, v.ref) if isinstance(kind, np.ndarray) else V(v.x[sl], kind)
    return out


def pad(v: V, h: int, w: int, fill: V | None = None) -> V:
    """v in the top-left of an h×w array, the rest `fill` (one value; #N/A by default)."""
    n, vh, vw = v.shape
    if (vh, vw) == (h, w):
        return v
    x = torch.zeros((n, h, w), dtype=v.x.dtype, device=v.x.device)
    kind = np.full((n, h, w), ERR, np.int8)
    text = np.full((n, h, w), "#N/A", dtype=object)
    if fill is not None:
        x = x + fill.x[:1, :1, :1]
        kind[:] = fill.kinds()[0, 0, 0]
        text[:] = fill.texts()[0, 0, 0]
    x = torch.cat([torch.cat([v.x, x[:, :vh, vw:]], 2), x[:, vh:, :]], 1)
    kind[:, :vh, :vw], text[:, :vh, :vw] = v.kinds(), v.texts()
    return make(x, kind, text)


def gather(v: V, ri, ci) -> V:
    """Rows ri and columns ci of v (index arrays), every block row alike."""
    ri, ci = np.asarray(ri, int), np.asarray(ci, int)
    x = v.x[:, torch.as_tensor(ri, device=v.x.device)][:, :, torch.as_tensor(ci, device=v.x.device)]
    if not isinstance(v.kind, np.ndarray) and v.text is None:
        return V(x, v.kind)
    kind = v.kinds()[:, ri][:, :, ci]
    text = v.texts()[:, ri][:, :, ci]
    return make(x, kind, text)


def cat(vs: list[V], axis: int) -> V:
    """Arrays one after another down (axis 1) or across (axis 2), the shorter padded #N/A."""
    other = 3 - axis
    size = max(v.shape[other] for v in vs)
    parts = []
    for v in vs:  # one block row each (by_row)
        h, w = (v.shape[1], size) if axis == 1 else (size, v.shape[2])
        parts.append(pad(v, h, w))
    x = torch.cat([p.x for p in parts], axis)
    if all(
        not isinstance(p.kind, np.ndarray) and p.text is None and p.kind == parts[0].kind
        for p in parts
    ):
        return V(x, parts[0].kind)
    kind = np.concatenate([p.kinds() for p in parts], axis)
    text = np.concatenate([p.texts() for p in parts], axis)
    return make(x, kind, text)


def integer(v: V, default: int | None = None, name: str = "") -> int:
    """One whole number from an argument (its first element), truncated toward zero."""
    if isinstance(v, Omitted):
        if default is None:
            raise Bad("#VALUE!")
        return default
    x, errs = to_number(
        V(v.x[:1, :1, :1], _first(v.kind), None if v.text is None else v.texts()[:1, :1, :1])
    )
    if errs is not None and errs[0, 0, 0] is not None:
        raise Bad(errs[0, 0, 0])
    f = float(x.reshape(-1)[0])
    if not np.isfinite(f):
        raise Bad("#NUM!")
    return int(f)


def integers(v: V) -> list[int]:
    x, errs = to_number(v)
    if errs is not None:
        first = next((e for e in errs.reshape(-1) if e is not None), None)
        if first is not None:
            raise Bad(first)
    return [int(f) for f in x[0].detach().reshape(-1).tolist()]


def _first(kind):
    return kind[:1, :1, :1] if isinstance(kind, np.ndarray) else kind


def error_in(v: V) -> str | None:
    errs = errors_of(v)
    if errs is None:
        return None
    return next((e for e in errs.reshape(-1) if e is not None), None)


def by_row(fn):
    """The function over each row of a copied-down block, the rows' arrays padded to one size."""

    @functools.wraps(fn)
    def run(ctx, args):
        n = max((a.shape[0] for a in args if isinstance(a, V)), default=1)
        outs = []
        for k in range(n):
            row = [row_of(a, k) if isinstance(a, V) else a for a in args]
            try:
                outs.append(fn(ctx, row))
            except Bad as e:
                outs.append(error_value(e.code, (1, 1, 1), ctx))
        if n == 1:
            return outs[0]
        h = max(o.shape[1] for o in outs)
        w = max(o.shape[2] for o in outs)
        return _stack([pad(o, h, w) for o in outs])

    return run


def _stack(vs: list[V]) -> V:
    x = torch.cat([v.x.expand(1, *v.shape[1:]) for v in vs], 0)
    if all(
        not isinstance(v.kind, np.ndarray) and v.text is None and v.kind == vs[0].kind for v in vs
    ):
        return V(x, vs[0].kind)
    return make(
        x, np.concatenate([v.kinds()[:1] for v in vs]), np.concatenate([v.texts()[:1] for v in vs])
    )


def _sort_key(kind: int, x: float, text) -> tuple:
    """Excel's sort order, ascending: numbers, text (case ignored), logicals, errors; blanks
    always last (`_blank_last` handles them)."""
    if kind == NUM:
        return (0, x, "")
    if kind == TEXT:
        return (1, 0.0, str(text).lower())
    if kind == BOOL:
        return (2, x, "")
    if kind == ERR:
        return (3, float(ERROR_NUMBERS.get(str(text), 9)), "")  # errors by their ERROR.TYPE
    return (4, 0.0, "")


def _keys(v: V) -> list[list[tuple]]:
    """Each element's sort key, [row][col]."""
    k, t = v.kinds()[0], v.texts()[0]
    xs = v.x[0].detach().cpu().numpy()
    return [
        [_sort_key(int(k[i, j]), float(xs[i, j]), t[i, j]) for j in range(k.shape[1])]
        for i in range(k.shape[0])
    ]


class _Desc:
    """A key reversed, for descending order."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __lt__(self, other):
        return other.key < self.key

    def __eq__(self, other):
        return self.key == other.key


def _order(columns: list[tuple[list[tuple], int]], count: int) -> list[int]:
    """Positions 0..count-1 sorted by the keys (each a list of one key per position, and 1 or
    -1 for its order); stable; blanks last whichever the order."""

    def key(i):
        out = []
        for keys, order in columns:
            kk = keys[i]
            blank = kk[0] == 4
            out.append((blank, kk if order == 1 or blank else _Desc(kk)))
        return out

    return sorted(range(count), key=key)


def _element_keys(v: V) -> list[list]:
    """Each element as UNIQUE compares them: text without case."""
    k, t = v.kinds()[0], v.texts()[0]
    xs = v.x[0].detach().cpu().numpy()
    out = []
    for i in range(k.shape[0]):
        row = []
        for j in range(k.shape[1]):
            kind = int(k[i, j])
            if kind == TEXT:
                row.append((TEXT, str(t[i, j]).lower()))
            elif kind == ERR:
                row.append((ERR, t[i, j]))
            elif kind == BLANK:
                row.append((BLANK, ""))
            else:
                row.append((kind, float(xs[i, j])))
        out.append(row)
    return out


# -- the functions ---------------------------------------------------------------------------


@lookup("_xlfn._xlws.FILTER", args="rrv?", array_result=True)
@by_row
def f_filter(ctx, args):
    """FILTER(array, include, [if_empty]): the rows (or columns) where include is true."""
    array, include = args[0], args[1]
    _, h, w = array.shape
    _, ih, iw = include.shape
    keep, errs = to_bool(include)
    if errs is not None:
        first = next((e for e in errs.reshape(-1) if e is not None), None)
        if first is not None:
            raise Bad(first)
    keep = keep[0].detach().cpu().numpy()
    if iw == 1 and ih == h:
        rows = np.nonzero(keep[:, 0])[0]
        cols = np.arange(w)
    elif ih == 1 and iw == w:
        rows, cols = np.arange(h), np.nonzero(keep[0, :])[0]
    else:
        raise Bad("#VALUE!")
    if len(rows) == 0 or len(cols) == 0:
        if len(args) > 2 and not isinstance(args[2], Omitted):
            return args[2]
        raise Bad("#CALC!")
    return gather(array, rows, cols)


@lookup("_xlfn._xlws.SORT", args="rr?r?b?", array_result=True)
@by_row
def f_sort(ctx, args):
    """SORT(array, [sort_index], [sort_order], [by_col])."""
    array = args[0]
    by_col = (
        len(args) > 3
        and not isinstance(args[3], Omitted)
        and bool(to_bool(args[3])[0].reshape(-1)[0])
    )
    v = array
    if by_col:
        v = gather(array, np.arange(array.shape[1]), np.arange(array.shape[2]))
        v = V(
            v.x.transpose(1, 2),
            v.kinds().transpose(0, 2, 1) if isinstance(v.kind, np.ndarray) else v.kind,
            None if v.text is None else v.texts().transpose(0, 2, 1),
        )
    index = [1] if len(args) < 2 or isinstance(args[1], Omitted) else integers(args[1])
    orders = [1] if len(args) < 3 or isinstance(args[2], Omitted) else integers(args[2])
    if len(orders) == 1:
        orders = orders * len(index)
    if len(orders) != len(index):
        raise Bad("#VALUE!")
    _, h, w = v.shape
    keys = _keys(v)
    columns = []
    for i, o in zip(index, orders, strict=True):
        if not 1 <= i <= w or o not in (1, -1):
            raise Bad("#VALUE!")
        columns.append(([keys[r][i - 1] for r in range(h)], o))
    order = _order(columns, h)
    out = gather(v, order, np.arange(w))
    if by_col:
        out = V(
            out.x.transpose(1, 2),
            out.kinds().transpose(0, 2, 1) if isinstance(out.kind, np.ndarray) else out.kind,
            None if out.text is None else out.texts().transpose(0, 2, 1),
        )
    return out


@lookup("_xlfn.SORTBY", args="rr+", array_result=True)
@by_row
def f_sortby(ctx, args):
    """SORTBY(array, by_array1, [sort_order1], …)."""
    array = args[0]
    _, h, w = array.shape
    pairs = args[1:]
    columns, along = [], None
    for p in range(0, len(pairs), 2):
        by = pairs[p]
        order = (
            1 if p + 1 >= len(pairs) or isinstance(pairs[p + 1], Omitted) else integer(pairs[p + 1])
        )
        if order not in (1, -1):
            raise Bad("#VALUE!")
        _, bh, bw = by.shape
        if bw == 1 and bh == h:
            axis = 0
        elif bh == 1 and bw == w:
            axis = 1
        else:
            raise Bad("#VALUE!")
        if bh == 1 and bw == 1:
            axis = 0 if h > 1 or w == 1 else 1
        if along is not None and along != axis:
            raise Bad("#VALUE!")
        along = axis
        keys = _keys(by)
        columns.append(([r[0] for r in keys] if axis == 0 else keys[0], order))
    count = h if along == 0 else w
    order = _order(columns, count)
    return gather(array, order, np.arange(w)) if along == 0 else gather(array, np.arange(h), order)


@lookup("_xlfn.UNIQUE", args="rb?b?", array_result=True)
@by_row
def f_unique(ctx, args):
    """UNIQUE(array, [by_col], [exactly_once])."""
    array = args[0]
    flag = [
        len(args) > i
        and not isinstance(args[i], Omitted)
        and bool(to_bool(args[i])[0].reshape(-1)[0])
        for i in (1, 2)
    ]
    by_col, once = flag
    keys = _element_keys(array)
    if by_col:
        keys = [list(c) for c in zip(*keys, strict=True)]
    lines = [tuple(r) for r in keys]
    counts: dict = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    seen, keep = set(), []
    for i, line in enumerate(lines):
        if line in seen:
            continue
        seen.add(line)
        if not once or counts[line] == 1:
            keep.append(i)
    if not keep:
        raise Bad("#CALC!")
    _, h, w = array.shape
    return gather(array, np.arange(h), keep) if by_col else gather(array, keep, np.arange(w))


@maths("_xlfn.SEQUENCE", args="nn?n?n?", array_result=True)
@by_row
def f_sequence(ctx, args):
    """SEQUENCE(rows, [columns], [start], [step]): start and step pass gradients."""
    rows = integer(args[0], 1)
    cols = integer(args[1], 1) if len(args) > 1 else 1
    if rows < 1 or cols < 1:
        raise Bad("#VALUE!")
    if rows * cols > 1_048_576 * 16_384:
        raise Bad("#NUM!")

    def number(i: int, default: float) -> torch.Tensor:
        if len(args) <= i or isinstance(args[i], Omitted):
            return torch.tensor(default, dtype=ctx.dtype, device=ctx.device)
        x, errs = to_number(args[i])
        if errs is not None and errs.reshape(-1)[0] is not None:
            raise Bad(errs.reshape(-1)[0])
        return x.reshape(-1)[0]

    start, step = number(2, 1.0), number(3, 1.0)
    k = torch.arange(rows * cols, dtype=ctx.dtype, device=ctx.device).reshape(1, rows, cols)
    return V(start + step * k)


def _count_rows(v: V, axis: int, n: int, take: bool) -> np.ndarray:
    size = v.shape[axis]
    if take:
        if n >= 0:
            return np.arange(min(n, size))
        return np.arange(max(size + n, 0), size)
    if n >= 0:
        return np.arange(min(n, size), size)
    return np.arange(0, max(size + n, 0))


def _take_drop(args, take: bool) -> V:
    array = args[0]
    _, h, w = array.shape
    rows = np.arange(h)
    cols = np.arange(w)
    if len(args) > 1 and not isinstance(args[1], Omitted):
        n = integer(args[1])
        if take and n == 0:
            raise Bad("#CALC!")
        rows = _count_rows(array, 1, n, take)
    if len(args) > 2 and not isinstance(args[2], Omitted):
        n = integer(args[2])
        if take and n == 0:
            raise Bad("#CALC!")
        cols = _count_rows(array, 2, n, take)
    if len(rows) == 0 or len(cols) == 0:
        raise Bad("#CALC!")
    return gather(array, rows, cols)


@lookup("_xlfn.TAKE", args="rn?n?", array_result=True)
@by_row
def f_take(ctx, args):
    """TAKE(array, rows, [columns]): negative counts take from the end."""
    return _take_drop(args, True)


@lookup("_xlfn.DROP", args="rn?n?", array_result=True)
@by_row
def f_drop(ctx, args):
    """DROP(array, rows, [columns]): negative counts drop from the end."""
    return _take_drop(args, False)


@lookup("_xlfn.VSTACK", args="r+", array_result=True)
@by_row
def f_vstack(ctx, args):
    return cat(list(args), 1)


@lookup("_xlfn.HSTACK", args="r+", array_result=True)
@by_row
def f_hstack(ctx, args):
    return cat(list(args), 2)


def _to_line(args, column: bool) -> V:
    array = args[0]
    ignore = integer(args[1], 0) if len(args) > 1 else 0
    by_col = (
        len(args) > 2
        and not isinstance(args[2], Omitted)
        and bool(to_bool(args[2])[0].reshape(-1)[0])
    )
    if ignore not in (0, 1, 2, 3):
        raise Bad("#VALUE!")
    _, h, w = array.shape
    ri, ci = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    if by_col:
        ri, ci = ri.T, ci.T
    ri, ci = ri.reshape(-1), ci.reshape(-1)
    kinds = array.kinds()[0][ri, ci]
    keep = np.ones(len(ri), bool)
    if ignore in (1, 3):
        keep &= kinds != BLANK
    if ignore in (2, 3):
        keep &= kinds != ERR
    ri, ci = ri[keep], ci[keep]
    if len(ri) == 0:
        raise Bad("#CALC!")
    x = array.x[:, torch.as_tensor(ri), torch.as_tensor(ci)]
    shape = (-1, len(ri), 1) if column else (-1, 1, len(ri))
    x = x.reshape(shape)
    if not isinstance(array.kind, np.ndarray) and array.text is None:
        return V(x, array.kind)
    kind = array.kinds()[:, ri, ci].reshape(x.shape)
    text = array.texts()[:, ri, ci].reshape(x.shape)
    return make(x, kind, text)


@lookup("_xlfn.TOCOL", args="rn?b?", array_result=True)
@by_row
def f_tocol(ctx, args):
    """TOCOL(array, [ignore], [scan_by_column])."""
    return _to_line(args, True)


@lookup("_xlfn.TOROW", args="rn?b?", array_result=True)
@by_row
def f_torow(ctx, args):
    """TOROW(array, [ignore], [scan_by_column])."""
    return _to_line(args, False)


def _choose(args, axis: int) -> V:
    array = args[0]
    size = array.shape[axis]
    picks = []
    for a in args[1:]:
        for i in integers(a):
            if i == 0 or abs(i) > size:
                raise Bad("#VALUE!")
            picks.append(i - 1 if i > 0 else size + i)
    _, h, w = array.shape
    return gather(array, picks, np.arange(w)) if axis == 1 else gather(array, np.arange(h), picks)


@lookup("_xlfn.CHOOSECOLS", args="rr+", array_result=True)
@by_row
def f_choosecols(ctx, args):
    return _choose(args, 2)


@lookup("_xlfn.CHOOSEROWS", args="rr+", array_result=True)
@by_row
def f_chooserows(ctx, args):
    return _choose(args, 1)


@lookup("_xlfn.EXPAND", args="rn?n?v?", array_result=True)
@by_row
def f_expand(ctx, args):
    """EXPAND(array, rows, [columns], [pad_with])."""
    array = args[0]
    _, h, w = array.shape
    rows = integer(args[1], h) if len(args) > 1 else h
    cols = integer(args[2], w) if len(args) > 2 else w
    if rows < h or cols < w:
        raise Bad("#VALUE!")
    fill = args[3] if len(args) > 3 and not isinstance(args[3], Omitted) else None
    return pad(array, rows, cols, fill)


def _wrap(args, rows: bool) -> V:
    vector = args[0]
    _, h, w = vector.shape
    if h > 1 and w > 1:
        raise Bad("#VALUE!")
    count = integer(args[1])
    if count < 1:
        raise Bad("#NUM!")
    flat = _to_line([vector], False)
    total = flat.shape[2]
    count = min(count, total)  # a vector shorter than one line is not padded (Excel's answer)
    lines = -(-total // count)
    fill = args[2] if len(args) > 2 and not isinstance(args[2], Omitted) else None
    padded = pad(flat, 1, lines * count, fill)
    x = padded.x.reshape(-1, lines, count)
    kind = padded.kinds().reshape(-1, lines, count)
    text = padded.texts().reshape(-1, lines, count)
    if not rows:
        x, kind, text = x.transpose(1, 2), kind.transpose(0, 2, 1), text.transpose(0, 2, 1)
    return make(x, np.ascontiguousarray(kind), np.ascontiguousarray(text))


@lookup("_xlfn.WRAPROWS", args="rnv?", array_result=True)
@by_row
def f_wraprows(ctx, args):
    """WRAPROWS(vector, wrap_count, [pad_with])."""
    return _wrap(args, True)


@lookup("_xlfn.WRAPCOLS", args="rnv?", array_result=True)
@by_row
def f_wrapcols(ctx, args):
    """WRAPCOLS(vector, wrap_count, [pad_with])."""
    return _wrap(args, False)


@texts("_xlfn.TEXTSPLIT", args="trr?b?n?v?", gradient=False, array_result=True)
@by_row
def f_textsplit(ctx, args):
    """TEXTSPLIT(text, col_delimiter, [row_delimiter], [ignore_empty], [match_mode],
    [pad_with])."""
    import re

    error = error_in(args[0])
    if error:
        raise Bad(error)
    text = str(to_text(args[0])[0].reshape(-1)[0])

    def delimiters(i):
        if len(args) <= i or isinstance(args[i], Omitted):
            return []
        return [str(t) for t in to_text(args[i])[0].reshape(-1) if str(t) != ""]

    cols, rows_d = delimiters(1), delimiters(2)
    ignore = (
        len(args) > 3
        and not isinstance(args[3], Omitted)
        and bool(to_bool(args[3])[0].reshape(-1)[0])
    )
    mode = integer(args[4], 0) if len(args) > 4 else 0
    flags = re.IGNORECASE if mode == 1 else 0
    if not cols and not rows_d:
        raise Bad("#VALUE!")

    def split(s: str, ds: list[str]) -> list[str]:
        if not ds:
            return [s]
        parts = re.split(
            "|".join(re.escape(d) for d in sorted(ds, key=len, reverse=True)), s, flags=flags
        )
        return [p for p in parts if p != ""] if ignore else parts

    table = [split(line, cols) for line in split(text, rows_d)]
    table = [r for r in table if r] or [[""]] if ignore else table
    if not table:
        raise Bad("#CALC!")
    width = max(len(r) for r in table)
    fill = args[5] if len(args) > 5 and not isinstance(args[5], Omitted) else None
    h = len(table)
    kind = np.full((1, h, width), TEXT, np.int8)
    text_out = np.full((1, h, width), "", dtype=object)
    x = torch.zeros((1, h, width), dtype=ctx.dtype, device=ctx.device)
    for i, r in enumerate(table):
        for j in range(width):
            if j < len(r):
                text_out[0, i, j] = r[j]
            elif fill is None:
                kind[0, i, j], text_out[0, i, j] = ERR, "#N/A"
            else:
                kind[0, i, j] = fill.kinds()[0, 0, 0]
                text_out[0, i, j] = fill.texts()[0, 0, 0]
                x[0, i, j] = fill.x.reshape(-1)[0].detach()
    return make(x, kind, text_out)
