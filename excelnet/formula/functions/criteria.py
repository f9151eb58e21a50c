"""Excel's criteria, as COUNTIF, SUMIF, AVERAGEIF, MINIFS, MAXIFS and their …IFS forms read
them: 0, "S", ">=5", "<>", "=", "a*" (wildcards), TRUE, "#N/A", ">"&A1, ">1/31/2024". A
criterion is a predicate over a range; `conditional` is the aggregate all those functions are.

Excel's rules, as the corpus shows them: a number (or text that reads as one: "23", "=23",
a date) matches numbers equal to it and also text that reads as that number, while "<>23"
leaves out only the number; <, <=, >, >= compare numbers with numbers and text with text
(case-insensitive); text matches text with * and ? (~ escapes them), case-insensitive;
TRUE/FALSE match booleans only; an error value or its text matches that error; "" matches
empty cells and empty text, "=" only empty cells, "<>" every cell that is not empty, "<" or
">" alone nothing; a criterion that refers to an empty cell is the number 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from excelnet.formula.functions.operators import TORCH_COMPARE
from excelnet.formula.parse import Ref
from excelnet.formula.values import (
    BLANK,
    BOOL,
    ERR,
    NUM,
    TEXT,
    Ctx,
    V,
    error_value,
    errors_of,
    first_error,
    text_number,
    with_errors,
)

ERROR_CODES = (
    "#NULL!",
    "#DIV/0!",
    "#VALUE!",
    "#REF!",
    "#NAME?",
    "#NUM!",
    "#N/A",
    "#GETTING_DATA",
    "#SPILL!",
    "#CALC!",
    "#FIELD!",
    "#BLOCKED!",
    "#CONNECT!",
    "#BUSY!",
    "#UNKNOWN!",
    "#PYTHON!",
)
_NP_COMPARE = {
    "=": np.equal,
    "<>": np.not_equal,
    "<": np.less,
    ">": np.greater,
    "<=": np.less_equal,
    ">=": np.greater_equal,
}
_OPERATOR = re.compile(r"(<=|>=|<>|<|>|=)?(.*)", re.S)


@dataclass(frozen=True)
class Criterion:
    """One criterion, parsed: an operator and what it compares with (a float, a bool, an
    error code as `("error", code)`, or text; `blank_only` for "=")."""

    op: str
    operand: object
    blank_only: bool = False
    kind: str = field(init=False)  # the operand's type: TRUE and 1 are different criteria

    def __post_init__(self):
        object.__setattr__(self, "kind", type(self.operand).__name__)

    def __call__(self, r: V) -> torch.Tensor:
        """Boolean (N, H, W): which cells of the range meet the criterion."""
        if r.numeric():  # numbers only (the training path): compare in torch, no sync
            return self._numbers(r.x)
        k, t = r.kinds(), r.texts()
        x = r.x.detach().cpu().numpy()
        hit = self._mixed(k, x, t)
        return torch.as_tensor(hit, device=r.x.device)

    def _numbers(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.operand, float):
            return TORCH_COMPARE[self.op](x, self.operand)
        return torch.full(x.shape, self.op == "<>", dtype=torch.bool, device=x.device)

    def _mixed(self, k: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        op, value = self.op, self.operand
        negate = op == "<>"
        eq_op = "=" if negate else op
        if isinstance(value, float):
            hit = (k == NUM) & _NP_COMPARE[eq_op](x, value)
            if op == "=":  # text that reads as the number matches too (not for "<>")
                texts = k == TEXT
                if texts.any():
                    as_num = np.array([_read(s) for s in t[texts]], dtype=float)
                    hit[texts] = as_num == value
        elif isinstance(value, bool):
            hit = (k == BOOL) & _NP_COMPARE[eq_op](x != 0, value)
        elif isinstance(value, tuple):  # an error value
            hit = (k == ERR) & (t == value[1]) if eq_op == "=" else np.zeros(k.shape, bool)
        elif value == "":
            empty_text = (k == TEXT) & (t == "")
            hit = (k == BLANK) if self.blank_only else (k == BLANK) | empty_text
            hit = hit if eq_op == "=" else np.zeros(k.shape, bool)
        else:
            hit = np.zeros(k.shape, bool)
            texts = np.nonzero(k == TEXT)
            if len(texts[0]):  # each distinct text matched once (a column holds few)
                seen: dict[str, bool] = {}
                hit[texts] = [
                    seen[s] if s in seen else seen.setdefault(s, self._text(s))
                    for s in map(str, t[texts].tolist())
                ]
        return ~hit if negate else hit

    def _text(self, s: str) -> bool:
        if self.op in ("=", "<>"):
            return bool(wildcard(self.operand).fullmatch(s))
        a, b = s.lower(), self.operand.lower()
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[self.op]


def _read(s) -> float:
    n = text_number(str(s))
    return math.nan if n is None else n


_PATTERNS: dict[str, re.Pattern] = {}


def wildcard(text: str) -> re.Pattern:
    """Excel's wildcards as a regular expression: * any run, ? one character, ~ before * ? ~
    the character itself (criteria, MATCH, VLOOKUP, XLOOKUP)."""
    if text not in _PATTERNS:
        out, i = [], 0
        while i < len(text):
            ch = text[i]
            if ch == "~" and i + 1 < len(text) and text[i + 1] in "*?~":
                out.append(re.escape(text[i + 1]))
                i += 2
                continue
            out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
            i += 1
        _PATTERNS[text] = re.compile("".join(out), re.I | re.S)
    return _PATTERNS[text]


def criterion(value) -> Criterion:
    """A criterion from one value of the criteria argument (float, bool, str, None for an
    empty cell, or an Error)."""
    from excelnet.formula.parse import Error

    if value is None:
        return Criterion("=", 0.0)
    if isinstance(value, bool):
        return Criterion("=", value)
    if isinstance(value, (int, float)):
        return Criterion("=", float(value))
    if isinstance(value, Error):
        return Criterion("=", ("error", value.code))
    op, rest = _OPERATOR.fullmatch(value).groups()
    if rest == "":  # "" empty cells or text, "=" empty cells, "<>" the rest; "<" nothing
        return Criterion(op or "=", "", blank_only=op is not None)
    op = op or "="
    number = text_number(rest)
    if number is not None:
        return Criterion(op, number)
    if rest.upper() in ("TRUE", "FALSE"):
        return Criterion(op, rest.upper() == "TRUE")
    if rest.upper() in ERROR_CODES and op in ("=", "<>"):
        return Criterion(op, ("error", rest.upper()))
    return Criterion(op, rest)


def _cropped(v: V, h: int, w: int) -> V:
    """The top-left h×w of a range (Excel sizes a sum range by its criteria range)."""
    if v.shape[1:] == (h, w):
        return v
    sl = (slice(None), slice(0, h), slice(0, w))
    kind = v.kind if not isinstance(v.kind, np.ndarray) else v.kinds()[sl]
    text = None if v.text is None else v.texts()[sl]
    return V(v.x[sl], kind, text, v.ref)


def _criteria(crit: V) -> np.ndarray:
    """The criteria argument parsed, element by element (N, H, W); a constant one once."""
    if not crit.x.requires_grad and crit.cache and "criteria" in crit.cache:
        return crit.cache["criteria"]
    values = V(crit.x.detach(), crit.kind, crit.text)  # a live criterion is read as it stands
    out = np.empty(crit.shape, dtype=object)
    for idx in np.ndindex(crit.shape):
        out[idx] = criterion(values.item(*idx))
    if not crit.x.requires_grad:
        crit.cache = crit.cache or {}
        crit.cache["criteria"] = out
    return out


def _range_mask(rng: V, row: int, crit: Criterion) -> torch.Tensor:
    """Which cells of one block row of the range meet a criterion (H, W); a constant range is
    matched once per criterion."""
    constant = not rng.x.requires_grad
    key = ("criterion", row, crit)
    if constant and rng.cache and key in rng.cache:
        return rng.cache[key]
    part = V(
        rng.x[row : row + 1],
        rng.kind if not isinstance(rng.kind, np.ndarray) else rng.kinds()[row : row + 1],
        None if rng.text is None else rng.texts()[row : row + 1],
    )
    hit = crit(part)[0]
    if constant:
        rng.cache = rng.cache or {}
        rng.cache[key] = hit
    return hit


def sum_range_shape(args: tuple) -> tuple:
    """SUMIF's and AVERAGEIF's `resolve` (registry.Function): given as references, the sum
    range Excel reads is one of the criteria range's shape, from the sum range's top-left cell
    (SUMIF(A1:A3, ">1", B1) sums B1:B3)."""
    if len(args) == 3 and all(isinstance(a, Ref) for a in (args[0], args[2])):
        rng, target = args[0], args[2]
        return (
            args[0],
            args[1],
            Ref(
                target.sheet,
                target.r0,
                target.c0,
                target.r0 + rng.r1 - rng.r0,
                target.c0 + rng.c1 - rng.c0,
                target.rel_r0,
                target.rel_r0,
            ),
        )
    return args


def conditional(
    ctx: Ctx, how: str, target: V | None, pairs: list[tuple[V, V]], resize: bool = False
) -> V:
    """COUNTIFS/SUMIFS/AVERAGEIFS/MINIFS/MAXIFS (`how`: count, sum, average, min, max) over
    the cells of `target` where every (range, criteria) pair matches. Criteria may be arrays
    (one result per criterion) and copied down a block (one per row). `resize`: SUMIF and
    AVERAGEIF read their sum range in the criteria range's size, from its top-left cell.

    Each distinct combination of criteria is matched and aggregated once: a COUNTIF copied
    down a column costs one pass per distinct value, not one per row."""
    if resize and target is not None:
        target = _cropped(target, *pairs[0][0].shape[1:])
    shapes = {rng.shape[1:] for rng, _ in pairs} | ({target.shape[1:]} if target else set())
    target_rows = target.shape[0] if target is not None else 1
    if len(shapes) != 1:
        return error_value("#VALUE!", _extent(pairs, target_rows)[1:], ctx)
    n, hc, wc, stacked, index, flat = _plan(pairs, target_rows)
    per_row = target is not None and target.shape[0] > 1
    if per_row:  # a sum range that moves down the block: every row its own masks
        out, errs = _aggregate(ctx, how, target, stacked[flat])
    else:  # aggregate each distinct mask once, then hand the results out
        out, errs = _aggregate(ctx, how, target, stacked[None])
        if index.size != 1 or stacked.shape[0] != 1:  # else the one result is the answer
            out = out[0][flat]
            errs = None if errs is None else errs[0][index]
    out = out.reshape(n, hc, wc)
    return with_errors(out, None if errs is None else errs.reshape(n, hc, wc))


def _extent(pairs: list[tuple[V, V]], target_rows: int):
    """The criteria parsed, and the results' shape: rows n, and one per criterion (hc, wc)."""
    parsed = [_criteria(crit) for _, crit in pairs]
    n = max([c.shape[0] for c in parsed] + [rng.shape[0] for rng, _ in pairs] + [target_rows])
    return parsed, n, max(c.shape[1] for c in parsed), max(c.shape[2] for c in parsed)


