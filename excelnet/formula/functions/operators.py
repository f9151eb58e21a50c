"""Excel's operators in torch: + - * / ^, unary minus and %, & and the comparisons."""

from __future__ import annotations

import unicodedata

import numpy as np
import torch

from excelnet.formula.functions.kit import constant_and, divide, multiply, power, strict_num
from excelnet.formula.values import (
    BLANK,
    BOOL,
    NUM,
    TEXT,
    Ctx,
    V,
    array_shape,
    broadcast,
    errors_of,
    first_error,
    spread,
    to_number,
    to_text,
    with_errors,
)


def arithmetic(op: str, a: V, b: V, ctx: Ctx) -> V:
    xa, ea = to_number(a)
    xb, eb = to_number(b)
    shape = broadcast(a, b)
    errs = first_error(shape, ea, eb)
    if op in ("+", "-"):
        x = xa + xb if op == "+" else xa - xb
        if ctx.libreoffice or ctx.snaps is not None:
            x = _libreoffice(op, xa, xb, x, ctx)
    elif op == "*":
        x = multiply(xa, xb)
    elif op == "/":
        x = (
            xa / xb
            if constant_and(b, "nonzero", lambda t: bool((t != 0).all()))
            else divide(xa, xb)
        )
        if ctx.strict:
            zero = torch.broadcast_to(xb == 0, shape).cpu().numpy()
            if zero.any():
                errs = first_error(shape, errs, np.where(zero, "#DIV/0!", None))
    else:  # ^
        whole = constant_and(  # 0^1E+20 too: a whole exponent past an int's size is no int
            b, "whole", lambda t: bool(((t >= 1) & (t <= 2**31) & (t == torch.round(t))).all())
        )
        if whole and xb.numel() == 1:  # x^2: a Python int makes pow a multiply, here and fused
            xb = constant_and(b, "int", lambda t: int(t.reshape(())))
        x = torch.pow(xa, xb) if whole else power(xa, xb)
        if ctx.strict:
            zz = torch.broadcast_to((xa == 0) & (xb == 0), shape).cpu().numpy()
            if zz.any():  # 0^0: Excel and LibreOffice both say #NUM!
                errs = first_error(shape, errs, np.where(zz, "#NUM!", None))
        if ctx.libreoffice or ctx.snaps is not None:
            # LibreOffice's power is #NUM! where it underflows (C's pow sets ERANGE): below
            # the smallest normal number, from a base that is not 0; Excel gives 0
            with torch.no_grad():
                under = (x.abs() < TINY) & (xa != 0) & torch.isfinite(x)
            if ctx.snaps is not None:
                ctx.snaps += int(under.sum())
            if ctx.libreoffice and bool(under.any()):
                where = torch.broadcast_to(under, shape).cpu().numpy()
                errs = first_error(shape, errs, np.where(where, "#NUM!", None))
    return with_errors(x, strict_num(ctx, x, errs))


TINY = 2.2250738585072014e-308  # the smallest normal float64


def _libreoffice(op: str, a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, ctx: Ctx):
    """a + b or a − b as LibreOffice computes it (rtl::math::approxAdd, approxSub): 0 where the
    two are equal to within 2^-48 of each (unless both are whole numbers), with `ctx.snaps`
    counting those places (with the powers that underflow: see arithmetic); the result itself
    changed only when `ctx.libreoffice`."""
    with torch.no_grad():
        c = b if op == "-" else -b
        d = (a - c).abs()
        whole = (a == torch.round(a)) & (c == torch.round(c)) & (a.abs() < 2.0**53)
        near = (a != 0) & (c != 0) & (torch.signbit(a) == torch.signbit(c)) & (d != 0)
        near = near & (d < a.abs() * 2.0**-48) & (d < c.abs() * 2.0**-48) & ~whole
    if ctx.snaps is not None:
        ctx.snaps += int(near.sum())
    return (
        torch.where(near, torch.zeros((), dtype=x.dtype, device=x.device), x)
        if (ctx.libreoffice)
        else x
    )


def concat(a: V, b: V, ctx: Ctx) -> V:
    ta, ea = to_text(a)
    tb, eb = to_text(b)
    shape = broadcast(a, b)
    ta, tb = np.broadcast_to(ta, shape), np.broadcast_to(tb, shape)
    out = np.frompyfunc(lambda p, q: p + q, 2, 1)(ta, tb).astype(object)
    x = torch.zeros(shape, dtype=ctx.dtype, device=ctx.device)
    return with_errors(x, first_error(shape, ea, eb), np.full(shape, TEXT, np.int8), out)


_RANK = {NUM: 0, TEXT: 1, BOOL: 2}
_RANKS = np.array([_RANK.get(k, 0) for k in range(5)])  # by kind: NUM BOOL TEXT BLANK ERR


def _lower(texts: np.ndarray) -> np.ndarray:
    """Texts (an object array; None as "") as Excel orders them: without case, and an accented
    letter with its plain one (é between e and f), before the accents decide (e < é)."""
    out = np.empty(len(texts), dtype=object)
    out[:] = [collation_key(t or "") for t in texts.tolist()]
    return out


