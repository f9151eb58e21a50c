"""MATH_AND_TRIGONOMETRY: sums and products, powers and logarithms, trigonometry, rounding,
integers and combinatorics, number systems, random numbers, SUMIF(S).

Continuous functions are torch operations with gradients (kept finite where Excel's value is
an error); step functions (rounding, FLOOR/CEILING, INT, SIGN, counts of combinations, text)
are computed in numpy and carry no gradient. MOD is continuous between its jumps, with
derivative 1 in the dividend and -INT(n/d) in the divisor there: it keeps that gradient.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, localcontext

import numpy as np
import torch

from excelnet.formula import values as _values
from excelnet.formula.functions.criteria import conditional, sum_range_shape
from excelnet.formula.functions.kit import (
    divide,
    done,
    elementwise,
    guarded,
    numbers,
    on_numbers,
    reduce_rows,
    row_errors,
    scalar_numbers,
    second,
    strict_num,
    where_error,
)
from excelnet.formula.functions.operators import arithmetic
from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import (
    BLANK,
    BOOL,
    ERR,
    NUM,
    TEXT,
    Omitted,
    V,
    broadcast,
    error_value,
    errors_of,
    first_error,
    make,
    reshaped,
    text_number,
    to_number,
    to_text,
    with_errors,
)

excel = registrar("MATH_AND_TRIGONOMETRY")

TRIG_LIMIT = 2.0**27  # Excel's SIN, COS, TAN, … say #NUM! from here on
WHOLE_LIMIT = 2.0**53  # GCD, LCM, BASE: integers beyond this are #NUM!


# -- sums and products --------------------------------------------------------------------------


@excel("SUM", args="r+", unions=True)
def f_sum(ctx, args):
    total, errs = None, []
    for v in args:
        x, _, e = numbers(v)
        part = reduce_rows(x)
        total = part if total is None else total + part
        errs.append(e)
    return done(ctx, total, errs)


@excel("SUMSQ", args="r+", unions=True)
def f_sumsq(ctx, args):
    total, errs = None, []
    for v in args:
        x, _, e = numbers(v)
        part = reduce_rows(x * x)
        total = part if total is None else total + part
        errs.append(e)
    return done(ctx, total, errs)


@excel("PRODUCT", args="r+", unions=True)
def f_product(ctx, args):
    """The product of the numbers (0 when there are none)."""
    total, counted, errs = None, None, []
    for v in args:
        x, mask, e = numbers(v)
        if mask is not None:
            x = torch.where(mask, x, torch.ones((), dtype=x.dtype, device=x.device))
        part = x.reshape(x.shape[0], -1).prod(dim=1).reshape(-1, 1, 1)
        has = _has_numbers(v, mask)
        total = part if total is None else total * part
        counted = has if counted is None else counted | has
        errs.append(e)
    if not isinstance(counted, bool):
        total = torch.where(counted, total, torch.zeros((), dtype=total.dtype, device=total.device))
    elif not counted:
        total = torch.zeros_like(total)
    return done(ctx, total, errs)


def _has_numbers(v: V, mask: torch.Tensor | None):
    """Per block row, whether an argument holds any number (True when it is all numbers)."""
    if mask is None:
        return True
    return mask.reshape(mask.shape[0], -1).any(dim=1).reshape(-1, 1, 1)


@excel("SUMPRODUCT", args="r+")
def f_sumproduct(ctx, args):
    shapes = {v.shape[1:] for v in args}
    n = max(v.shape[0] for v in args)
    if len(shapes) != 1:
        return error_value("#VALUE!", (n, 1, 1), ctx)
    if len(args) == 2 and args[0].shape[1] == 1 and args[0].numeric() and args[1].numeric():
        # rows of numbers (the features times the weights): multiply, sum along the row
        return done(ctx, (args[0].x * args[1].x).sum(dim=2, keepdim=True), [])
    prod, errs = None, []
    for v in args:
        if v.numeric():
            x = v.x
        else:  # SUMPRODUCT counts every non-number as 0
            mask = torch.as_tensor(v.kinds() == NUM, device=v.x.device)
            x = torch.where(mask, v.x, torch.zeros((), dtype=v.x.dtype, device=v.x.device))
            errs.append(row_errors(v))
        prod = x if prod is None else prod * x
    return done(ctx, reduce_rows(prod), errs)


def _paired(ctx, args: list[V], term) -> V:
    """SUMXMY2, SUMX2MY2, SUMX2PY2: term(x, y) summed over the pairs where both are numbers;
    the two arrays pair up element by element in reading order (#N/A if their sizes differ)."""
    a, b = args
    n = max(a.shape[0], b.shape[0])
    size = a.shape[1] * a.shape[2]
    if size != b.shape[1] * b.shape[2]:
        return error_value("#N/A", (n, 1, 1), ctx)
    flat = [_flat(v, size) for v in (a, b)]
    (xa, ma, ea), (xb, mb, eb) = (numbers(V(v.x, v.kind, v.text, True)) for v in flat)
    d = term(xa, xb)
    if ma is not None or mb is not None:
        both = (ma if ma is not None else True) & (mb if mb is not None else True)
        d = torch.where(both, d, torch.zeros((), dtype=d.dtype, device=d.device))
    return done(ctx, reduce_rows(d), [ea, eb])


def _flat(v: V, size: int) -> V:
    """An array as one row (N, 1, size), in reading order."""
    kind = v.kinds().reshape(v.shape[0], 1, size) if isinstance(v.kind, np.ndarray) else v.kind
    text = None if v.text is None else v.texts().reshape(v.shape[0], 1, size)
    return V(v.x.reshape(v.shape[0], 1, size), kind, text, v.ref)


excel("SUMXMY2", args="rr")(lambda ctx, args: _paired(ctx, args, lambda x, y: (x - y) ** 2))
excel("SUMX2MY2", args="rr")(lambda ctx, args: _paired(ctx, args, lambda x, y: x * x - y * y))
excel("SUMX2PY2", args="rr")(lambda ctx, args: _paired(ctx, args, lambda x, y: x * x + y * y))


@excel("SERIESSUM", args="nnnr")
def f_seriessum(ctx, args):
    """Σ aᵢ·x^(n+i·m): a power series, differentiable in x and the coefficients."""
    (x, n, m), errs = scalar_numbers(args[:3], booleans=False)
    coef = args[3]
    size = coef.shape[1] * coef.shape[2]
    a, ea = to_number(_flat(coef, size))
    if not coef.numeric():
        blank = coef.kinds().reshape(coef.shape[0], 1, size) == BLANK
        ea = first_error(a.shape, ea, where_error(blank, "#VALUE!"))
    i = torch.arange(size, dtype=ctx.dtype, device=ctx.device).reshape(1, 1, size)
    exps = n + i * m
    whole = exps == torch.round(exps)
    ok = ((x > 0) | ((x < 0) & whole) | ((x == 0) & (exps > 0))) & torch.isfinite(x)
    terms = a * guarded(torch.pow, ok, x, exps)
    y = reduce_rows(terms)
    shape = tuple(y.shape)
    errs = first_error(shape, errs, row_errors(with_errors(a, ea)) if ea is not None else None)
    if ctx.strict:
        bad = (~ok).reshape(ok.shape[0], -1).any(dim=1).reshape(-1, 1, 1)
        errs = first_error(
            shape, errs, where_error(torch.broadcast_to(bad, shape).cpu().numpy(), "#NUM!")
        )
    return with_errors(y, strict_num(ctx, y, errs))


@excel("MMULT", args="rr", array_result=True)
def f_mmult(ctx, args):
    a, b = args
    if a.shape[2] != b.shape[1] or not a.numeric() or not b.numeric():
        n = max(a.shape[0], b.shape[0])
        return error_value("#VALUE!", (n, a.shape[1], b.shape[2]), ctx)
    (n, r, k), (nb, _, m) = a.shape, b.shape
    if nb == 1 and _values.LEAN:  # copied down against one fixed range: one product, as matmul
        # folds it, with the shapes set by `reshaped` (fewer view nodes than matmul's own)
        y = torch.mm(reshaped(a.x, (n * r, k)), reshaped(b.x, (k, m)))
        return V(reshaped(y, (n, r, m)))
    return V(torch.matmul(a.x, b.x))


# -- powers, logarithms, roots ------------------------------------------------------------------


@excel("ABS", args="n")
def f_abs(ctx, args):
    x, errs = to_number(args[0])
    return with_errors(torch.abs(x), errs)


@excel("PI", args="")
def f_pi(ctx, args):
    return V(torch.full((1, 1, 1), math.pi, dtype=ctx.dtype, device=ctx.device))


excel("EXP", args="n")(elementwise(torch.exp, smooth=lambda x: x < 709))
excel("LN", args="n")(elementwise(torch.log, lambda x: x > 0, lambda x: x > 0))
excel("LOG10", args="n")(elementwise(torch.log10, lambda x: x > 0, lambda x: x > 0))
excel("SQRT", args="n")(elementwise(torch.sqrt, lambda x: x >= 0, lambda x: x > 0))


@excel("SQRTPI", args="n")
def f_sqrtpi(ctx, args):
    (x,), errs = scalar_numbers(args, booleans=False)
    if ctx.strict:
        errs = first_error(x.shape, errs, where_error((x < 0).cpu().numpy(), "#NUM!"))
    y = guarded(lambda t: torch.sqrt(t * math.pi), x > 0, x)
    return with_errors(y, strict_num(ctx, y, errs))


@excel("LOG", args="nn?")
def f_log(ctx, args):
    x, ex = to_number(args[0])
    b, eb = second(args, x, 10.0)
    y = divide(guarded(torch.log, x > 0, x), guarded(torch.log, b > 0, b))
    shape = tuple(y.shape)
    errs = first_error(shape, ex, eb)
    if ctx.strict:
        bad = torch.broadcast_to((x <= 0) | (b <= 0), shape).cpu().numpy()
        one = torch.broadcast_to(b == 1, shape).cpu().numpy()
        errs = first_error(
            shape, errs, np.where(bad, "#NUM!", None), np.where(one, "#DIV/0!", None)
        )
    return with_errors(y, strict_num(ctx, y, errs))


@excel("POWER", args="nn")
def f_power(ctx, args):
    return arithmetic("^", args[0], args[1], ctx)


# -- trigonometry -------------------------------------------------------------------------------


def _unary(fn, num_ok=None, smooth=None, div0=None):
    """A one-argument continuous function: #NUM! outside `num_ok`, #DIV/0! where `div0`, a
    finite gradient where `smooth` (each a predicate on the tensor, or None for everywhere)."""

    def f(ctx, args):
        x, errs = to_number(args[0])
        if ctx.strict:
            if div0 is not None:
                errs = first_error(x.shape, errs, where_error(div0(x).cpu().numpy(), "#DIV/0!"))
            if num_ok is not None:
                errs = first_error(x.shape, errs, where_error((~num_ok(x)).cpu().numpy(), "#NUM!"))
        y = guarded(fn, smooth(x), x) if smooth is not None else fn(x)
        return with_errors(y, strict_num(ctx, y, errs))

    return f


def _angle(x):
    return torch.abs(x) < TRIG_LIMIT


def _nonzero(x):
    return x != 0


def _zero(x):
    return x == 0


def _inside(x):
    return torch.abs(x) < 1


def _outside(x):
    return torch.abs(x) > 1


for _name, _fn, _num_ok, _smooth, _div0 in [
    ("SIN", torch.sin, _angle, None, None),
    ("COS", torch.cos, _angle, None, None),
    ("TAN", torch.tan, _angle, None, None),
    ("_xlfn.COT", lambda x: 1 / torch.tan(x), _angle, _nonzero, _zero),
    ("_xlfn.CSC", lambda x: 1 / torch.sin(x), _angle, _nonzero, _zero),
    ("_xlfn.SEC", lambda x: 1 / torch.cos(x), _angle, None, None),
    ("ASIN", torch.asin, lambda x: torch.abs(x) <= 1, _inside, None),
    ("ACOS", torch.acos, lambda x: torch.abs(x) <= 1, _inside, None),
    ("ATAN", torch.atan, None, None, None),
    ("_xlfn.ACOT", lambda x: math.pi / 2 - torch.atan(x), None, None, None),
    ("SINH", torch.sinh, None, lambda x: torch.abs(x) < 710, None),
    ("COSH", torch.cosh, None, lambda x: torch.abs(x) < 710, None),
    ("TANH", torch.tanh, None, None, None),
    ("_xlfn.COTH", lambda x: 1 / torch.tanh(x), _angle, _nonzero, _zero),
    (
        "_xlfn.CSCH",
        lambda x: 1 / torch.sinh(x),
        _angle,
        lambda x: (x != 0) & (torch.abs(x) < 710),
        _zero,
    ),
    ("_xlfn.SECH", lambda x: 1 / torch.cosh(x), _angle, lambda x: torch.abs(x) < 710, None),
    ("ASINH", torch.asinh, None, None, None),
    ("ACOSH", torch.acosh, lambda x: x >= 1, lambda x: x > 1, None),
    ("ATANH", torch.atanh, _inside, _inside, None),
    ("_xlfn.ACOTH", lambda x: torch.atanh(1 / x), _outside, _outside, None),
]:
    excel(_name, args="n")(_unary(_fn, _num_ok, _smooth, _div0))


@excel("ATAN2", args="nn")
def f_atan2(ctx, args):
    """ATAN2(x, y): the angle of the point (x, y); #DIV/0! at the origin."""
    (x, y), errs = scalar_numbers(args)
    origin = (x == 0) & (y == 0)
    if ctx.strict:
        shape = broadcast(*args)
        errs = first_error(
            shape, errs, where_error(torch.broadcast_to(origin, shape).cpu().numpy(), "#DIV/0!")
        )
    a = guarded(lambda p, q: torch.atan2(q, p), ~origin, x, y)
    return with_errors(a, strict_num(ctx, a, errs))


@excel("DEGREES", args="n")
def f_degrees(ctx, args):
    x, errs = to_number(args[0])
    return with_errors(x * (180 / math.pi), errs)


@excel("RADIANS", args="n")
def f_radians(ctx, args):
    x, errs = to_number(args[0])
    return with_errors(x * (math.pi / 180), errs)


# -- rounding -----------------------------------------------------------------------------------
# Excel rounds the number it shows: 15 significant digits, in decimal, so that ROUND(2.675, 2)
# is 2.68 and FLOOR(7.1, 0.1) is 7.1 although neither is exact in binary.


def _digits15(x: float) -> Decimal:
    return Decimal(f"{x:.15g}")


def _round_at(x: float, digits: float, mode: str) -> float:
    """x rounded at `digits` decimals (negative: left of the point), half away from zero,
    away from zero (up) or toward zero (down)."""
    if not math.isfinite(x) or not math.isfinite(digits):
        return math.nan
    d = int(max(min(digits, 400), -400))
    with localcontext() as c:
        c.prec = 1000
        step = Decimal(1).scaleb(-d)
        out = _digits15(x).quantize(step, rounding=mode) if d > -340 else Decimal(0)
        if mode == ROUND_UP and out == 0 and x != 0:
            out = step.copy_sign(Decimal(x))
    return float(out)


def _rounding(mode: str):
    def f(ctx, args):
        digits = args[1] if len(args) == 2 and not isinstance(args[1], Omitted) else None

        def compute(x, d=None):
            d = np.zeros_like(x) if d is None else np.trunc(d)
            return np.vectorize(_round_at, otypes=[float])(x, d, mode), None

        return on_numbers(ctx, [args[0]] if digits is None else [args[0], digits], compute)

    return f


excel("ROUND", args="nn", gradient=False)(_rounding(ROUND_HALF_UP))
excel("ROUNDUP", args="nn", gradient=False)(_rounding(ROUND_UP))
excel("ROUNDDOWN", args="nn", gradient=False)(_rounding(ROUND_DOWN))
excel("TRUNC", args="nn?", gradient=False)(_rounding(ROUND_DOWN))


def _whole(q: np.ndarray, how) -> np.ndarray:
    """floor/ceil/trunc/round-half-away of a quotient, as it reads at 15 digits."""
    trimmed = np.vectorize(lambda v: float(f"{v:.15g}") if math.isfinite(v) else v)(q)
    if how == "round":
        return np.sign(trimmed) * np.floor(np.abs(trimmed) + 0.5)
    return how(trimmed)


def _multiple(x: np.ndarray, s: np.ndarray, how) -> np.ndarray:
    """x rounded to a multiple of s (how: np.floor, np.ceil, np.trunc or "round")."""
    safe = np.where(s == 0, 1.0, s)
    return np.where(s == 0, 0.0, _whole(x / safe, how) * safe)


@excel("MROUND", args="nn", gradient=False)
def f_mround(ctx, args):

    def compute(x, m):
        return _multiple(x, m, "round"), where_error(x * m < 0, "#NUM!")

    return on_numbers(ctx, args, compute, booleans=False)


def _floor_ceiling(how, div0: bool):
    """FLOOR, CEILING: floor / ceiling of number ÷ significance, times the significance (a
    negative number may take a negative significance, a positive one may not)."""

    def f(ctx, args):
        def compute(x, s):
            errs = first_error(x.shape, where_error((x > 0) & (s < 0), "#NUM!"))
            if div0:
                errs = first_error(x.shape, where_error((s == 0) & (x != 0), "#DIV/0!"), errs)
            return _multiple(x, s, how), errs

        return on_numbers(ctx, args, compute)

    return f


excel("FLOOR", args="nn", gradient=False)(_floor_ceiling(np.floor, div0=True))
excel("CEILING", args="nn", gradient=False)(_floor_ceiling(np.ceil, div0=False))


@excel("_xlfn.ECMA.CEILING", args="nn", gradient=False)
def f_ecma_ceiling(ctx, args):
    """ECMA.CEILING(number, significance): CEILING as ECMA-376's first edition (Excel 2007)
    defines it — away from zero to a multiple of the significance; a number and a
    significance of different signs is #NUM!."""

    def compute(x, s):
        away = np.where(x < 0, -_multiple(-x, -s, np.ceil), _multiple(x, s, np.ceil))
        return away, where_error(((x > 0) & (s < 0)) | ((x < 0) & (s > 0)), "#NUM!")

    return on_numbers(ctx, args, compute)


def _precise(how):
    """FLOOR.PRECISE, CEILING.PRECISE, ISO.CEILING (the significance's sign ignored, 1 when
    left out); FLOOR.MATH and CEILING.MATH add a mode: when it is not 0, a negative number
    rounds the other way."""
    other = np.ceil if how is np.floor else np.floor

    def f(ctx, args):
        one = V(torch.ones((1, 1, 1), dtype=ctx.dtype, device=ctx.device))
        given = [a if not isinstance(a, Omitted) else None for a in args[1:]]
        sig = given[0] if given and given[0] is not None else one
        mode = [given[1]] if len(given) > 1 and given[1] is not None else []

        def compute(x, s, m=None):
            s = np.abs(s)
            flip = np.zeros(x.shape, bool) if m is None else (m != 0) & (x < 0)
            return np.where(flip, _multiple(x, s, other), _multiple(x, s, how)), None

        return on_numbers(ctx, [args[0], sig, *mode], compute)

    return f


excel("_xlfn.FLOOR.PRECISE", args="nn?", gradient=False)(_precise(np.floor))
excel("_xlfn.CEILING.PRECISE", args="nn?", gradient=False)(_precise(np.ceil))
excel("_xlfn.ISO.CEILING", args="nn?", gradient=False)(_precise(np.ceil))
excel("_xlfn.FLOOR.MATH", args="nn?n?", gradient=False)(_precise(np.floor))
excel("_xlfn.CEILING.MATH", args="nn?n?", gradient=False)(_precise(np.ceil))


def _numeric(compute, booleans: bool = True):
    """A function of numbers, computed by `compute` (see on_numbers)."""

    def f(ctx, args):
        return on_numbers(ctx, args, compute, booleans)

    return f


def _parity(x: np.ndarray, odd: bool) -> np.ndarray:
    """EVEN, ODD: away from zero to the next even / odd integer."""
    a = np.abs(x)
    n = np.ceil((a - 1) / 2) * 2 + 1 if odd else np.ceil(a / 2) * 2
    return np.where(x < 0, -n, n)


excel("EVEN", args="n", gradient=False)(_numeric(lambda x: (_parity(x, False), None)))
excel("ODD", args="n", gradient=False)(_numeric(lambda x: (_parity(x, True), None)))
excel("SIGN", args="n", gradient=False)(_numeric(lambda x: (np.sign(x), None)))
excel("INT", args="n", gradient=False)(_numeric(lambda x: (np.floor(x), None)))


# -- division -----------------------------------------------------------------------------------


@excel("MOD", args="nn")
def f_mod(ctx, args):
    """The remainder with the divisor's sign, computed exactly (fmod) as Excel does."""
    (n, d), errs = scalar_numbers(args)
    ok = d != 0
    r = guarded(torch.fmod, ok, n, d)
    flip = (r != 0) & ((r < 0) != (d < 0))
    r = torch.where(flip, r + d, r)
    if ctx.strict:
        shape = broadcast(*args)
        errs = first_error(
            shape, errs, where_error(torch.broadcast_to(~ok, shape).cpu().numpy(), "#DIV/0!")
        )
    return with_errors(r, strict_num(ctx, r, errs))


@excel("QUOTIENT", args="nn", gradient=False)
def f_quotient(ctx, args):

    def compute(n, d):
        return _whole(n / np.where(d == 0, 1.0, d), np.trunc), where_error(d == 0, "#DIV/0!")

    return on_numbers(ctx, args, compute, booleans=False)


# -- whole numbers and combinatorics ------------------------------------------------------------


def _exact_float(n: int) -> float:
    try:
        return float(n)
    except OverflowError:
        return math.inf


def _fact(x: float) -> float:
    if not 0 <= x < 171:
        return math.nan if x < 0 else math.inf
    return _exact_float(math.factorial(int(x)))


def _fact_double(x: float) -> float:
    n = int(x) if math.isfinite(x) else 0
    if x < 0 or n > 400:
        return math.nan if x < 0 else math.inf
    return _exact_float(math.prod(range(n, 0, -2)))


def _combin(n: float, k: float) -> float:
    """n choose k, exactly while it is a float."""
    if not (math.isfinite(n) and math.isfinite(k)):
        return math.nan
    n, k = math.trunc(n), math.trunc(k)
    if n < 0 or k < 0 or k > n:
        return math.nan
    k = min(k, n - k)
    if n < 100_000:
        return _exact_float(math.comb(n, k))
    if math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) > 710:
        return math.inf
    return math.prod((n - k + i) / i for i in range(1, k + 1))


