"""ENGINEERING: the error function, Bessel functions, number systems, bitwise operations,
unit conversion (CONVERT) and the step functions GESTEP and DELTA.

These are the Analysis ToolPak's functions: TRUE and FALSE are #VALUE! where they take numbers
(the bitwise ones, added in Excel 2013, read them as 1 and 0). ERF and ERFC are continuous and
pass gradients; the rest are step functions, integer arithmetic, text, or (Bessel) Excel's own
approximations, computed in Python/numpy without a gradient.

Excel's Bessel functions are the Numerical Recipes approximations (rational and polynomial
fits, good to about 1e-8, and recurrences in the order), reproduced here as Excel evaluates
them: BESSELJ(0,0) is 1.00000000283141, not 1, and BESSELJ(x,1) for |x| >= 8 carries a
coefficient of its asymptotic series twice (Excel's stored values match only with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from excelnet.formula.functions.kit import (
    cellwise,
    on_numbers,
    scalar_numbers,
    strict_num,
    where_error,
)
from excelnet.formula.functions.registry import FUNCTIONS, registrar
from excelnet.formula.parse import Error
from excelnet.formula.values import Omitted, V, format_number, scalar, text_number, with_errors

excel = registrar("ENGINEERING")


def _toolpak_number(value) -> float | Error:
    """One argument as the ToolPak reads it (an element from `cellwise`'s "v" form): numbers,
    numeric text and blanks (0); TRUE/FALSE and other text are #VALUE!."""
    if isinstance(value, Error):
        return value
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return Error("#VALUE!")
    if isinstance(value, str):
        n = text_number(value)
        return Error("#VALUE!") if n is None else n
    return float(value)


def _given(args: list[V], name: str) -> list[V]:
    """The arguments without trailing ones left out (ERF(1,), DEC2BIN(5,)): still as many as
    the function takes (ERF(,) does not)."""
    while args and isinstance(args[-1], Omitted):
        args = args[:-1]
    FUNCTIONS[name].args.check(name, args)
    return args


# -- the error function ----------------------------------------------------------------------


def _erf_of(ctx, name: str, args: list[V], fn) -> V:
    xs, errs = scalar_numbers(args, booleans=False)
    y = fn(*xs)
    return with_errors(y, strict_num(ctx, y, errs))


@excel("ERF", args="nn?")
def f_erf(ctx, args):
    """ERF(lower) is erf(lower); ERF(lower, upper) is erf(upper) - erf(lower)."""
    args = _given(args, "ERF")
    if len(args) == 1:
        return _erf_of(ctx, "ERF", args, torch.special.erf)
    return _erf_of(ctx, "ERF", args, lambda a, b: torch.special.erf(b) - torch.special.erf(a))


@excel("_xlfn.ERF.PRECISE", args="n")
def f_erf_precise(ctx, args):
    return _erf_of(ctx, "ERF.PRECISE", args, torch.special.erf)


@excel("ERFC", "_xlfn.ERFC.PRECISE", args="n")
def f_erfc(ctx, args):
    return _erf_of(ctx, "ERFC", args, torch.special.erfc)


# -- GESTEP and DELTA -------------------------------------------------------------------------


def _two(ctx, name: str, args: list[V], compare) -> V:
    """number and an optional second number (0 when left out), compared to 1 or 0."""
    args = _given(args, name)
    if len(args) == 1:
        args = [args[0], scalar(0.0, ctx)]
    return on_numbers(ctx, args, lambda a, b: (compare(a, b).astype(float), None), False)


@excel("GESTEP", args="nn?", gradient=False)
def f_gestep(ctx, args):
    return _two(ctx, "GESTEP", args, np.greater_equal)


@excel("DELTA", args="nn?", gradient=False)
def f_delta(ctx, args):
    return _two(ctx, "DELTA", args, np.equal)


# -- bitwise operations ---------------------------------------------------------------------

BIT_LIMIT = 2.0**48  # the bitwise functions take whole numbers 0 <= n < 2^48
SHIFT_LIMIT = 53  # and shift by at most 53 places either way


def _bits_ok(*xs: np.ndarray) -> np.ndarray:
    ok = np.ones(np.broadcast_shapes(*(x.shape for x in xs)), bool)
    for x in xs:
        ok &= (x >= 0) & (x < BIT_LIMIT) & (x == np.trunc(x))
    return ok


def _bitwise(op):
    def f(ctx, args):
        def compute(a, b):
            ok = _bits_ok(a, b)
            out = op(np.where(ok, a, 0).astype(np.int64), np.where(ok, b, 0).astype(np.int64))
            return out.astype(float), where_error(~ok, "#NUM!")

        return on_numbers(ctx, args, compute)

    return f


excel("_xlfn.BITAND", args="nn", gradient=False)(_bitwise(np.bitwise_and))
excel("_xlfn.BITOR", args="nn", gradient=False)(_bitwise(np.bitwise_or))
excel("_xlfn.BITXOR", args="nn", gradient=False)(_bitwise(np.bitwise_xor))


def _shift(number: np.ndarray, places: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """number * 2^places (places truncated; a right shift drops the bits shifted out)."""
    places = np.trunc(places)
    ok = _bits_ok(number) & (np.abs(places) <= SHIFT_LIMIT)
    p = np.where(ok, places, 0)
    out = np.where(p >= 0, number * 2.0**p, np.floor(number / 2.0 ** (-p)))
    ok &= out < BIT_LIMIT
    return np.where(ok, out, 0.0), where_error(~ok, "#NUM!")


@excel("_xlfn.BITLSHIFT", args="nn", gradient=False)
def f_bitlshift(ctx, args):
    return on_numbers(ctx, args, _shift)


@excel("_xlfn.BITRSHIFT", args="nn", gradient=False)
def f_bitrshift(ctx, args):
    return on_numbers(ctx, args, lambda n, s: _shift(n, -s))


# -- number systems ---------------------------------------------------------------------------

# Each system's digits and the range a result must fit: ten digits at most, the negative
# numbers in ten digits' two's complement.
_RADIX = {"BIN": 2, "OCT": 8, "DEC": 10, "HEX": 16}
_DIGITS = "0123456789ABCDEF"


def _read_digits(value, radix: int) -> int | Error:
    """A BIN/OCT/HEX argument (text or a number written as its digits) as an integer: up to
    10 digits, a 10-digit one with its top bit set being negative (two's complement)."""
    if isinstance(value, Error):
        return value
    if isinstance(value, bool):
        return Error("#VALUE!")
    text = "" if value is None else format_number(value) if isinstance(value, float) else value
    text = text.upper()
    if len(text) > 10 or any(c not in _DIGITS[:radix] for c in text):
        return Error("#NUM!")
    n = int(text or "0", radix)
    return n - radix**10 if n >= radix**10 // 2 else n


def _write_digits(n: int, radix: int, *given) -> str | Error:
    """An integer in a system's ten digits (negatives in two's complement, places ignored
    but checked), padded with zeros to the places when given (1 to 10, and no fewer than the
    digits; an empty cell is 0)."""
    half = radix**10 // 2
    if not -half <= n < half:
        return Error("#NUM!")
    places = None
    if given:
        places = _toolpak_number(given[0])
        if isinstance(places, Error):
            return places
        places = math.trunc(places)
        if not 1 <= places <= 10:
            return Error("#NUM!")
    digits = np.base_repr(n if n >= 0 else n + radix**10, radix)
    if n < 0 or places is None:
        return digits
    return digits.rjust(places, "0") if len(digits) <= places else Error("#NUM!")


def _conversion(source: str, target: str):
    """BIN2DEC, DEC2HEX, …: from one number system to another, with places for a text
    result."""
    name = f"{source}2{target}"
    radix_in, radix_out = _RADIX[source], _RADIX[target]

    def convert(value, *places):
        if radix_in == 10:
            x = _toolpak_number(value)
            n = x if isinstance(x, Error) else math.trunc(x)
        else:
            n = _read_digits(value, radix_in)
        if isinstance(n, Error) or radix_out == 10:
            return n if isinstance(n, Error) else float(n)
        return _write_digits(n, radix_out, *places)

    def f(ctx, args):
        args = _given(args, name)
        return cellwise(ctx, args, "v" * len(args), convert)

    excel(name, args="v" if target == "DEC" else "vv?", gradient=False)(f)


for _source in _RADIX:
    for _target in _RADIX:
        if _source != _target:
            _conversion(_source, _target)


# -- Bessel functions (Numerical Recipes, as Excel computes them) --------------------------------

_TWO_OVER_PI = 0.636619772  # 2/π as Excel's approximations write it
# Coefficients, lowest order first: rational fits for small x (numerator, denominator in x²),
# and the asymptotic series' two factors in (8/x)² for large x.
_J0_NUM = (57568490574.0, -13362590354.0, 651619640.7, -11214424.18, 77392.33017, -184.9052456)
_J0_DEN = (57568490411.0, 1029532985.0, 9494680.718, 59272.64853, 267.8532712, 1.0)
_J0_P = (1.0, -0.1098628627e-2, 0.2734510407e-4, -0.2073370639e-5, 0.2093887211e-6)
_J0_Q = (-0.1562499995e-1, 0.1430488765e-3, -0.6911147651e-5, 0.7621095161e-6, -0.934935152e-7)
_Y0_Q = _J0_Q[:-1] + (-0.934945152e-7,)  # (sic)
_J1_NUM = (72362614232.0, -7895059235.0, 242396853.1, -2972611.439, 15704.48260, -30.16036606)
_J1_DEN = (144725228442.0, 2300535178.0, 18583304.74, 99447.43394, 376.9991397, 1.0)
_Y1_P = (1.0, 0.183105e-2, -0.3516396496e-4, 0.2457520174e-5, -0.240337019e-6)
_J1_P = _Y1_P[:3] + _Y1_P[2:]  # Excel's BESSELJ has the third coefficient twice
_J1_Q = (0.04687499995, -0.2002690873e-3, 0.8449199096e-5, -0.88228987e-6, 0.105787412e-6)
_Y0_NUM = (-2957821389.0, 7062834065.0, -512359803.6, 10879881.29, -86327.92757, 228.4622733)
_Y0_DEN = (40076544269.0, 745249964.8, 7189466.438, 47447.26470, 226.1030244, 1.0)
_Y1_NUM = (
    -0.4900604943e13,
    0.1275274390e13,
    -0.5153438139e11,
    0.7349264551e9,
    -0.4237922726e7,
    0.8511937935e4,
)
_Y1_DEN = (
    0.2499580570e14,
    0.4244419664e12,
    0.3733650367e10,
    0.2245904002e8,
    0.1020426050e6,
    0.3549632885e3,
    1.0,
)
_I0_SMALL = (1.0, 3.5156229, 3.0899424, 1.2067492, 0.2659732, 0.360768e-1, 0.45813e-2)
_I0_LARGE = (
    0.39894228,
    0.1328592e-1,
    0.225319e-2,
    -0.157565e-2,
    0.916281e-2,
    -0.2057706e-1,
    0.2635537e-1,
    -0.1647633e-1,
    0.392377e-2,
)
_I1_SMALL = (0.5, 0.87890594, 0.51498869, 0.15084934, 0.2658733e-1, 0.301532e-2, 0.32411e-3)
_I1_LARGE = (
    0.39894228,
    -0.3988024e-1,
    -0.362018e-2,
    0.163801e-2,
    -0.1031555e-1,
    0.2282967e-1,
    -0.2895312e-1,
    0.1787654e-1,
    -0.420059e-2,
)
_K0_SMALL = (-0.57721566, 0.42278420, 0.23069756, 0.3488590e-1, 0.262698e-2, 0.10750e-3, 0.74e-5)
_K0_LARGE = (
    1.25331414,
    -0.7832358e-1,
    0.2189568e-1,
    -0.1062446e-1,
    0.587872e-2,
    -0.251540e-2,
    0.53208e-3,
)
_K1_SMALL = (1.0, 0.15443144, -0.67278579, -0.18156897, -0.1919402e-1, -0.110404e-2, -0.4686e-4)
_K1_LARGE = (
    1.25331414,
    0.23498619,
    -0.3655620e-1,
    0.1504268e-1,
    -0.780353e-2,
    0.325614e-2,
    -0.68245e-3,
)


def _poly(y: float, coefficients: tuple[float, ...]) -> float:
    """c0 + c1 y + c2 y² + … (Horner)."""
    out = 0.0
    for c in reversed(coefficients):
        out = out * y + c
    return out


def _ratio(y: float, num: tuple[float, ...], den: tuple[float, ...]) -> float:
    return _poly(y, num) / _poly(y, den)


def _wave(x: float, phase: float, p: tuple, q: tuple, sine: bool) -> float:
    """The asymptotic form sqrt(2/(πx)) (P cos χ - z Q sin χ), z = 8/x, χ = x - phase (J), or
    with sin and cos swapped (Y)."""
    z = 8.0 / x
    a, b = _poly(z * z, p), z * _poly(z * z, q)
    c, s = math.cos(x - phase), math.sin(x - phase)
    return math.sqrt(_TWO_OVER_PI / x) * (s * a + c * b if sine else c * a - s * b)


def _j0(x: float) -> float:
    ax = abs(x)
    if ax < 8.0:
        return _ratio(x * x, _J0_NUM, _J0_DEN)
    return _wave(ax, 0.785398164, _J0_P, _J0_Q, sine=False)


def _j1(x: float) -> float:
    ax = abs(x)
    if ax < 8.0:
        return x * _ratio(x * x, _J1_NUM, _J1_DEN)
    out = _wave(ax, 2.356194491, _J1_P, _J1_Q, sine=False)
    return -out if x < 0 else out


_BIG, _SMALL = 1e10, 1e-10  # rescaling in the downward recurrences
_ACCURACY = 40.0  # how far above n the downward recurrences start


def _jn(n: int, x: float) -> float:
    if n < 2:
        return _j0(x) if n == 0 else _j1(x)
    ax = abs(x)
    if ax == 0.0:
        return 0.0
    two_over_x = 2.0 / ax
    if ax > n:  # upward recurrence is stable here
        before, now = _j0(ax), _j1(ax)
        for j in range(1, n):
            before, now = now, j * two_over_x * now - before
        out = now
    else:  # Miller's downward recurrence, normalised by J0 + 2 J2 + 2 J4 + … = 1
        m = 2 * ((n + int(math.sqrt(_ACCURACY * n))) // 2)
        even, out, total, above, now = False, 0.0, 0.0, 0.0, 1.0
        for j in range(m, 0, -1):
            above, now = now, j * two_over_x * now - above
            if abs(now) > _BIG:
                now, above, out, total = now * _SMALL, above * _SMALL, out * _SMALL, total * _SMALL
            if even:
                total += now
            even = not even
            if j == n:
                out = above
        out /= 2.0 * total - now
    return -out if x < 0 and n % 2 else out


def _y0(x: float) -> float:
    if x < 8.0:
        return _ratio(x * x, _Y0_NUM, _Y0_DEN) + _TWO_OVER_PI * _j0(x) * math.log(x)
    return _wave(x, 0.785398164, _J0_P, _Y0_Q, sine=True)


def _y1(x: float) -> float:
    if x < 8.0:
        y = x * x
        return x * _ratio(y, _Y1_NUM, _Y1_DEN) + _TWO_OVER_PI * (_j1(x) * math.log(x) - 1 / x)
    return _wave(x, 2.356194491, _Y1_P, _J1_Q, sine=True)


def _upward(n: int, x: float, first: float, second: float, sign: float) -> float:
    """Y_n and K_n from orders 0 and 1: f(j+1) = (2j/x) f(j) + sign · f(j-1)."""
    if n == 0:
        return first
    before, now = first, second
    for j in range(1, n):
        before, now = now, j * (2.0 / x) * now + sign * before
    return now


def _i0(x: float) -> float:
    ax = abs(x)
    if ax < 3.75:
        return _poly((x / 3.75) ** 2, _I0_SMALL)
    return math.exp(ax) / math.sqrt(ax) * _poly(3.75 / ax, _I0_LARGE)


def _i1(x: float) -> float:
    ax = abs(x)
    if ax < 3.75:
        out = ax * _poly((x / 3.75) ** 2, _I1_SMALL)
    else:
        out = math.exp(ax) / math.sqrt(ax) * _poly(3.75 / ax, _I1_LARGE)
    return -out if x < 0 else out


def _in(n: int, x: float) -> float:
    if n < 2:
        return _i0(x) if n == 0 else _i1(x)
    if x == 0.0:
        return 0.0
    two_over_x = 2.0 / abs(x)
    out, above, now = 0.0, 0.0, 1.0
    for j in range(2 * (n + int(math.sqrt(_ACCURACY * n))), 0, -1):
        above, now = now, above + j * two_over_x * now
        if abs(now) > _BIG:
            out, now, above = out * _SMALL, now * _SMALL, above * _SMALL
        if j == n:
            out = above
    out *= _i0(x) / now
    return -out if x < 0 and n % 2 else out


def _k0(x: float) -> float:
    if x <= 2.0:
        return -math.log(x / 2.0) * _i0(x) + _poly(x * x / 4.0, _K0_SMALL)
    return math.exp(-x) / math.sqrt(x) * _poly(2.0 / x, _K0_LARGE)


def _k1(x: float) -> float:
    if x <= 2.0:
        return math.log(x / 2.0) * _i1(x) + _poly(x * x / 4.0, _K1_SMALL) / x
    return math.exp(-x) / math.sqrt(x) * _poly(2.0 / x, _K1_LARGE)


_BESSEL = {
    "BESSELI": (_in, False),
    "BESSELJ": (_jn, False),
    "BESSELK": (lambda n, x: _upward(n, x, _k0(x), _k1(x), 1.0), True),
    "BESSELY": (lambda n, x: _upward(n, x, _y0(x), _y1(x), -1.0), True),
}
ORDER_LIMIT = 2**31  # Excel's orders are 32-bit integers


def _bessel(name: str):
    fn, positive = _BESSEL[name]

    def f(ctx, args):
        def compute(x, n):  # (x and n come broadcast to the result's shape)
            n = np.trunc(n)
            bad = (n < 0) | (n >= ORDER_LIMIT) | (positive & (x <= 0)) | ~np.isfinite(x)
            out = np.zeros(x.shape)
            for idx in zip(*np.nonzero(~bad), strict=True):
                try:
                    out[idx] = fn(int(n[idx]), float(x[idx]))
                except OverflowError:
                    out[idx] = math.inf  # beyond a double: #NUM! (strict_num)
            return out, where_error(bad, "#NUM!")

        return on_numbers(ctx, args, compute, booleans=False)

    excel(name, args="nn", gradient=False)(f)


for _name in _BESSEL:
    _bessel(_name)


# -- CONVERT ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A unit of CONVERT: its quantity, and the value in the quantity's base unit as
    scale · x + offset (an offset for the temperature scales only)."""

    quantity: str
    scale: float
    offset: float = 0.0
    prefixes: bool = False  # takes SI prefixes (and binary ones, for information)
    power: int = 1  # a prefix counts squared or cubed (km2, km3)


_LB = 453.59237  # g
_IN = 0.0254  # m
_FT, _MI, _PICA_PT = 12 * _IN, 63360 * _IN, _IN / 72
_LBF = _LB / 1000 * 9.80665  # N
_HP = 550 * _LBF * _FT  # W
_US_GAL = 231 * _IN**3  # m3
_UK_GAL = 0.00454609  # m3
_LY = 9460730472580800.0  # m

# Excel's units (its CONVERT documentation), by quantity, in the quantity's base unit
# (g, m, s, Pa, N, J, W, T, K, m3, m2, bit, m/s). "*" marks those that take prefixes.
_TABLE = {
    "mass": {
        "g*": 1.0,
        "sg": _LBF / _FT * 1000,
        "lbm": _LB,
        "u*": 1.660538782e-24,
        "ozm": _LB / 16,
        "grain": _LB / 7000,
        "cwt shweight": 100 * _LB,
        "uk_cwt lcwt hweight": 112 * _LB,
        "stone": 14 * _LB,
        "ton": 2000 * _LB,
        "uk_ton LTON brton": 2240 * _LB,
    },
    "distance": {
        "m*": 1.0,
        "mi": _MI,
        "Nmi": 1852.0,
        "in": _IN,
        "ft": _FT,
        "yd": 3 * _FT,
        "ang*": 1e-10,
        "ell": 45 * _IN,
        "ly*": _LY,
        "parsec* pc*": 3.0856775812815532e16,
        "Picapt Pica": _PICA_PT,
        "pica": _IN / 6,
        "survey_mi": 5280 * 1200 / 3937,
    },
    "time": {
        "yr": 365.25 * 86400,
        "day d": 86400.0,
        "hr": 3600.0,
        "mn min": 60.0,
        "sec* s*": 1.0,
    },
    "pressure": {
        "Pa* p*": 1.0,
        "atm* at*": 101325.0,
        "mmHg*": 133.322,
        "psi": _LBF / _IN**2,
        "Torr": 101325 / 760,
    },
    "force": {"N*": 1.0, "dyn* dy*": 1e-5, "lbf": _LBF, "pond*": 9.80665e-3},
    "energy": {
        "J*": 1.0,
        "e*": 1e-7,
        "c*": 4.184,
        "cal*": 4.1868,
        "eV* ev*": 1.602176487e-19,
        "HPh hh": _HP * 3600,
        "Wh* wh*": 3600.0,
        "flb": _LBF * _FT,
        "BTU btu": 1055.05585262,
    },
    "power": {"HP h": _HP, "PS": 75 * 9.80665, "W* w*": 1.0},
    "magnetism": {"T*": 1.0, "ga*": 1e-4},
    "volume": {
        "tsp": _US_GAL / 768,
        "tspm": 5e-6,
        "tbs": _US_GAL / 256,
        "oz": _US_GAL / 128,
        "cup": _US_GAL / 16,
        "pt us_pt": _US_GAL / 8,
        "uk_pt*": _UK_GAL / 8,
        "qt": _US_GAL / 4,
        "uk_qt": _UK_GAL / 4,
        "gal": _US_GAL,
        "uk_gal": _UK_GAL,
        "l* L* lt*": 1e-3,
        "barrel": 42 * _US_GAL,
        "bushel": 2150.42 * _IN**3,
        "GRT regton": 100 * _FT**3,
        "MTON": 40 * _FT**3,
    },
    "area": {
        "uk_acre": 4840 * (3 * _FT) ** 2,
        "us_acre": 43560 * (1200 / 3937) ** 2,
        "ar*": 100.0,
        "ha": 1e4,
        "Morgen": 2500.0,
    },
    "information": {"bit*": 1.0, "byte*": 8.0},
    "speed": {
        "admkn": 6080 * _FT / 3600,
        "kn": 1852 / 3600,
        "m/h* m/hr*": 1 / 3600,
        "m/s* m/sec*": 1.0,
        "mph*": _MI / 3600,
    },
}
# Squares and cubes of these distances are areas and volumes: m2, m^2, ft3, Pica^3, …
_SQUARED = ("m", "ang", "ly", "ft", "in", "mi", "Nmi", "Picapt", "Pica", "yd")
# Kelvin and the scales measured from it: kelvin = scale · x + offset.
_TEMPERATURE = {
    "K* kel*": (1.0, 0.0),
    "C cel": (1.0, 273.15),
    "F fah": (5 / 9, 273.15 - 32 * 5 / 9),
    "Rank": (5 / 9, 0.0),
    "Reau": (1.25, 273.15),
}


def _units() -> dict[str, Unit]:
    units: dict[str, Unit] = {}
    for quantity, table in _TABLE.items():
        for names, scale in table.items():
            for name in names.split():
                units[name.rstrip("*")] = Unit(quantity, scale, prefixes=name.endswith("*"))
    for names, (scale, offset) in _TEMPERATURE.items():
        for name in names.split():
            units[name.rstrip("*")] = Unit("temperature", scale, offset, name.endswith("*"))
    for name in _SQUARED:
        scale, prefixes = units[name].scale, name in ("m", "ang")  # not ly2, ly3
        for power, quantity in ((2, "area"), (3, "volume")):
            for spelled in (f"{name}{power}", f"{name}^{power}"):
                units[spelled] = Unit(quantity, scale**power, 0.0, prefixes, power)
    return units


UNITS = _units()
PREFIXES = {
    "Y": 1e24,
    "Z": 1e21,
    "E": 1e18,
    "P": 1e15,
    "T": 1e12,
    "G": 1e9,
    "M": 1e6,
    "k": 1e3,
    "h": 1e2,
    "da": 1e1,
    "e": 1e1,
    "d": 1e-1,
    "c": 1e-2,
    "m": 1e-3,
    "u": 1e-6,
    "n": 1e-9,
    "p": 1e-12,
    "f": 1e-15,
    "a": 1e-18,
    "z": 1e-21,
    "y": 1e-24,
}
BINARY_PREFIXES = {p: 2.0 ** (10 * i) for i, p in enumerate("ki Mi Gi Ti Pi Ei Zi Yi".split(), 1)}


def unit(name) -> Unit | None:
    """A CONVERT unit by its name (case-sensitive), with a prefix where the unit takes one."""
    if not isinstance(name, str):
        return None
    if name in UNITS:
        return UNITS[name]
    for size in (2, 1):  # "da", "ki", … before "d", "k"
        prefix, rest = name[:size], name[size:]
        base = UNITS.get(rest)
        if base is None or not base.prefixes:
            continue
        factor = PREFIXES.get(prefix)
        if factor is None and base.quantity == "information":
            factor = BINARY_PREFIXES.get(prefix)
        if factor is not None:
            return Unit(base.quantity, base.scale * factor**base.power, base.offset)
    return None


def _convert(number, source, target) -> float | Error:
    x = _toolpak_number(number)
    if isinstance(x, Error):
        return x
    a, b = unit(source), unit(target)
    if a is None or b is None or a.quantity != b.quantity:
        return Error("#N/A")
    if a.offset == b.offset == 0.0:
        return x * a.scale / b.scale
    return (x * a.scale + a.offset - b.offset) / b.scale


excel("CONVERT", args="vvv", gradient=False, cellwise=True)(_convert)
