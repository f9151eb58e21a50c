"""STATISTICAL: counts, averages, extremes, the mode."""

from __future__ import annotations

import math

import numpy as np
import torch

from excelnet.formula.functions.criteria import conditional, sum_range_shape
from excelnet.formula.functions.kit import (
    count_of,
    divide,
    done,
    guarded,
    is_array,
    numbers,
    optional_number,
    reduce_rows,
    row_errors,
    strict_num,
)
from excelnet.formula.functions.kit import special as sc
from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import Error, FormulaError
from excelnet.formula.values import (
    BLANK,
    BOOL,
    NUM,
    TEXT,
    Omitted,
    V,
    error_value,
    errors_of,
    first_error,
    from_python,
    to_bool,
    to_number,
    with_errors,
)

excel = registrar("STATISTICAL")


@excel("COUNT", args="r+", unions=True, gradient=False)
def f_count(ctx, args):
    total = None
    for v in args:
        if is_array(v):
            part = reduce_rows(
                torch.as_tensor(v.kinds() == NUM, dtype=ctx.dtype, device=ctx.device)
            )
        else:
            _, errs = to_number(v)
            ok = v.kinds() != BLANK if not v.numeric() else np.ones(v.shape, bool)
            if errs is not None:
                ok = ok & (errs == None)  # noqa: E711
            part = torch.as_tensor(ok.astype(float), dtype=ctx.dtype, device=ctx.device)
        total = part if total is None else total + part
    return V(total)


@excel("COUNTA", args="r+", unions=True, gradient=False)
def f_counta(ctx, args):
    total = None
    for v in args:
        k = v.kinds()
        part = reduce_rows(torch.as_tensor(k != BLANK, dtype=ctx.dtype, device=ctx.device))
        total = part if total is None else total + part
    return V(total)


@excel("AVERAGE", args="r+", unions=True)
def f_average(ctx, args):
    total, count, errs = None, None, []
    for v in args:
        x, mask, e = numbers(v)
        s, c = reduce_rows(x), count_of(v, mask)
        total = s if total is None else total + s
        count = c if count is None else count + c
        errs.append(e)
    out = total / count
    if ctx.strict:
        zero = (torch.broadcast_to(count, out.shape) == 0).cpu().numpy()
        errs.append(np.where(zero, "#DIV/0!", None) if zero.any() else None)
    return done(ctx, out, errs)


def _extreme(ctx, args, fn, fill):
    if all(v.numeric() for v in args):  # the training path: numbers only
        parts = [
            v.x
            if v.shape[1:] == (1, 1)
            else fn(v.x.reshape(v.shape[0], -1), dim=1).reshape(-1, 1, 1)
            for v in args
        ]
        pair = torch.maximum if fn is torch.amax else torch.minimum
        best = parts[0]
        for part in parts[1:]:
            best = pair(best, part)
        return done(ctx, best, [])
    best, errs, any_number = None, [], None
    for v in args:
        x, mask, e = numbers(v)
        if mask is not None:
            x = torch.where(mask, x, torch.full((), fill, dtype=x.dtype, device=x.device))
        part = fn(x.reshape(x.shape[0], -1), dim=1).reshape(-1, 1, 1)
        has = count_of(v, mask) > 0
        best = part if best is None else fn(torch.stack(torch.broadcast_tensors(best, part)), 0)
        any_number = has if any_number is None else any_number | has
        errs.append(e)
    best = torch.where(any_number, best, torch.zeros((), dtype=best.dtype, device=best.device))
    return done(ctx, best, errs)


@excel("MAX", args="r+", unions=True)
def f_max(ctx, args):
    return _extreme(ctx, args, torch.amax, -math.inf)


@excel("MIN", args="r+", unions=True)
def f_min(ctx, args):
    return _extreme(ctx, args, torch.amin, math.inf)


# -- STATISTICAL: descriptive statistics ---------------------------------------------------------


def pooled(args: list[V], logicals: bool = False):
    """Every argument's values side by side, one row (N, M) per block row: the numbers (zero
    where nothing counts), the mask of those that count (None: all), and each row's first error
    (N, 1, 1) or None. Excel's rules: in ranges and arrays only numbers count — with `logicals`
    (the …A functions: AVERAGEA, STDEVA, MINA…) booleans count as 0/1 and text as 0 too; a
    value typed into the call is converted ("3" → 3, TRUE → 1) or is #VALUE!."""
    n = max(v.shape[0] for v in args)
    xs, masks, errs = [], [], []
    for v in args:
        if logicals and is_array(v) and not v.numeric():
            k = v.kinds()
            counted = torch.as_tensor((k == NUM) | (k == BOOL) | (k == TEXT), device=v.x.device)
            text = torch.as_tensor(k == TEXT, device=v.x.device)
            x = torch.where(
                text | ~counted, torch.zeros((), dtype=v.x.dtype, device=v.x.device), v.x
            )
            mask, e = counted, row_errors(v)
        else:
            x, mask, e = numbers(v)
        m = x.shape[1] * x.shape[2]
        xs.append(x.reshape(x.shape[0], m).expand(n, m))
        masks.append(None if mask is None else mask.reshape(mask.shape[0], m).expand(n, m))
        if e is not None:
            errs.append(e)
    x = torch.cat(xs, dim=1) if len(xs) > 1 else xs[0]
    mask = None
    if any(m is not None for m in masks):
        mask = torch.cat(
            [
                m if m is not None else torch.ones(t.shape, dtype=torch.bool, device=t.device)
                for m, t in zip(masks, xs, strict=True)
            ],
            dim=1,
        )
    return x, mask, first_error((n, 1, 1), *errs) if errs else None


