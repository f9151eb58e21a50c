"""The function library's index: every Excel function excelnet computes, once, by name.

Each category module (math.py, statistical.py, …, as Excel groups its functions) registers its
functions here with `excel(...)`. A function takes the evaluation context and its evaluated
arguments (V values; an omitted argument is OMITTED) and returns a V.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from excelnet.formula.values import Ctx, V

Fn = Callable[[Ctx, list[V]], V]


@dataclass(frozen=True)
class Function:
    name: str
    category: str  # Excel's category, as the oracle corpus names it
    fn: Fn
    gradient: bool  # passes gradients to its numeric arguments (where it is continuous)
    volatile: bool = False  # RAND, NOW, …: a new value at every recalculation
    unions: bool = False  # each area of a union, SUM((A1:A3,C1:C3)), is an argument of its own
    refs: bool = False  # acts on references: fn(site, nodes) (see reference.py)
    positional: tuple[int, ...] = ()  # arguments read for where they are, not what they hold
    blanks: bool = False  # counts empty cells: whole columns and rows are read to the sheet's end


FUNCTIONS: dict[str, Function] = {}

# Excel's functions since 2010, which files write with the _xlfn. prefix (openpyxl's FORMULAE
# lists the older ones): a call without the prefix (a file written by a script) is still one of
# Excel's functions, not a name Excel would show as #NAME?.
NEWER_EXCEL = frozenset(
    """
AGGREGATE ARABIC ARRAYTOTEXT BASE BETA.DIST BETA.INV BINOM.DIST BINOM.DIST.RANGE BINOM.INV
BITAND BITLSHIFT BITOR BITRSHIFT BITXOR BYCOL BYROW CEILING.MATH CEILING.PRECISE CHISQ.DIST
CHISQ.DIST.RT CHISQ.INV CHISQ.INV.RT CHISQ.TEST CHOOSECOLS CHOOSEROWS COMBINA CONCAT
CONFIDENCE.NORM CONFIDENCE.T COT COTH COVARIANCE.P COVARIANCE.S CSC CSCH DAYS DECIMAL DROP
ECMA.CEILING ENCODEURL ERF.PRECISE ERFC.PRECISE EXPAND EXPON.DIST F.DIST F.DIST.RT F.INV
F.INV.RT F.TEST FIELDVALUE FILTER FILTERXML FLOOR.MATH FLOOR.PRECISE FORECAST.ETS
FORECAST.ETS.CONFINT FORECAST.ETS.SEASONALITY FORECAST.ETS.STAT FORECAST.LINEAR FORMULATEXT
GAMMA GAMMA.DIST GAMMA.INV GAMMALN.PRECISE GAUSS GROUPBY HSTACK HYPGEOM.DIST IFNA IFS IMAGE
IMCOSH IMCOT IMCSC IMCSCH IMSEC IMSECH IMSINH IMTAN ISFORMULA ISO.CEILING ISOMITTED ISOWEEKNUM
LAMBDA LET LOGNORM.DIST LOGNORM.INV MAKEARRAY MAP MAXIFS MINIFS MODE.MULT MODE.SNGL MUNIT
NEGBINOM.DIST NETWORKDAYS.INTL NORM.DIST NORM.INV NORM.S.DIST NORM.S.INV NUMBERVALUE
PDURATION PERCENTILE.EXC PERCENTILE.INC PERCENTOF PERCENTRANK.EXC PERCENTRANK.INC PERMUTATIONA
PHI PIVOTBY POISSON.DIST QUARTILE.EXC QUARTILE.INC RANDARRAY RANK.AVG RANK.EQ REDUCE
REGEXEXTRACT REGEXREPLACE REGEXTEST RRI SCAN SEC SECH SEQUENCE SHEET SHEETS SINGLE SKEW.P SORT
SORTBY STDEV.P STDEV.S STOCKHISTORY SWITCH T.DIST T.DIST.2T T.DIST.RT T.INV T.INV.2T T.TEST
TAKE TEXTAFTER TEXTBEFORE TEXTJOIN TEXTSPLIT TOCOL TOROW TRIMRANGE UNICHAR UNICODE UNIQUE
VALUETOTEXT VAR.P VAR.S VSTACK WEBSERVICE WEIBULL.DIST WORKDAY.INTL WRAPCOLS WRAPROWS XLOOKUP
XMATCH XOR Z.TEST
""".split()
)

# Functions whose result is an array made from whole ranges (not one value per cell of a range
# argument): in a one-cell formula Excel shows its first value, where a function of one value
# per cell would have read the range's cell in the formula's row or column instead (implicit
# intersection).
ARRAY_RESULTS = frozenset(
    {
        "MMULT",
        "MINVERSE",
        "MUNIT",
        "TRANSPOSE",
        "FREQUENCY",
        "LINEST",
        "LOGEST",
        "TREND",
        "GROWTH",
        "MODE.MULT",
        "REGEXEXTRACT",
    }
)

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


def registrar(category: str):
    """The decorator a category module registers its functions with:

    excel = registrar("MATH_AND_TRIGONOMETRY")

    @excel("ABS")
    def f_abs(ctx, args): ...
    """
    assert category in CATEGORIES, category

    def excel(
        *names: str,
        gradient: bool = True,
        volatile: bool = False,
        unions: bool = False,
        refs: bool = False,
        positional: tuple[int, ...] = (),
        blanks: bool = False,
    ):
        def register(fn: Fn) -> Fn:
            for name in names:
                if name in FUNCTIONS:
                    raise RuntimeError(f"{name} is defined twice")
                FUNCTIONS[name] = Function(
                    name, category, fn, gradient, volatile, unions, refs, positional, blanks
                )
            return fn

        return register

    return excel
