"""LOGICAL: IF, IFS, SWITCH, IFERROR, IFNA, AND, OR, XOR, NOT, TRUE, FALSE.

The functions that choose (IF, IFS, SWITCH, IFERROR, IFNA, and CHOOSE in lookup.py) share
`select`: the gradient flows through the values they pick, and the choice itself, a step
function, has none."""

from __future__ import annotations

import numpy as np
import torch

from excelnet.formula.functions.kit import is_array, row_errors
from excelnet.formula.functions.operators import compare
from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import (
    BLANK,
    BOOL,
    NUM,
    TEXT,
    Ctx,
    V,
    array_shape,
    error_value,
    errors_of,
    first_error,
    make,
    spread,
    to_bool,
    with_errors,
)

excel = registrar("LOGICAL")


def select(which: torch.Tensor, options: list[V], errs: np.ndarray | None = None) -> V:
    """Element-wise choice: where `which` is i, the element of options[i] (the options spread
    over the common shape as Excel does; where `which` is out of range, the last option, for
    the caller to mark). The gradient reaches the chosen elements only, and numbers alone take
    no device sync. `errs`: errors that win over the choice."""
    shape = array_shape(V(which), *options)
    options = [spread(o, shape) for o in options]
    x = options[-1].x
    for i in range(len(options) - 2, -1, -1):
        x = torch.where(which == i, options[i].x, x)
    x = torch.broadcast_to(x, shape)
    errs = None if errs is None else np.broadcast_to(errs, shape)
    kinds = {o.kind if not isinstance(o.kind, np.ndarray) else -1 for o in options}
    if len(kinds) == 1 and -1 not in kinds and all(o.text is None for o in options):
        return with_errors(x, errs, kinds.pop())
    w = torch.broadcast_to(which, shape).cpu().numpy()
    w = np.where((w < 0) | (w >= len(options)), len(options) - 1, w)
    kind, text = np.zeros(shape, np.int8), np.empty(shape, dtype=object)
    for i, o in enumerate(options):
        kind[w == i] = np.broadcast_to(o.kinds(), shape)[w == i]
        text[w == i] = np.broadcast_to(o.texts(), shape)[w == i]
    v = make(x, kind, text)
    return v if errs is None else with_errors(v.x, errs, v.kinds(), v.texts())


def _logical_value(value: bool, ctx: Ctx) -> V:
    return V(torch.full((1, 1, 1), float(value), dtype=ctx.dtype, device=ctx.device), BOOL)


def _not_available(ctx: Ctx, shape) -> V:
    """#N/A; while training (not strict) a NaN, which stands for an error without the device
    sync that error kinds would take."""
    if ctx.strict:
        return error_value("#N/A", shape, ctx)
    return V(torch.full(shape, float("nan"), dtype=ctx.dtype, device=ctx.device))


@excel("IF", args="be?e?")
def f_if(ctx, args):
    cond = args[0]
    yes = args[1] if len(args) > 1 else _logical_value(True, ctx)
    no = args[2] if len(args) > 2 else _logical_value(False, ctx)
    c, ec = to_bool(cond)
    if c.numel() == 1 and ec is None and yes.shape[1:] != no.shape[1:]:
        # one condition picks one branch as it is: IF(FALSE,{1,2,3}) is FALSE, not three
        return yes if bool(c.reshape(())) else no
    v = select((~c).to(torch.int8), [yes, no], ec)
    # IF hands on a reference as a reference: SUM(IF(…, A1, 0)) skips text in A1 (numbers
    # alone count the same either way: no need to read the condition)
    v.ref = yes.ref and no.ref
    if yes.ref != no.ref and c.numel() == 1 and not v.numeric():
        v.ref = yes.ref if bool(c.reshape(())) else no.ref
    return v


def _first_true(tests: list[tuple[torch.Tensor, np.ndarray | None]], shape):
    """Which test is the first true one, per element (len(tests) where none is), and the
    error of an error met before it (IFS and SWITCH stop at the first error)."""
    which = torch.full(shape, len(tests), dtype=torch.int64, device=tests[0][0].device)
    for i in range(len(tests) - 1, -1, -1):
        which = torch.where(tests[i][0], i, which)
    if all(e is None for _, e in tests):
        return which, None
    errs = np.full(shape, None, dtype=object)
    decided = np.zeros(shape, bool)
    for hit, e in tests:
        if e is not None:
            e = np.broadcast_to(e, shape)
            new = ~decided & (e != None)  # noqa: E711
            errs[new] = e[new]
            decided |= new
        decided |= torch.broadcast_to(hit, shape).cpu().numpy()
    return which, errs


@excel("_xlfn.IFS")
def f_ifs(ctx, args):
    if len(args) < 2 or len(args) % 2:
        raise FormulaError("IFS takes pairs of a condition and a value")
    shape = array_shape(*args)
    tests = [to_bool(spread(c, shape)) for c in args[0::2]]
    which, errs = _first_true(tests, shape)
    return select(which, list(args[1::2]) + [_not_available(ctx, shape)], errs)