def _combina(n: float, k: float) -> float:
    if not (math.isfinite(n) and math.isfinite(k)) or n < 0 or k < 0:
        return math.nan
    n, k = math.trunc(n), math.trunc(k)
    if n == 0 and k == 0:
        return 1.0
    return _combin(n + k - 1, k)


def _vectorized(fn):
    return lambda *xs: (np.vectorize(fn, otypes=[float])(*xs), None)


excel("FACT", args="n", gradient=False)(_numeric(_vectorized(_fact)))
excel("FACTDOUBLE", args="n", gradient=False)(_numeric(_vectorized(_fact_double), booleans=False))
excel("COMBIN", args="nn", gradient=False)(_numeric(_vectorized(_combin)))
excel("_xlfn.COMBINA", args="nn", gradient=False)(_numeric(_vectorized(_combina)))


def _all_numbers(args: list[V], n: int):
    """For GCD, LCM, MULTINOMIAL: per block row, every value of every argument as a float
    (numeric text read, an empty cell skipped alone and 0 in a range), or the first error met
    (#VALUE! for text and booleans, #N/A for an argument left out)."""
    rows: list[list[float] | str] = [[] for _ in range(n)]
    for v in args:
        if isinstance(v, Omitted):
            rows = [r if isinstance(r, str) else "#N/A" for r in rows]
            continue
        k, t = v.kinds(), v.texts()
        x = v.x.detach().cpu().numpy()
        for r in range(n):
            if isinstance(rows[r], str):
                continue
            rr = min(r, v.shape[0] - 1)
            for kind, value, text in zip(k[rr].ravel(), x[rr].ravel(), t[rr].ravel(), strict=True):
                if kind == BLANK:  # skipped as an argument of its own, 0 inside a range
                    if v.shape[1:] != (1, 1):  # (LCM(G35:H35) with G35 empty is 0 in Excel)
                        rows[r].append(0.0)
                    continue
                if kind == NUM:
                    rows[r].append(float(value))
                    continue
                number = text_number(str(text)) if kind == TEXT else None
                if number is None:
                    rows[r] = str(text) if kind == ERR else "#VALUE!"
                    break
                rows[r].append(number)
    return rows


