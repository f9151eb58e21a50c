"""MATH_AND_TRIGONOMETRY: SUBTOTAL and AGGREGATE, the aggregates that leave out the subtotals
inside their ranges, and PERCENTOF.

SUBTOTAL(function_num, ref1, …) is AVERAGE, COUNT, COUNTA, MAX, MIN, PRODUCT, STDEV, STDEVP,
SUM, VAR or VARP (1-11, or 101-111) of its references, without the cells whose formulas call
SUBTOTAL or AGGREGATE themselves (no double counting). AGGREGATE(function_num, options, ref1,
…) adds MEDIAN, MODE.SNGL (12, 13) and, of any array, LARGE, SMALL, PERCENTILE.INC,
QUARTILE.INC, PERCENTILE.EXC, QUARTILE.EXC (14-19, with k); its options leave out error values
too (2, 3, 6, 7) or keep the nested subtotals (4-7). A workbook's hidden and filtered rows are
not read, so 101-111 and the options that leave out hidden rows count every row (as Excel does
where none is hidden).

They pass gradients as the functions they stand for do, and follow cells that change with the
parameters (the subtotals are found where the formulas are, the values read every step).
"""

from __future__ import annotations

import re

import numpy as np

from excelnet.formula.functions.kit import divide, done
from excelnet.formula.functions.registry import FUNCTIONS, registrar
from excelnet.formula.parse import Error, FormulaError, Node, Ref, Union
from excelnet.formula.site import Live, Site, current
from excelnet.formula.values import BLANK, ERR, V, error_value, errors_of, make

excel = registrar("MATH_AND_TRIGONOMETRY")

_SUBTOTAL = {
    1: "AVERAGE",
    2: "COUNT",
    3: "COUNTA",
    4: "MAX",
    5: "MIN",
    6: "PRODUCT",
    7: "STDEV",
    8: "STDEVP",
    9: "SUM",
    10: "VAR",
    11: "VARP",
}
_AGGREGATE = {
    1: "AVERAGE",
    2: "COUNT",
    3: "COUNTA",
    4: "MAX",
    5: "MIN",
    6: "PRODUCT",
    7: "STDEV.S",
    8: "STDEV.P",
    9: "SUM",
    10: "VAR.S",
    11: "VAR.P",
    12: "MEDIAN",
    13: "MODE.SNGL",
    14: "LARGE",
    15: "SMALL",
    16: "PERCENTILE.INC",
    17: "QUARTILE.INC",
    18: "PERCENTILE.EXC",
    19: "QUARTILE.EXC",
}
_NESTED = re.compile(r"(?<![A-Za-z0-9_.])(?:_xlfn\.)?(?:SUBTOTAL|AGGREGATE)\s*\(", re.I)


def _code(site: Site, node: Node) -> int | Error:
    """A function number or option, the same for every row of the block (truncated)."""
    x, err = site.numbers(node)
    if err is not None:
        return Error(err)
    if len(set(np.trunc(x).tolist())) != 1:
        raise FormulaError("SUBTOTAL/AGGREGATE with different functions down one column")
    return int(np.trunc(x[0]))


def _nested(site: Site, sheet: str) -> set[tuple[int, int]]:
    """The cells of a sheet whose formulas call SUBTOTAL or AGGREGATE."""
    s = site.book.sheets.get(sheet)
    if s is None:
        return set()
    cells = {cell for cell, f in s.formulas.items() if _NESTED.search(f)}
    for text, (r0, c0, r1, c1) in s.arrays.values():
        if _NESTED.search(text):
            cells |= {(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)}
    return cells


def _areas(node: Node) -> list[Node]:
    return list(node.areas) if isinstance(node, Union) else [node]


