"""The functions that act on references rather than values: where a range is (ROW, COLUMN,
ROWS, COLUMNS, AREAS, SHEET, SHEETS, CELL), what it holds (ISREF, ISFORMULA, FORMULATEXT), and
references computed from others (OFFSET, INDIRECT). Excel files them under LOOKUP_AND_REFERENCE
and INFORMATION; they live together because they share what no value function needs: the cell
a formula is in, and its arguments unevaluated (a `Site`).

A reference function returns a value (V) or references: a list of Ref, one per row of the
block (or one for all), which the compiler then reads like any range.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import COLUMNS as SHEET_COLUMNS
from excelnet.formula.parse import (
    MISSING,
    Const,
    Error,
    FormulaError,
    Node,
    Ref,
    Union,
    parse,
    parse_ref,
)
from excelnet.formula.parse import ROWS as SHEET_ROWS
from excelnet.formula.site import Site, whole  # noqa: E402
from excelnet.formula.values import (
    BLANK,
    ERR,
    NUM,
    TEXT,
    V,
    error_value,
    errors_of,
)

lookup = registrar("LOOKUP_AND_REFERENCE")
information = registrar("INFORMATION")


def _error(site: Site, code: str) -> V:
    return error_value(code, (1, 1, 1), site.ctx)


def _bounded(ref: Ref, sheet_exists: bool = True) -> bool:
    return (
        sheet_exists
        and 0 <= ref.r0 <= ref.r1 < SHEET_ROWS
        and 0 <= ref.c0 <= ref.c1 < SHEET_COLUMNS
    )


# -- position -------------------------------------------------------------------------------


def _position(site: Site, args: list[Node], axis: int) -> V:
    b = site.block
    if not args or (isinstance(args[0], Const) and args[0].value is MISSING):
        if axis == 0:
            first = np.arange(b.r0, b.r0 + (b.rows if b.kind == "column" else 1)) + 1.0
            x = (
                first.reshape(-1, 1, 1)
                if b.kind == "column"
                else np.arange(b.r0, b.r1 + 1)[None, :, None] + 1.0
            )
        else:
            x = (
                np.array([[[b.c0 + 1.0]]])
                if b.kind == "column"
                else np.arange(b.c0, b.c1 + 1)[None, None, :] + 1.0
            )
        return V(torch.as_tensor(x, dtype=site.ctx.dtype, device=site.ctx.device))
    refs = site.refs(args[0])
    if refs is None:
        v = site.value(args[0])
        return _error(site, "#VALUE!") if errors_of(v) is None else v
    refs = [whole(site, r) for r in refs]
    if axis == 0:
        h = refs[0].r1 - refs[0].r0 + 1
        x = np.array([r.r0 for r in refs])[:, None, None] + np.arange(h)[None, :, None] + 1.0
    else:
        w = refs[0].c1 - refs[0].c0 + 1
        x = np.array([r.c0 for r in refs])[:, None, None] + np.arange(w)[None, None, :] + 1.0
    return V(torch.as_tensor(x, dtype=site.ctx.dtype, device=site.ctx.device))


@lookup("ROW", args="r?", gradient=False, refs=True, positional=(0,))
def f_row(site: Site, args: list[Node]) -> V:
    return _position(site, args, 0)


@lookup("COLUMN", args="r?", gradient=False, refs=True, positional=(0,))
def f_column(site: Site, args: list[Node]) -> V:
    return _position(site, args, 1)


def _extent(site: Site, args: list[Node], axis: int) -> V:
    refs = site.refs(args[0])
    if refs is not None:
        r = whole(site, refs[0])
        size = r.r1 - r.r0 + 1 if axis == 0 else r.c1 - r.c0 + 1
        return site.column([float(size)])
    v = site.value(args[0])
    if errors_of(v) is not None and v.shape[1:] == (1, 1):
        return v
    return site.column([float(v.shape[1 + axis])])


@lookup("ROWS", args="r", gradient=False, refs=True, positional=(0,))
def f_rows(site: Site, args: list[Node]) -> V:
    return _extent(site, args, 0)


@lookup("COLUMNS", args="r", gradient=False, refs=True, positional=(0,))
def f_columns(site: Site, args: list[Node]) -> V:
    return _extent(site, args, 1)


@lookup("AREAS", args="r", gradient=False, refs=True, positional=(0,))
def f_areas(site: Site, args: list[Node]) -> V:
    if isinstance(args[0], Union):
        return site.column([float(len(args[0].areas))])
    if site.refs(args[0]) is not None:
        return site.column([1.0])
    return _error(site, "#VALUE!")


# -- references computed ---------------------------------------------------------------------


@lookup("OFFSET", args="rnnn?n?", refs=True, positional=(0,))
def f_offset(site: Site, args: list[Node]) -> list[Ref] | V:
    base = site.refs(args[0])
    if base is None:
        v = site.value(args[0])
        return v if errors_of(v) is not None else _error(site, "#VALUE!")
    base = [whole(site, r) for r in base]
    parts = []
    for i, default in ((1, None), (2, None), (3, -1.0), (4, -1.0)):
        x, err = (
            site.numbers(args[i], default)
            if i < len(args)
            else site.numbers(Const(MISSING), default)
        )
        if err is not None:
            return site.column([Error(err)])
        parts.append(np.trunc(x) if i < 3 else x)
    dr, dc, h, w = parts
    n = max(len(base), site.n)
    k = np.arange(n)
    at = lambda a: np.asarray(a)[np.minimum(k, len(a) - 1)]  # noqa: E731  per block row
    br0, bc0 = at([b.r0 for b in base]), at([b.c0 for b in base])
    bh, bw = at([b.r1 - b.r0 + 1 for b in base]), at([b.c1 - b.c0 + 1 for b in base])
    h, w = at(h), at(w)
    hh = np.where(h == -1, bh, _size(h))
    ww = np.where(w == -1, bw, _size(w))
    r0, c0 = br0 + at(dr).astype(np.int64), bc0 + at(dc).astype(np.int64)
    r0, r1 = np.where(hh > 0, r0, r0 + hh + 1), np.where(hh > 0, r0 + hh - 1, r0)
    c0, c1 = np.where(ww > 0, c0, c0 + ww + 1), np.where(ww > 0, c0 + ww - 1, c0)
    ok = (hh != 0) & (ww != 0) & (r0 >= 0) & (r1 < SHEET_ROWS) & (c0 >= 0) & (c1 < SHEET_COLUMNS)
    sheet = base[0].sheet
    if len({b.sheet for b in base}) > 1:
        raise FormulaError("OFFSET of references on different sheets down one column")
    corners = np.stack([r0, c0, r1, c1], 1)[ok]
    if ok.all() and (corners == corners[0]).all():  # one reference for every row
        return [Ref(sheet, *map(int, corners[0]))]
    out = [Ref(sheet, *row) for row in corners.tolist()]
    return out if ok.all() else _refs_or_errors(site, out, ["#REF!"] * int((~ok).sum()))


def _size(x: np.ndarray) -> np.ndarray:
    """Heights or widths: whole cells, and at least one where not zero (a width of 0.9 is one
    column in Excel)."""
    n = np.trunc(x)
    return np.where((n != 0) | (x == 0), n, np.sign(x)).astype(np.int64)


def _refs_or_errors(site: Site, refs: list[Ref], errors: list[str]) -> list[Ref] | V:
    if not errors:
        return refs if len(set(refs)) > 1 else refs[:1]
    if not refs and len(set(errors)) == 1:
        return site.column([Error(errors[0])])
    raise FormulaError("references and errors mixed down one column")  # cell by cell instead


_R1C1 = re.compile(r"^R(\[-?\d+\]|\d+)?C(\[-?\d+\]|\d+)?$", re.I)


def _r1c1(text: str, sheet: str, row: int, col: int) -> Ref | None:
    """'R2C3', 'R[-1]C', 'RC[2]' relative to the formula's cell (0-based row, col)."""
    m = _R1C1.match(text)
    if not m:
        return None

    def part(s: str | None, here: int) -> int:
        if s is None:
            return here
        return here + int(s[1:-1]) if s.startswith("[") else int(s) - 1

    r, c = part(m.group(1), row), part(m.group(2), col)
    return Ref(sheet, r, c, r, c)


