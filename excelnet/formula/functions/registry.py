"""The function library's index: every Excel function excelnet computes, once, by name, each with
one record (`Function`) that says all the rest of excelnet needs to know about it.

Each category module (math.py, statistical.py, …, as Excel groups its functions) registers its
functions here with `excel(...)`. A function takes the evaluation context and its evaluated
arguments (V values; an argument left empty is OMITTED) and returns a V.

Parameters, as data
-------------------
A function's parameters are written as a short string, HyperFormula's `parameters` in a line:
one letter per parameter, saying what the function reads it as,

    n  a number, as arithmetic reads one: numeric text read, TRUE/FALSE 1/0, a blank 0
       (other text #VALUE!)
    b  a logical: a number is TRUE unless 0, "TRUE"/"FALSE" read, a blank FALSE (other text
       #VALUE!)
    t  text: a number as a formula writes it, TRUE/FALSE, a blank ""
    v  a value as it is: a number, logical, text or blank (an error is the result)
    e  a value as it is, an error too: the function sees the error, it is not the result
    r  a range or an array, taken whole (a single value is a range of one cell); for a
       function of references (refs=True), a reference

each followed, or not, by how many times it comes:

    ?      optional: it may be left out (a default stands in) — only after the required ones
    *      any number of times, none included — the last parameter only
    +      once or more — the last parameter only
    {m,n}  m to n times — the last parameter only

so "tn?" is text and an optional number (LEFT), "r+" one range or more (SUM), "t{1,255}" one
to 255 texts (CONCATENATE). The string is the function's arity, checked by the registry before
the function runs (`Params.check`). An optional parameter's default belongs to the function (a
Python default for `cellwise`, `defaults` for a Distribution); an argument left empty inside
the list is OMITTED, which most functions read as their default too (`kit.elements` says how
`cellwise` reads it).

The letters are the conversions `kit.cellwise` makes, element by element, for a function
registered with cellwise=True (its letters come from here), and those a `Distribution`
(distributions.py) makes; elsewhere a function converts its arguments itself and the letters
say which conversion it makes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from excelnet.formula.functions.kit import cellwise as _by_element
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import Ctx, V

Fn = Callable[[Ctx, list[V]], V]

many = None  # an arity with no upper bound: (1, many)

KINDS = "nbtver"  # the letters of a parameter's kind (above)
_ITEM = re.compile(rf"([{KINDS}])(\?|\*|\+|\{{(\d+),(\d+)\}})?")


@dataclass(frozen=True)
class Params:
    """A function's parameters (the module's doc says how `spec` is written): the arity they
    make, and the kind of each argument. Made from a spec string, or from (min, max) alone
    where the kinds are not written down."""

    spec: str | None  # as written (None when only the arity is given)
    lo: int  # arguments required
    hi: int | None  # the most it takes (many: no bound)
    kinds: str = ""  # a letter per parameter, the repeated one last
    repeats: bool = False  # the last parameter repeats

    @classmethod
    def of(cls, args: str | tuple[int, int | None]) -> Params:
        if isinstance(args, tuple):
            lo, hi = args
            return cls(None, lo, hi)
        kinds, lo, hi, repeats, optional = "", 0, 0, False, False
        pos = 0
        while pos < len(args):
            m = _ITEM.match(args, pos)
            if m is None or repeats:  # not a letter, or something after a repeated one
                raise ValueError(f"bad parameters {args!r} at {pos}")
            letter, how = m.group(1), m.group(2)
            kinds += letter
            if how == "?":
                optional = True
                hi += 1
            elif how is None:
                if optional:
                    raise ValueError(f"bad parameters {args!r}: a required one after optional")
                lo, hi = lo + 1, hi + 1
            else:
                least, most = {"*": (0, None), "+": (1, None)}.get(how, (None, None))
                if how.startswith("{"):
                    least, most = int(m.group(3)), int(m.group(4))
                if optional and least:
                    raise ValueError(f"bad parameters {args!r}: a required one after optional")
                lo, hi, repeats = lo + least, None if most is None else hi + most, True
            pos = m.end()
        return cls(args, lo, hi, kinds, repeats)

    def letters(self, n: int) -> str:
        """The kinds of n arguments, one letter each."""
        if self.spec is None:
            raise ValueError("no kinds written for these parameters")
        if n <= len(self.kinds):
            return self.kinds[:n]
        if not self.repeats:
            raise ValueError(f"{n} arguments for parameters {self.spec!r}")
        return self.kinds + self.kinds[-1] * (n - len(self.kinds))

    def takes(self, n: int) -> bool:
        return self.lo <= n and (self.hi is None or n <= self.hi)

    def check(self, name: str, args: list) -> None:
        """A FormulaError unless `name` takes as many arguments as `args` holds."""
        if not self.takes(len(args)):
            hi = self.hi
            want = str(self.lo) if self.lo == hi else f"{self.lo} to {_most(hi)}"
            raise FormulaError(f"{name} takes {want} argument(s), not {len(args)}")


def _most(hi: int | None) -> str:
    return str(hi) if hi is not None and hi < 99 else "many"


@dataclass(frozen=True)
class Function:
    """One Excel function, all excelnet knows about it."""

    name: str
    category: str  # Excel's category, as the oracle corpus names it
    fn: Fn  # computes it: fn(ctx, args), its arity checked first
    gradient: bool  # passes gradients to its numeric arguments (where it is continuous)
    args: Params | None = None  # its parameters; None: the function checks them itself
    array_result: bool = False  # its result is an array made from whole ranges (see below)
    newer: bool = False  # added to Excel since 2010: files write it _xlfn.NAME
    volatile: bool = False  # RAND, NOW, …: a new value at every recalculation
    unions: bool = False  # each area of a union, SUM((A1:A3,C1:C3)), is an argument of its own
    refs: bool = False  # acts on references: fn(site, nodes) (see reference.py)
    positional: tuple[int, ...] = ()  # arguments read for where they are, not what they hold
    blanks: bool = False  # counts empty cells: whole columns and rows are read to the sheet's end
    # its arguments' nodes, as the compiler resolves them (references bound) -> the nodes it
    # evaluates: what a function reads beyond what its arguments say (SUMIF's sum range)
    resolve: Callable[[tuple], tuple] | None = None


# array_result: MMULT, TRANSPOSE, FREQUENCY, LINEST, …: in a one-cell formula Excel shows the
# array's first value, where a function of one value per cell would have read the range's cell
# in the formula's row or column instead (implicit intersection).

FUNCTIONS: dict[str, Function] = {}

# Excel's functions since 2010 that excelnet does not compute: a call to one is still one of
# Excel's functions, not a name Excel would show as #NAME? (those excelnet computes say so in
# their records; openpyxl's FORMULAE lists the older ones).
NEWER_NOT_COMPUTED = frozenset(
    """