def _integers(ctx, name: str, args: list[V], fold) -> V:
    """GCD, LCM, MULTINOMIAL: fold(list of non-negative whole numbers) per block row. Empty
    cells are skipped; with nothing but single empty cells as arguments it is #VALUE!, with
    only empty ranges 0."""
    n = max(v.shape[0] for v in args)
    lone_blanks = np.ones(n, bool)  # per block row: every argument a single empty cell
    for v in args:
        single = v.shape[1:] == (1, 1)
        lone_blanks &= np.broadcast_to(v.kinds()[:, 0, 0] == BLANK, n) if single else False
    out, errs = np.zeros(n), np.full(n, None, dtype=object)
    for r, values in enumerate(_all_numbers(args, n)):
        if isinstance(values, str):
            errs[r] = values
        elif not values and lone_blanks[r]:
            errs[r] = "#VALUE!"
        elif any(v < 0 or v >= WHOLE_LIMIT for v in values):
            errs[r] = "#NUM!"
        elif values or name == "MULTINOMIAL":
            out[r] = fold([int(v) for v in values])
            if out[r] >= WHOLE_LIMIT:
                errs[r] = "#NUM!"
    x = torch.as_tensor(out.reshape(n, 1, 1), dtype=ctx.dtype, device=ctx.device)
    return done(ctx, x, [errs.reshape(n, 1, 1)])