@lookup("INDIRECT", args="tn?", refs=True)
def f_indirect(site: Site, args: list[Node]) -> list[Ref] | V:
    texts = site.texts(args[0])
    a1 = True
    if len(args) == 2 and not (isinstance(args[1], Const) and args[1].value is MISSING):
        flags, err = site.numbers(args[1])
        if err is not None:
            return site.column([Error(err)])
        a1 = bool(flags[0])
    out, errors = [], []
    b = site.block
    for k, text in enumerate(texts):
        if isinstance(text, Error):
            errors.append(text.code)
            continue
        ref = _indirect(site, text.strip(), a1, b.r0 + (k if b.kind == "column" else 0), b.c0)
        if ref is None:
            errors.append("#REF!")
        else:
            out.append(ref)
    return _refs_or_errors(site, out, errors)


def _indirect(site: Site, text: str, a1: bool, row: int, col: int) -> Ref | None:
    sheet = site.sheet
    if a1 and "[" in text and not text.startswith("["):  # Table1[Age]: an Excel Table's range
        try:
            node = site.ev.graph.resolve(parse("=" + text, sheet), sheet, 0, at=site.block)
        except FormulaError:
            return None
        if not isinstance(node, Ref):
            return None
        down = row - site.block.r0 if node.rel_r0 else 0  # [#This Row]: this cell's row
        return Ref(node.sheet, node.r0 + down, node.c0, node.r1 + down, node.c1)
    if "!" in text:
        name, rest = text.rsplit("!", 1)
        name = name[1:-1].replace("''", "'") if name.startswith("'") else name
        match = [s for s in site.sheet_names() if s.lower() == name.lower()]
        if not match:
            return None
        sheet, text = match[0], rest
    ref = parse_ref(text, sheet) if a1 else None
    if not a1:
        if ":" in text:
            a, _, b = text.partition(":")
            p, q = _r1c1(a, sheet, row, col), _r1c1(b, sheet, row, col)
            if p is None or q is None:
                return None
            ref = Ref(sheet, min(p.r0, q.r0), min(p.c0, q.c0), max(p.r0, q.r0), max(p.c0, q.c0))
        else:
            ref = _r1c1(text, sheet, row, col)
    if ref is None and a1 and "!" not in text:  # a defined name that names a range
        text_of, scope = site.ev.graph._name(text, site.sheet)
        if text_of is not None:
            try:
                node = site.ev.graph.resolve(parse(text_of, scope), scope, 0)
            except FormulaError:
                return None
            return node if isinstance(node, Ref) else None
    if ref is None:
        return None
    ref = whole(site, ref)
    return ref if _bounded(ref, ref.sheet in site.book.sheets) else None


