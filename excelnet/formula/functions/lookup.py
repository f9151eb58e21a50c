"""LOOKUP_AND_REFERENCE: finding where a value is (MATCH, XMATCH) and picking values by
position (VLOOKUP, HLOOKUP, XLOOKUP, LOOKUP, INDEX, CHOOSE); TRANSPOSE, ADDRESS.

A position is found on values that usually do not depend on the parameters: then it is found
once and remembered, and the gradient flows through the values picked (a gather). Where the
key or the vector depends on the parameters the position is a step function with no gradient;
numbers alone are searched in torch, without a device sync.

How Excel searches (the corpus's Excel files agree):
- exact match (MATCH 0, VLOOKUP FALSE, XLOOKUP 0): the first equal value; text without case,
  and no number equals text or a boolean; MATCH and VLOOKUP read * ? ~ in a text key as
  wildcards (XLOOKUP and XMATCH in match mode 2); a blank key finds nothing, except in XLOOKUP
  and XMATCH, where it finds a blank cell.
- approximate match (MATCH 1 and -1, VLOOKUP TRUE, LOOKUP): a binary search among the values
  of the key's type (the others are passed over): the last value ≤ the key (≥ for MATCH -1),
  assuming the vector is sorted.
- XLOOKUP and XMATCH compare across types, numbers < text < FALSE < TRUE < blank: the next
  smaller or larger value (match mode -1, 1) by a scan, first or last (search mode 1, -1), or
  by a binary search for the first position not below the key (search mode 2; -2 on the
  vector reversed).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch

from excelnet.formula.functions.criteria import wildcard
from excelnet.formula.functions.logical import select
from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import (
    BLANK,
    BOOL,
    ERR,
    NUM,
    TEXT,
    Ctx,
    Omitted,
    V,
    array_shape,
    error_value,
    errors_of,
    first_error,
    make,
    spread,
    to_bool,
    to_number,
    to_text,
    with_errors,
)

excel = registrar("LOOKUP_AND_REFERENCE")

# XLOOKUP's order of kinds: numbers < text < booleans < blanks (errors never match)
_ORDER = np.zeros(5)
_ORDER[[NUM, TEXT, BOOL, BLANK, ERR]] = [0, 1, 2, 3, 4]


# -- values as lookups compare them -------------------------------------------------------------


def _comparable(key: V, vec: V):
    """Keys (Nk, K) and a vector (Na, M) as float tensors that compare as Excel's lookups
    compare values, and the kind of each element (numpy, None when all are numbers). Numbers
    compare as they are, with no device sync; otherwise each value becomes its rank in
    (kind, value) order, text without case. Errors (and NaN) are +inf: no key equals them."""
    k = key.x.detach().reshape(key.shape[0], -1)
    a = vec.x.detach().reshape(vec.shape[0], -1)
    inf = torch.tensor(float("inf"), dtype=a.dtype, device=a.device)
    if key.numeric() and vec.numeric():
        return k, torch.where(torch.isnan(a), inf, a), None, None
    kinds = np.concatenate([key.kinds().reshape(-1), vec.kinds().reshape(-1)])
    texts = np.concatenate([key.texts().reshape(-1), vec.texts().reshape(-1)])
    value = np.concatenate([k.cpu().numpy().reshape(-1), a.cpu().numpy().reshape(-1)])
    kinds = np.where((kinds == NUM) & np.isnan(value), ERR, kinds)
    is_text = kinds == TEXT
    if is_text.any():
        words = np.array([str(t).lower() for t in texts[is_text]], dtype=object)
        value[is_text] = np.unique(words, return_inverse=True)[1]
    value[(kinds == BLANK) | (kinds == ERR)] = 0
    rank = np.unique(np.stack([_ORDER[kinds], value], 1), axis=0, return_inverse=True)[1]
    rank = np.where(kinds == ERR, np.inf, rank.reshape(-1).astype(float))
    split = k.numel()
    as_t = lambda r, like: torch.as_tensor(r, dtype=a.dtype, device=a.device).reshape(like.shape)  # noqa: E731
    kk, ak = kinds[:split].reshape(k.shape), kinds[split:].reshape(a.shape)
    return as_t(rank[:split], k), as_t(rank[split:], a), kk, ak


def _at(t: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """t[n, pos[n, j]] for t (1 or N, M) and pos (N, K)."""
    if t.shape[0] == 1:
        return t[0][pos]
    return torch.gather(t, 1, pos)


def _rows(k: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The keys, one row per vector row when the vectors differ by block row."""
    return k.expand(a.shape[0], k.shape[1]) if a.shape[0] > k.shape[0] else k