def _count(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.full((x.shape[0], 1), float(x.shape[1]), dtype=x.dtype, device=x.device)
    return mask.sum(dim=1, keepdim=True).to(x.dtype)


def _sum(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
    return x.sum(dim=1, keepdim=True)


def checked(ctx, y: torch.Tensor, errs, *conditions) -> V:
    """y (N, K) as a value (N, 1, K→…): argument errors first, then each (mask, code) in turn;
    training (not strict) marks them as NaN instead, without a device sync."""
    y = y.reshape(y.shape[0], 1, -1) if y.dim() == 2 else y
    shape = tuple(y.shape)
    masks = [(_as_shape(mask, shape), code) for mask, code in conditions]
    if not ctx.strict:
        for mask, _ in masks:
            y = torch.where(mask, math.nan, y)
        return with_errors(y, errs if errs is None else np.broadcast_to(errs, shape))
    codes = []
    for mask, code in masks:
        m = mask.cpu().numpy()
        codes.append(np.where(m, code, None) if m.any() else None)
    return with_errors(y, strict_num(ctx, y, first_error(shape, errs, *codes)))


def _as_shape(mask: torch.Tensor, shape) -> torch.Tensor:
    """A condition given per row (N, 1) or per element (N, K) laid over a result (N, H, W)."""
    rows = mask.reshape(mask.shape[0], -1)
    if rows.shape[1] == shape[1] * shape[2]:
        return torch.broadcast_to(rows.reshape(rows.shape[0], *shape[1:]), shape)
    return torch.broadcast_to(rows.reshape(rows.shape[0], 1, 1), shape)


def _moments(x, mask):
    """count, mean and the deviations from the mean (0 where nothing counts), per row."""
    n = _count(x, mask)
    mean = divide(_sum(x, mask), n)
    dev = x - mean
    if mask is not None:
        dev = torch.where(mask, dev, torch.zeros((), dtype=x.dtype, device=x.device))
    return n, mean, dev


def _variance(ddof: int, logicals: bool = False, root: bool = False):
    def f(ctx, args):
        x, mask, errs = pooled(args, logicals)
        n, _, dev = _moments(x, mask)
        y = divide((dev * dev).sum(dim=1, keepdim=True), n - ddof)
        if root:
            y = guarded(torch.sqrt, y > 0, y)
        return checked(ctx, y, errs, (n - ddof <= 0, "#DIV/0!"))

    return f


excel("_xlfn.VAR.S", "VAR", args="r+", unions=True)(_variance(1))
excel("_xlfn.VAR.P", "VARP", args="r+", unions=True)(_variance(0))
excel("VARA", args="r+", unions=True)(_variance(1, logicals=True))
excel("VARPA", args="r+", unions=True)(_variance(0, logicals=True))
excel("_xlfn.STDEV.S", "STDEV", args="r+", unions=True)(_variance(1, root=True))
excel("_xlfn.STDEV.P", "STDEVP", args="r+", unions=True)(_variance(0, root=True))
excel("STDEVA", args="r+", unions=True)(_variance(1, logicals=True, root=True))
excel("STDEVPA", args="r+", unions=True)(_variance(0, logicals=True, root=True))


@excel("AVERAGEA", args="r+", unions=True)
def f_averagea(ctx, args):
    x, mask, errs = pooled(args, logicals=True)
    n = _count(x, mask)
    return checked(ctx, divide(_sum(x, mask), n), errs, (n == 0, "#DIV/0!"))


@excel("DEVSQ", args="r+", unions=True)
def f_devsq(ctx, args):
    x, mask, errs = pooled(args)
    n, _, dev = _moments(x, mask)
    return checked(ctx, (dev * dev).sum(dim=1, keepdim=True), errs, (n == 0, "#NUM!"))


@excel("AVEDEV", args="r+", unions=True)
def f_avedev(ctx, args):
    x, mask, errs = pooled(args)
    n, _, dev = _moments(x, mask)
    return checked(ctx, divide(dev.abs().sum(dim=1, keepdim=True), n), errs, (n == 0, "#NUM!"))


def _positive(x, mask):
    """Where a counted value is ≤ 0 (GEOMEAN and HARMEAN take positive numbers only)."""
    bad = x <= 0 if mask is None else (x <= 0) & mask
    return bad.any(dim=1, keepdim=True)


@excel("GEOMEAN", args="r+", unions=True)
def f_geomean(ctx, args):
    x, mask, errs = pooled(args)
    n = _count(x, mask)
    ok = x > 0 if mask is None else (x > 0) | ~mask
    logs = guarded(torch.log, ok, x)
    mean_log = divide(_sum(logs, mask), n)
    return checked(ctx, torch.exp(mean_log), errs, (_positive(x, mask) | (n == 0), "#NUM!"))


@excel("HARMEAN", args="r+", unions=True)
def f_harmean(ctx, args):
    x, mask, errs = pooled(args)
    n = _count(x, mask)
    ok = x > 0 if mask is None else (x > 0) | ~mask
    inverse = guarded(lambda t: 1 / t, ok, x)
    y = divide(n, _sum(inverse, mask))
    return checked(ctx, y, errs, (_positive(x, mask) | (n == 0), "#NUM!"))


def _shape_moments(args):
    x, mask, errs = pooled(args)
    n, _, dev = _moments(x, mask)
    m2 = (dev * dev).sum(dim=1, keepdim=True)
    return x, errs, n, dev, m2


@excel("SKEW", args="r+", unions=True)
def f_skew(ctx, args):
    _, errs, n, dev, m2 = _shape_moments(args)
    s = guarded(torch.sqrt, m2 > 0, divide(m2, n - 1))
    z3 = (divide(dev, s) ** 3).sum(dim=1, keepdim=True)
    y = divide(n * z3, (n - 1) * (n - 2))
    return checked(ctx, y, errs, ((n < 3) | (m2 == 0), "#DIV/0!"))


@excel("_xlfn.SKEW.P", args="r+", unions=True)
def f_skew_p(ctx, args):
    _, errs, n, dev, m2 = _shape_moments(args)
    s = guarded(torch.sqrt, m2 > 0, divide(m2, n))
    y = divide((divide(dev, s) ** 3).sum(dim=1, keepdim=True), n)
    return checked(ctx, y, errs, ((n < 1) | (m2 == 0), "#DIV/0!"))


@excel("KURT", args="r+", unions=True)
def f_kurt(ctx, args):
    _, errs, n, dev, m2 = _shape_moments(args)
    var = divide(m2, n - 1)
    z4 = divide(dev**4, var * var).sum(dim=1, keepdim=True)
    y = divide(n * (n + 1) * z4, (n - 1) * (n - 2) * (n - 3)) - divide(
        3 * (n - 1) ** 2, (n - 2) * (n - 3)
    )
    return checked(ctx, y, errs, ((n < 4) | (m2 == 0), "#DIV/0!"))


def _extreme_a(ctx, args, largest: bool):
    x, mask, errs = pooled(args, logicals=True)
    fill = -math.inf if largest else math.inf
    if mask is not None:
        x = torch.where(mask, x, torch.full((), fill, dtype=x.dtype, device=x.device))
    y = x.amax(dim=1, keepdim=True) if largest else x.amin(dim=1, keepdim=True)
    none = _count(x, mask) == 0  # nothing counts: 0
    return checked(ctx, torch.where(none, torch.zeros((), dtype=y.dtype, device=y.device), y), errs)


@excel("MAXA", args="r+", unions=True)
def f_maxa(ctx, args):
    return _extreme_a(ctx, args, largest=True)


@excel("MINA", args="r+", unions=True)
def f_mina(ctx, args):
    return _extreme_a(ctx, args, largest=False)


# -- STATISTICAL: order statistics -------------------------------------------------------------


def ordered(v: V):
    """A range's numbers sorted ascending per block row (N, M), those that do not count last
    as +inf; their count (N, 1) and each row's first error. Sorting passes gradients to the
    values picked."""
    x, mask, errs = pooled([v])
    if mask is not None:
        x = torch.where(mask, x, torch.full((), math.inf, dtype=x.dtype, device=x.device))
    return torch.sort(x, dim=1).values, _count(x, mask), errs


def _rows(k: torch.Tensor, n: int) -> torch.Tensor:
    """A second argument (N', H, W) as (N, H·W): one row of values per block row."""
    k = k.reshape(k.shape[0], -1)
    return k.expand(n, k.shape[1]) if k.shape[0] != n else k


def _pick(s: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """s[row, i] for float positions i (clamped into the row), with s's gradient."""
    i = i.clamp(0, s.shape[1] - 1).to(torch.long)
    return torch.gather(s, 1, i)


def interpolated(s: torch.Tensor, h: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """The value at fractional rank h (0-based) of the sorted rows s, as PERCENTILE reads it."""
    lo = torch.floor(h)
    frac = h - lo
    at_lo = _pick(s, lo)
    at_hi = _pick(s, torch.minimum(lo + 1, count - 1))
    step = torch.where(frac > 0, at_hi - at_lo, torch.zeros((), dtype=s.dtype, device=s.device))
    return at_lo + frac * step


def _order_args(args):
    s, count, errs = ordered(args[0])
    k, ek = to_number(args[1])
    n = max(s.shape[0], k.shape[0])
    s, count = s.expand(n, s.shape[1]), count.expand(n, 1)
    shape = (n,) + tuple(k.shape[1:])
    errs = first_error(shape, errs, ek)
    return s, count, _rows(k, n), shape, errs


def _small_large(largest: bool):
    def f(ctx, args):
        s, count, k, shape, errs = _order_args(args)
        rank = torch.trunc(k)  # as Excel truncates every count it is given
        y = _pick(s, count - rank if largest else rank - 1)
        return checked(ctx, y.reshape(shape), errs, ((rank < 1) | (rank > count), "#NUM!"))

    return f


excel("SMALL", args="rn")(_small_large(False))
excel("LARGE", args="rn")(_small_large(True))


def _percentile(exclusive: bool, quartile: bool = False):
    def f(ctx, args):
        s, count, k, shape, errs = _order_args(args)
        if quartile:
            q = torch.trunc(k)
            bad = (q <= 0) | (q >= 4) if exclusive else (q < 0) | (q > 4)
            k = q / 4
        else:
            bad = (k <= 0) | (k >= 1) if exclusive else (k < 0) | (k > 1)
        h = (count + 1) * k - 1 if exclusive else (count - 1) * k
        bad = bad | (count == 0) | (h < 0) | (h > count - 1)
        return checked(ctx, interpolated(s, h, count).reshape(shape), errs, (bad, "#NUM!"))

    return f


excel("_xlfn.PERCENTILE.INC", "PERCENTILE", args="rn")(_percentile(False))
excel("_xlfn.PERCENTILE.EXC", args="rn")(_percentile(True))
excel("_xlfn.QUARTILE.INC", "QUARTILE", args="rn")(_percentile(False, quartile=True))
excel("_xlfn.QUARTILE.EXC", args="rn")(_percentile(True, quartile=True))


@excel("MEDIAN", args="r+", unions=True)
def f_median(ctx, args):
    x, mask, errs = pooled(args)
    if mask is not None:
        x = torch.where(mask, x, torch.full((), math.inf, dtype=x.dtype, device=x.device))
    s, count = torch.sort(x, dim=1).values, _count(x, mask)
    return checked(ctx, interpolated(s, (count - 1) / 2, count), errs, (count == 0, "#NUM!"))


@excel("TRIMMEAN", args="rn")
def f_trimmean(ctx, args):
    s, count, percent, shape, errs = _order_args(args)
    # Excel trims an even number of points, rounded down: as many from each end
    cut = torch.floor(_approx(count * percent / 2))
    j = torch.arange(s.shape[1], device=s.device, dtype=s.dtype)[None, None, :]
    zero = torch.zeros((), dtype=s.dtype, device=s.device)
    sums = []
    step = max(1, 2**24 // (s.shape[1] * cut.shape[1]))  # rows at a time: bounded memory
    for r in range(0, s.shape[0], step):
        s3, count3 = s[r : r + step, None, :], count[r : r + step, :, None]
        cut3 = cut[r : r + step, :, None]
        keep = (j >= cut3) & (j < count3 - cut3)
        sums.append(torch.where(keep, s3, zero).sum(dim=2))
    y = divide(torch.cat(sums) if len(sums) > 1 else sums[0], count - 2 * cut)
    bad = (percent < 0) | (percent >= 1) | (count == 0)
    return checked(ctx, y.reshape(shape), errs, (bad, "#NUM!"))


def _approx(x: torch.Tensor) -> torch.Tensor:
    """x rounded to 15 significant digits, as Excel does before it truncates (7 × 0.1 / 0.7
    is 1, not 0.99999…)."""
    digits = 14 - torch.floor(torch.log10(x.abs().clamp_min(1e-300)))
    scale = torch.pow(10.0, digits)
    return torch.where(x == 0, x, torch.round(x * scale) / scale)


# -- STATISTICAL: modes, ranks, frequencies ----------------------------------------------------


def _numbers_by_row(v: V | list[V], logicals: bool = False):
    """The counted numbers of each block row as numpy vectors, in reading order, with each
    row's first error (or None)."""
    x, mask, errs = pooled(v if isinstance(v, list) else [v], logicals)
    xs = x.detach().cpu().numpy()
    keep = np.ones(xs.shape, bool) if mask is None else mask.cpu().numpy()
    rows = [xs[i][keep[i]] for i in range(xs.shape[0])]
    row_errs = [None if errs is None else errs[i, 0, 0] for i in range(xs.shape[0])]
    return rows, row_errs


def modes(values: np.ndarray) -> list[float]:
    """Every most frequent value (seen at least twice) in the order first met, as Excel's
    MODE.MULT lists them; MODE is the first (LibreOffice and pandas take the smallest)."""
    uniq, first, counts = np.unique(values, return_index=True, return_counts=True)
    if not len(counts) or counts.max() < 2:
        return []
    best = counts == counts.max()
    return [float(u) for _, u in sorted(zip(first[best], uniq[best], strict=True))]


def _or(code: str | None, result):
    """A row's error (its code) if it has one, else its result."""
    return Error(code) if code else result


def _from_rows(ctx, rows: list) -> V:
    """Python results per block row (a float, an Error, or a list for a column) as a value."""
    height = max((len(r) if isinstance(r, list) else 1) for r in rows)
    out = np.empty((len(rows), height, 1), dtype=object)
    for i, r in enumerate(rows):
        cells = r if isinstance(r, list) else [r]
        out[i, :, 0] = cells + [Error("#N/A")] * (height - len(cells))
    return from_python(out, ctx)


@excel("_xlfn.MODE.SNGL", "MODE", args="r+", unions=True, gradient=False)
def f_mode(ctx, args):
    rows, errs = _numbers_by_row(args)
    found = [modes(r) for r in rows]
    return _from_rows(
        ctx, [_or(e, m[0] if m else Error("#N/A")) for e, m in zip(errs, found, strict=True)]
    )


@excel("_xlfn.MODE.MULT", args="r+", unions=True, gradient=False, array_result=True)
def f_mode_mult(ctx, args):
    rows, errs = _numbers_by_row(args)
    found = [modes(r) for r in rows]
    return _from_rows(ctx, [_or(e, m or Error("#N/A")) for e, m in zip(errs, found, strict=True)])


def _rank(average: bool):
    def f(ctx, args):
        if not is_array(args[1]):
            raise FormulaError("RANK takes a range of numbers as its second argument")
        number, ex = to_number(args[0])
        s, count, errs = ordered(args[1])
        s = s.detach()
        order, eo = optional_number(args, 2, number, 0.0)
        n = max(number.shape[0], s.shape[0])
        shape = (n,) + tuple(number.shape[1:])
        num = _rows(number, n)
        # how many values lie below and up to each number: one sort, then binary searches
        flat = num.reshape(1, -1) if s.shape[0] == 1 else num
        below = torch.searchsorted(s, flat, side="left").reshape(n, -1).to(s.dtype)
        upto = torch.searchsorted(s, flat, side="right").reshape(n, -1).to(s.dtype)
        ties = upto - below
        ascending = _rows(order, n) != 0
        y = torch.where(ascending, below, count.expand(n, 1) - upto) + 1
        if average:
            y = y + (ties - 1) / 2
        return checked(ctx, y.reshape(shape), first_error(shape, ex, errs, eo), (ties == 0, "#N/A"))

    return f


excel("_xlfn.RANK.EQ", "RANK", args="nrn?", gradient=False)(_rank(False))
excel("_xlfn.RANK.AVG", args="nrn?", gradient=False)(_rank(True))


def _percentrank(exclusive: bool):
    def f(ctx, args):
        rows, errs = _numbers_by_row(args[0])
        xs, ex = to_number(args[1])
        digits, ed = optional_number(args, 2, xs, 3.0)
        n = max(len(rows), xs.shape[0], digits.shape[0])
        shape = (n,) + tuple(torch.broadcast_shapes(xs.shape, digits.shape)[1:])
        xv = np.broadcast_to(xs.detach().cpu().numpy(), shape)
        dv = np.broadcast_to(np.trunc(digits.detach().cpu().numpy()), shape)
        rows = [np.sort(r) for r in rows]
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            row = rows[min(idx[0], len(rows) - 1)]
            out[idx] = _percentrank_of(row, xv[idx], dv[idx], exclusive)
        errs_rows = np.array(errs, dtype=object).reshape(-1, 1, 1)
        v = from_python(out, ctx)
        return with_errors(v.x, first_error(shape, errs_rows, ex, ed, errors_of(v)))

    return f


def _percentrank_of(s: np.ndarray, x: float, digits: float, exclusive: bool):
    if digits < 1 or len(s) == 0:
        return Error("#NUM!")
    if x < s[0] or x > s[-1]:
        return Error("#N/A")
    n = len(s)
    below = int(np.searchsorted(s, x, side="left"))  # values < x
    if below < n and s[below] == x:
        rank = float(below)
    else:  # between s[below-1] and s[below]
        lo, hi = s[below - 1], s[below]
        rank = below - 1 + (x - lo) / (hi - lo)
    if exclusive:
        r = (rank + 1) / (n + 1)
    else:
        r = rank / (n - 1) if n > 1 else 1.0
    scale = 10.0**digits
    return math.floor(float(f"{r * scale:.15g}")) / scale  # truncated, not rounded


excel("_xlfn.PERCENTRANK.INC", "PERCENTRANK", args="rnn?", gradient=False)(_percentrank(False))
excel("_xlfn.PERCENTRANK.EXC", args="rnn?", gradient=False)(_percentrank(True))


@excel("FREQUENCY", args="rr", gradient=False, array_result=True)
def f_frequency(ctx, args):
    data, data_errs = _numbers_by_row(args[0])
    bins, bin_errs = _numbers_by_row(args[1])
    rows = []
    for i in range(max(len(data), len(bins))):
        e = data_errs[min(i, len(data) - 1)] or bin_errs[min(i, len(bins) - 1)]
        if e:
            rows.append(Error(e))
            continue
        d, b = data[min(i, len(data) - 1)], bins[min(i, len(bins) - 1)]
        edges = np.sort(b)
        # a value counts in the first bin at least as large; past the last, the extra count
        where = np.searchsorted(edges, d, side="left")
        counts = np.bincount(where, minlength=len(edges) + 1).astype(float)
        order = np.argsort(b, kind="stable")
        per_bin = np.empty(len(b))
        per_bin[order] = counts[: len(b)]
        rows.append([*per_bin.tolist(), float(counts[-1])])
    return _from_rows(ctx, rows)


# -- STATISTICAL: two variables ----------------------------------------------------------------


def paired(ctx, a: V, b: V):
    """Two ranges' numbers in pairs, per block row: the deviations of each from its mean over
    the pairs where both are numbers (0 elsewhere), the count of such pairs (N, 1), the means
    and the first error; None when the ranges hold different numbers of cells (#N/A)."""
    xa, ma, ea = pooled([a])
    xb, mb, eb = pooled([b])
    if xa.shape[1] != xb.shape[1]:
        return None
    n = max(xa.shape[0], xb.shape[0])
    xa, xb = xa.expand(n, -1), xb.expand(n, -1)
    mask = ma if mb is None else mb if ma is None else ma & mb
    if mask is not None:
        mask = mask.expand(n, -1)
    count, mean_a, da = _moments(xa, mask)
    _, mean_b, db = _moments(xb, mask)
    return da, db, count, mean_a, mean_b, first_error((n, 1, 1), ea, eb)


def _two(compute):
    """A function of two ranges of paired numbers: compute(da, db, count, mean_a, mean_b)
    gives the value and its (mask, code) conditions."""

    def f(ctx, args):
        p = paired(ctx, *args)
        if p is None:
            return error_value("#N/A", (max(v.shape[0] for v in args), 1, 1), ctx)
        *moments, errs = p
        y, conditions = compute(*moments)
        return checked(ctx, y, errs, *conditions)

    return f


def _sxy(da, db):
    return (da * db).sum(dim=1, keepdim=True)


def _covariance(ddof):
    def compute(da, db, n, ma, mb):
        return divide(_sxy(da, db), n - ddof), [(n - ddof <= 0, "#DIV/0!")]

    return compute


def _correlation(da, db, n, ma, mb):
    sxx, syy = _sxy(da, da), _sxy(db, db)
    denominator = guarded(torch.sqrt, sxx * syy > 0, sxx * syy)
    return divide(_sxy(da, db), denominator), [((n == 0) | (sxx * syy == 0), "#DIV/0!")]


def _slope(dy, dx, n, my, mx):
    sxx = _sxy(dx, dx)
    return divide(_sxy(dx, dy), sxx), [((n == 0) | (sxx == 0), "#DIV/0!")]


def _intercept(dy, dx, n, my, mx):
    slope, conditions = _slope(dy, dx, n, my, mx)
    return my - slope * mx, conditions


def _rsq(dy, dx, n, my, mx):
    r, conditions = _correlation(dy, dx, n, my, mx)
    return r * r, conditions


def _steyx(dy, dx, n, my, mx):
    sxx, syy, sxy = _sxy(dx, dx), _sxy(dy, dy), _sxy(dx, dy)
    rest = divide(syy - divide(sxy * sxy, sxx), n - 2)
    rest = torch.clamp(rest, min=0)
    return guarded(torch.sqrt, rest > 0, rest), [((n < 3) | (sxx == 0), "#DIV/0!")]


excel("_xlfn.COVARIANCE.P", "COVAR", args="rr")(_two(_covariance(0)))
excel("_xlfn.COVARIANCE.S", args="rr")(_two(_covariance(1)))
excel("CORREL", args="rr")(_two(_correlation))
excel("PEARSON", args="rr")(_two(_correlation))
excel("RSQ", args="rr")(_two(_rsq))
excel("SLOPE", args="rr")(_two(_slope))
excel("INTERCEPT", args="rr")(_two(_intercept))
excel("STEYX", args="rr")(_two(_steyx))


@excel("_xlfn.FORECAST.LINEAR", "FORECAST", args="nrr")
def f_forecast(ctx, args):
    x, ex = to_number(args[0])
    p = paired(ctx, args[1], args[2])
    if p is None:
        return error_value("#N/A", tuple(x.shape), ctx)
    dy, dx, n, my, mx, errs = p
    slope, conditions = _slope(dy, dx, n, my, mx)
    rows = max(x.shape[0], n.shape[0])
    shape = (rows,) + tuple(x.shape[1:])
    y = (my + slope * (_rows(x, rows) - mx)).reshape(shape)
    mask, code = conditions[0]
    return checked(
        ctx, y, first_error(shape, ex, errs), (mask.reshape(-1, 1).expand(rows, 1), code)
    )


# -- STATISTICAL: tests ------------------------------------------------------------------------


def _row_result(ctx, rows: list, shape) -> V:
    """Per block row a float, an Error or an array of the rest of `shape`, as a value."""
    out = np.empty(shape, dtype=object)
    for i, r in enumerate(rows):
        out[i] = r
    return from_python(out, ctx)


@excel("_xlfn.Z.TEST", "ZTEST", args="rnn?", gradient=False)
def f_z_test(ctx, args):
    rows, errs = _numbers_by_row(args[0])
    x, ex = to_number(args[1])
    sigma, es = optional_number(args, 2, x, math.nan)
    n = max(len(rows), x.shape[0], sigma.shape[0])
    shape = (n,) + tuple(torch.broadcast_shapes(x.shape, sigma.shape)[1:])
    xv = np.broadcast_to(x.detach().cpu().numpy(), shape)
    sv = np.broadcast_to(sigma.detach().cpu().numpy(), shape)
    # per row of the range: how many, their mean and sample standard deviation
    moments = [
        (len(r), r.mean() if len(r) else 0.0, r.std(ddof=1) if len(r) > 1 else 0.0) for r in rows
    ]
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        count, mean, sd = moments[min(idx[0], len(rows) - 1)]
        s = sd if math.isnan(sv[idx]) else sv[idx]
        if count == 0:
            out[idx] = Error("#N/A")
        elif s <= 0:
            out[idx] = Error("#DIV/0!" if s == 0 else "#NUM!")
        else:
            out[idx] = float(sc.ndtr((xv[idx] - mean) * math.sqrt(count) / s))
    v = from_python(out, ctx)
    row_errs = np.array(errs, dtype=object).reshape(-1, 1, 1)
    return with_errors(v.x, first_error(shape, row_errs, ex, es, errors_of(v)))


def _t_test(a: np.ndarray, b: np.ndarray, tails: float, kind: float):
    if tails not in (1, 2) or kind not in (1, 2, 3):
        return Error("#NUM!")
    if kind == 1:  # paired: the pairs where both are numbers
        d = a - b
        d = d[~np.isnan(d)]
        if len(d) < 2 or d.std(ddof=1) == 0:
            return Error("#DIV/0!")
        t, df = d.mean() / (d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1
    else:
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        n1, n2 = len(a), len(b)
        if n1 < 2 or n2 < 2:
            return Error("#DIV/0!")
        v1, v2 = a.var(ddof=1), b.var(ddof=1)
        if kind == 2:
            df = n1 + n2 - 2
            se2 = ((n1 - 1) * v1 + (n2 - 1) * v2) / df * (1 / n1 + 1 / n2)
        else:  # Welch: unequal variances, fractional degrees of freedom
            se2 = v1 / n1 + v2 / n2
            df = se2**2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1)) if se2 else 1
        if se2 == 0:
            return Error("#DIV/0!")
        t = (a.mean() - b.mean()) / math.sqrt(se2)
    return float(tails * sc.stdtr(df, -abs(t)))


def _two_ranges(args: list[V]):
    """Two ranges as float rows per block row, NaN where a cell is not a number, with each
    row's first error."""
    out = []
    for v in args[:2]:
        x, mask, errs = pooled([v])
        xs = x.detach().cpu().numpy().copy()
        if mask is not None:
            xs[~mask.cpu().numpy()] = np.nan
        out.append((xs, errs))
    return out


@excel("_xlfn.T.TEST", "TTEST", args="rrnn", gradient=False)
def f_t_test(ctx, args):
    (a, ea), (b, eb) = _two_ranges(args)
    tails, et = to_number(args[2])
    kind, ek = to_number(args[3])
    n = max(a.shape[0], b.shape[0])
    shape = (n, 1, 1)
    out = []
    for i in range(n):
        ai, bi = a[min(i, a.shape[0] - 1)], b[min(i, b.shape[0] - 1)]
        ti = math.trunc(float(tails.reshape(-1)[min(i, tails.numel() - 1)]))
        ki = math.trunc(float(kind.reshape(-1)[min(i, kind.numel() - 1)]))
        paired_mismatch = ki == 1 and ai.shape != bi.shape
        out.append(Error("#N/A") if paired_mismatch else _t_test(ai, bi, ti, ki))
    v = _row_result(ctx, out, shape)
    return with_errors(v.x, first_error(shape, ea, eb, et, ek, errors_of(v)))


@excel("_xlfn.F.TEST", "FTEST", args="rr", gradient=False)
def f_f_test(ctx, args):
    (a, ea), (b, eb) = _two_ranges(args)
    n = max(a.shape[0], b.shape[0])
    out = []
    for i in range(n):
        ai, bi = a[min(i, a.shape[0] - 1)], b[min(i, b.shape[0] - 1)]
        ai, bi = ai[~np.isnan(ai)], bi[~np.isnan(bi)]
        if len(ai) < 2 or len(bi) < 2 or ai.var() == 0 or bi.var() == 0:
            out.append(Error("#DIV/0!"))
            continue
        f = ai.var(ddof=1) / bi.var(ddof=1)
        d1, d2 = len(ai) - 1, len(bi) - 1
        out.append(float(2 * min(sc.fdtr(d1, d2, f), sc.fdtrc(d1, d2, f))))
    v = _row_result(ctx, out, (n, 1, 1))
    return with_errors(v.x, first_error((n, 1, 1), ea, eb, errors_of(v)))


@excel("_xlfn.CHISQ.TEST", "CHITEST", args="rr", gradient=False)
def f_chisq_test(ctx, args):
    actual, expected = args
    if actual.shape[1:] != expected.shape[1:]:
        return error_value("#N/A", (max(actual.shape[0], expected.shape[0]), 1, 1), ctx)
    (a, ea), (e, ee) = _two_ranges(args)
    rows, cols = actual.shape[1:]
    df = (rows - 1) * (cols - 1) if rows > 1 and cols > 1 else max(rows, cols) - 1
    n = max(a.shape[0], e.shape[0])
    out = []
    for i in range(n):
        ai, ei = a[min(i, a.shape[0] - 1)], e[min(i, e.shape[0] - 1)]
        both = ~np.isnan(ai) & ~np.isnan(ei)
        if df < 1:
            out.append(Error("#N/A"))
        elif (ei[both] == 0).any():
            out.append(Error("#DIV/0!"))
        elif (ei[both] < 0).any():
            out.append(Error("#NUM!"))
        else:
            chi = float((((ai - ei) ** 2) / ei)[both].sum())
            out.append(float(sc.gammaincc(df / 2, chi / 2)))
    v = _row_result(ctx, out, (n, 1, 1))
    return with_errors(v.x, first_error((n, 1, 1), ea, ee, errors_of(v)))


@excel("PROB", args="rrnn?", gradient=False)
def f_prob(ctx, args):
    if args[0].shape[1:] != args[1].shape[1:]:
        return error_value("#N/A", (max(v.shape[0] for v in args), 1, 1), ctx)
    (xs, ex), (ps, ep) = _two_ranges(args)
    lower, el = to_number(args[2])
    upper, eu = optional_number(args, 3, lower, math.nan)
    n = max(xs.shape[0], ps.shape[0], lower.shape[0], upper.shape[0])
    out = []
    for i in range(n):
        x, p = xs[min(i, xs.shape[0] - 1)], ps[min(i, ps.shape[0] - 1)]
        lo = float(lower.reshape(-1)[min(i, lower.numel() - 1)])
        hi = float(upper.reshape(-1)[min(i, upper.numel() - 1)])
        hi = lo if math.isnan(hi) else hi
        both = ~np.isnan(x) & ~np.isnan(p)
        if (p[both] < 0).any() or (p[both] > 1).any() or abs(p[both].sum() - 1) > 1e-7:
            out.append(Error("#NUM!"))
        else:
            out.append(float(p[both & (x >= lo) & (x <= hi)].sum()))
    v = _row_result(ctx, out, (n, 1, 1))
    return with_errors(v.x, first_error((n, 1, 1), ex, ep, el, eu, errors_of(v)))


# -- STATISTICAL: least squares (LINEST, LOGEST, TREND, GROWTH) --------------------------------


def _grid(v: V, row: int) -> tuple[np.ndarray, str | None]:
    """One block row of a range as a 2-D array of numbers, or the error it gives: its first
    error value, else #VALUE! for anything that is not a number (blanks, text, booleans)."""
    i = min(row, v.shape[0] - 1)
    k = v.kinds()[i]
    errs = errors_of(v)
    if errs is not None and (errs[i] != None).any():  # noqa: E711
        return np.zeros(0), next(e for e in errs[i].ravel() if e is not None)
    if (k != NUM).any():
        return np.zeros(0), "#VALUE!"
    return v.x[i].detach().cpu().numpy().astype(float), None


class Fit:
    """A least-squares fit of y on the columns of X, as LINEST reports it."""

    def __init__(self, y: np.ndarray, xs: np.ndarray, const: bool):
        self.k, self.const = xs.shape[1], const
        design = np.column_stack([xs, np.ones(len(y))]) if const else xs
        self.coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        fitted = design @ self.coef
        self.df = len(y) - design.shape[1]
        self.ssresid = float(((y - fitted) ** 2).sum())
        self.ssreg = float(((fitted - y.mean()) ** 2).sum() if const else (fitted**2).sum())
        self.design = design

    def predict(self, xs: np.ndarray) -> np.ndarray:
        return (np.column_stack([xs, np.ones(len(xs))]) if self.const else xs) @ self.coef

    def table(self, stats: bool) -> list[list]:
        """LINEST's rows: coefficients (last variable first, then the intercept), and with
        stats their standard errors, r² and se(y), F and df, ss(reg) and ss(resid)."""
        coef = [*self.coef[: self.k][::-1], self.coef[self.k] if self.const else 0.0]
        if not stats:
            return [coef]
        width = len(coef)
        na = Error("#N/A")
        if self.df > 0:
            sigma2 = self.ssresid / self.df
            cov = sigma2 * np.linalg.pinv(self.design.T @ self.design)
            se = np.sqrt(np.maximum(np.diag(cov), 0))
            se_row = [*se[: self.k][::-1], se[self.k] if self.const else na]
            se_y = math.sqrt(sigma2)
            f = (self.ssreg / self.k) / sigma2 if sigma2 > 0 else Error("#NUM!")
        else:
            se_row, se_y, f = [Error("#NUM!")] * width, Error("#NUM!"), Error("#NUM!")
        total = self.ssreg + self.ssresid
        r2 = self.ssreg / total if total > 0 else Error("#NUM!")
        pad = [na] * (width - 2)
        return [
            coef,
            se_row,
            [r2, se_y, *pad],
            [f, float(self.df), *pad],
            [self.ssreg, self.ssresid, *pad],
        ]


def _regression_data(args: list[V], row: int, log: bool):
    """known_y's and known_x's of one block row: y as a vector, the x variables as columns, and
    how to read new x's (by columns or by rows); or an error code."""
    y, e = _grid(args[0], row)
    if e:
        return e
    has_x = len(args) > 1 and not isinstance(args[1], Omitted)
    if has_x:
        x, e = _grid(args[1], row)
        if e:
            return e
    else:
        x = np.arange(1, y.size + 1, dtype=float).reshape(y.shape)
    if log:
        if (y <= 0).any():
            return "#NUM!"
        y = np.log(y)
    by_rows = y.shape[0] == 1 and y.shape[1] > 1
    if x.shape == y.shape:
        xs = x.reshape(-1, 1)
    elif by_rows and x.shape[1] == y.shape[1]:
        xs = x.T
    elif y.shape[1] == 1 and x.shape[0] == y.shape[0]:
        xs = x
    else:
        return "#REF!"
    return y.reshape(-1), xs, by_rows, x


def _flag(args: list[V], i: int, default: bool) -> bool:
    if len(args) <= i or isinstance(args[i], Omitted):
        return default
    b, e = to_bool(args[i])
    if e is not None:
        raise FormulaError(f"argument {i + 1} must be TRUE or FALSE")
    return bool(b.reshape(-1)[0])


def _linest(log: bool):
    def f(ctx, args):
        const, stats = _flag(args, 2, True), _flag(args, 3, False)
        tables = []
        for row in range(max(v.shape[0] for v in args[:2])):
            data = _regression_data(args, row, log)
            if isinstance(data, str):
                tables.append([[Error(data)]])
                continue
            y, xs, _, _ = data
            table = Fit(y, xs, const).table(stats)
            if log:
                table[0] = [math.exp(c) for c in table[0]]
            tables.append(table)
        return _tables(ctx, tables)

    return f


def _tables(ctx, tables: list[list[list]]) -> V:
    h = max(len(t) for t in tables)
    w = max(len(r) for t in tables for r in t)
    out = np.full((len(tables), h, w), Error("#N/A"), dtype=object)
    for i, t in enumerate(tables):
        for r, cells in enumerate(t):
            out[i, r, : len(cells)] = cells
    return from_python(out, ctx)


excel("LINEST", args="rr?b?b?", gradient=False, array_result=True)(_linest(log=False))
excel("LOGEST", args="rr?b?b?", gradient=False, array_result=True)(_linest(log=True))


def _trend(log: bool):
    def f(ctx, args):
        const = _flag(args, 3, True)
        tables = []
        for row in range(max(v.shape[0] for v in args[:3])):
            data = _regression_data(args, row, log)
            if isinstance(data, str):
                tables.append([[Error(data)]])
                continue
            y, xs, by_rows, new = data
            if len(args) > 2 and not isinstance(args[2], Omitted):
                new, e = _grid(args[2], row)
                if e:
                    tables.append([[Error(e)]])
                    continue
            if xs.shape[1] == 1:
                flat = new.reshape(-1, 1)
                shape = new.shape
            elif (new.shape[0] if by_rows else new.shape[1]) == xs.shape[1]:
                flat = new.T if by_rows else new
                shape = (1, flat.shape[0]) if by_rows else (flat.shape[0], 1)
            else:
                tables.append([[Error("#REF!")]])
                continue
            fitted = Fit(y, xs, const).predict(flat)
            if log:
                fitted = np.exp(fitted)
            tables.append(fitted.reshape(shape).tolist())
        return _tables(ctx, tables)

    return f


excel("TREND", args="rr?r?b?", gradient=False, array_result=True)(_trend(log=False))
excel("GROWTH", args="rr?r?b?", gradient=False, array_result=True)(_trend(log=True))


# -- criteria family (fn-math) ------------------------------------------------------------------


def _pairs(name: str, args: list) -> list:
    if len(args) < 2 or len(args) % 2:
        raise FormulaError(f"{name} takes pairs of a range and a criterion")
    return list(zip(args[::2], args[1::2], strict=True))


@excel("COUNTIF", args="rv", gradient=False, blanks=True)
def f_countif(ctx, args):
    return conditional(ctx, "count", None, [(args[0], args[1])])


@excel("COUNTIFS", gradient=False, blanks=True)
def f_countifs(ctx, args):
    return conditional(ctx, "count", None, _pairs("COUNTIFS", args))


@excel("AVERAGEIF", args="rvr?", resolve=sum_range_shape)
def f_averageif(ctx, args):
    target = args[2] if len(args) == 3 and not isinstance(args[2], Omitted) else args[0]
    return conditional(ctx, "average", target, [(args[0], args[1])], resize=True)


@excel("AVERAGEIFS")
def f_averageifs(ctx, args):
    return conditional(ctx, "average", args[0], _pairs("AVERAGEIFS", args[1:]))


@excel("_xlfn.MINIFS")
def f_minifs(ctx, args):
    return conditional(ctx, "min", args[0], _pairs("MINIFS", args[1:]))


@excel("_xlfn.MAXIFS")
def f_maxifs(ctx, args):
    return conditional(ctx, "max", args[0], _pairs("MAXIFS", args[1:]))


@excel("COUNTBLANK", args="r", gradient=False, blanks=True)
def f_countblank(ctx, args):
    """Empty cells and empty text."""
    v = args[0]
    k = v.kinds()
    blank = (k == BLANK) | ((k == TEXT) & (v.texts() == ""))
    return V(reduce_rows(torch.as_tensor(blank, dtype=ctx.dtype, device=ctx.device)))