def _multinomial(values: list[int]) -> float:
    total, out = 0, 1
    for v in values:
        total += v
        out *= math.comb(total, v)
    return _exact_float(out)


excel("GCD", args="r+", gradient=False)(
    lambda ctx, args: _integers(ctx, "GCD", args, lambda v: math.gcd(*v))
)
excel("LCM", args="r+", gradient=False)(
    lambda ctx, args: _integers(ctx, "LCM", args, lambda v: math.lcm(*v))
)
excel("MULTINOMIAL", args="r+", gradient=False)(
    lambda ctx, args: _integers(ctx, "MULTINOMIAL", args, _multinomial)
)


# -- number systems -----------------------------------------------------------------------------

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _text_result(ctx, texts: np.ndarray, errs: np.ndarray | None) -> V:
    shape = texts.shape
    x = torch.zeros(shape, dtype=ctx.dtype, device=ctx.device)
    return with_errors(x, errs, np.full(shape, TEXT, np.int8), texts)


def _text_of(ctx, args: list[V], fn, booleans: bool = True) -> V:
    """A function of numbers whose result is text: fn(*floats) -> str, or an error code
    prefixed with '#'."""
    xs, errs = scalar_numbers(args, booleans)
    shape = broadcast(*args)
    arrays = [np.broadcast_to(x.detach().cpu().numpy(), shape) for x in xs]
    texts = np.full(shape, "", dtype=object)
    mine = np.full(shape, None, dtype=object)
    for idx in np.ndindex(shape):
        if errs is not None and errs[idx] is not None:
            continue
        s = fn(*(float(a[idx]) for a in arrays))
        if s.startswith("#"):
            mine[idx] = s
        else:
            texts[idx] = s
    return _text_result(ctx, texts, first_error(shape, errs, mine))


