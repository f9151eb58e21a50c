"""MATH_AND_TRIGONOMETRY: sums, products, powers, logarithms, rounding."""

from __future__ import annotations

import numpy as np
import torch

from excelnet.formula.functions.criteria import criterion_errors, matches
from excelnet.formula.functions.kit import (
    arity,
    divide,
    done,
    elementwise,
    guarded,
    numbers,
    reduce_rows,
    row_errors,
    second,
    strict_num,
)  # fmt: skip
from excelnet.formula.functions.operators import arithmetic
from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import (
    NUM,
    V,
    error_value,
    errors_of,
    first_error,
    to_number,
    with_errors,
)

excel = registrar("MATH_AND_TRIGONOMETRY")


@excel("SUM", unions=True)
def f_sum(ctx, args):
    total, errs = None, []
    for v in args:
        x, _, e = numbers(v)
        part = reduce_rows(x)
        total = part if total is None else total + part
        errs.append(e)
    return done(ctx, total, errs)


@excel("SUMSQ", unions=True)
def f_sumsq(ctx, args):
    total, errs = None, []
    for v in args:
        x, _, e = numbers(v)
        part = reduce_rows(x * x)
        total = part if total is None else total + part
        errs.append(e)
    return done(ctx, total, errs)


@excel("SUMPRODUCT")
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


@excel("SUMXMY2")
def f_sumxmy2(ctx, args):
    arity("SUMXMY2", args, 2)
    a, b = args
    if a.shape[1:] != b.shape[1:]:
        return error_value("#N/A", (max(a.shape[0], b.shape[0]), 1, 1), ctx)
    xa, ma, ea = numbers(V(a.x, a.kind, a.text, True))
    xb, mb, eb = numbers(V(b.x, b.kind, b.text, True))
    d = (xa - xb) ** 2
    if ma is not None or mb is not None:
        both = (ma if ma is not None else True) & (mb if mb is not None else True)
        d = torch.where(both, d, torch.zeros((), dtype=d.dtype, device=d.device))
    return done(ctx, reduce_rows(d), [ea, eb])


@excel("MMULT")
def f_mmult(ctx, args):
    arity("MMULT", args, 2)
    a, b = args
    if a.shape[2] != b.shape[1] or not a.numeric() or not b.numeric():
        n = max(a.shape[0], b.shape[0])
        return error_value("#VALUE!", (n, a.shape[1], b.shape[2]), ctx)
    return V(torch.matmul(a.x, b.x))


@excel("ABS")
def f_abs(ctx, args):
    arity("ABS", args, 1)
    x, errs = to_number(args[0])
    return with_errors(torch.abs(x), errs)


excel("EXP")(elementwise(torch.exp, smooth=lambda x: x < 709))
excel("LN")(elementwise(torch.log, lambda x: x > 0, lambda x: x > 0))
excel("LOG10")(elementwise(torch.log10, lambda x: x > 0, lambda x: x > 0))
excel("SQRT")(elementwise(torch.sqrt, lambda x: x >= 0, lambda x: x > 0))


@excel("LOG")
def f_log(ctx, args):
    arity("LOG", args, 1, 2)
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


@excel("POWER")
def f_power(ctx, args):
    arity("POWER", args, 2)
    return arithmetic("^", args[0], args[1], ctx)


@excel("ROUND", gradient=False)
def f_round(ctx, args):
    arity("ROUND", args, 1, 2)
    x, ex = to_number(args[0])
    d, ed = second(args, x, 0.0)
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


@excel("SUMIF")
def f_sumif(ctx, args):
    arity("SUMIF", args, 2, 3)
    rng, crit = args[0], args[1]
    target = args[2] if len(args) == 3 else rng
    if crit.shape[1:] != (1, 1):
        raise FormulaError("SUMIF with a range of criteria is not supported")
    if target.shape[1:] != rng.shape[1:]:
        raise FormulaError("SUMIF's sum range must have the shape of its range")
    hit = matches(rng, crit)
    x, mask, errs = numbers(V(target.x, target.kind, target.text, True))
    if mask is not None:
        hit = hit & mask
    picked = torch.where(hit, x, torch.zeros((), dtype=x.dtype, device=x.device))
    err_rows = None
    if errs is not None:  # an error counts only where the criterion picks it
        e = errors_of(target)
        picked_err = np.where(np.broadcast_to(hit.cpu().numpy(), e.shape), e, None)
        err_rows = row_errors(with_errors(picked, picked_err))
    return done(ctx, reduce_rows(picked), [criterion_errors(crit, (crit.shape[0], 1, 1)), err_rows])
