"""ENGINEERING: Excel's complex numbers, COMPLEX and the IM… functions.

Excel keeps a complex number as text, "a+bi" or "a+bj": the real part, then the imaginary one
with its sign and the unit, each number as a formula writes it (15 significant digits); a
coefficient of 1 is left out ("i", "3-j"), a zero part too ("0", "4", "2i"). An argument is such
text, a number (its real part), or an empty cell (0); TRUE and FALSE are #VALUE!, other text
#NUM!. One call may not mix the units i and j (#VALUE!).

Each function computes in torch on the parts, element by element over arrays and copied-down
blocks, with Excel's formulas (the polar form for IMPOWER and IMSQRT, as Excel's IMSQRT("-4")
shows: "1.22464679914735E-16+2i"). A result is text, as in Excel, that also carries its parts
as tensors (`Complex`): a complex function reading it directly, IMABS(COMPLEX(P,Q)) or
IMREAL(IMEXP(…)), takes their gradient through the text — its value is the text's, to 15
digits, as Excel's is. The numeric results (IMABS, IMREAL, IMAGINARY, IMARGUMENT) pass gradients
to the numbers the complex numbers were made from; text from a cell has none.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from excelnet.formula.functions.kit import elements, expand
from excelnet.formula.functions.registry import registrar
from excelnet.formula.numfmt import number_text
from excelnet.formula.parse import Error
from excelnet.formula.values import (
    ERR,
    NUM,
    TEXT,
    Ctx,
    Omitted,
    V,
    array_shape,
    first_error,
    text_number,
    with_errors,
)

excel = registrar("ENGINEERING")

VALUE, NUM_ERROR = "#VALUE!", "#NUM!"


class Complex(V):
    """Complex numbers as Excel shows them (text), with their parts as tensors: `re` and `im`
    (the values the text writes, their gradients those of the numbers they came from) and
    `unit`, each element's "i" or "j" ("" where the imaginary part is 0)."""

    __slots__ = ("re", "im", "unit")


# -- reading --------------------------------------------------------------------------------

_N = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_REAL = re.compile(rf"[+-]?{_N}")
_IMAGINARY = re.compile(rf"([+-]?)({_N})?([ij])")
_BOTH = re.compile(rf"([+-]?{_N})([+-])({_N})?([ij])")


def parse(text: str) -> tuple[float, float, str] | None:
    """Text in Excel's complex form as (real, imaginary, unit), or None. An empty text is 0."""
    if text == "":
        return 0.0, 0.0, ""
    if _REAL.fullmatch(text):
        return float(text), 0.0, ""
    m = _IMAGINARY.fullmatch(text)
    if m:
        sign, coefficient, unit = m.groups()
        b = float(coefficient) if coefficient else 1.0
        return 0.0, -b if sign == "-" else b, unit
    m = _BOTH.fullmatch(text)
    if m:
        real, sign, coefficient, unit = m.groups()
        b = float(coefficient) if coefficient else 1.0
        return float(real), -b if sign == "-" else b, unit
    return None


def operand(ctx: Ctx, v: V, shape: tuple[int, int, int], blank_errors: bool = False):
    """An argument as complex numbers over `shape`: (re, im, unit, errors). Numbers keep their
    gradient; a `Complex` its parts'."""
    vals, _ = elements(v, "e", shape)
    re_np, im_np = np.zeros(shape), np.zeros(shape)
    unit = np.full(shape, "", dtype=object)
    errs = np.full(shape, None, dtype=object)
    for idx, x in np.ndenumerate(vals):
        if isinstance(x, Error):
            errs[idx] = x.code
        elif isinstance(x, bool):
            errs[idx] = VALUE
        elif isinstance(x, float):
            re_np[idx] = x
        elif isinstance(x, str):
            z = parse(x)
            if z is None or not (math.isfinite(z[0]) and math.isfinite(z[1])):
                errs[idx] = NUM_ERROR
            else:
                re_np[idx], im_np[idx], unit[idx] = z
    re_t = torch.as_tensor(re_np, dtype=ctx.dtype, device=ctx.device)
    im_t = torch.as_tensor(im_np, dtype=ctx.dtype, device=ctx.device)
    if isinstance(v, Complex):  # the text's values, the parts' gradients
        for name in ("re", "im"):
            part = expand(getattr(v, name), shape)
            if part.requires_grad:
                plain = re_t if name == "re" else im_t
                carried = plain + (part - part.detach())
                if name == "re":
                    re_t = carried
                else:
                    im_t = carried
    elif v.x.requires_grad and not isinstance(v, Omitted):
        numbers = torch.as_tensor(v.kinds() == NUM, device=ctx.device)
        re_t = torch.where(expand(numbers, shape), expand(v.x, shape), re_t)
    return re_t, im_t, unit, (errs if (errs != None).any() else None)  # noqa: E711