def collation_key(text: str) -> tuple[str, str]:
    """A text's place in Excel's order (its own, not the code points' where é follows z)."""
    low = text.lower()
    if low.isascii():
        return low, low
    plain = "".join(c for c in unicodedata.normalize("NFD", low) if not unicodedata.combining(c))
    return plain, low


def significant15(x: torch.Tensor) -> torch.Tensor:
    """Numbers to 15 significant digits, as Excel compares them (0.1+0.2=0.3 is TRUE)."""
    a = x.detach().abs()
    usable = torch.isfinite(a) & (a > 1e-290)
    e = torch.floor(torch.log10(torch.where(usable, a, torch.ones_like(a))))
    scale = torch.pow(torch.full_like(e, 10.0), 14 - e)
    return torch.where(usable, torch.round(x.detach() * scale) / scale, x.detach())


_CMP = {
    "=": np.equal,
    "<>": np.not_equal,
    "<": np.less,
    ">": np.greater,
    "<=": np.less_equal,
    ">=": np.greater_equal,
}
TORCH_COMPARE = {
    "=": torch.eq,
    "<>": torch.ne,
    "<": torch.lt,
    ">": torch.gt,
    "<=": torch.le,
    ">=": torch.ge,
}


def compare(op: str, a: V, b: V, ctx: Ctx) -> V:
    """Excel's comparison: numbers < text < booleans; text compares without case; a blank
    is 0, "" or FALSE, whichever the other side is."""
    shape = broadcast(a, b)
    if a.numeric() and b.numeric():
        x = TORCH_COMPARE[op](significant15(a.x), significant15(b.x)).to(ctx.dtype)
        return V(torch.broadcast_to(x, shape).clone(), BOOL)
    ua, ub = _uniform(a), _uniform(b)
    if ua in (NUM, BOOL) and ub in (NUM, BOOL):  # (F6>0.5)=(B6=1): numbers or booleans all
        if ua == ub:
            x = TORCH_COMPARE[op](significant15(a.x), significant15(b.x)).to(ctx.dtype)
        else:  # a number is less than any boolean
            x = torch.full((), float(_CMP[op](_RANK[ua] - _RANK[ub], 0)), dtype=ctx.dtype)
            x = x.to(a.x.device)
        return V(torch.broadcast_to(x, shape).clone(), BOOL)
    ka, kb = np.broadcast_to(a.kinds(), shape), np.broadcast_to(b.kinds(), shape)
    ka2 = np.where(ka == BLANK, np.where(kb == BLANK, NUM, kb), ka)
    kb2 = np.where(kb == BLANK, np.where(ka == BLANK, NUM, ka), kb)
    xa = np.broadcast_to(significant15(a.x).cpu().numpy(), shape)
    xb = np.broadcast_to(significant15(b.x).cpu().numpy(), shape)
    ta, tb = np.broadcast_to(a.texts(), shape), np.broadcast_to(b.texts(), shape)
    with np.errstate(invalid="ignore"):  # inf - inf: its sign is settled below or moot
        sign = np.sign(xa - xb)
    ranks_a, ranks_b = _RANKS[ka2], _RANKS[kb2]
    sign = np.where(ranks_a != ranks_b, np.sign(ranks_a - ranks_b), sign)
    both_text = (ka2 == TEXT) & (kb2 == TEXT)
    if both_text.any():  # without case, in one pass over the texts (a column of 100,000)
        p = _lower(np.where(ka == BLANK, "", ta)[both_text])
        q = _lower(np.where(kb == BLANK, "", tb)[both_text])
        sign[both_text] = (p > q).astype(int) - (p < q).astype(int)
    result = _CMP[op](sign, 0).astype(float)
    errs = first_error(shape, errors_of(a), errors_of(b))
    x = torch.as_tensor(result, dtype=ctx.dtype, device=ctx.device)
    return with_errors(x, errs, BOOL)


def _uniform(v: V) -> int | None:
    """The one kind of all of v's elements, if they share one (None: mixed)."""
    if v.kind is None:
        return NUM
    return v.kind if isinstance(v.kind, int) else None


def unary(op: str, a: V, ctx: Ctx) -> V:
    if op == "pos":  # Excel's unary plus changes nothing: =+"a" is "a"
        return a
    x, errs = to_number(a)
    if op == "neg":
        x = -x
    elif op == "%":
        x = x / 100
    return with_errors(x, errs)


_PLAIN = {"+": torch.add, "-": torch.sub, "*": multiply}


def operator(op: str, args: list[V], ctx: Ctx) -> V:
    if op in ("neg", "pos", "%"):
        return unary(op, args[0], ctx)
    a, b = args
    plain = _PLAIN.get(op)
    if plain is not None and not ctx.strict and a.numeric() and b.numeric():
        xa, xb = a.x, b.x  # training: numbers of one shape, or one number and a column
        if xa.shape == xb.shape or xa.numel() == 1 or xb.numel() == 1:
            return V(plain(xa, xb))
    if any(p != q and 1 not in (p, q) for p, q in zip(a.shape, b.shape, strict=True)):
        shape = array_shape(a, b)  # {1;2;3}+{10;20}: Excel pads the shorter with #N/A
        a, b = spread(a, shape), spread(b, shape)
    if op in ("+", "-", "*", "/", "^"):
        return arithmetic(op, a, b, ctx)
    if op == "&":
        return concat(a, b, ctx)
    return compare(op, a, b, ctx)
