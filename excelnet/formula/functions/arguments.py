"""What each argument of each function expects: a value (V), a reference (R) or an array (A).
It decides what a range means in a formula that is not an array formula (what Excel before
dynamic arrays computed, and what a file without an array flag still means): where a value is
expected, a range is read at the formula's own row or column (implicit intersection: =ABS(B:B)
in row 7 is ABS(B7)), and an expression over ranges is computed on those single cells; an
argument that takes a reference receives the whole range (=SUM(B1:B9)), an expression there
being computed as a value all the same (=SUM((A1:A3-B1:B3)^2) is #VALUE! in row 9); one that
takes an array computes its expression over whole ranges, =SUMPRODUCT((A1:A9-B1:B9)^2).

The classes are Excel's function table's, except where Excel computes an expression over whole
ranges all the same: INDEX's array (=INDEX((A1:A9=1)*(B1:B9=2),0) needs no array formula in
Excel) and the arrays LOOKUP, VLOOKUP and HLOOKUP search (=LOOKUP(2,1/(A1:A9="x"),B1:B9)), as
LibreOffice's ReferenceOrForceArray has them; and the newer XLOOKUP and XMATCH, made for
arrays. MATCH's lookup array takes a reference as in Excel (MATCH(1,(A1:A9=1)*(B1:B9=2),0)
wants an array formula there; LibreOffice computes it over the ranges).

Each entry lists the classes of the arguments in order; the last class repeats for the
arguments after it ("R" alone: every argument a reference), and for `PAIRS` the last two
repeat (COUNTIFS's range and criteria). A function absent from the table takes values only."""

from __future__ import annotations

VALUE, REFERENCE, ARRAY = "V", "R", "A"

_CLASSES: dict[str, str] = {}


def _classes(spec: str, *names: str) -> None:
    for name in names:
        _CLASSES[name] = spec