def _keys_found(k: torch.Tensor, a: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Positions, none for a key that is an error (while training: not finite)."""
    return torch.where(torch.isfinite(_rows(k, a)), idx, -1)


def _searchsorted(s: torch.Tensor, k: torch.Tensor, right: bool) -> torch.Tensor:
    k = _rows(k, s).contiguous()
    return torch.searchsorted(s[0] if s.shape[0] == 1 else s, k, right=right)


def _exact(a: torch.Tensor, k: torch.Tensor, last: bool) -> torch.Tensor:
    """Position of the first (last) element equal to each key, -1 for none: one sort."""
    s, order = torch.sort(a, dim=1, stable=True)
    pos = _searchsorted(s, k, right=last) - int(last)
    p = pos.clamp(0, a.shape[1] - 1)
    hit = (pos >= 0) & (pos < a.shape[1]) & (_at(s, p) == _rows(k, s))
    return torch.where(hit, _at(order, p), -1)


def _nearest(a: torch.Tensor, k: torch.Tensor, larger: bool, last: bool) -> torch.Tensor:
    """Position of the key, or else of the next smaller (larger) value; among equal values the
    first (last) in the vector; -1 for none."""
    m = a.shape[1]
    s, order = torch.sort(a, dim=1, stable=True)
    pos = _searchsorted(s, k, right=not larger) - int(not larger)
    p = pos.clamp(0, m - 1)
    best = _at(s, p)
    ok = (pos >= 0) & (pos < m) & torch.isfinite(best)
    if larger == last:  # the other end of the run of equal values
        p = (_searchsorted(s, best, right=last) - int(last)).clamp(0, m - 1)
    return torch.where(ok, _at(order, p), -1)


def _bisect(a, k, go_right, valid: torch.Tensor | None = None):
    """Excel's binary search over the `valid` elements of each vector, in their order: for how
    many leading ones go_right(element, key) holds, if they are sorted as the search assumes.
    Returns (that count, the valid elements' positions or None for all, their number)."""
    m = a.shape[1]
    k = _rows(k, a)
    order, count = None, torch.full_like(k, m, dtype=torch.int64)
    if valid is not None:
        order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
        a = torch.gather(a, 1, order)
        count = torch.broadcast_to(valid.sum(1, keepdim=True), k.shape)
    lo = torch.zeros_like(count)
    hi = count
    for _ in range(m.bit_length()):
        mid = (lo + hi) // 2
        active = lo < hi
        right = active & go_right(_at(a, mid.clamp(max=m - 1)), k)
        lo, hi = torch.where(right, mid + 1, lo), torch.where(active & ~right, mid, hi)
    return lo, order, count


def _original(order: torch.Tensor | None, p: torch.Tensor) -> torch.Tensor:
    return p if order is None else _at(order, p.clamp(min=0))


def _keys_of(kinds: np.ndarray | None, kind: int, like: torch.Tensor) -> torch.Tensor:
    """Which keys are of a kind (all, when there are no kinds: numbers)."""
    if kinds is None:
        return torch.full(like.shape, kind == NUM, device=like.device)
    return torch.as_tensor(np.broadcast_to(kinds, like.shape) == kind, device=like.device)


def _approximate(key: V, vec: V, descending: bool) -> torch.Tensor:
    """MATCH 1 (-1 descending), VLOOKUP TRUE, LOOKUP: the last value ≤ (≥) the key, by a
    binary search among the values of the key's kind."""
    k, a, kk, ak = _comparable(key, vec)
    go = (lambda v, key: v >= key) if descending else (lambda v, key: v <= key)
    if kk is None:
        p = _bisect(a, k, go)[0] - 1
        return _keys_found(k, a, torch.where(p >= 0, p, -1))
    out = torch.full(_rows(k, a).shape, -1, dtype=torch.int64, device=a.device)
    for kind in (NUM, TEXT, BOOL):
        keys = _keys_of(kk, kind, out)
        if not bool(keys.any()):
            continue
        lo, order, _ = _bisect(a, k, go, torch.as_tensor(ak == kind, device=a.device))
        found = torch.where(lo > 0, _original(order, lo - 1), -1)
        out = torch.where(keys, found, out)
    return out


def _sorted_search(key: V, vec: V, match: int, descending: bool) -> torch.Tensor:
    """XLOOKUP/XMATCH search mode 2 (-2: the vector read from its end): a binary search for
    the first value not below the key; then the key itself, or the value before (match mode
    -1) or at that point (1)."""
    k, a, _, ak = _comparable(key, vec)
    m = a.shape[1]
    valid = None if ak is None else torch.as_tensor(ak != ERR, device=a.device)
    if descending:
        a, valid = a.flip(1), None if valid is None else valid.flip(1)
    lo, order, count = _bisect(a, k, lambda v, key: v < key, valid)
    inside = lo < count
    here = _original(order, lo.clamp(max=m - 1))
    equal = inside & (_at(a, here.clamp(min=0)) == _rows(k, a))
    if match == 0:
        p = torch.where(equal, here, -1)
    elif match == -1:
        before = torch.where(lo > 0, _original(order, lo - 1), -1)
        p = torch.where(equal, here, before)
    else:
        p = torch.where(inside, here, -1)
    return _keys_found(k, a, torch.where(p >= 0, m - 1 - p, -1) if descending else p)


def _find(key: V, vec: V, how: str, last: bool = False, blank_finds: bool = False):
    """Positions (N, K) of the keys in the vector, -1 where not found. how: "exact",
    "wildcard" (exact, * ? ~ in text keys), "regex" (text keys as regular expressions)."""
    k, a, kk, ak = _comparable(key, vec)
    idx = _keys_found(k, a, _exact(a, k, last))
    if kk is None:
        return idx
    if not blank_finds:
        idx = torch.where(_keys_of(kk, BLANK, idx), -1, idx)
    if how == "exact":
        return idx
    kinds = np.broadcast_to(kk, idx.shape)
    if how == "wildcard":
        keys = np.broadcast_to(key.texts().reshape(kk.shape), idx.shape)
        patterned = np.vectorize(lambda t: any(c in str(t) for c in "*?~"), otypes=[bool])
        todo = (kinds == TEXT) & patterned(keys)
    else:
        keys = np.broadcast_to(to_text(key)[0].reshape(kk.shape), idx.shape)
        todo = (kinds != ERR) & (kinds != BLANK)
    if not todo.any():
        return idx
    words = vec.texts().reshape(ak.shape)
    out, seen = idx.cpu().numpy().copy(), {}
    for i, j in zip(*np.nonzero(todo), strict=True):
        row = min(i, len(ak) - 1)
        if (keys[i, j], row) not in seen:  # a pattern copied down: scanned once
            seen[keys[i, j], row] = _scan(keys[i, j], how, words[row], ak[row], last)
        out[i, j] = seen[keys[i, j], row]
    return torch.as_tensor(out, device=idx.device)


def _scan(pattern: str, how: str, words: np.ndarray, kinds: np.ndarray, last: bool) -> int:
    """Position of the first (last) text matching a wildcard pattern or a regex, -1 for none."""
    if how == "wildcard":
        test = wildcard(pattern).fullmatch
    else:
        try:
            test = re.compile(pattern).search
        except re.error:
            return -1
    hits = [p for p in range(len(words)) if kinds[p] == TEXT and test(str(words[p]))]
    return (hits[-1] if last else hits[0]) if hits else -1


def _x_find(key: V, vec: V, match: int, search: int) -> torch.Tensor:
    """XLOOKUP and XMATCH: match mode 0, -1, 1, 2 (wildcards) or 3 (regex); search mode 1,
    -1, 2 or -2."""
    if search in (2, -2):
        return _sorted_search(key, vec, match, search == -2)
    last = search == -1
    if match in (-1, 1):
        k, a, _, _ = _comparable(key, vec)
        return _keys_found(k, a, _nearest(a, k, larger=match == 1, last=last))
    how = {0: "exact", 2: "wildcard", 3: "regex"}[match]
    return _find(key, vec, how, last, blank_finds=True)


def _cached(owner: V, key: V, vec: V, spec: tuple, find: Callable) -> torch.Tensor:
    """Positions found once, for as long as what they depend on stays (remembered on the key):
    a key that does not depend on the parameters, in a range that does not either, or in one
    whose lookup vector holds no numbers or booleans — labels beside parameters, with the
    kinds the first step laid out."""
    if key.x.requires_grad:
        return find()
    stamp = (owner,) if not owner.x.requires_grad else (owner.kind, owner.text)
    key.cache = key.cache or {}
    hit = key.cache.get(spec)
    if hit is not None and len(hit[0]) == len(stamp):
        if all(a is b for a, b in zip(hit[0], stamp, strict=True)):
            return hit[1]
    if owner.x.requires_grad and np.isin(vec.kinds(), (NUM, BOOL)).any():
        return find()  # the numbers in it may move
    hit = key.cache[spec] = (stamp, find())
    return hit[1]


# -- arguments and results ----------------------------------------------------------------------


def _part(v: V, rows, cols) -> V:
    """The rows and columns of v (slices or indices), the block axis kept."""
    rows = slice(rows, rows + 1) if isinstance(rows, int) else rows
    cols = slice(cols, cols + 1) if isinstance(cols, int) else cols
    kind = v.kinds()[:, rows, cols] if isinstance(v.kind, np.ndarray) else v.kind
    text = None if v.text is None else v.texts()[:, rows, cols]
    return V(v.x[:, rows, cols], kind, text, v.ref)


def transposed(v: V) -> V:
    kind = v.kinds().transpose(0, 2, 1) if isinstance(v.kind, np.ndarray) else v.kind
    text = None if v.text is None else v.texts().transpose(0, 2, 1)
    return V(v.x.transpose(1, 2), kind, text, v.ref)


def _option(args: list[V], i: int) -> V | None:
    """Argument i, None when left out or omitted (XLOOKUP(x, a, b, , 1): its default)."""
    return args[i] if len(args) > i and not isinstance(args[i], Omitted) else None


def _numbers(v: V) -> tuple[np.ndarray, np.ndarray | None]:
    """v's numbers truncated toward zero, as numpy (read once for a constant), and errors."""
    if v.cache and "numbers" in v.cache:
        return v.cache["numbers"]
    x, errs = to_number(v)
    out = (np.trunc(x.detach().cpu().numpy()), errs)
    if not v.x.requires_grad:
        v.cache = v.cache or {}
        v.cache["numbers"] = out
    return out


def _mode(v: V | None, default: float) -> tuple[np.ndarray, np.ndarray | None]:
    """A mode argument (match type, match or search mode, range_lookup) per block row."""
    if v is None:
        return np.array([default]), None
    x, errs = _numbers(v)
    return x[:, 0, 0], None if errs is None else errs[:, :1, :1]


def _by_mode(modes: np.ndarray, find: Callable) -> torch.Tensor:
    """Positions (N, K) where the block rows may ask for different modes: modes (N,) or
    (N, k) for k mode arguments; find(mode) for each mode asked."""
    modes = modes.reshape(modes.shape[0], -1)
    if len(modes) == 1:
        return find(*(int(v) for v in modes[0]))
    out = None
    for m in np.unique(modes, axis=0):
        idx = find(*(int(v) for v in m))
        if out is not None:
            rows = torch.as_tensor((modes == m).all(1), device=idx.device).reshape(-1, 1)
            idx = torch.where(rows, idx, out)
        out = idx
    return out


def _row_errors(mask: np.ndarray, code: str) -> np.ndarray | None:
    """An error for the block rows in `mask` (N,)."""
    return np.where(mask, code, None).reshape(-1, 1, 1) if mask.any() else None


def _take(ctx: Ctx, v: V, r: torch.Tensor, c: torch.Tensor) -> V:
    """v's elements at rows r and columns c (long tensors broadcasting to (N, h, w)); #N/A
    where either is -1 (nothing found; while training, numbers alone: NaN, no device sync)."""
    r, c = torch.broadcast_tensors(r, c)
    if v.shape[0] > r.shape[0]:
        r, c = r.expand(v.shape[0], *r.shape[1:]), c.expand(v.shape[0], *c.shape[1:])
    n = torch.arange(r.shape[0], device=r.device).reshape(-1, 1, 1) if v.shape[0] > 1 else 0
    missing = (r < 0) | (c < 0)
    x = v.x[n, r.clamp(min=0), c.clamp(min=0)]
    if v.numeric() and not ctx.strict:
        return V(torch.where(missing, float("nan"), x))
    rn, cn, m = r.clamp(min=0).cpu().numpy(), c.clamp(min=0).cpu().numpy(), missing.cpu().numpy()
    if v.numeric():
        return with_errors(x, np.where(m, "#N/A", None) if m.any() else None)
    nn = np.arange(r.shape[0]).reshape(-1, 1, 1) if v.shape[0] > 1 else 0
    kind, text = v.kinds()[nn, rn, cn].copy(), v.texts()[nn, rn, cn].copy()
    kind[m], text[m] = ERR, "#N/A"
    return make(x, kind, text)


def _finish(ctx: Ctx, v: V, errs: list, checks: list[tuple[torch.Tensor, str]], ref=False) -> V:
    """v with errors in Excel's order: the arguments' `errs`, then each check (where its mask
    holds, its error), then v's own (nothing found, errors picked). While training, numbers
    alone: NaN where a check holds, no device sync."""
    shape = v.shape
    if not ctx.strict and v.numeric() and all(e is None for e in errs):
        x = v.x
        for mask, _ in checks:
            x = torch.where(mask, float("nan"), x)
        return V(x, None, None, ref)
    found = []
    for mask, code in checks:
        m = torch.broadcast_to(mask, shape).cpu().numpy()
        found.append(np.where(m, code, None) if m.any() else None)
    e = first_error(shape, *errs, *found, errors_of(v))
    out = v if e is None else with_errors(v.x, e, v.kinds(), v.texts())
    out.ref = ref
    return out


def _blank(ctx: Ctx) -> V:
    return V(torch.zeros((1, 1, 1), dtype=ctx.dtype, device=ctx.device), BLANK)


def _is_vector(v: V) -> bool:
    return v.shape[1] == 1 or v.shape[2] == 1


def _positions(ctx: Ctx, key: V, idx: torch.Tensor, errs: list) -> V:
    """MATCH, XMATCH: 1-based positions in the key's shape, #N/A where not found."""
    shape = (idx.shape[0], *key.shape[1:])
    idx = idx.reshape(shape)
    x = (idx + 1).to(ctx.dtype)
    return _finish(ctx, V(x), errs, [(idx < 0, "#N/A")])


# -- the functions ------------------------------------------------------------------------------


@excel("MATCH", args="vrn?", gradient=False)
def f_match(ctx, args):
    key, vec = args[0], args[1]
    kind, e_kind = _mode(args[2] if len(args) == 3 else None, 1.0)
    if not _is_vector(vec):
        return _finish(ctx, error_value("#N/A", key.shape, ctx), [errors_of(key), e_kind], [])
    how = np.sign(kind)

    def find(m: int) -> torch.Tensor:
        if m == 0:
            return _cached(vec, key, vec, ("MATCH", 0), lambda: _find(key, vec, "wildcard"))
        return _cached(vec, key, vec, ("MATCH", m), lambda: _approximate(key, vec, m < 0))

    return _positions(ctx, key, _by_mode(how, find), [errors_of(key), e_kind])


@excel("_xlfn.XMATCH", args="vrn?n?", gradient=False)
def f_xmatch(ctx, args):
    key, vec = args[0], args[1]
    key = _blank(ctx) if isinstance(key, Omitted) else key
    modes, errs = _x_modes(args, 2)
    if not _is_vector(vec):
        return _finish(ctx, error_value("#VALUE!", key.shape, ctx), [errors_of(key)], [])
    idx = _by_mode(modes, lambda m, s: _x_cached(key, vec, m, s))
    return _positions(ctx, key, idx, [errors_of(key), *errs])


_MATCH_MODES, _SEARCH_MODES = (0, -1, 1, 2, 3), (1, -1, 2, -2)


def _x_modes(args: list[V], first: int) -> tuple[np.ndarray, list]:
    """XLOOKUP's and XMATCH's (match mode, search mode) per block row, (N, 2), and their
    errors (an unknown mode, or wildcards or a regex with a binary search: #VALUE!)."""
    match, e_match = _mode(_option(args, first), 0.0)
    search, e_search = _mode(_option(args, first + 1), 1.0)
    match, search = np.broadcast_arrays(match, search)
    bad = ~np.isin(match, _MATCH_MODES) | ~np.isin(search, _SEARCH_MODES)
    bad |= np.isin(match, (2, 3)) & np.isin(search, (2, -2))
    modes = np.where(bad[:, None], (0, 1), np.stack([match, search], 1))  # searched, unused
    return modes, [e_match, e_search, _row_errors(bad, "#VALUE!")]


def _x_cached(key: V, vec: V, match: int, search: int) -> torch.Tensor:
    spec = ("X", match, search)
    return _cached(vec, key, vec, spec, lambda: _x_find(key, vec, match, search))


def _vlookup(ctx: Ctx, args: list[V], name: str, horizontal: bool) -> V:
    key, table, col = args[0], args[1], args[2]
    approximate, e_approx = _mode(args[3] if len(args) == 4 else None, 1.0)
    table = transposed(table) if horizontal else table
    c, e_col = to_number(col)
    c = torch.trunc(c.detach()).to(torch.int64) - 1
    errs = [errors_of(key), e_col, e_approx]
    if not table.ref and table.shape[1:] == (1, 1) and (table.kinds() == TEXT).all():
        errs.append(np.full((1, 1, 1), "#VALUE!", dtype=object))
    vec = _part(table, slice(None), 0)

    def find(exact: int) -> torch.Tensor:
        if exact:
            return _cached(args[1], key, vec, (name, 0), lambda: _find(key, vec, "wildcard"))
        return _cached(args[1], key, vec, (name, 1), lambda: _approximate(key, vec, False))

    idx = _by_mode((np.asarray(approximate) == 0).astype(int), find)
    r = idx.reshape(idx.shape[0], *key.shape[1:])
    width = table.shape[2]
    v = _take(ctx, table, r, c.clamp(0, width - 1))
    return _finish(ctx, v, errs, [(c < 0, "#VALUE!"), (c >= width, "#REF!")])


@excel("VLOOKUP", args="vrnn?")
def f_vlookup(ctx, args):
    return _vlookup(ctx, args, "VLOOKUP", False)


@excel("HLOOKUP", args="vrnn?")
def f_hlookup(ctx, args):
    return _vlookup(ctx, args, "HLOOKUP", True)


@excel("LOOKUP", args="vrr?")
def f_lookup(ctx, args):
    """The vector form LOOKUP(key, vector, results) and the array form LOOKUP(key, array):
    search the first row of an array wider than tall, else its first column, and give the
    last row's (column's) value."""
    key, vec = args[0], args[1]
    if len(args) == 3:
        result = args[2]
    elif vec.shape[2] > vec.shape[1]:
        vec, result = _part(vec, 0, slice(None)), _part(vec, vec.shape[1] - 1, slice(None))
    else:
        vec, result = _part(vec, slice(None), 0), _part(vec, slice(None), vec.shape[2] - 1)
    spec = ("LOOKUP", len(args))
    idx = _cached(args[1], key, vec, spec, lambda: _approximate(key, vec, False))
    r = idx.reshape(idx.shape[0], *key.shape[1:])
    if result.shape[2] > 1:  # a row of results
        result = transposed(result)
    length = result.shape[1]
    v = _take(ctx, result, torch.where(r < length, r, -1), torch.zeros_like(r))
    checks = [] if _is_vector(vec) else [(torch.ones((), dtype=torch.bool), "#N/A")]
    return _finish(ctx, v, [errors_of(key)], checks)


@excel("_xlfn.XLOOKUP", args="vrrv?n?n?")
def f_xlookup(ctx, args):
    """XLOOKUP(key, lookup_vector, return_array, [if_not_found], [match_mode], [search_mode]):
    from a return array with as many rows as a lookup column (columns as a lookup row), the
    row (column) at the key's position."""
    key, vec, ret = args[0], args[1], args[2]
    key = _blank(ctx) if isinstance(key, Omitted) else key
    modes, errs = _x_modes(args, 4)
    errs = [errors_of(key), *errs]
    column = vec.shape[2] == 1
    length = vec.shape[1] if column else vec.shape[2]
    fits = _is_vector(vec) and (ret.shape[1] if column else ret.shape[2]) == length
    if not fits:
        return _finish(ctx, error_value("#VALUE!", key.shape, ctx), errs[:1], [])
    idx = _by_mode(modes, lambda m, s: _x_cached(key, vec, m, s))
    n, size = idx.shape[0], key.shape[1] * key.shape[2]
    across = ret.shape[2] if column else ret.shape[1]  # the size of what one key returns
    if size == 1:
        r = idx.reshape(n, 1, 1)
        span = torch.arange(across, device=r.device)
        r, c = (r, span.reshape(1, 1, -1)) if column else (span.reshape(1, -1, 1), r)
    elif across == 1:
        r = idx.reshape(n, *key.shape[1:])
        r, c = (r, torch.zeros_like(r)) if column else (torch.zeros_like(r), r)
    else:  # an array of keys, each returning an array: Excel's nested arrays
        return _finish(ctx, error_value("#CALC!", key.shape, ctx), errs, [])
    v = _take(ctx, ret, r, c)
    missing = torch.broadcast_to(r if column else c, v.shape) < 0
    if _option(args, 3) is not None:
        v = select(missing.to(torch.int8), [v, args[3]])
    return _finish(ctx, v, errs, [], ref=ret.ref)


def _index_numbers(ctx: Ctx, v: V | None):
    """An INDEX row or column argument: numbers truncated (0: all), their errors, and whether
    they are all 0. While training, a position computed at each step (one the first, strict,
    run did not read and remember) is never "all", and is not read: no device sync."""
    if v is None:
        return torch.zeros((1, 1, 1), dtype=torch.int64, device=ctx.device), None, True
    x, errs = to_number(v)
    x = torch.trunc(x.detach())
    if not ctx.strict and v.numeric() and not (v.cache and "numbers" in v.cache):
        return x.to(torch.int64), errs, False
    numbers = _numbers(v)[0]
    zero = numbers == 0
    if zero.any() and not zero.all():
        raise FormulaError("INDEX with 0 (a whole row or column) for some rows only")
    return x.to(torch.int64), errs, bool(zero.all())


@excel("INDEX", args="rnn?n?")
def f_index(ctx, args):
    """INDEX(array, row, [column], [area]) as a value: the element, or with 0 for a row or a
    column, the whole column or row. (INDEX as a reference, A1:INDEX(…), is the compiler's.)"""
    arr = args[0]
    _, h, w = arr.shape
    if len(args) == 2 and h == 1 and w > 1:  # INDEX({1,2,3}, 2): the column of a single row
        rows, cols = None, _option(args, 1)
    else:
        rows, cols = _option(args, 1), _option(args, 2)
    r, e_r, all_r = _index_numbers(ctx, rows)
    c, e_c, all_c = _index_numbers(ctx, cols)
    area, e_area = _mode(_option(args, 3), 1.0)
    all_r, all_c = all_r and h > 1, all_c and w > 1  # all of one row: that row
    rr = torch.arange(h, device=r.device).reshape(1, -1, 1) if all_r else (r - 1).clamp(min=0)
    cc = torch.arange(w, device=c.device).reshape(1, 1, -1) if all_c else (c - 1).clamp(min=0)
    if (all_r or all_c) and (r.shape[1:] != (1, 1) or c.shape[1:] != (1, 1)):
        raise FormulaError("INDEX with 0 (a whole row or column) and an array of positions")
    v = _take(ctx, arr, rr.clamp(0, h - 1), cc.clamp(0, w - 1))
    errs = [e_r, e_c, e_area, _row_errors(area < 1, "#VALUE!"), _row_errors(area > 1, "#REF!")]
    checks = [((r < 0) | (c < 0), "#VALUE!"), ((r > h) | (c > w), "#REF!")]
    if not ctx.strict:  # while training, a position of 0 from the parameters: out of range
        zero = torch.zeros((), dtype=torch.bool, device=r.device)
        zero = zero | (r == 0) if h > 1 and not all_r else zero
        zero = zero | (c == 0) if w > 1 and not all_c else zero
        checks.append((zero, "#REF!"))
    return _finish(ctx, v, errs, checks, ref=arr.ref)


@excel("CHOOSE", args="nv+")
def f_choose(ctx, args):
    i, errs = to_number(args[0])
    options = args[1:]
    which = torch.trunc(torch.nan_to_num(i.detach(), nan=0.0)) - 1
    bad = (which < 0) | (which >= len(options))
    which = which.clamp(-1, len(options)).to(torch.int64)
    v = select(which, options)
    return _finish(ctx, v, [errs], [(bad, "#VALUE!")], ref=all(o.ref for o in options))


@excel("TRANSPOSE", args="r", array_result=True)
def f_transpose(ctx, args):
    return transposed(args[0])


_PLAIN_SHEET = re.compile(r"[^\W\d][\w.]*")
_CELL_LIKE = re.compile(r"([A-Za-z]{1,3}\d+|[Rr]\d*[Cc]\d*)")


def _address(row: int, col: int, absolute: int, a1: bool, sheet: str | None) -> str:
    from openpyxl.utils import get_column_letter

    rabs, cabs = absolute in (1, 2), absolute in (1, 3)
    if a1:
        where = f"{'$' * cabs}{get_column_letter(col)}{'$' * rabs}{row}"
    else:
        where = f"R{row if rabs else f'[{row}]'}C{col if cabs else f'[{col}]'}"
    if sheet is None:
        return where
    if not (_PLAIN_SHEET.fullmatch(sheet) and not _CELL_LIKE.fullmatch(sheet)):
        sheet = "'" + sheet.replace("'", "''") + "'"
    return f"{sheet}!{where}"


@excel("ADDRESS", args="nnn?b?t?", gradient=False)
def f_address(ctx, args):
    """ADDRESS(row, column, [abs 1-4], [A1 style], [sheet]): a reference as text."""
    shape = array_shape(*args)
    row, e_row = to_number(spread(args[0], shape))
    col, e_col = to_number(spread(args[1], shape))
    parts = [np.broadcast_to(np.trunc(t.detach().cpu().numpy()), shape) for t in (row, col)]
    errs = [e_row, e_col]
    absolute = np.ones(shape)
    if _option(args, 2) is not None:
        a, e = to_number(spread(args[2], shape))
        absolute, errs = np.broadcast_to(np.trunc(a.detach().cpu().numpy()), shape), errs + [e]
    a1 = np.ones(shape, bool)
    if _option(args, 3) is not None:
        b, e = to_bool(spread(args[3], shape))
        a1, errs = np.broadcast_to(b.cpu().numpy(), shape), errs + [e]
    sheet = np.full(shape, None, dtype=object)
    if _option(args, 4) is not None:
        s, e = to_text(spread(args[4], shape))
        sheet, errs = np.broadcast_to(s, shape), errs + [e]
    out = np.full(shape, "", dtype=object)
    bad = np.zeros(shape, bool)
    for idx in np.ndindex(*shape):
        r, c, ab = parts[0][idx], parts[1][idx], absolute[idx]
        if not (1 <= r <= 1_048_576 and 1 <= c <= 16_384 and ab in (1, 2, 3, 4)):
            bad[idx] = True
            continue
        out[idx] = _address(int(r), int(c), int(ab), bool(a1[idx]), sheet[idx])
    errs = first_error(shape, *errs, np.where(bad, "#VALUE!", None))
    x = torch.zeros(shape, dtype=ctx.dtype, device=ctx.device)
    return with_errors(x, errs, np.full(shape, TEXT, np.int8), out)