def _operand(site: Site, node: Node, skip_nested: bool):
    """An argument's value (V or Live) and the mask of its nested subtotals (or None)."""
    value = site.ev._node(node, site.block)
    if not skip_nested:
        return value, None
    refs = site.refs(node) if isinstance(node, Ref) or not isinstance(node, Union) else None
    if not refs:
        return value, None
    nested = _nested(site, refs[0].sheet)
    if not nested:
        return value, None
    masks = []
    for r in refs:
        rows = np.arange(r.r0, r.r1 + 1)[:, None]
        cols = np.arange(r.c0, r.c1 + 1)[None, :]
        hit = np.zeros((rows.size, cols.size), bool)
        for rr, cc in nested:
            if r.r0 <= rr <= r.r1 and r.c0 <= cc <= r.c1:
                hit[rr - r.r0, cc - r.c0] = True
        masks.append(hit)
    mask = np.stack(masks)
    return value, (mask if mask.any() else None)


def _left_out(v: V, mask: np.ndarray | None, errors: bool) -> V:
    """v with the masked elements (and its errors, with `errors`) as empty cells."""
    if mask is None and not (errors and not v.numeric() and (v.kinds() == ERR).any()):
        return v
    kind = np.array(v.kinds(), dtype=np.int8)
    if mask is not None:
        kind[np.broadcast_to(mask, kind.shape)] = BLANK
    if errors:
        kind[kind == ERR] = BLANK
    text = np.array(v.texts(), dtype=object)
    text[kind == BLANK] = None
    out = make(v.x, kind, text, ref=v.ref)
    out.ref = v.ref
    return out


def _run(site: Site, name: str, operands: list, extra: list, errors: bool):
    """`name` of the operands (V or Live, each with its mask), then the extra arguments;
    a Live when any of them changes with the parameters."""
    fn, ctx = FUNCTIONS[name].fn, site.ctx

    def compute():
        values = [_left_out(current(v), m, errors) for v, m in operands]
        return fn(ctx, values + [current(e) for e in extra])

    if any(isinstance(v, Live) for v, _ in operands) or any(isinstance(e, Live) for e in extra):
        return Live(compute)
    return compute()


@excel("SUBTOTAL", args="nr+", refs=True)
def f_subtotal(site: Site, args: list[Node]):
    code = _code(site, args[0])
    if isinstance(code, Error):
        return error_value(code.code, (1, 1, 1), site.ctx)
    name = _SUBTOTAL.get(code % 100 if code > 100 else code)
    if name is None or not (1 <= code <= 11 or 101 <= code <= 111):
        return error_value("#VALUE!", (1, 1, 1), site.ctx)
    operands = [_operand(site, a, True) for node in args[1:] for a in _areas(node)]
    return _run(site, name, operands, [], errors=False)


@excel("_xlfn.AGGREGATE", args="nnr+", refs=True)
def f_aggregate(site: Site, args: list[Node]):
    code, options = _code(site, args[0]), _code(site, args[1])
    for c in (code, options):
        if isinstance(c, Error):
            return error_value(c.code, (1, 1, 1), site.ctx)
    name = _AGGREGATE.get(code)
    if name is None or not 0 <= options <= 7:
        return error_value("#VALUE!", (1, 1, 1), site.ctx)
    skip_nested, errors = options < 4, options in (2, 3, 6, 7)
    if code >= 14:  # of an array, with k
        if len(args) != 4:
            return error_value("#VALUE!", (1, 1, 1), site.ctx)
        operands = [_operand(site, args[2], skip_nested)]
        k = site.ev._node(args[3], site.block)
        return _run(site, name, operands, [k], errors)
    operands = [_operand(site, a, skip_nested) for node in args[2:] for a in _areas(node)]
    return _run(site, name, operands, [], errors)


@excel("_xlfn.PERCENTOF", args="rr")
def f_percentof(ctx, args):
    """PERCENTOF(data_subset, data_all): the subset's sum as a share of the whole's."""
    total = FUNCTIONS["SUM"].fn
    part, whole = total(ctx, [args[0]]), total(ctx, [args[1]])
    y = divide(part.x, whole.x)
    bad = (whole.x == 0).cpu().numpy()
    return done(ctx, y, [errors_of(part), errors_of(whole), np.where(bad, "#DIV/0!", None)])
