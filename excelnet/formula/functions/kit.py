"""What Excel's functions have in common, in torch: argument counts, numbers from ranges and
single values, errors carried along, results that are not finite, gradients kept finite on the
branch not taken. Category modules build on these."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from excelnet.formula.values import (
    BLANK,
    NUM,
    Ctx,
    Omitted,
    V,
    errors_of,
    first_error,
    from_python,
    to_bool,
    to_number,
    to_text,
    with_errors,
)


class Lazy:
    """A module imported when first used: scipy.special costs ~0.1 s of every command's
    start-up, and only the distributions need it."""

    def __init__(self, name: str):
        self._name, self._module = name, None

    def __getattr__(self, attr: str):
        if self._module is None:
            import importlib

            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


special = Lazy("scipy.special")


def strict_num(ctx: Ctx, x: torch.Tensor, errs: np.ndarray | None) -> np.ndarray | None:
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


_GUARDS: list | None = None  # while watch_guards() collects: the `ok` of each guarded operation


@contextlib.contextmanager
def watch_guards():
    """Collect the `ok` of every guarded operation evaluated inside: where one is False the
    operation gave an error value in Excel (EXP overflowing, a division by 0), or sits in a
    branch an IF does not take. A fit's cheap sign that a point needs a strict look."""
    global _GUARDS
    before, _GUARDS = _GUARDS, []
    try:
        yield _GUARDS
    finally:
        _GUARDS = before