def _plan(pairs: list[tuple[V, V]], target_rows: int):
    """Which cells each result aggregates: the distinct masks (U, H, W) and each result's mask
    (index (n, K) as numpy and as a tensor). Ranges and criteria that do not depend on the
    parameters are matched once: a SUMIF in the loss costs an aggregation per step, no more."""
    constant = all(not r.x.requires_grad and not c.x.requires_grad for r, c in pairs)
    key = ("plan", target_rows, tuple((id(r), id(c)) for r, c in pairs))
    first = pairs[0][0]
    if constant and first.cache and key in first.cache:
        return first.cache[key][0]
    parsed, n, hc, wc = _extent(pairs, target_rows)
    unique: dict[tuple, int] = {}
    masks: list[torch.Tensor] = []
    index = np.zeros((n, hc * wc), dtype=np.int64)
    for m in range(n):
        for k, (i, j) in enumerate(np.ndindex(hc, wc)):
            key_m = tuple(
                (
                    min(m, rng.shape[0] - 1),
                    c[min(m, c.shape[0] - 1), min(i, c.shape[1] - 1), min(j, c.shape[2] - 1)],
                )
                for (rng, _), c in zip(pairs, parsed, strict=True)
            )
            if key_m not in unique:
                hit = None
                for (rng, _), (row, crit) in zip(pairs, key_m, strict=True):
                    part = _range_mask(rng, row, crit)
                    hit = part if hit is None else hit & part
                unique[key_m] = len(masks)
                masks.append(hit)
            index[m, k] = unique[key_m]
    stacked = torch.stack(masks)  # (U, H, W)
    plan = (n, hc, wc, stacked, index, torch.as_tensor(index, device=stacked.device))
    if constant:  # kept with the values it was made for: their ids stay theirs
        first.cache = first.cache or {}
        first.cache[key] = (plan, pairs)
    return plan