# aggregates of any number of references
_classes(
    "R",
    "AND",
    "OR",
    "XOR",
    "AVEDEV",
    "AVERAGE",
    "AVERAGEA",
    "COUNT",
    "COUNTA",
    "COUNTBLANK",
    "DEVSQ",
    "GEOMEAN",
    "HARMEAN",
    "KURT",
    "MAX",
    "MAXA",
    "MEDIAN",
    "MIN",
    "MINA",
    "PRODUCT",
    "SKEW",
    "SKEW.P",
    "STDEV",
    "STDEV.P",
    "STDEV.S",
    "STDEVA",
    "STDEVP",
    "STDEVPA",
    "SUM",
    "SUMSQ",
    "VAR",
    "VAR.P",
    "VAR.S",
    "VARA",
    "VARP",
    "VARPA",
    "GCD",
    "LCM",
    "MULTINOMIAL",
    "CONCAT",
    # reference functions (computed from the reference itself, see reference.py)
    "ROW",
    "COLUMN",
    "ROWS",
    "COLUMNS",
    "AREAS",
    "ISREF",
    "ISFORMULA",
    "FORMULATEXT",
    "SHEET",
    "SHEETS",
    "N",
    "T",
    "TYPE",
)
_classes("A", "SUMPRODUCT", "MODE", "MODE.SNGL", "MODE.MULT", "MINVERSE", "MDETERM", "TRANSPOSE")
_classes(
    "AA",
    "CHISQ.TEST",
    "CHITEST",
    "CORREL",
    "COVAR",
    "COVARIANCE.P",
    "COVARIANCE.S",
    "F.TEST",
    "FTEST",
    "INTERCEPT",
    "PEARSON",
    "RSQ",
    "SLOPE",
    "STEYX",
    "SUMX2MY2",
    "SUMX2PY2",
    "SUMXMY2",
    "MMULT",
)
_classes("VAAV", "FORECAST", "FORECAST.LINEAR")
_classes("AAVV", "PROB", "T.TEST", "TTEST")
_classes("RVV", "Z.TEST", "ZTEST", "PERCENTRANK", "PERCENTRANK.EXC", "PERCENTRANK.INC", "MIRR")
_classes(
    "RV",
    "LARGE",
    "SMALL",
    "PERCENTILE",
    "PERCENTILE.EXC",
    "PERCENTILE.INC",
    "QUARTILE",
    "QUARTILE.EXC",
    "QUARTILE.INC",
    "TRIMMEAN",
    "COUNTIF",
    "IRR",
)
_classes("VRV", "RANK", "RANK.AVG", "RANK.EQ")
_classes("RR", "FREQUENCY")
_classes("RRRV", "GROWTH", "TREND")
_classes("RRVV", "LINEST", "LOGEST")
_classes("RVR", "SUMIF", "AVERAGEIF")
_classes("RRV", "SUMIFS", "AVERAGEIFS", "MAXIFS", "MINIFS")  # then (range, criteria) pairs
_classes("RV", "COUNTIFS")  # (range, criteria) pairs
_classes("RRR", "DAVERAGE", "DCOUNT", "DCOUNTA", "DGET", "DMAX", "DMIN", "DPRODUCT")
_classes("RRR", "DSTDEV", "DSTDEVP", "DSUM", "DVAR", "DVARP")
_classes("VRR", "IF", "XNPV")
_classes("VR", "CHOOSE", "NPV", "FVSCHEDULE", "IFERROR", "IFNA")
_classes("RVVV", "OFFSET")
# an expression computed over whole ranges, in any formula (see above)
_classes("AVVV", "INDEX")
_classes("VAA", "LOOKUP")
_classes("VRV", "MATCH")
_classes("VAVV", "VLOOKUP", "HLOOKUP", "XMATCH")
_classes("VAAVVV", "XLOOKUP")
_classes("RRV", "XIRR")
_classes("VVR", "NETWORKDAYS", "WORKDAY")
_classes("VVVR", "NETWORKDAYS.INTL", "WORKDAY.INTL", "SERIESSUM")
_classes("RVR", "TEXTJOIN")
_classes("VAV", "TEXTBEFORE", "TEXTAFTER")  # several delimiters: an array
_classes("VR", "CELL", "SUBTOTAL")
_classes("VVA", "AGGREGATE")  # its array form computes an expression whole, as LARGE's would
_classes("R", "PERCENTOF", "IMSUM", "IMPRODUCT", "PHONETIC")
_classes("AV", "ARRAYTOTEXT")
# Excel 365's array functions take arrays: an expression over ranges is computed whole in them,
# whether or not the file marks the formula as a dynamic array (Excel adds no @ there)
_classes("AAV", "FILTER")
_classes("AAAV", "SORT")
_classes("A", "SORTBY", "VSTACK", "HSTACK", "CHOOSECOLS", "CHOOSEROWS")
_classes("AVV", "UNIQUE", "TAKE", "DROP", "TOCOL", "TOROW", "WRAPROWS", "WRAPCOLS")
_classes("AVVV", "EXPAND")
_classes("VAAVVV", "TEXTSPLIT")
# LET binds and the LAMBDA callers pass on what they are given: a range stays whole
_classes("A", "LET", "LAMBDA", "MAP", "REDUCE", "SCAN", "BYROW", "BYCOL", "MAKEARRAY")

PAIRS = frozenset({"SUMIFS", "AVERAGEIFS", "MAXIFS", "MINIFS", "COUNTIFS"})
# IFS(test, value, test, value, …): each test a value, each result passed as it is
_CLASSES["IFS"] = "VR"
PAIRS = PAIRS | {"IFS"}


def argument_class(name: str, i: int) -> str:
    """The class of argument i (from 0) of function `name`: V, R or A."""
    spec = _CLASSES.get(name)
    if spec is None:
        return VALUE
    if i < len(spec):
        return spec[i]
    if name in PAIRS:
        return spec[len(spec) - 2 + (i - len(spec)) % 2]
    return spec[-1]


def classified(name: str) -> bool:
    """Whether the table lists the function (else all its arguments are values)."""
    return name in _CLASSES
