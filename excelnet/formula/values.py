"""Spreadsheet values as tensors, with Excel's rules for mixing numbers, text, booleans, blanks
and errors.

A value V is a float64 tensor x of shape (N, H, W) — N rows of a copied-down block (or 1), each
an H×W range or array — plus, when not everything is a number, the kind of each element
(NUM, BOOL, TEXT, BLANK, ERR) and the text or error code where there is one. Kinds are numpy
(they never need a gradient); x carries the gradient. Numbers-only values (kind None) take the
fast path that training runs on.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass

import numpy as np
import torch

NUM, BOOL, TEXT, BLANK, ERR = 0, 1, 2, 3, 4


@dataclass
class Ctx:
    """How to evaluate: strict computes error values (#DIV/0!, #NUM!) exactly as a spreadsheet
    does, at the cost of device syncs; training runs non-strict (errors show up as inf/nan)."""

    device: torch.device
    dtype: torch.dtype = torch.float64
    strict: bool = True


class V:
    __slots__ = ("x", "kind", "text", "ref", "cache")

    def __init__(self, x: torch.Tensor, kind=None, text=None, ref: bool = False):
        self.cache: dict | None = None  # memo of work done once on a constant value
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


def _text_to_number(s: str) -> float | None:
    return text_number(s)


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
            n = _text_to_number(texts[idx])
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
    """A number as Excel's General format shows it in text (15 significant digits)."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    s = f"{x:.15g}"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant}E{'+' if int(exp) >= 0 else '-'}{abs(int(exp)):02d}"
    return s


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


# -- text read as a number, as Excel's arithmetic reads it (fn-math) ----------------------------

_NUMBER_TEXT = re.compile(
    r"\s*(?P<sign>[+-]?)\s*(?P<cur1>[$€£¥]?)\s*"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?P<exp>[eE][+-]?\d+)?"
    r"\s*(?P<pct>%?)\s*(?P<cur2>[$€£¥]?)\s*"
)
_ISO_DATE = re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})")
_US_DATE = re.compile(r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})")


def text_number(s: str) -> float | None:
    """Text as Excel's arithmetic (and a criterion such as ">1/31/2024") reads it: "8",
    " 10 ", "-0.0", "7.0e0", "1,000", "8%", "€100" or "100€" (a currency sign), a date
    "2024-01-10" or "1/10/2024" (its serial number); None where Excel says #VALUE! ("eight",
    "--8", "", " 2024-01-10 ")."""
    m = _NUMBER_TEXT.fullmatch(s)
    if m and not (m["cur1"] and m["cur2"]):
        x = float(m["num"].replace(",", "") + (m["exp"] or ""))
        x = -x if m["sign"] == "-" else x
        x = x / 100 if m["pct"] else x
        return x if math.isfinite(x) else None
    d = _ISO_DATE.fullmatch(s) or _US_DATE.fullmatch(s)
    if d:
        try:
            day = datetime.date(int(d["y"]), int(d["m"]), int(d["d"]))
        except ValueError:
            return None
        return float((day - datetime.date(1899, 12, 30)).days) if day.year >= 1900 else None
    return None
