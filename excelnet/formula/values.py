"""Spreadsheet values as tensors, with Excel's rules for mixing numbers, text, booleans, blanks
and errors.

A value V is a float64 tensor x of shape (N, H, W) — N rows of a copied-down block (or 1), each
an H×W range or array — plus, when not everything is a number, the kind of each element
(NUM, BOOL, TEXT, BLANK, ERR) and the text or error code where there is one. Kinds are numpy
(they never need a gradient); x carries the gradient. Numbers-only values (kind None) take the
fast path that training runs on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from excelnet.formula.numfmt import number_text, parse_number

NUM, BOOL, TEXT, BLANK, ERR = 0, 1, 2, 3, 4


@dataclass
class Ctx:
    """How to evaluate: strict computes error values (#DIV/0!, #NUM!) exactly as a spreadsheet
    does, at the cost of device syncs; training runs non-strict (errors show up as inf/nan).
    `date1904`: the workbook's date system (dates.py), set by the evaluator from its Book."""

    device: torch.device
    dtype: torch.dtype = torch.float64
    strict: bool = True
    date1904: bool = False
    # random draws (RAND, RANDBETWEEN, RANDARRAY): their generator (None: torch's own), and
    # the cells the function being called draws for, one each: (rows, 1, 1) in a copied-down
    # block, (1, height, width) in an array formula (as LibreOffice draws RAND there)
    random: torch.Generator | None = None
    draws: tuple[int, int, int] = (1, 1, 1)
    # LibreOffice's arithmetic: + and − give 0 for a result within rounding (2^-48 relative)
    # of 0 (rtl::math::approxAdd/approxSub), ^ is #NUM! where it underflows; `snaps` counts
    # the places where that would change a result
    libreoffice: bool = False
    snaps: int | None = None


class V:
    __slots__ = ("x", "kind", "text", "ref", "cache", "at")

    def __init__(self, x: torch.Tensor, kind=None, text=None, ref: bool = False):
        self.cache: dict | None = None  # memo of work done once on a constant value
        self.at: tuple | None = None  # where a range's rows and columns start (evaluator._carry)
        self.x = x
        self.kind = kind  # None (all NUM), an int (all that kind), or an int8 array
        self.text = text  # object array (str for TEXT, code for ERR) or None
        self.ref = ref  # straight from a reference: aggregates skip its text and booleans

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape)

    def kinds(self) -> np.ndarray:
        if isinstance(self.kind, np.ndarray):
            return np.broadcast_to(self.kind, self.shape)
        return np.full(self.shape, NUM if self.kind is None else self.kind, dtype=np.int8)

    def texts(self) -> np.ndarray:
        if self.text is None:
            return np.full(self.shape, None, dtype=object)
        return np.broadcast_to(self.text, self.shape)

    def numeric(self) -> bool:
        return self.kind is None or (isinstance(self.kind, int) and self.kind == NUM)

    def item(self, n: int, i: int, j: int):
        """One element as a Python value (float, bool, str, None for blank, Error)."""
        from excelnet.formula.parse import Error

        k = int(self.kinds()[n, i, j])
        if k == NUM:
            return float(self.x[n, i, j])
        if k == BOOL:
            return bool(self.x[n, i, j] != 0)
        if k == TEXT:
            return str(self.texts()[n, i, j])
        if k == ERR:
            return Error(str(self.texts()[n, i, j]))
        return None


class Omitted(V):
    """An argument left out, as in IF(A1,,2) or VLOOKUP(x,t,2,): the number 0 where a value is
    needed; functions with a default for it test `isinstance(v, Omitted)`."""

    __slots__ = ()


LEAN = True  # reshape without needless view nodes (False: the plain reshape, for the tests)