# -- what a reference holds ------------------------------------------------------------------


@information("ISREF", args="r", gradient=False, refs=True, positional=(0,))
def f_isref(site: Site, args: list[Node]) -> V:
    if isinstance(args[0], Union):
        return _bool(site, True)
    return _bool(site, site.refs(args[0]) is not None)


def _bool(site: Site, flag: bool) -> V:
    return site.column([bool(flag)])


def _formula_at(site: Site, sheet: str, r: int, c: int) -> str | None:
    s = site.book.sheets.get(sheet)
    if s is None:
        return None
    if (r, c) in s.formulas:
        return s.formulas[(r, c)]
    for text, (r0, c0, r1, c1) in s.arrays.values():
        if r0 <= r <= r1 and c0 <= c <= c1:
            return text
    return None


@information("_xlfn.ISFORMULA", args="r", gradient=False, refs=True, positional=(0,))
def f_isformula(site: Site, args: list[Node]) -> V:
    refs = site.refs(args[0])
    if refs is None:
        v = site.value(args[0])
        return v if errors_of(v) is not None else _error(site, "#VALUE!")
    return site.column([_formula_at(site, r.sheet, r.r0, r.c0) is not None for r in refs])


_PREFIX = re.compile(r"_xl(?:fn|ws|pm)\.", re.I)