def _units(*units: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The unit of a result from those of its operands (element by element), and #VALUE!
    where they mix i and j."""
    out = np.full(np.broadcast_shapes(*(u.shape for u in units)), "", dtype=object)
    errs = None
    for u in units:
        u = np.broadcast_to(u, out.shape)
        clash = (u != "") & (out != "") & (u != out)
        if clash.any():
            errs = first_error(out.shape, errs, np.where(clash, VALUE, None))
        out = np.where(out == "", u, out)
    return out, errs


# -- writing ----------------------------------------------------------------------------------


def text(re: float, im: float, unit: str) -> str:
    """A complex number as Excel writes it."""
    unit = unit or "i"
    if im == 0:
        return number_text(re if re != 0 else 0.0)
    coefficient = number_text(im)
    coefficient = {"1": "", "-1": "-"}.get(coefficient, coefficient)
    if re == 0:
        return coefficient + unit
    sign = "" if coefficient.startswith("-") else "+"
    return number_text(re) + sign + coefficient + unit


def result(ctx: Ctx, re: torch.Tensor, im: torch.Tensor, unit: np.ndarray, *errs) -> V:
    """Complex numbers as Excel's text (errors where `errs` say, #NUM! where a part is not
    finite), carrying their parts."""
    shape = tuple(torch.broadcast_shapes(re.shape, im.shape, unit.shape))
    re, im = torch.broadcast_to(re, shape), torch.broadcast_to(im, shape)
    unit = np.broadcast_to(unit, shape)
    a, b = re.detach().cpu().numpy(), im.detach().cpu().numpy()
    bad = ~(np.isfinite(a) & np.isfinite(b))
    codes = first_error(shape, *errs, np.where(bad, NUM_ERROR, None) if bad.any() else None)
    kind = np.full(shape, TEXT, dtype=np.int8)
    texts = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        if codes is not None and codes[idx] is not None:
            kind[idx], texts[idx] = ERR, codes[idx]
        else:
            texts[idx] = text(float(a[idx]), float(b[idx]), unit[idx] if b[idx] != 0 else "")
    out = Complex(torch.zeros(shape, dtype=ctx.dtype, device=ctx.device), kind, texts)
    safe = torch.as_tensor(kind == TEXT, device=re.device)
    zero = torch.zeros((), dtype=re.dtype, device=re.device)
    out.re, out.im = torch.where(safe, re, zero), torch.where(safe, im, zero)
    out.unit = np.where(b != 0, unit, "")
    return out


def _number_result(ctx: Ctx, x: torch.Tensor, *errs) -> V:
    shape = tuple(x.shape)
    a = x.detach().cpu().numpy()
    bad = ~np.isfinite(a)
    codes = first_error(shape, *errs, np.where(bad, NUM_ERROR, None) if bad.any() else None)
    if codes is not None:
        x = torch.where(torch.as_tensor(codes != None, device=x.device), 0.0, x)  # noqa: E711
    return with_errors(x, codes)


def _safe(ok: torch.Tensor, *xs: torch.Tensor) -> list[torch.Tensor]:
    """The arguments where `ok`, 1 elsewhere: a function's other branch keeps a finite
    gradient (kit.guarded's double where)."""
    one = torch.ones((), dtype=xs[0].dtype, device=xs[0].device)
    return [torch.where(ok, x, one) for x in xs]


# -- COMPLEX and the parts --------------------------------------------------------------------


def _atp(ctx: Ctx, v: V, shape) -> tuple[torch.Tensor, np.ndarray | None]:
    """A number over `shape` as the ToolPak reads one: numeric text read, an empty cell 0,
    TRUE and FALSE #VALUE!; numbers keep their gradient."""
    vals, _ = elements(v, "e", shape)
    x = np.zeros(shape)
    errs = np.full(shape, None, dtype=object)
    for idx, value in np.ndenumerate(vals):
        if isinstance(value, Error):
            errs[idx] = value.code
        elif isinstance(value, bool):
            errs[idx] = VALUE
        elif isinstance(value, str):
            n = text_number(value)
            errs[idx], x[idx] = (VALUE, 0.0) if n is None else (None, n)
        elif value is not None:
            x[idx] = value
    out = torch.as_tensor(x, dtype=ctx.dtype, device=ctx.device)
    if v.x.requires_grad and not isinstance(v, Omitted):
        numbers = torch.as_tensor(v.kinds() == NUM, device=ctx.device)
        out = torch.where(expand(numbers, shape), expand(v.x, shape), out)
    return out, (errs if (errs != None).any() else None)  # noqa: E711


@excel("COMPLEX", args="nnt?")
def f_complex(ctx, args):
    """COMPLEX(real_num, i_num, [suffix]): "i" (also when left out or "") or "j"."""
    shape = array_shape(*args)
    a, ea = _atp(ctx, args[0], shape)
    b, eb = _atp(ctx, args[1], shape)
    unit = np.full(shape, "i", dtype=object)
    eu = None
    if len(args) == 3 and not isinstance(args[2], Omitted):
        vals, _ = elements(args[2], "e", shape)
        eu = np.full(shape, None, dtype=object)
        for idx, s in np.ndenumerate(vals):
            if isinstance(s, Error):
                eu[idx] = s.code
            elif s is None or s in ("i", "j", ""):
                unit[idx] = s or "i"
            else:
                eu[idx] = VALUE
    return result(ctx, a, b, unit, ea, eb, eu)


def _unary(ctx, args):
    shape = args[0].shape
    return operand(ctx, args[0], shape)


@excel("IMREAL", args="v")
def f_imreal(ctx, args):
    re, _, _, errs = _unary(ctx, args)
    return _number_result(ctx, re, errs)


@excel("IMAGINARY", args="v")
def f_imaginary(ctx, args):
    _, im, _, errs = _unary(ctx, args)
    return _number_result(ctx, im, errs)


def _abs(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """|z|, with a finite gradient at 0."""
    ok = (re != 0) | (im != 0)
    a, b = _safe(ok, re, im)
    return torch.where(ok, torch.sqrt(a * a + b * b), torch.zeros((), dtype=re.dtype))


@excel("IMABS", args="v")
def f_imabs(ctx, args):
    re, im, _, errs = _unary(ctx, args)
    return _number_result(ctx, _abs(re, im), errs)


def _angle(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    ok = (re != 0) | (im != 0)
    a, b = _safe(ok, re, im)
    return torch.where(ok, torch.atan2(b, a), torch.zeros((), dtype=re.dtype))


@excel("IMARGUMENT", args="v")
def f_imargument(ctx, args):
    """The angle of z in (−π, π]; 0 has none (#DIV/0!)."""
    re, im, _, errs = _unary(ctx, args)
    zero = ((re == 0) & (im == 0)).cpu().numpy()
    return _number_result(ctx, _angle(re, im), errs, np.where(zero, "#DIV/0!", None))


# -- functions of one complex number ----------------------------------------------------------


def _complex_function(name: str, fn, domain=None):
    """Register a function of one complex number: fn(re, im) -> (re, im) in torch; `domain`
    (re, im) -> mask where it is defined (else #NUM!)."""

    def f(ctx, args):
        re, im, unit, errs = _unary(ctx, args)
        bad = None
        if domain is not None:
            ok = domain(re, im)
            bad = np.where((~ok).cpu().numpy(), NUM_ERROR, None)
            re, im = _safe(ok, re, im)
        a, b = fn(re, im)
        return result(ctx, a, b, unit, errs, bad)

    excel(name, args="v")(f)


def _nonzero(re, im):
    return (re != 0) | (im != 0)


def _exp(a, b):
    e = torch.exp(a)
    return e * torch.cos(b), e * torch.sin(b)


def _ln(a, b):
    return torch.log(torch.sqrt(a * a + b * b)), torch.atan2(b, a)


def _scaled(fn, factor: float):
    def g(a, b):
        x, y = fn(a, b)
        return x * factor, y * factor

    return g


def _sqrt(a, b):
    r = torch.sqrt(torch.sqrt(a * a + b * b))
    phi = torch.atan2(b, a) / 2
    return r * torch.cos(phi), r * torch.sin(phi)


def _sin(a, b):
    return torch.sin(a) * torch.cosh(b), torch.cos(a) * torch.sinh(b)


def _cos(a, b):
    return torch.cos(a) * torch.cosh(b), -(torch.sin(a) * torch.sinh(b))


def _sinh(a, b):
    return torch.sinh(a) * torch.cos(b), torch.cosh(a) * torch.sin(b)


def _cosh(a, b):
    return torch.cosh(a) * torch.cos(b), torch.sinh(a) * torch.sin(b)


def _real_or(real_fn, complex_fn):
    """Excel's formula for a complex argument, and the real function where b = 0."""

    def g(a, b):
        x, y = complex_fn(a, b)
        real = b == 0
        return torch.where(real, real_fn(a), x), torch.where(real, torch.zeros_like(b), y)

    return g


def _tan(a, b):
    s = 1 / (torch.cos(2 * a) + torch.cosh(2 * b))
    return torch.sin(2 * a) * s, torch.sinh(2 * b) * s


def _cot(a, b):
    s = 1 / (torch.cosh(2 * b) - torch.cos(2 * a))
    return torch.sin(2 * a) * s, -(torch.sinh(2 * b) * s)


def _sec(a, b):
    s = 1 / (torch.cosh(2 * b) + torch.cos(2 * a))
    return 2 * torch.cos(a) * torch.cosh(b) * s, 2 * torch.sin(a) * torch.sinh(b) * s


def _csc(a, b):
    s = 1 / (torch.cosh(2 * b) - torch.cos(2 * a))
    return 2 * torch.sin(a) * torch.cosh(b) * s, -2 * torch.cos(a) * torch.sinh(b) * s


def _sech(a, b):
    s = 1 / (torch.cosh(2 * a) + torch.cos(2 * b))
    return 2 * torch.cosh(a) * torch.cos(b) * s, -(2 * torch.sinh(a) * torch.sin(b) * s)


def _csch(a, b):
    s = 1 / (torch.cosh(2 * a) - torch.cos(2 * b))
    return 2 * torch.sinh(a) * torch.cos(b) * s, -(2 * torch.cosh(a) * torch.sin(b) * s)


_LOG10_E = 0.434294481903251828
_LOG2_E = 1.442695040888963407

_complex_function("IMCONJUGATE", lambda a, b: (a, -b))
_complex_function("IMEXP", _exp)
_complex_function("IMLN", _ln, _nonzero)
_complex_function("IMLOG10", _scaled(_ln, _LOG10_E), _nonzero)
_complex_function("IMLOG2", _scaled(_ln, _LOG2_E), _nonzero)
_complex_function("IMSIN", _sin)
_complex_function("IMCOS", _cos)
_complex_function("_xlfn.IMSINH", _sinh)
_complex_function("_xlfn.IMCOSH", _cosh)
_complex_function("_xlfn.IMTAN", _real_or(torch.tan, _tan))
_complex_function("_xlfn.IMCOT", _real_or(lambda a: 1 / torch.tan(a), _cot), _nonzero)
_complex_function("_xlfn.IMSEC", _real_or(lambda a: 1 / torch.cos(a), _sec))
_complex_function("_xlfn.IMCSC", _real_or(lambda a: 1 / torch.sin(a), _csc), _nonzero)
_complex_function("_xlfn.IMSECH", _real_or(lambda a: 1 / torch.cosh(a), _sech))
_complex_function("_xlfn.IMCSCH", _real_or(lambda a: 1 / torch.sinh(a), _csch), _nonzero)


@excel("IMSQRT", args="v")
def f_imsqrt(ctx, args):
    """The principal square root, in polar form: √|z| (cos φ/2 + i sin φ/2); of 0, 0."""
    re, im, unit, errs = _unary(ctx, args)
    ok = _nonzero(re, im)
    a, b = _sqrt(*_safe(ok, re, im))
    zero = torch.zeros((), dtype=re.dtype, device=re.device)
    return result(ctx, torch.where(ok, a, zero), torch.where(ok, b, zero), unit, errs)


# -- two or more ------------------------------------------------------------------------------


def _binary(ctx, args):
    shape = array_shape(*args)
    (a, b, ua, ea), (c, d, ub, eb) = (operand(ctx, v, shape) for v in args)
    unit, eu = _units(ua, ub)
    return (a, b), (c, d), unit, (ea, eb, eu)


@excel("IMSUB", args="vv")
def f_imsub(ctx, args):
    (a, b), (c, d), unit, errs = _binary(ctx, args)
    return result(ctx, a - c, b - d, unit, *errs)


@excel("IMDIV", args="vv")
def f_imdiv(ctx, args):
    """z1/z2 as Excel divides: (a·c + b·d)·f + (b·c − a·d)·f i, f = 1/(c² + d²); by 0 #NUM!."""
    (a, b), (c, d), unit, errs = _binary(ctx, args)
    ok = (c != 0) | (d != 0)
    c, d = _safe(ok, c, d)
    f = 1 / (c * c + d * d)
    bad = np.where((~ok).cpu().numpy(), NUM_ERROR, None)
    return result(ctx, (a * c + b * d) * f, (b * c - a * d) * f, unit, *errs, bad)


@excel("IMPOWER", args="vn")
def f_impower(ctx, args):
    """z^n in polar form, |z|^n (cos nφ + i sin nφ); 0 to a power of 0 or less is #NUM!."""
    shape = array_shape(*args)
    a, b, unit, ea = operand(ctx, args[0], shape)
    n, en = _atp(ctx, args[1], shape)
    zero = (a == 0) & (b == 0)
    bad = np.where((zero & (n <= 0)).cpu().numpy(), NUM_ERROR, None)
    a, b = _safe(~zero, a, b)
    p = torch.pow(torch.sqrt(a * a + b * b), n)
    phi = torch.atan2(b, a) * n
    nothing = torch.zeros((), dtype=a.dtype, device=a.device)
    re = torch.where(zero, nothing, p * torch.cos(phi))
    im = torch.where(zero, nothing, p * torch.sin(phi))
    return result(ctx, re, im, unit, ea, en, bad)


def _fold(ctx, args, start: float, step):
    """IMSUM, IMPRODUCT: every complex number of every argument (ranges and arrays whole,
    their empty cells left out), per block row."""
    rows = max(v.shape[0] for v in args)
    zero = torch.zeros((rows,), dtype=ctx.dtype, device=ctx.device)
    re, im = zero + start, zero.clone()
    unit = np.full(rows, "", dtype=object)
    errs = np.full(rows, None, dtype=object)
    for v in args:
        a, b, u, e = operand(ctx, v, (rows,) + v.shape[1:])
        blank = np.broadcast_to(v.kinds() == 3, (v.shape[0],) + v.shape[1:])
        blank = np.broadcast_to(blank, (rows,) + v.shape[1:])
        for i in range(v.shape[1]):
            for j in range(v.shape[2]):
                keep = torch.as_tensor(~blank[:, i, j], device=ctx.device)
                if e is not None:
                    new = (e[:, i, j] != None) & (errs == None)  # noqa: E711
                    errs = np.where(new & ~blank[:, i, j], e[:, i, j], errs)
                na, nb = step(re, im, a[:, i, j], b[:, i, j])
                re, im = torch.where(keep, na, re), torch.where(keep, nb, im)
                clash = (u[:, i, j] != "") & (unit != "") & (u[:, i, j] != unit)
                errs = np.where(clash & (errs == None), VALUE, errs)  # noqa: E711
                unit = np.where(unit == "", u[:, i, j], unit)
    shape = (rows, 1, 1)
    return result(
        ctx,
        re.reshape(shape),
        im.reshape(shape),
        unit.reshape(shape),
        errs.reshape(shape) if (errs != None).any() else None,  # noqa: E711
    )


@excel("IMSUM", args="r+")
def f_imsum(ctx, args):
    return _fold(ctx, args, 0.0, lambda a, b, c, d: (a + c, b + d))


@excel("IMPRODUCT", args="r+")
def f_improduct(ctx, args):
    return _fold(ctx, args, 1.0, lambda a, b, c, d: (a * c - b * d, a * d + b * c))