AGGREGATE ARRAYTOTEXT BYCOL BYROW CHOOSECOLS CHOOSEROWS DROP ECMA.CEILING ENCODEURL EXPAND
FIELDVALUE FILTER FILTERXML FORECAST.ETS FORECAST.ETS.CONFINT FORECAST.ETS.SEASONALITY
FORECAST.ETS.STAT GROUPBY HSTACK IMAGE IMCOSH IMCOT IMCSC IMCSCH IMSEC IMSECH IMSINH IMTAN
ISOMITTED LAMBDA LET MAKEARRAY MAP MUNIT NUMBERVALUE PERCENTOF PIVOTBY REDUCE SCAN
SEQUENCE SINGLE SORT SORTBY STOCKHISTORY TAKE TEXTSPLIT TOCOL TOROW TRIMRANGE UNIQUE VSTACK
WEBSERVICE WRAPCOLS WRAPROWS
""".split()
)


def newer_excel(name: str) -> bool:
    """Whether `name` is one of Excel's functions since 2010 (files write it _xlfn.NAME),
    computed by excelnet or not."""
    known = FUNCTIONS.get(name)
    return known.newer if known is not None else name in NEWER_NOT_COMPUTED


CATEGORIES = (
    "MATH_AND_TRIGONOMETRY",
    "STATISTICAL",
    "LOGICAL",
    "INFORMATION",
    "LOOKUP_AND_REFERENCE",
    "TEXT",
    "DATE_AND_TIME",
    "FINANCIAL",
    "ENGINEERING",
    "DATABASE",
)

NEWER = "_xlfn."  # a registered name written as files write it: a function since 2010


def registrar(category: str):
    """The decorator a category module registers its functions with:

    excel = registrar("MATH_AND_TRIGONOMETRY")

    @excel("ABS", args="n")
    def f_abs(ctx, args): ...

    Each name is written as files write it: _xlfn.IFNA for a function Excel added since 2010
    (registered as IFNA, its record newer). `args`: its parameters (the module's doc), or
    (min, max) alone; None where the function checks its arguments itself. With cellwise=True
    the function is one of single values, fn(*elements) (see kit.cellwise), applied to each
    element of its arguments, each converted as its letter in `args` says.
    """
    assert category in CATEGORIES, category

    def excel(
        *names: str,
        args: str | tuple[int, int | None] | None = None,
        gradient: bool = True,
        array_result: bool = False,
        volatile: bool = False,
        unions: bool = False,
        refs: bool = False,
        positional: tuple[int, ...] = (),
        blanks: bool = False,
        resolve: Callable[[tuple], tuple] | None = None,
        cellwise: bool = False,
    ):
        params = None if args is None else Params.of(args)
        if cellwise and (params is None or params.spec is None):
            raise ValueError(f"{names}: cellwise takes the parameters' letters")

        def register(fn):
            body = _cellwise(params, fn) if cellwise else fn
            for written in names:
                newer = written.startswith(NEWER)
                name = written.removeprefix(NEWER)
                if name in FUNCTIONS:
                    raise RuntimeError(f"{name} is defined twice")
                FUNCTIONS[name] = Function(
                    name,
                    category,
                    _checked(name, params, body),
                    gradient,
                    params,
                    array_result,
                    newer,
                    volatile,
                    unions,
                    refs,
                    positional,
                    blanks,
                    resolve,
                )
            return fn

        return register

    return excel


def _checked(name: str, params: Params | None, body: Fn) -> Fn:
    """The function, its arity checked first."""
    if params is None:
        return body

    def fn(ctx, args):
        if not params.takes(len(args)):
            params.check(name, args)
        return body(ctx, args)

    return fn


def _cellwise(params: Params, element: Callable) -> Fn:
    def fn(ctx, args):
        return _by_element(ctx, args, params.letters(len(args)), element)

    return fn
