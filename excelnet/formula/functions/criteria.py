"""Excel's criteria, as COUNTIF, SUMIF, AVERAGEIF and their …IFS forms read them: 0, "S",
">=5", "<>", "a*" (wildcards), TRUE. A criterion is a predicate over a range."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch

from excelnet.formula.functions.operators import TORCH_COMPARE
from excelnet.formula.values import BLANK, BOOL, NUM, TEXT, V, errors_of


def criterion(value) -> Callable[[V], np.ndarray | torch.Tensor]:
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
            hit = nums & TORCH_COMPARE[op](r.x, number)
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


def matches(rng: V, crit: V) -> torch.Tensor:
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
        pred = criterion(crit.item(n, 0, 0))
        sub = V(
            rng.x[min(n, rng.shape[0] - 1)][None],
            rng.kind
            if not isinstance(rng.kind, np.ndarray)
            else rng.kinds()[min(n, rng.shape[0] - 1)][None],
            None if rng.text is None else rng.texts()[min(n, rng.shape[0] - 1)][None],
        )
        rows.append(torch.broadcast_to(pred(sub), sub.shape))
    return torch.cat(rows) if len(rows) > 1 else rows[0]


def criterion_errors(crit: V, shape) -> np.ndarray | None:
    """An error value as the criterion is the result (as in Excel and LibreOffice)."""
    errs = errors_of(crit)
    return None if errs is None else np.broadcast_to(errs, shape)