def _base(number: float, radix: float, length: float = 0.0) -> str:
    number, radix, length = math.trunc(number), math.trunc(radix), math.trunc(length)
    if not (0 <= number < WHOLE_LIMIT and 2 <= radix <= 36 and 0 <= length <= 255):
        return "#NUM!"
    digits = ""
    while number:
        number, d = divmod(number, radix)
        digits = _DIGITS[d] + digits
    return (digits or "0").rjust(length, "0")


@excel("_xlfn.BASE", args="nnn?", gradient=False)
def f_base(ctx, args):
    return _text_of(ctx, [a for a in args if not isinstance(a, Omitted)], _base)


@excel("_xlfn.DECIMAL", args="tn", gradient=False)
def f_decimal(ctx, args):
    texts, et = to_text(args[0])
    (radix,), er = scalar_numbers(args[1:])
    shape = broadcast(*args)
    texts = np.broadcast_to(texts, shape)
    radix = np.broadcast_to(np.trunc(radix.detach().cpu().numpy()), shape)
    out, mine = np.zeros(shape), np.full(shape, None, dtype=object)
    for idx in np.ndindex(shape):
        s, b = str(texts[idx]).strip(), radix[idx]
        try:
            if not 2 <= b <= 36 or len(s) > 255:
                raise ValueError
            out[idx] = float(int(s, int(b))) if s else 0.0
        except ValueError:
            mine[idx] = "#NUM!"
    x = torch.as_tensor(out, dtype=ctx.dtype, device=ctx.device)
    return done(ctx, x, [et, er, mine])


