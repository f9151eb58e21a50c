"""Excel's operators and functions on V values (see values.py), in torch.

Each function takes the evaluation context and its evaluated arguments and returns a V. Only
what Excel 2010+ and LibreOffice 7+ compute the same way is here; anything else is refused by
name at compile time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import torch

from excelnet.formula.parse import FormulaError
from excelnet.formula.values import (
    BLANK,
    BOOL,
    NUM,
    TEXT,
    Ctx,
    V,
    broadcast,
    error_value,
    errors_of,
    first_error,
    make,
    to_bool,
    to_number,
    to_text,
    with_errors,
)  # fmt: skip

# -- operators -------------------------------------------------------------------------------


def _strict_num(ctx: Ctx, x: torch.Tensor, errs: np.ndarray | None) -> np.ndarray | None:
    """In strict mode a non-finite result is #NUM! (Excel never shows inf or nan)."""
    if not ctx.strict:
        return errs
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return errs
    bad_np = bad.cpu().numpy()
    errs = np.full(x.shape, None, dtype=object) if errs is None else np.array(errs, dtype=object)
    errs[bad_np & (errs == None)] = "#NUM!"  # noqa: E711
    return errs


def guarded(fn, ok: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
    """fn(*args) where `ok`, and its plain (non-finite) value elsewhere, with a finite
    gradient everywhere: the unselected side of an IF must not poison the gradient with
    0 * inf or 0 * nan, so where not `ok` every argument is replaced by 1 (the "double
    where")."""
    one = torch.ones((), dtype=args[0].dtype, device=args[0].device)
    safe = [torch.where(ok, a, one) for a in args]
    with torch.no_grad():
        raw = fn(*args)
    return torch.where(ok, fn(*safe), raw)


def _divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ok = (b != 0) & torch.isfinite(a) & torch.isfinite(b)
    return guarded(torch.div, ok, a, b)


def _power(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    whole = b == torch.round(b)
    ok = ((a > 0) | ((a < 0) & whole) | ((a == 0) & (b >= 1))) & torch.isfinite(a)
    return guarded(torch.pow, ok & torch.isfinite(b), a, b)


def _constant_and(v: V, what: str, test):
    """Whether v is a constant whose numbers pass `test` (checked once, then remembered):
    then the plain operation is safe and its gradient finite, and the guard can go. (`test`
    may return a fact other than a bool, remembered the same way.)"""
    if v.x.requires_grad or not v.numeric():
        return False
    v.cache = v.cache or {}
    if what not in v.cache:
        v.cache[what] = test(v.x)
    return v.cache[what]


def arithmetic(op: str, a: V, b: V, ctx: Ctx) -> V:
    xa, ea = to_number(a)
    xb, eb = to_number(b)
    shape = broadcast(a, b)
    errs = first_error(shape, ea, eb)
    if op == "+":
        x = xa + xb
    elif op == "-":
        x = xa - xb
    elif op == "*":
        x = xa * xb
    elif op == "/":
        x = (
            xa / xb
            if _constant_and(b, "nonzero", lambda t: bool((t != 0).all()))
            else _divide(xa, xb)
        )
        if ctx.strict:
            zero = torch.broadcast_to(xb == 0, shape).cpu().numpy()
            if zero.any():
                errs = first_error(shape, errs, np.where(zero, "#DIV/0!", None))
    else:  # ^
        whole = _constant_and(b, "whole", lambda t: bool(((t >= 1) & (t == torch.round(t))).all()))
        if whole and xb.numel() == 1:  # x^2: a Python int makes pow a multiply, here and fused
            xb = _constant_and(b, "int", lambda t: int(t.reshape(())))
        x = torch.pow(xa, xb) if whole else _power(xa, xb)
        if ctx.strict:
            zz = torch.broadcast_to((xa == 0) & (xb == 0), shape).cpu().numpy()
            if zz.any():  # 0^0: Excel and LibreOffice both say #NUM!
                errs = first_error(shape, errs, np.where(zz, "#NUM!", None))
    return with_errors(x, _strict_num(ctx, x, errs))


def concat(a: V, b: V, ctx: Ctx) -> V:
    ta, ea = to_text(a)
    tb, eb = to_text(b)
    shape = broadcast(a, b)
    ta, tb = np.broadcast_to(ta, shape), np.broadcast_to(tb, shape)
    out = np.frompyfunc(lambda p, q: p + q, 2, 1)(ta, tb).astype(object)
    x = torch.zeros(shape, dtype=ctx.dtype, device=ctx.device)
    return with_errors(x, first_error(shape, ea, eb), np.full(shape, TEXT, np.int8), out)


_RANK = {NUM: 0, TEXT: 1, BOOL: 2}
_CMP = {"=": np.equal, "<>": np.not_equal, "<": np.less, ">": np.greater,
        "<=": np.less_equal, ">=": np.greater_equal}  # fmt: skip
_TCMP = {"=": torch.eq, "<>": torch.ne, "<": torch.lt, ">": torch.gt,
         "<=": torch.le, ">=": torch.ge}  # fmt: skip


def compare(op: str, a: V, b: V, ctx: Ctx) -> V:
    """Excel's comparison: numbers < text < booleans; text compares without case; a blank
    is 0, "" or FALSE, whichever the other side is."""
    shape = broadcast(a, b)
    if a.numeric() and b.numeric():
        x = _TCMP[op](a.x, b.x).to(ctx.dtype)
        return V(torch.broadcast_to(x, shape).clone(), BOOL)
    ka, kb = np.broadcast_to(a.kinds(), shape), np.broadcast_to(b.kinds(), shape)
    ka2 = np.where(ka == BLANK, np.where(kb == BLANK, NUM, kb), ka)
    kb2 = np.where(kb == BLANK, np.where(ka == BLANK, NUM, ka), kb)
    xa = np.broadcast_to(a.x.detach().cpu().numpy(), shape)
    xb = np.broadcast_to(b.x.detach().cpu().numpy(), shape)
    ta, tb = np.broadcast_to(a.texts(), shape), np.broadcast_to(b.texts(), shape)
    sign = np.sign(xa - xb)
    ranks_a = np.vectorize(lambda k: _RANK.get(int(k), 0))(ka2) if ka2.size else ka2
    ranks_b = np.vectorize(lambda k: _RANK.get(int(k), 0))(kb2) if kb2.size else kb2
    sign = np.where(ranks_a != ranks_b, np.sign(ranks_a - ranks_b), sign)
    both_text = (ka2 == TEXT) & (kb2 == TEXT)
    for idx in zip(*np.nonzero(both_text), strict=True):
        p = (ta[idx] or "").lower() if ka[idx] != BLANK else ""
        q = (tb[idx] or "").lower() if kb[idx] != BLANK else ""
        sign[idx] = (p > q) - (p < q)
    result = _CMP[op](sign, 0).astype(float)
    errs = first_error(shape, errors_of(a), errors_of(b))
    x = torch.as_tensor(result, dtype=ctx.dtype, device=ctx.device)
    return with_errors(x, errs, BOOL)


def unary(op: str, a: V, ctx: Ctx) -> V:
    x, errs = to_number(a)
    if op == "neg":
        x = -x
    elif op == "%":
        x = x / 100
    return with_errors(x, errs)


def operator(op: str, args: list[V], ctx: Ctx) -> V:
    if op in ("neg", "pos", "%"):
        return unary(op, args[0], ctx)
    a, b = args
    if op in ("+", "-", "*", "/", "^"):
        return arithmetic(op, a, b, ctx)
    if op == "&":
        return concat(a, b, ctx)
    return compare(op, a, b, ctx)


# -- helpers for functions -------------------------------------------------------------------


def _row_errors(v: V) -> np.ndarray | None:
    """Per block row (N,1,1): the first error inside that row's range, or None."""
    errs = errors_of(v)
    if errs is None:
        return None
    flat = errs.reshape(errs.shape[0], -1)
    out = np.full((errs.shape[0], 1, 1), None, dtype=object)
    for n in range(flat.shape[0]):
        hits = [e for e in flat[n] if e is not None]
        if hits:
            out[n, 0, 0] = hits[0]
    return out


def _is_array(v: V) -> bool:
    return v.ref or v.shape[1] * v.shape[2] > 1


def _numbers(v: V) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray | None]:
    """Numbers for SUM-like functions: in ranges and arrays only the numbers count; a single
    value typed into the call is converted (TRUE → 1, "3" → 3). Returns (x with non-numbers
    zeroed, mask of counted elements or None for all, per-row errors)."""
    if v.numeric():
        return v.x, None, None
    if _is_array(v):
        k = v.kinds()
        mask = torch.as_tensor(k == NUM, device=v.x.device)
        x = torch.where(mask, v.x, torch.zeros((), dtype=v.x.dtype, device=v.x.device))
        return x, mask, _row_errors(v)
    if isinstance(v.kind, int) and v.kind == BLANK:
        return v.x, torch.zeros(v.shape, dtype=torch.bool, device=v.x.device), None
    x, errs = to_number(v)
    return x, None, errs


def _reduce(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=(1, 2), keepdim=True)


def _count(v: V, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.full(
            (v.shape[0], 1, 1), float(v.shape[1] * v.shape[2]), dtype=v.x.dtype, device=v.x.device
        )
    return _reduce(mask.to(v.x.dtype))


def _done(ctx: Ctx, x: torch.Tensor, errs: list) -> V:
    shape = tuple(x.shape)
    return with_errors(x, _strict_num(ctx, x, first_error(shape, *errs)))


def _no_missing(name: str, args: list, lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi if hi < 99 else 'many'}"
        raise FormulaError(f"{name} takes {want} argument(s), not {len(args)}")


# -- the functions ---------------------------------------------------------------------------


def f_sum(ctx, args):
    total, errs = None, []
    for v in args:
        x, _, e = _numbers(v)
        part = _reduce(x)
        total = part if total is None else total + part
        errs.append(e)
    return _done(ctx, total, errs)


def f_sumsq(ctx, args):
    total, errs = None, []
    for v in args:
        x, _, e = _numbers(v)
        part = _reduce(x * x)
        total = part if total is None else total + part
        errs.append(e)
    return _done(ctx, total, errs)


def f_count(ctx, args):
    total = None
    for v in args:
        if _is_array(v):
            part = _reduce(torch.as_tensor(v.kinds() == NUM, dtype=ctx.dtype, device=ctx.device))
        else:
            _, errs = to_number(v)
            ok = v.kinds() != BLANK if not v.numeric() else np.ones(v.shape, bool)
            if errs is not None:
                ok = ok & (errs == None)  # noqa: E711
            part = torch.as_tensor(ok.astype(float), dtype=ctx.dtype, device=ctx.device)
        total = part if total is None else total + part
    return V(total)


def f_counta(ctx, args):
    total = None
    for v in args:
        k = v.kinds()
        part = _reduce(torch.as_tensor(k != BLANK, dtype=ctx.dtype, device=ctx.device))
        total = part if total is None else total + part
    return V(total)


def f_average(ctx, args):
    total, count, errs = None, None, []
    for v in args:
        x, mask, e = _numbers(v)
        s, c = _reduce(x), _count(v, mask)
        total = s if total is None else total + s
        count = c if count is None else count + c
        errs.append(e)
    out = total / count
    if ctx.strict:
        zero = (torch.broadcast_to(count, out.shape) == 0).cpu().numpy()
        errs.append(np.where(zero, "#DIV/0!", None) if zero.any() else None)
    return _done(ctx, out, errs)


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
        return _done(ctx, best, [])
    best, errs, any_number = None, [], None
    for v in args:
        x, mask, e = _numbers(v)
        if mask is not None:
            x = torch.where(mask, x, torch.full((), fill, dtype=x.dtype, device=x.device))
        part = fn(x.reshape(x.shape[0], -1), dim=1).reshape(-1, 1, 1)
        has = _count(v, mask) > 0
        best = part if best is None else fn(torch.stack(torch.broadcast_tensors(best, part)), 0)
        any_number = has if any_number is None else any_number | has
        errs.append(e)
    best = torch.where(any_number, best, torch.zeros((), dtype=best.dtype, device=best.device))
    return _done(ctx, best, errs)


def f_max(ctx, args):
    return _extreme(ctx, args, torch.amax, -math.inf)


def f_min(ctx, args):
    return _extreme(ctx, args, torch.amin, math.inf)


def f_sumproduct(ctx, args):
    shapes = {v.shape[1:] for v in args}
    n = max(v.shape[0] for v in args)
    if len(shapes) != 1:
        return error_value("#VALUE!", (n, 1, 1), ctx)
    if len(args) == 2 and args[0].shape[1] == 1 and args[0].numeric() and args[1].numeric():
        # rows of numbers (the features times the weights): multiply, sum along the row
        return _done(ctx, (args[0].x * args[1].x).sum(dim=2, keepdim=True), [])
    prod, errs = None, []
    for v in args:
        if v.numeric():
            x = v.x
        else:  # SUMPRODUCT counts every non-number as 0
            mask = torch.as_tensor(v.kinds() == NUM, device=v.x.device)
            x = torch.where(mask, v.x, torch.zeros((), dtype=v.x.dtype, device=v.x.device))
            errs.append(_row_errors(v))
        prod = x if prod is None else prod * x
    return _done(ctx, _reduce(prod), errs)


def f_sumxmy2(ctx, args):
    _no_missing("SUMXMY2", args, 2)
    a, b = args
    if a.shape[1:] != b.shape[1:]:
        return error_value("#N/A", (max(a.shape[0], b.shape[0]), 1, 1), ctx)
    xa, ma, ea = _numbers(V(a.x, a.kind, a.text, True))
    xb, mb, eb = _numbers(V(b.x, b.kind, b.text, True))
    d = (xa - xb) ** 2
    if ma is not None or mb is not None:
        both = (ma if ma is not None else True) & (mb if mb is not None else True)
        d = torch.where(both, d, torch.zeros((), dtype=d.dtype, device=d.device))
    return _done(ctx, _reduce(d), [ea, eb])


def f_mmult(ctx, args):
    _no_missing("MMULT", args, 2)
    a, b = args
    if a.shape[2] != b.shape[1] or not a.numeric() or not b.numeric():
        n = max(a.shape[0], b.shape[0])
        return error_value("#VALUE!", (n, a.shape[1], b.shape[2]), ctx)
    return V(torch.matmul(a.x, b.x))


def f_transpose(ctx, args):
    _no_missing("TRANSPOSE", args, 1)
    v = args[0]
    kind = v.kind.transpose(0, 2, 1) if isinstance(v.kind, np.ndarray) else v.kind
    text = v.text.transpose(0, 2, 1) if v.text is not None else None
    return V(v.x.transpose(1, 2), kind, text)


def _elementwise(fn: Callable[[torch.Tensor], torch.Tensor], domain=None, smooth=None):
    """A one-argument function; `domain` marks where it is defined (else #NUM!), `smooth`
    where its derivative is finite."""

    def f(ctx, args):
        _no_missing("function", args, 1)
        x, errs = to_number(args[0])
        if domain is not None and ctx.strict:
            bad = (~domain(x)).cpu().numpy()
            if bad.any():
                errs = first_error(x.shape, errs, np.where(bad, "#NUM!", None))
        y = guarded(fn, smooth(x), x) if smooth is not None else fn(x)
        return with_errors(y, _strict_num(ctx, y, errs))

    return f


def _second(args: list[V], like: torch.Tensor, default: float):
    """An optional second argument as a number (and its errors), or its default."""
    if len(args) == 2:
        return to_number(args[1])
    return torch.full((), default, dtype=like.dtype, device=like.device), None


def f_log(ctx, args):
    _no_missing("LOG", args, 1, 2)
    x, ex = to_number(args[0])
    b, eb = _second(args, x, 10.0)
    y = _divide(guarded(torch.log, x > 0, x), guarded(torch.log, b > 0, b))
    shape = tuple(y.shape)
    errs = first_error(shape, ex, eb)
    if ctx.strict:
        bad = torch.broadcast_to((x <= 0) | (b <= 0), shape).cpu().numpy()
        one = torch.broadcast_to(b == 1, shape).cpu().numpy()
        errs = first_error(
            shape, errs, np.where(bad, "#NUM!", None), np.where(one, "#DIV/0!", None)
        )
    return with_errors(y, _strict_num(ctx, y, errs))


def f_power(ctx, args):
    _no_missing("POWER", args, 2)
    return arithmetic("^", args[0], args[1], ctx)


def f_round(ctx, args):
    _no_missing("ROUND", args, 1, 2)
    x, ex = to_number(args[0])
    d, ed = _second(args, x, 0.0)
    xs, ds = torch.broadcast_tensors(x.detach(), d.detach())
    xn, dn = xs.cpu().numpy(), np.trunc(ds.cpu().numpy())
    scale = 10.0**dn
    # Half away from zero, after trimming binary noise to 15 digits as spreadsheets do.
    y = np.vectorize(lambda v: float(f"{v:.15g}"))(xn * scale) if xn.size else xn
    out = np.sign(y) * np.floor(np.abs(y) + 0.5) / scale
    # ROUND is a step function: its gradient is zero, so the result is a constant.
    return with_errors(
        torch.as_tensor(out, dtype=ctx.dtype, device=ctx.device), first_error(out.shape, ex, ed)
    )


def f_if(ctx, args):
    _no_missing("IF", args, 1, 3)
    cond = args[0]
    yes = (
        args[1]
        if len(args) > 1
        else V(torch.ones((1, 1, 1), dtype=ctx.dtype, device=ctx.device), BOOL)
    )
    no = (
        args[2]
        if len(args) > 2
        else V(torch.zeros((1, 1, 1), dtype=ctx.dtype, device=ctx.device), BOOL)
    )
    c, ec = to_bool(cond)
    shape = broadcast(cond, yes, no)
    c = torch.broadcast_to(c, shape)
    x = torch.where(c, yes.x, no.x)
    # IF hands on a reference as a reference: SUM(IF(…, A1, 0)) skips text in A1
    ref = yes.ref and no.ref
    if yes.ref != no.ref and c.numel() == 1:
        ref = yes.ref if bool(c.reshape(())) else no.ref
    uniform = not isinstance(yes.kind, np.ndarray) and not isinstance(no.kind, np.ndarray)
    if uniform and yes.kind == no.kind and yes.text is None and no.text is None:
        v = with_errors(x, ec if ec is None else np.broadcast_to(ec, shape), yes.kind)
    else:
        cn = c.cpu().numpy()
        kind = np.where(cn, np.broadcast_to(yes.kinds(), shape), np.broadcast_to(no.kinds(), shape))
        text = np.where(cn, np.broadcast_to(yes.texts(), shape), np.broadcast_to(no.texts(), shape))
        v = make(x, kind.astype(np.int8), text)
        if ec is not None:
            v = with_errors(v.x, np.broadcast_to(ec, shape), v.kinds(), v.texts())
    v.ref = ref
    return v


def f_iferror(ctx, args):
    _no_missing("IFERROR", args, 2)
    v, alt = args
    errs = errors_of(v)
    if errs is None and (ctx.strict or not v.numeric()):
        return v
    shape = broadcast(v, alt)
    is_err = np.broadcast_to(errs != None, shape) if errs is not None else np.zeros(shape, bool)  # noqa: E711
    mask = torch.as_tensor(is_err, device=v.x.device)
    if not ctx.strict:  # training: #NUM! and #DIV/0! are still non-finite numbers here
        mask = mask | ~torch.isfinite(v.x)
        if not (v.numeric() and alt.numeric()):  # which kinds win depends on the numbers
            is_err = np.broadcast_to(mask.cpu().numpy(), shape)
    x = torch.where(mask, alt.x, v.x)
    kind = np.where(is_err, np.broadcast_to(alt.kinds(), shape), np.broadcast_to(v.kinds(), shape))
    text = np.where(is_err, np.broadcast_to(alt.texts(), shape), np.broadcast_to(v.texts(), shape))
    return make(x, kind.astype(np.int8), text)


def _logical(ctx, args, name, combine):
    result, errs, seen = None, [], None
    for v in args:
        if _is_array(v):
            k = v.kinds()
            mask = torch.as_tensor((k == NUM) | (k == BOOL), device=v.x.device)
            b = v.x != 0
            part = (
                combine(b | ~mask, (1, 2)) if name == "AND" else combine(b & mask, (1, 2))
            ).reshape(-1, 1, 1)
            has = mask.reshape(mask.shape[0], -1).any(1).reshape(-1, 1, 1)
            errs.append(_row_errors(v))
        else:
            b, e = to_bool(v)
            part, has = b, torch.ones_like(b)
            errs.append(e)
        result = part if result is None else (result & part if name == "AND" else result | part)
        seen = has if seen is None else seen | has
    x = result.to(ctx.dtype)
    shape = tuple(x.shape)
    none = (~torch.broadcast_to(seen, shape)).cpu().numpy()
    errs.append(np.where(none, "#VALUE!", None) if none.any() else None)
    return with_errors(x, first_error(shape, *errs), BOOL)


def f_and(ctx, args):
    return _logical(ctx, args, "AND", lambda t, d: t.reshape(t.shape[0], -1).all(1))


def f_or(ctx, args):
    return _logical(ctx, args, "OR", lambda t, d: t.reshape(t.shape[0], -1).any(1))


def f_not(ctx, args):
    _no_missing("NOT", args, 1)
    b, errs = to_bool(args[0])
    return with_errors((~b).to(ctx.dtype), errs, BOOL)


def f_isblank(ctx, args):
    _no_missing("ISBLANK", args, 1)
    v = args[0]
    blank = v.kinds() == BLANK if v.ref else np.zeros(v.shape, bool)
    return V(torch.as_tensor(blank, dtype=ctx.dtype, device=ctx.device), BOOL)


def _criterion(value) -> Callable[[V], np.ndarray | torch.Tensor]:
    """COUNTIF/SUMIF criteria ("S", 0, ">=5", "<>", "a*") as a predicate over a range."""
    from excelnet.formula.parse import Error

    if isinstance(value, bool):
        return lambda r: (
            torch.as_tensor(r.kinds() == BOOL, device=r.x.device) & (r.x == float(value))
        )
    if isinstance(value, (int, float)):
        return lambda r: (
            torch.as_tensor(r.kinds() == NUM, device=r.x.device) & (r.x == value)
            if not r.numeric()
            else r.x == value
        )
    if value is None or isinstance(value, Error):
        value = "" if value is None else value.code
    m = re.match(r"^(<=|>=|<>|<|>|=)?(.*)$", value, re.S)
    op, rest = m.group(1) or "=", m.group(2)
    try:
        number = float(rest)
    except ValueError:
        number = None
    if number is not None:

        def numeric(r: V):
            nums = torch.as_tensor(r.kinds() == NUM, device=r.x.device)
            hit = nums & _TCMP[op](r.x, number)
            return hit | ~nums if op == "<>" else hit

        return numeric
    if rest.upper() in ("TRUE", "FALSE") and op in ("=", "<>"):
        flag = rest.upper() == "TRUE"

        def logical(r: V):
            hit = torch.as_tensor(r.kinds() == BOOL, device=r.x.device) & ((r.x != 0) == flag)
            return ~hit if op == "<>" else hit

        return logical
    if rest == "":

        def blank(r: V):
            k = r.kinds()
            empty = (k == BLANK) | ((k == TEXT) & (r.texts() == ""))
            return torch.as_tensor(~empty if op == "<>" else empty, device=r.x.device)

        return blank
    pattern = (
        re.compile(
            "".join(
                ".*" if ch == "*" else "." if ch == "?" else re.escape(ch)
                for ch in re.sub(r"~([*?~])", lambda t: "\0" + t.group(1), rest)
            )
            .replace("\\\x00", "")
            .replace("\x00", ""),
            re.I | re.S,
        )
        if op in ("=", "<>")
        else None
    )

    def text(r: V):
        k, t = r.kinds(), r.texts()
        out = np.zeros(r.shape, bool)
        for idx in zip(*np.nonzero(k == TEXT), strict=True):
            s = str(t[idx])
            if pattern is not None:
                out[idx] = bool(pattern.fullmatch(s))
            else:
                a, b = s.lower(), rest.lower()
                out[idx] = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        if op == "<>":
            out = ~out
        return torch.as_tensor(out, device=r.x.device)

    return text


def _matches(rng: V, crit: V) -> torch.Tensor:
    """Boolean (N, H, W): for each block row, which cells of the range meet its criterion.
    Constant ranges and criteria (the usual case) are matched once, not every step."""
    constant = not rng.x.requires_grad and not crit.x.requires_grad
    if constant:
        rng.cache = rng.cache or {}
        if "match" in rng.cache and rng.cache["match"][0] is crit:
            return rng.cache["match"][1]
    hit = _match_rows(rng, crit)
    if constant:
        rng.cache["match"] = (crit, hit)
    return hit


def _match_rows(rng: V, crit: V) -> torch.Tensor:
    rows = []
    for n in range(crit.shape[0]):
        pred = _criterion(crit.item(n, 0, 0))
        sub = V(
            rng.x[min(n, rng.shape[0] - 1)][None],
            rng.kind
            if not isinstance(rng.kind, np.ndarray)
            else rng.kinds()[min(n, rng.shape[0] - 1)][None],
            None if rng.text is None else rng.texts()[min(n, rng.shape[0] - 1)][None],
        )
        rows.append(torch.broadcast_to(pred(sub), sub.shape))
    return torch.cat(rows) if len(rows) > 1 else rows[0]


def f_countif(ctx, args):
    _no_missing("COUNTIF", args, 2)
    rng, crit = args
    if crit.shape[1:] != (1, 1):
        raise FormulaError("COUNTIF with a range of criteria is not supported")
    x = _reduce(_matches(rng, crit).to(ctx.dtype))
    return with_errors(x, _crit_errors(crit, x.shape))


def _crit_errors(crit: V, shape) -> np.ndarray | None:
    """An error value as the criterion is the result (as in Excel and LibreOffice)."""
    errs = errors_of(crit)
    return None if errs is None else np.broadcast_to(errs, shape)


def f_sumif(ctx, args):
    _no_missing("SUMIF", args, 2, 3)
    rng, crit = args[0], args[1]
    target = args[2] if len(args) == 3 else rng
    if crit.shape[1:] != (1, 1):
        raise FormulaError("SUMIF with a range of criteria is not supported")
    if target.shape[1:] != rng.shape[1:]:
        raise FormulaError("SUMIF's sum range must have the shape of its range")
    hit = _matches(rng, crit)
    x, mask, errs = _numbers(V(target.x, target.kind, target.text, True))
    if mask is not None:
        hit = hit & mask
    picked = torch.where(hit, x, torch.zeros((), dtype=x.dtype, device=x.device))
    err_rows = None
    if errs is not None:  # an error counts only where the criterion picks it
        e = errors_of(target)
        picked_err = np.where(np.broadcast_to(hit.cpu().numpy(), e.shape), e, None)
        err_rows = _row_errors(with_errors(picked, picked_err))
    return _done(ctx, _reduce(picked), [_crit_errors(crit, (crit.shape[0], 1, 1)), err_rows])


def f_mode(ctx, args):
    values = []
    for v in args:
        x, mask, _ = _numbers(v)
        if v.shape[0] != 1:
            raise FormulaError("MODE copied down a column is not supported")
        flat = x.detach().cpu().numpy().ravel()
        keep = mask.cpu().numpy().ravel() if mask is not None else np.ones(flat.shape, bool)
        values.extend(flat[keep].tolist())
    uniq, counts = np.unique(np.array(values), return_counts=True)
    if not len(counts) or counts.max() < 2:
        return error_value("#N/A", (1, 1, 1), ctx)
    # the smallest of the most frequent values, as LibreOffice and pandas pick it
    return V(
        torch.tensor([[[uniq[counts == counts.max()].min()]]], dtype=ctx.dtype, device=ctx.device)
    )


def f_abs(ctx, args):
    _no_missing("ABS", args, 1)
    x, errs = to_number(args[0])
    return with_errors(torch.abs(x), errs)


FUNCTIONS: dict[str, Callable[[Ctx, list[V]], V]] = {
    "SUM": f_sum, "SUMSQ": f_sumsq, "SUMPRODUCT": f_sumproduct, "SUMXMY2": f_sumxmy2,
    "COUNT": f_count, "COUNTA": f_counta, "AVERAGE": f_average, "MAX": f_max, "MIN": f_min,
    "MMULT": f_mmult, "TRANSPOSE": f_transpose, "ABS": f_abs,
    "EXP": _elementwise(torch.exp, smooth=lambda x: x < 709),
    "LN": _elementwise(torch.log, lambda x: x > 0, lambda x: x > 0),
    "LOG10": _elementwise(torch.log10, lambda x: x > 0, lambda x: x > 0),
    "SQRT": _elementwise(torch.sqrt, lambda x: x >= 0, lambda x: x > 0),
    "LOG": f_log, "POWER": f_power, "ROUND": f_round,
    "IF": f_if, "IFERROR": f_iferror, "AND": f_and, "OR": f_or, "NOT": f_not,
    "ISBLANK": f_isblank, "COUNTIF": f_countif, "SUMIF": f_sumif, "MODE": f_mode,
}  # fmt: skip
