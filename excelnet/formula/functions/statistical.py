"""STATISTICAL: counts, averages, extremes, the mode."""

from __future__ import annotations

import math

import numpy as np
import torch

from excelnet.formula.functions.kit import (
    arity,
    count_of,
    done,
    is_array,
    numbers,
    reduce_rows,
)  # fmt: skip
from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import BLANK, NUM, V, error_value, to_number

excel = registrar("STATISTICAL")


@excel("COUNT", unions=True, gradient=False)
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


@excel("COUNTA", unions=True, gradient=False)
def f_counta(ctx, args):
    total = None
    for v in args:
        k = v.kinds()
        part = reduce_rows(torch.as_tensor(k != BLANK, dtype=ctx.dtype, device=ctx.device))
        total = part if total is None else total + part
    return V(total)


@excel("AVERAGE", unions=True)
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


@excel("MAX", unions=True)
def f_max(ctx, args):
    return _extreme(ctx, args, torch.amax, -math.inf)


@excel("MIN", unions=True)
def f_min(ctx, args):
    return _extreme(ctx, args, torch.amin, math.inf)


@excel("MODE", unions=True, gradient=False)
def f_mode(ctx, args):
    values = []
    for v in args:
        x, mask, _ = numbers(v)
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


# -- criteria family (fn-math) ------------------------------------------------------------------

from excelnet.formula.functions.criteria import conditional  # noqa: E402
from excelnet.formula.values import TEXT, Omitted  # noqa: E402


def _pairs(name: str, args: list) -> list:
    if len(args) < 2 or len(args) % 2:
        raise FormulaError(f"{name} takes pairs of a range and a criterion")
    return list(zip(args[::2], args[1::2], strict=True))


@excel("COUNTIF", gradient=False)
def f_countif(ctx, args):
    arity("COUNTIF", args, 2)
    return conditional(ctx, "count", None, [(args[0], args[1])])


@excel("COUNTIFS", gradient=False)
def f_countifs(ctx, args):
    return conditional(ctx, "count", None, _pairs("COUNTIFS", args))


@excel("AVERAGEIF")
def f_averageif(ctx, args):
    arity("AVERAGEIF", args, 2, 3)
    target = args[2] if len(args) == 3 and not isinstance(args[2], Omitted) else args[0]
    return conditional(ctx, "average", target, [(args[0], args[1])], resize=True)


@excel("AVERAGEIFS")
def f_averageifs(ctx, args):
    return conditional(ctx, "average", args[0], _pairs("AVERAGEIFS", args[1:]))


@excel("MINIFS")
def f_minifs(ctx, args):
    return conditional(ctx, "min", args[0], _pairs("MINIFS", args[1:]))


@excel("MAXIFS")
def f_maxifs(ctx, args):
    return conditional(ctx, "max", args[0], _pairs("MAXIFS", args[1:]))


@excel("COUNTBLANK", gradient=False)
def f_countblank(ctx, args):
    """Empty cells and empty text."""
    arity("COUNTBLANK", args, 1)
    v = args[0]
    k = v.kinds()
    blank = (k == BLANK) | ((k == TEXT) & (v.texts() == ""))
    return V(reduce_rows(torch.as_tensor(blank, dtype=ctx.dtype, device=ctx.device)))