_ROMAN = [(1000, "M"), (500, "D"), (100, "C"), (50, "L"), (10, "X"), (5, "V"), (1, "I")]


def _roman(number: float, form: float = 0.0) -> str:
    """ROMAN: classic (form 0) to most concise (4) numerals, as Excel writes them."""
    number, form = math.trunc(number), math.trunc(form)
    if not 0 <= number <= 3999 or not 0 <= form <= 4:
        return "#VALUE!"
    values = [v for v, _ in _ROMAN]
    letters = dict(_ROMAN)
    out = ""
    for i in range(0, len(values), 2):  # M, C, X, I: one decimal digit at a time
        unit = values[i]
        digit = number // unit
        if digit % 5 == 4:  # 4 or 9: a subtraction, as loose as the form allows
            big = values[i - 1] if digit == 4 else values[i - 2]
            j, steps = i, 0
            while steps < form and j < len(values) - 1:
                steps += 1
                if big - values[j + 1] <= number:
                    j += 1
                else:
                    break
            out += letters[values[j]] + letters[big]
            number = number + values[j] - big
        else:
            if digit > 4:
                out += letters[values[i - 1]]
            out += letters[unit] * (digit % 5)
            number %= unit
    return out


@excel("ROMAN", args="nn?", gradient=False)
def f_roman(ctx, args):
    if len(args) == 2 and not isinstance(args[1], Omitted) and not args[1].numeric():
        form = args[1]  # TRUE is the classic form, FALSE the most concise one
        logical = form.kinds() == BOOL
        if logical.any():
            x = torch.where(
                torch.as_tensor(logical, device=form.x.device),
                torch.where(form.x != 0, 0.0, 4.0).to(form.x.dtype),
                form.x,
            )
            kind = np.where(logical, NUM, form.kinds()).astype(np.int8)
            args = [args[0], make(x, kind, form.text)]
    return _text_of(ctx, [a for a in args if not isinstance(a, Omitted)], _roman)