def _aggregate(ctx: Ctx, how: str, target: V | None, mask: torch.Tensor):
    """(N, K) results and their errors (or None) from masks (N, K, H, W)."""
    dtype, device = ctx.dtype, ctx.device
    if how == "count":
        return mask.to(dtype).sum(dim=(2, 3)), None
    x = target.x[:, None]
    if not target.numeric():
        k = torch.as_tensor(target.kinds() == NUM, device=device)[:, None]
        counted = mask & k
        x = torch.where(k, x, torch.zeros((), dtype=dtype, device=device))
    else:
        counted = mask
    errs = _picked_errors(target, mask)
    if how == "sum":  # where, not a product: an error (inf, nan) in a cell not summed stays out
        return torch.where(counted, x, 0.0).sum(dim=(2, 3)), errs
    zero = torch.zeros((), dtype=dtype, device=device)
    if how == "average":
        total = torch.where(counted, x, zero).sum(dim=(2, 3))
        count = counted.to(dtype).sum(dim=(2, 3))
        out = total / torch.where(count > 0, count, torch.ones((), dtype=dtype, device=device))
        if ctx.strict:
            none = (count == 0).cpu().numpy()
            if none.any():
                errs = first_error(none.shape, errs, np.where(none, "#DIV/0!", None))
        return out, errs
    fill = math.inf if how == "min" else -math.inf
    pick = torch.where(counted, x, torch.full((), fill, dtype=dtype, device=device))
    flat = pick.reshape(*pick.shape[:2], -1)
    best = flat.amin(dim=2) if how == "min" else flat.amax(dim=2)
    return torch.where(torch.isfinite(best), best, zero), errs


def _picked_errors(target: V, mask: torch.Tensor) -> np.ndarray | None:
    """The first error (row-major) among the cells each mask picks, per result."""
    errs = errors_of(target)
    if errs is None:
        return None
    m = mask.cpu().numpy()
    e = np.broadcast_to(errs[:, None], m.shape)
    out = np.full(m.shape[:2], None, dtype=object)
    for idx in zip(*np.nonzero(m & (e != None)), strict=True):  # noqa: E711
        if out[idx[:2]] is None:
            out[idx[:2]] = e[idx]
    return out