@information("_xlfn.FORMULATEXT", args="r", gradient=False, refs=True, positional=(0,))
def f_formulatext(site: Site, args: list[Node]) -> V:
    refs = site.refs(args[0])
    if refs is None:
        v = site.value(args[0])
        return v if errors_of(v) is not None else _error(site, "#VALUE!")
    out = []
    for r in refs:
        text = _formula_at(site, r.sheet, r.r0, r.c0)
        out.append(Error("#N/A") if text is None else _PREFIX.sub("", text))
    return site.column(out)


@information("_xlfn.SHEET", args="r?", gradient=False, refs=True, positional=(0,))
def f_sheet(site: Site, args: list[Node]) -> V:
    names = site.sheet_names()
    if not args or (isinstance(args[0], Const) and args[0].value is MISSING):
        return site.column([float(names.index(site.sheet) + 1)])
    refs = site.refs(args[0])
    if refs is not None:
        return site.column([float(names.index(refs[0].sheet) + 1)])
    v = site.value(args[0])
    errs = errors_of(v)
    if errs is not None:
        return site.column([Error(errs.reshape(-1)[0])])
    k, t = v.kinds().reshape(-1)[0], v.texts().reshape(-1)[0]
    if k == TEXT:
        match = [i for i, s in enumerate(names) if s.lower() == str(t).lower()]
        return site.column([float(match[0] + 1) if match else Error("#N/A")])
    return _error(site, "#N/A")


@information("_xlfn.SHEETS", args="r?", gradient=False, refs=True, positional=(0,))
def f_sheets(site: Site, args: list[Node]) -> V:
    if not args or (isinstance(args[0], Const) and args[0].value is MISSING):
        return site.column([float(len(site.sheet_names()))])
    if site.refs(args[0]) is not None:
        return site.column([1.0])
    v = site.value(args[0])
    return v if errors_of(v) is not None else _error(site, "#N/A")


_CELL_INFO = ("address", "col", "contents", "row", "type")


@information("CELL", args="tr?", gradient=False, refs=True, positional=(1,))
def f_cell(site: Site, args: list[Node]) -> V:
    info = site.value(args[0])
    if info.kinds().reshape(-1)[0] != TEXT:
        errs = errors_of(info)
        return info if errs is not None else _error(site, "#VALUE!")
    what = str(info.texts().reshape(-1)[0]).lower()
    if what not in _CELL_INFO:
        if what in ("filename", "format", "color", "parentheses", "prefix", "protect", "width"):
            raise FormulaError(f'CELL("{what}", …) is not supported')
        return _error(site, "#VALUE!")
    if len(args) < 2:
        raise FormulaError("CELL without a reference (the last changed cell) is not supported")
    refs = site.refs(args[1])
    if refs is None:
        return _error(site, "#VALUE!")
    out: list[object] = []
    for r in refs:
        if what == "address":
            from openpyxl.utils import get_column_letter

            addr = f"${get_column_letter(r.c0 + 1)}${r.r0 + 1}"
            if r.sheet != site.sheet:
                raise FormulaError('CELL("address") of another sheet names the file: not supported')
            out.append(addr)
        elif what == "col":
            out.append(float(r.c0 + 1))
        elif what == "row":
            out.append(float(r.r0 + 1))
        else:
            site.ev._ensure(r.sheet, r.r0, r.r0, r.c0, r.c0)
            v = site.ev._window(r.sheet, np.array([[r.r0]]), np.array([[r.c0]]))
            if not isinstance(v, V):
                raise FormulaError('CELL("contents") of a cell that depends on the parameters')
            k = int(v.kinds().reshape(-1)[0])
            if what == "type":
                out.append("b" if k == BLANK else "l" if k == TEXT else "v")
            elif k == BLANK:
                out.append(0.0)
            elif k == NUM:
                out.append(float(v.x.reshape(-1)[0]))
            elif k == ERR:
                out.append(Error(str(v.texts().reshape(-1)[0])))
            elif k == TEXT:
                out.append(str(v.texts().reshape(-1)[0]))
            else:
                out.append(bool(v.x.reshape(-1)[0] != 0))
    return site.column(out)