_ARABIC = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def _arabic(s: str) -> float | None:
    """ARABIC: each numeral adds, or subtracts when a larger one follows it."""
    s = s.strip().upper()
    sign = -1 if s.startswith("-") else 1
    s = s[1:] if sign < 0 else s
    if len(s) > 255 or any(ch not in _ARABIC for ch in s):
        return None
    values = [_ARABIC[ch] for ch in s]
    total = sum(
        -v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values)
    )
    return float(sign * total)


@excel("_xlfn.ARABIC", args="t", gradient=False)
def f_arabic(ctx, args):
    v = args[0]
    k, t, errs = v.kinds(), v.texts(), errors_of(v)
    out, mine = np.zeros(v.shape), np.full(v.shape, None, dtype=object)
    for idx in np.ndindex(v.shape):
        if k[idx] == BLANK:
            continue
        n = _arabic(str(t[idx])) if k[idx] == TEXT else None
        if n is None:
            mine[idx] = "#VALUE!"
        else:
            out[idx] = n
    x = torch.as_tensor(out, dtype=ctx.dtype, device=ctx.device)
    return done(ctx, x, [errs, mine])


# -- random numbers -----------------------------------------------------------------------------


def _uniform(ctx, shape: tuple[int, ...]) -> torch.Tensor:
    """Independent draws in [0, 1): one per element and per cell the call draws for
    (ctx.draws: each row of a copied-down block, each cell of an array formula), from the
    evaluation's generator."""
    shape = tuple(max(a, b) for a, b in zip(shape, ctx.draws, strict=True))
    return torch.rand(shape, generator=ctx.random, dtype=ctx.dtype, device=ctx.device)