def reshaped(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """x.reshape(shape) with as few autograd nodes as the numbers need: x itself when it has
    that shape already, and a reshape of the tensor x is a view of, not of x, when x is all of
    it (one view where there would be a view of a view). The same numbers, the same gradient;
    an evaluation's backward has one operation fewer for each node saved."""
    if not LEAN:
        return x.reshape(shape)
    if shape == (-1,):
        if x.dim() == 1:
            return x
    elif x.shape == shape:
        return x
    base = x._base
    if (
        base is not None
        and base.numel() == x.numel()
        and x.storage_offset() == base.storage_offset()
        and x.is_contiguous()
        and base.is_contiguous()
    ):
        return base.reshape(shape)
    return x.reshape(shape)


def omitted(ctx: Ctx) -> Omitted:
    return Omitted(torch.zeros((1, 1, 1), dtype=ctx.dtype, device=ctx.device))


def from_python(values: np.ndarray, ctx: Ctx, ref: bool = False) -> V:
    """An object array (N, H, W) of float/bool/str/None/Error → V."""
    from excelnet.formula.parse import Error

    values = np.asarray(values, dtype=object)
    kind = np.zeros(values.shape, dtype=np.int8)
    x = np.zeros(values.shape)
    text = None
    for idx, v in np.ndenumerate(values):
        if v is None:
            kind[idx] = BLANK
        elif isinstance(v, bool):
            kind[idx], x[idx] = BOOL, float(v)
        elif isinstance(v, (int, float)):
            x[idx] = v
        else:
            if text is None:
                text = np.full(values.shape, None, dtype=object)
            kind[idx] = ERR if isinstance(v, Error) else TEXT
            text[idx] = v.code if isinstance(v, Error) else v
    return make(torch.as_tensor(x, dtype=ctx.dtype, device=ctx.device), kind, text, ref)


def make(x: torch.Tensor, kind: np.ndarray | None, text=None, ref: bool = False) -> V:
    """Build a V, simplifying kinds to None/int when uniform."""
    if kind is not None and isinstance(kind, np.ndarray):
        if kind.size and (kind == kind.flat[0]).all():
            uniform = int(kind.flat[0])
            if uniform in (NUM, BOOL, BLANK):
                return V(x, None if uniform == NUM else uniform, None, ref)
        elif kind.size == 0:
            return V(x, None, None, ref)
    return V(x, kind, text, ref)


def scalar(value, ctx: Ctx) -> V:
    return from_python(np.array([[[value]]], dtype=object), ctx)


def error_value(code: str, shape, ctx: Ctx) -> V:
    x = torch.zeros(shape, dtype=ctx.dtype, device=ctx.device)
    return V(x, np.full(shape, ERR, np.int8), np.full(shape, code, dtype=object))


# -- errors ----------------------------------------------------------------------------------


def errors_of(v: V) -> np.ndarray | None:
    """Object array of error codes (None where no error), or None when v has no errors."""
    if not isinstance(v.kind, np.ndarray) and v.kind != ERR:
        return None
    k = v.kinds()
    if not (k == ERR).any():
        return None
    out = np.full(v.shape, None, dtype=object)
    mask = k == ERR
    out[mask] = v.texts()[mask]
    return out


def first_error(shape, *errs: np.ndarray | None) -> np.ndarray | None:
    """Element-wise first error among the operands (Excel reports the leftmost)."""
    out = None
    for e in reversed(errs):
        if e is None:
            continue
        e = np.broadcast_to(e, shape)
        out = e.copy() if out is None else np.where(e != None, e, out)  # noqa: E711
    return out


def with_errors(x: torch.Tensor, errs: np.ndarray | None, kind=None, text=None) -> V:
    """x with the given error elements marked (kind/text: of the non-error elements)."""
    if errs is None or not (errs != None).any():  # noqa: E711
        return V(x, kind, text)
    shape = tuple(x.shape)
    k = np.array(
        np.broadcast_to(
            kind if isinstance(kind, np.ndarray) else (NUM if kind is None else kind), shape
        ),
        dtype=np.int8,
    )
    t = (
        np.array(np.broadcast_to(text, shape), dtype=object)
        if text is not None
        else np.full(shape, None, dtype=object)
    )
    mask = errs != None  # noqa: E711
    k[mask], t[mask] = ERR, errs[mask]
    return V(x, k, t)


# -- coercions -------------------------------------------------------------------------------


def text_number(s: str) -> float | None:
    """Text as Excel reads it into a number ("1,234", "40%", "$5", dates, times), or None."""
    return parse_number(s)


def to_number(v: V) -> tuple[torch.Tensor, np.ndarray | None]:
    """For arithmetic: numbers as they are, booleans 0/1, blanks 0, numeric text converted;
    other text → #VALUE!. Returns (x, errors or None)."""
    if v.kind is None or (isinstance(v.kind, int) and v.kind in (NUM, BOOL, BLANK)):
        return v.x, None
    k = v.kinds()
    errs = errors_of(v)
    x = v.x
    text_mask = k == TEXT
    if text_mask.any():
        errs = errs if errs is not None else np.full(v.shape, None, dtype=object)
        numbers = np.zeros(v.shape)
        texts = v.texts()
        for idx in zip(*np.nonzero(text_mask), strict=True):
            n = text_number(texts[idx])
            if n is None:
                errs[idx] = "#VALUE!"
            else:
                numbers[idx] = n
        mask_t = torch.as_tensor(text_mask, device=x.device)
        x = torch.where(mask_t, torch.as_tensor(numbers, dtype=x.dtype, device=x.device), x)
    return x, errs


def to_bool(v: V) -> tuple[torch.Tensor, np.ndarray | None]:
    """For IF/AND/OR/NOT: nonzero numbers and TRUE are true, blanks false, 'TRUE'/'FALSE' text
    as written, other text → #VALUE!. Returns (bool tensor, errors or None)."""
    if v.kind is None or (isinstance(v.kind, int) and v.kind in (NUM, BOOL, BLANK)):
        return v.x != 0, None
    k = v.kinds()
    errs = errors_of(v)
    b = v.x != 0
    text_mask = k == TEXT
    if text_mask.any():
        errs = errs if errs is not None else np.full(v.shape, None, dtype=object)
        vals = np.zeros(v.shape, dtype=bool)
        texts = v.texts()
        for idx in zip(*np.nonzero(text_mask), strict=True):
            t = str(texts[idx]).upper()
            if t in ("TRUE", "FALSE"):
                vals[idx] = t == "TRUE"
            else:
                errs[idx] = "#VALUE!"
        b = torch.where(
            torch.as_tensor(text_mask, device=b.device), torch.as_tensor(vals, device=b.device), b
        )
    return b, errs


def format_number(x: float) -> str:
    """A number as a formula turns it into text (15 significant digits; numfmt.number_text)."""
    return number_text(x)


def to_text(v: V) -> tuple[np.ndarray, np.ndarray | None]:
    """For &: each element as text. Returns (object array of str, errors or None)."""
    k = v.kinds()
    texts = v.texts()
    xs = v.x.detach().cpu().numpy()
    out = np.empty(v.shape, dtype=object)
    for idx, kind in np.ndenumerate(k):
        if kind == NUM:
            out[idx] = format_number(float(xs[idx]))
        elif kind == BOOL:
            out[idx] = "TRUE" if xs[idx] else "FALSE"
        elif kind in (TEXT,):
            out[idx] = texts[idx]
        else:
            out[idx] = ""
    return out, errors_of(v)


def broadcast(*vs: V) -> tuple[int, int, int]:
    """The shape the values broadcast to (plain Python: torch's helper costs ~20 µs a call)."""
    out = [1, 1, 1]
    for v in vs:
        for i, n in enumerate(v.x.shape):
            if n != 1:
                if out[i] not in (1, n):
                    raise ValueError(f"shapes {[v.shape for v in vs]} do not broadcast")
                out[i] = n
    return tuple(out)


# -- lookup, logical and information slice ---------------------------------------------------


def array_shape(*vs: V) -> tuple[int, int, int]:
    """The shape of an element-wise result over arrays of any sizes, as Excel forms it: the
    larger size along each axis (see `spread`)."""
    return tuple(max(v.shape[i] for v in vs) for i in range(3))


def spread(v: V, shape) -> V:
    """v over `shape` as Excel spreads an array argument: a size of 1 repeats, an array too
    short is padded with #N/A ({1;2;3}+{10;20} is {11;22;#N/A})."""
    if all(a in (1, b) for a, b in zip(v.shape, shape, strict=True)):
        return v
    index, outside = [], np.zeros(shape, bool)
    for axis, (have, want) in enumerate(zip(v.shape, shape, strict=True)):
        i = np.arange(want) if have > 1 else np.zeros(want, int)
        view = [1, 1, 1]
        view[axis] = want
        outside |= (i >= have).reshape(view)
        index.append(np.minimum(i, have - 1).reshape(view))
    idx = [torch.as_tensor(i, device=v.x.device) for i in index]
    x = v.x[idx[0], idx[1], idx[2]]
    kind = v.kinds()[index[0], index[1], index[2]].copy()
    text = v.texts()[index[0], index[1], index[2]].copy()
    kind[outside], text[outside] = ERR, "#N/A"
    return make(x, kind, text, v.ref)
