"""INFORMATION: what a value is (ISBLANK, ISNUMBER, TYPE, ERROR.TYPE, …), N and NA.

While training (not strict) an error on the parameters' path is a number that is not finite,
so there ISNUMBER, ISERROR, ISERR and ISNA read finiteness (ISNA: NaN alone) instead of kinds,
without a device sync."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from excelnet.formula.functions.registry import registrar
from excelnet.formula.values import (
    BLANK,
    BOOL,
    ERR,
    NUM,
    TEXT,
    V,
    error_value,
    errors_of,
    first_error,
    to_number,
    with_errors,
)

excel = registrar("INFORMATION")

# ERROR.TYPE's numbers for Excel's error values
ERROR_NUMBERS = {
    "#NULL!": 1,
    "#DIV/0!": 2,
    "#VALUE!": 3,
    "#REF!": 4,
    "#NAME?": 5,
    "#NUM!": 6,
    "#N/A": 7,
    "#GETTING_DATA": 8,
    "#SPILL!": 9,
    "#CONNECT!": 10,
    "#BLOCKED!": 11,
    "#UNKNOWN!": 12,
    "#FIELD!": 13,
    "#CALC!": 14,
}


def _is(
    name: str,
    test: Callable[[np.ndarray, np.ndarray], np.ndarray],
    training: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """Register an IS function: test(kinds, texts) says which elements pass; `training`,
    on the numbers of a value while training, where errors are non-finite numbers."""

    def f(ctx, args):
        v = args[0]
        if training is not None and not ctx.strict and v.numeric():
            hit = training(v.x)
        else:
            hit = torch.as_tensor(test(v.kinds(), v.texts()), device=v.x.device)
        return V(hit.to(ctx.dtype), BOOL)

    excel(name, args="e", gradient=False)(f)


_is("ISNUMBER", lambda k, t: k == NUM, torch.isfinite)
_is("ISTEXT", lambda k, t: k == TEXT)
_is("ISNONTEXT", lambda k, t: k != TEXT)
_is("ISLOGICAL", lambda k, t: k == BOOL)
_is("ISERROR", lambda k, t: k == ERR, lambda x: ~torch.isfinite(x))
_is("ISERR", lambda k, t: (k == ERR) & (t != "#N/A"), lambda x: ~torch.isfinite(x))
_is("ISNA", lambda k, t: (k == ERR) & (t == "#N/A"), torch.isnan)


@excel("ISBLANK", args="e", gradient=False)
def f_isblank(ctx, args):
    v = args[0]
    blank = v.kinds() == BLANK if v.ref else np.zeros(v.shape, bool)
    return V(torch.as_tensor(blank, dtype=ctx.dtype, device=ctx.device), BOOL)


def _parity(name: str, odd: bool) -> None:
    """ISODD, ISEVEN: of the number truncated toward zero; text is read as a number, a
    boolean is #VALUE!."""

    def f(ctx, args):
        v = args[0]
        x, errs = to_number(v)
        if not v.numeric():
            logical = np.where(v.kinds() == BOOL, "#VALUE!", None)
            errs = first_error(v.shape, errors_of(v), errs, logical)
        hit = torch.remainder(torch.trunc(x), 2) == (1 if odd else 0)
        return with_errors(hit.to(ctx.dtype), errs, BOOL)

    excel(name, args="n", gradient=False)(f)


_parity("ISODD", True)
_parity("ISEVEN", False)


@excel("N", args="v")
def f_n(ctx, args):
    """A number as it is, TRUE/FALSE as 1/0, anything else 0; errors stay."""
    v = args[0]
    if v.numeric():
        return V(v.x)
    k = v.kinds()
    keep = torch.as_tensor((k == NUM) | (k == BOOL), device=v.x.device)
    x = torch.where(keep, v.x, torch.zeros((), dtype=v.x.dtype, device=v.x.device))
    return with_errors(x, errors_of(v))


@excel("TYPE", args="e", gradient=False)
def f_type(ctx, args):
    v = args[0]
    n = v.shape[0]
    if v.shape[1] * v.shape[2] > 1:
        out = np.full((n, 1, 1), 64.0)
    else:
        codes = np.zeros(5)
        codes[[NUM, BLANK, TEXT, BOOL, ERR]] = [1, 1, 2, 4, 16]
        out = codes[v.kinds()]
    return V(torch.as_tensor(out, dtype=ctx.dtype, device=ctx.device))


@excel("ERROR.TYPE", args="e", gradient=False)
def f_error_type(ctx, args):
    v = args[0]
    errs = errors_of(v)
    codes = np.full(v.shape, None, dtype=object) if errs is None else errs
    number = np.vectorize(lambda e: float(ERROR_NUMBERS.get(e, 0)), otypes=[float])(codes)
    x = torch.as_tensor(number, dtype=ctx.dtype, device=ctx.device)
    return with_errors(x, np.where(number == 0, "#N/A", None))


@excel("NA", args="", gradient=False)
def f_na(ctx, args):
    return error_value("#N/A", (1, 1, 1), ctx)