@excel("RAND", args="", gradient=False, volatile=True)
def f_rand(ctx, args):
    return V(_uniform(ctx, (1, 1, 1)))


@excel("RANDBETWEEN", args="nn", gradient=False, volatile=True)
def f_randbetween(ctx, args):
    (lo, hi), errs = scalar_numbers(args, booleans=False)
    lo, hi = torch.ceil(lo.detach()), torch.floor(hi.detach())
    u = _uniform(ctx, broadcast(*args))
    x = torch.floor(lo + u * (hi - lo + 1))
    if not ctx.strict and errs is None:  # while training: no device sync
        return V(torch.where(lo > hi, float("nan"), x))
    bad = (lo > hi).cpu().numpy()
    errs = first_error(tuple(x.shape), errs, where_error(bad, "#NUM!"))
    if errs is not None:
        x = torch.where(torch.as_tensor(errs != None, device=x.device), 0.0, x)  # noqa: E711
    return with_errors(x, strict_num(ctx, x, errs))


@excel("_xlfn.RANDARRAY", args="n?n?n?n?b?", gradient=False, volatile=True)
def f_randarray(ctx, args):
    """RANDARRAY([rows], [columns], [min], [max], [whole_number]): an array of draws, numbers
    in [min, max) or whole numbers from min to max."""
    given = [None if isinstance(a, Omitted) else a for a in args] + [None] * (5 - len(args))
    values, errs = [], []
    for v, default in zip(given, (1.0, 1.0, 0.0, 1.0, 0.0), strict=True):
        if v is None:
            values.append(default)
            continue
        if v.shape != (1, 1, 1):
            raise FormulaError("RANDARRAY with arrays or ranges as its arguments")
        x, e = to_number(v)
        errs.append(e)
        values.append(float(x.reshape(-1)[0]))
    rows, cols, lo, hi, whole = values
    e = first_error((1, 1, 1), *errs)
    if e is not None:
        return with_errors(torch.zeros((1, 1, 1), dtype=ctx.dtype, device=ctx.device), e)
    rows, cols = int(math.trunc(rows)), int(math.trunc(cols))
    if whole:
        lo, hi = math.ceil(lo), math.floor(hi)
    if rows < 1 or cols < 1 or lo > hi:
        return error_value("#VALUE!", (1, 1, 1), ctx)
    shape = (ctx.draws[0], rows, cols)  # its own array, for each row of a copied-down block
    u = torch.rand(shape, generator=ctx.random, dtype=ctx.dtype, device=ctx.device)
    return V(torch.floor(lo + u * (hi - lo + 1)) if whole else lo + u * (hi - lo))


# -- criteria -----------------------------------------------------------------------------------


@excel("SUMIF", args="rvr?", resolve=sum_range_shape)
def f_sumif(ctx, args):
    target = args[2] if len(args) == 3 and not isinstance(args[2], Omitted) else args[0]
    return conditional(ctx, "sum", target, [(args[0], args[1])], resize=True)


@excel("SUMIFS")
def f_sumifs(ctx, args):
    if len(args) < 3 or len(args) % 2 == 0:
        raise FormulaError("SUMIFS takes a sum range and pairs of a range and a criterion")
    pairs = list(zip(args[1::2], args[2::2], strict=True))
    return conditional(ctx, "sum", args[0], pairs)