def guarded(fn, ok: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
    """fn(*args) where `ok`, and its plain (non-finite) value elsewhere, with a finite
    gradient everywhere: the unselected side of an IF must not poison the gradient with
    0 * inf or 0 * nan, so where not `ok` every argument is replaced by 1 (the "double
    where")."""
    if _GUARDS is not None:
        _GUARDS.append(ok)
    one = torch.ones((), dtype=args[0].dtype, device=args[0].device)
    safe = [torch.where(ok, a, one) for a in args]
    with torch.no_grad():
        raw = fn(*args)
    return torch.where(ok, fn(*safe), raw)


def multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a * b, with a gradient that stays finite where the product is an error: there an
    operand's NaN times the other's zero gradient (the branch IFERROR did not take) would be
    NaN, and poison every gradient it is summed into."""
    if not (a.requires_grad or b.requires_grad):
        return a * b
    ok = torch.isfinite(a) & torch.isfinite(b)
    one = torch.ones((), dtype=a.dtype, device=a.device)
    with torch.no_grad():
        raw = a * b
    return torch.where(ok, torch.where(ok, a, one) * torch.where(ok, b, one), raw)


def divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ok = (b != 0) & torch.isfinite(a) & torch.isfinite(b)
    return guarded(torch.div, ok, a, b)


def power(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    whole = b == torch.round(b)
    ok = ((a > 0) | ((a < 0) & whole) | ((a == 0) & (b >= 1))) & torch.isfinite(a)
    with torch.no_grad():  # an overflow is #NUM!: no gradient there either
        ok = ok & torch.isfinite(b) & torch.isfinite(torch.pow(a, b))
    # a negative base takes whole exponents only: no derivative in the exponent there
    b = torch.where(a < 0, b.detach(), b) if b.requires_grad else b
    return guarded(torch.pow, ok, a, b)


def constant_and(v: V, what: str, test):
    """Whether v is a constant whose numbers pass `test` (checked once, then remembered):
    then the plain operation is safe and its gradient finite, and the guard can go. (`test`
    may return a fact other than a bool, remembered the same way.)"""
    if v.x.requires_grad or not v.numeric():
        return False
    v.cache = v.cache or {}
    if what not in v.cache:
        v.cache[what] = test(v.x)
    return v.cache[what]


def row_errors(v: V) -> np.ndarray | None:
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


def is_array(v: V) -> bool:
    return v.ref or v.shape[1] * v.shape[2] > 1


def numbers(v: V) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray | None]:
    """Numbers for SUM-like functions: in ranges and arrays only the numbers count; a single
    value typed into the call is converted (TRUE → 1, "3" → 3). Returns (x with non-numbers
    zeroed, mask of counted elements or None for all, per-row errors)."""
    if v.numeric():
        return v.x, None, None
    if is_array(v):
        k = v.kinds()
        mask = torch.as_tensor(k == NUM, device=v.x.device)
        x = torch.where(mask, v.x, torch.zeros((), dtype=v.x.dtype, device=v.x.device))
        return x, mask, row_errors(v)
    if isinstance(v.kind, int) and v.kind == BLANK:
        return v.x, torch.zeros(v.shape, dtype=torch.bool, device=v.x.device), None
    x, errs = to_number(v)
    return x, None, errs


def reduce_rows(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=(1, 2), keepdim=True)


def count_of(v: V, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.full(
            (v.shape[0], 1, 1), float(v.shape[1] * v.shape[2]), dtype=v.x.dtype, device=v.x.device
        )
    return reduce_rows(mask.to(v.x.dtype))


def done(ctx: Ctx, x: torch.Tensor, errs: list) -> V:
    shape = tuple(x.shape)
    return with_errors(x, strict_num(ctx, x, first_error(shape, *errs)))


def elementwise(fn: Callable[[torch.Tensor], torch.Tensor], domain=None, smooth=None):
    """A one-argument function; `domain` marks where it is defined (else #NUM!), `smooth`
    where its derivative is finite."""

    def f(ctx, args):
        x, errs = to_number(args[0])
        if domain is not None and ctx.strict:
            bad = (~domain(x)).cpu().numpy()
            if bad.any():
                errs = first_error(x.shape, errs, np.where(bad, "#NUM!", None))
        y = guarded(fn, smooth(x), x) if smooth is not None else fn(x)
        return with_errors(y, strict_num(ctx, y, errs))

    return f


def second(args: list[V], like: torch.Tensor, default: float):
    """An optional second argument as a number (and its errors), or its default."""
    if len(args) == 2 and not isinstance(args[1], Omitted):
        return to_number(args[1])
    return torch.full((), default, dtype=like.dtype, device=like.device), None


# -- TEXT and DATE_AND_TIME: functions of single values, computed one element at a time --------


def _spread(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Excel's array expansion along one axis: a single row/column repeats; a shorter one
    leaves #N/A beyond its end. Returns (index into the axis, outside mask)."""
    idx = np.arange(size)
    if n == 1:
        return np.zeros(size, int), np.zeros(size, bool)
    return np.minimum(idx, n - 1), idx >= n


def expand(t: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """A tensor over `shape` as Excel expands an array argument: a size of 1 repeats (the
    places past a shorter array's end, #N/A in `elements`, repeat its last element here)."""
    if tuple(t.shape) == tuple(shape):
        return t
    index = []
    for axis, (have, want) in enumerate(zip(t.shape, shape, strict=True)):
        i = np.zeros(want, int) if have == 1 else np.minimum(np.arange(want), have - 1)
        view = [1, 1, 1]
        view[axis] = want
        index.append(torch.as_tensor(i.reshape(view), device=t.device))
    return t[index[0], index[1], index[2]]


def elements(v: V, how: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """v's elements as Python values over `shape` (Excel's array expansion), with their errors,
    converted as the parameter letter `how` says (registry.py: the vocabulary): "t" text
    (numbers written as a formula writes them), "n" numbers (numeric text read, booleans 0/1,
    blanks 0; other text #VALUE!), "b" logicals (bool), "v" and "e" as they are (float, bool,
    str, None for blank, Error). An omitted argument is "" / 0 / FALSE / None."""
    from excelnet.formula.parse import Error

    if isinstance(v, Omitted):
        empty = {"t": "", "n": 0.0, "b": False, "v": None, "e": None}[how]
        return np.full(shape, empty, dtype=object), None
    if how == "t":
        vals, errs = to_text(v)
    elif how == "n":
        x, errs = to_number(v)
        vals = x.detach().cpu().numpy().astype(object)
    elif how == "b":
        b, errs = to_bool(v)
        vals = b.cpu().numpy().astype(object)
    elif how not in ("v", "e"):
        raise ValueError(f"no element by element reading of parameter kind {how!r}")
    else:
        k, x, t = v.kinds(), v.x.detach().cpu().numpy(), v.texts()
        vals = np.empty(v.shape, dtype=object)
        for idx, kind in np.ndenumerate(k):
            vals[idx] = (x[idx], bool(x[idx]), t[idx], None, Error(str(t[idx])))[kind]
        errs = errors_of(v)
    grids = [_spread(n, size) for n, size in zip(v.shape, shape, strict=True)]
    ix = np.ix_(*(g[0] for g in grids))
    outside = grids[0][1][:, None, None] | grids[1][1][None, :, None] | grids[2][1][None, None, :]
    vals = vals[ix]
    errs = None if errs is None else np.array(errs[ix], dtype=object)
    if outside.any():
        errs = np.full(shape, None, dtype=object) if errs is None else errs
        errs[outside] = "#N/A"
        vals = np.array(vals, dtype=object)
        vals[outside] = Error("#N/A")
    return vals, errs


def cellwise(ctx: Ctx, args: list[V], how: str, fn) -> V:
    """fn applied to each element of the arguments (expanded to a common shape as Excel expands
    arrays), each argument converted as `how` says: one parameter letter per argument (the
    vocabulary of registry.py; see `elements`). An element whose arguments hold an error is the
    first of them (argument order), except for the "e" arguments, which fn receives as they are
    (Error values included). fn returns a float, bool, str or Error. A function registered with
    cellwise=True is this, its letters from its registration."""
    from excelnet.formula.parse import Error

    shape = tuple(max(v.shape[i] for v in args) for i in range(3))
    cols = [elements(v, h, shape) for v, h in zip(args, how, strict=True)]
    checked = [e for h, (_, e) in zip(how, cols, strict=True) if h != "e" and e is not None]
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        err = next((e[idx] for e in checked if e[idx] is not None), None)
        out[idx] = Error(err) if err is not None else fn(*(c[0][idx] for c in cols))
    return from_python(out, ctx)


def row_lists(v: V, how: str, rows: int) -> tuple[list[list], list[str | None]]:
    """For each of `rows` block rows, the elements of v in that row's range or array (row by
    row, as Excel reads a range), converted as `how` says (see `elements`), and the first
    error among them (or None)."""
    n, h, w = v.shape
    vals, errs = elements(v, how, (n, h, w))
    out, first = [], []
    for r in range(rows):
        i = r if n > 1 else 0
        out.append(list(vals[i].reshape(-1)))
        row_errs = [] if errs is None else [e for e in errs[i].reshape(-1) if e is not None]
        first.append(row_errs[0] if row_errs else None)
    return out, first


def row_index(ctx: Ctx, rows: int) -> V:
    """A (rows, 1, 1) value holding each block row's number: passed to `cellwise` beside the
    other arguments, it tells fn which row's `row_lists` to use."""
    return V(torch.arange(rows, dtype=ctx.dtype, device=ctx.device).reshape(rows, 1, 1))


# -- STATISTICAL ---------------------------------------------------------------------------------


def optional_number(args: list[V], i: int, like: torch.Tensor, default: float):
    """Argument i as a number (and its errors), or its default where it is left out."""
    if len(args) > i and not isinstance(args[i], Omitted):
        return to_number(args[i])
    return torch.full((1, 1, 1), default, dtype=like.dtype, device=like.device), None


# -- fn-math: functions of numbers, element by element ------------------------------------------

from excelnet.formula.values import BOOL, broadcast  # noqa: E402


def scalar_numbers(args: list[V], booleans: bool = True):
    """Each argument as numbers, as arithmetic reads them (numeric text read, blanks 0), and
    the first error of each element in argument order. booleans=False, as in the Analysis
    ToolPak functions (QUOTIENT, MROUND, SQRTPI, …): TRUE/FALSE is #VALUE!, an argument left
    out (MROUND(,5)) #N/A."""
    xs, errs = [], []
    for v in args:
        x, e = to_number(v)
        if not booleans and isinstance(v, Omitted):
            e = np.full(v.shape, "#N/A", dtype=object)
        elif not booleans and not v.numeric():
            logical = v.kinds() == BOOL
            if logical.any():
                e = first_error(v.shape, e, np.where(logical, "#VALUE!", None))
        xs.append(x)
        errs.append(e)
    return xs, first_error(broadcast(*args), *errs)


def on_numbers(ctx: Ctx, args: list[V], compute, booleans: bool = True) -> V:
    """A function that is not differentiable, computed in numpy element by element over its
    arguments broadcast together: compute(*float arrays) -> (values, error codes or None).
    The arguments' own errors come first."""
    xs, errs = scalar_numbers(args, booleans)
    shape = broadcast(*args)
    arrays = [np.broadcast_to(x.detach().cpu().numpy(), shape) for x in xs]
    with np.errstate(all="ignore"):
        out, more = compute(*arrays)
    errs = first_error(shape, errs, more)
    out = np.broadcast_to(np.asarray(out, dtype=float), shape)
    if errs is not None:
        out = np.where(errs != None, 0.0, out)  # noqa: E711
    x = torch.as_tensor(np.array(out), dtype=ctx.dtype, device=ctx.device)
    return with_errors(x, strict_num(ctx, x, errs))


def where_error(cond: np.ndarray, code: str) -> np.ndarray | None:
    """The error `code` where cond holds (None elsewhere), or None when it holds nowhere."""
    return np.where(cond, code, None) if np.any(cond) else None