@excel("_xlfn.SWITCH")
def f_switch(ctx, args):
    if len(args) < 3:
        raise FormulaError("SWITCH takes an expression and pairs of a value and a result")
    expr, rest = args[0], args[1:]
    cases, results = rest[0::2], list(rest[1::2])
    shape = array_shape(*args)
    tests = []
    for case in cases[: len(results)]:
        same = compare("=", spread(expr, shape), spread(case, shape), ctx)
        tests.append((same.x != 0, errors_of(same)))
    which, errs = _first_true(tests, shape)
    default = rest[-1] if len(rest) % 2 else _not_available(ctx, shape)
    return select(which, results + [default], errs)


def _if_error(ctx, args, name: str, caught) -> V:
    """IFERROR and IFNA: alt where value is an error that `caught` (codes → bool) accepts.
    While training, errors that are still non-finite numbers count too (NaN alone for
    IFNA)."""
    v, alt = args
    errs = errors_of(v)
    if errs is None and (ctx.strict or not v.numeric()):
        return v
    shape = array_shape(v, alt)
    v = spread(v, shape)
    errs = errors_of(v)
    hit = np.zeros(shape, bool) if errs is None else np.array(caught(errs), dtype=bool)
    mask = torch.as_tensor(hit, device=v.x.device)
    if not ctx.strict:
        mask = mask | (torch.isnan(v.x) if name == "IFNA" else ~torch.isfinite(v.x))
    return select(mask.to(torch.int8), [v, alt])


@excel("IFERROR", args="ev")
def f_iferror(ctx, args):
    return _if_error(ctx, args, "IFERROR", lambda e: e != None)  # noqa: E711


@excel("_xlfn.IFNA", args="ev")
def f_ifna(ctx, args):
    return _if_error(ctx, args, "IFNA", lambda e: e == "#N/A")


def _one_kind(v: V, kinds: tuple) -> bool:
    return not isinstance(v.kind, np.ndarray) and v.kind in kinds


def _truth(v: V) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """Per block row: how many of v's values are TRUE, how many count at all, and the first
    error. In ranges only numbers and booleans count; typed alone, "TRUE" and "FALSE" count
    too and other text is passed over (AND("", TRUE) is TRUE)."""
    if _one_kind(v, (None, NUM, BOOL, BLANK)):  # no need to read the kinds
        t = (v.x != 0).to(v.x.dtype) if v.kind != BLANK else torch.zeros_like(v.x)
        return t.sum((1, 2)), torch.full_like(t, float(v.kind != BLANK)).sum((1, 2)), None
    k, b = v.kinds(), (v.x != 0).cpu().numpy()
    counted = (k == NUM) | (k == BOOL)
    if is_array(v):
        errs = row_errors(v)
    else:
        words = np.char.upper(np.where(k == TEXT, v.texts(), "").astype(str))
        said = (k == TEXT) & np.isin(words, ("TRUE", "FALSE"))
        counted, b = counted | said, np.where(said, words == "TRUE", b)
        errs = errors_of(v)
        errs = None if errs is None else errs[:, :1, :1]
    n = v.shape[0]
    trues = (b & counted).reshape(n, -1).sum(1)
    seen = counted.reshape(n, -1).sum(1)
    as_t = lambda a: torch.as_tensor(a, dtype=v.x.dtype, device=v.x.device)  # noqa: E731
    return as_t(trues), as_t(seen), errs


def _logical(ctx, args, name, combine) -> V:
    trues, seen, errs = 0, 0, []
    for v in args:
        t, s, e = _truth(v)
        trues, seen = trues + t, seen + s
        errs.append(e)
    x = combine(trues, seen).to(ctx.dtype).reshape(-1, 1, 1)
    shape = tuple(x.shape)
    if not all(_one_kind(v, (None, NUM, BOOL)) for v in args):  # else each value counts
        none = (torch.broadcast_to(seen.reshape(-1, 1, 1), shape) == 0).cpu().numpy()
        errs.append(np.where(none, "#VALUE!", None) if none.any() else None)
    return with_errors(x, first_error(shape, *errs), BOOL)


@excel("AND", args="r+", gradient=False)
def f_and(ctx, args):
    return _logical(ctx, args, "AND", lambda t, s: t == s)


@excel("OR", args="r+", gradient=False)
def f_or(ctx, args):
    return _logical(ctx, args, "OR", lambda t, s: t > 0)


@excel("_xlfn.XOR", args="r+", gradient=False)
def f_xor(ctx, args):
    return _logical(ctx, args, "XOR", lambda t, s: t % 2 == 1)


@excel("NOT", args="b", gradient=False)
def f_not(ctx, args):
    b, errs = to_bool(args[0])
    return with_errors((~b).to(ctx.dtype), errs, BOOL)


@excel("TRUE", args="", gradient=False)
def f_true(ctx, args):
    return _logical_value(True, ctx)


@excel("FALSE", args="", gradient=False)
def f_false(ctx, args):
    return _logical_value(False, ctx)
