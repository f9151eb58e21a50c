"""Random formulas over the supported grammar: excelnet's value equals LibreOffice's, and its
gradient equals a finite difference of LibreOffice's own evaluation."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.libreoffice_check import check_formulas

PER_BOOK = 40  # formulas per workbook: one LibreOffice start checks them all

# Sheet d: numbers in A and C, text and blanks in B, numbers and numeric text in D (rows 1-4).
# Booleans stay out of ranges and out of comparisons with numbers: LibreOffice stores TRUE as
# the number 1, Excel as a logical value, so there the two applications disagree (excelnet
# follows Excel). Likewise 0^0 (LibreOffice: 1; Excel: #NUM!), and the error code of a domain
# error (SQRT(-1): LibreOffice #VALUE!, Excel #NUM!) — errors are compared as errors.
DATA = {
    "A": [1.5, -2.0, 0.25, 3.0],
    "B": [2.0, "abc", "apple", None],
    "C": [0.5, 1.0, -1.5, 2.0],
    "D": [4.0, "3", -0.5, 0.0],
}
NUM_RANGES = ["d!$A$1:$A$4", "d!$C$1:$C$4", "d!$A$1:$A$2", "d!$C$3:$C$4"]
ANY_RANGES = NUM_RANGES + ["d!$B$1:$B$4", "d!$D$1:$D$4", "d!$A$1:$D$4"]
CELLS = [f"d!${c}${r}" for c in "ACD" for r in range(1, 5)]
TEXTS = ['"abc"', '"2"', "d!$B$2", "d!$B$3", '({P}&"x")', '("a"&{Q})']


@st.composite
def num(draw, depth: int = 0):
    """A number-valued formula; {P} and {Q} stand for the row's parameters, {PQ} for both."""
    leaves = st.one_of(
        st.sampled_from(["{P}", "{Q}", "{P}", "{Q}"]),
        st.sampled_from(["1", "2", "0.5", "3", "0", "10"]),
        st.sampled_from(CELLS),
    )
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(leaves)
    e = lambda: draw(num(depth + 1))  # noqa: E731
    c = lambda: draw(cond(depth + 1))  # noqa: E731
    kind = draw(st.integers(0, 16))
    if kind == 0:
        return f"({e()}{draw(st.sampled_from(['+', '-', '*', '/']))}{e()})"
    if kind == 1:
        return draw(
            st.sampled_from(
                [
                    f"-{e()}",
                    f"({e()})%",
                    f"({e()})^{draw(st.sampled_from(['2', '3', '0.5']))}",
                    f"IF({c()},1,0)*{e()}",
                ]
            )
        )
    if kind == 2:
        return f"({c()})*{e()}"
    if kind == 3:
        fn = draw(st.sampled_from(["SUM", "AVERAGE", "MAX", "MIN", "SUMSQ", "COUNT", "COUNTA"]))
        args = [
            e() if draw(st.booleans()) else draw(st.sampled_from(ANY_RANGES))
            for _ in range(draw(st.integers(1, 3)))
        ]
        return f"{fn}({','.join(args)})"
    if kind == 4:
        fn = draw(st.sampled_from(["ABS", "SQRT", "LN", "LOG10", "EXP"]))
        return f"{fn}({e()})" if fn != "EXP" else f"EXP(MIN(5,{e()}))"
    if kind == 5:
        return draw(
            st.sampled_from(
                [
                    f"LOG({e()})",
                    f"LOG({e()},{e()})",
                    f"POWER({e()},2)",
                    f"ROUND({e()},{draw(st.integers(0, 2))})",
                ]
            )
        )
    if kind == 6:
        return f"IF({c()},{e()},{e()})"
    if kind == 7:
        return f"IFERROR({e()},{e()})"
    if kind == 8:
        r1, r2 = draw(st.sampled_from(NUM_RANGES[:2])), draw(st.sampled_from(NUM_RANGES[:2]))
        return draw(
            st.sampled_from(
                [
                    f"SUMPRODUCT({r1},{r2})",
                    f"SUMPRODUCT({r1}*{e()})",
                    f"SUMXMY2({r1},{r2})*{e()}",
                    f"SUMPRODUCT(MMULT(d!$A$1:$A$4,TRANSPOSE({r2})))*{e()}",
                ]
            )
        )
    if kind == 9:
        rng = draw(st.sampled_from(ANY_RANGES[:6]))
        # a computed criterion never an error value: Excel counts the cells holding that
        # error, LibreOffice says #VALUE! (Excel wins; excelnet follows it)
        computed = draw(st.sampled_from(["{P}", "{Q}", "ROUND({P},0)", "({P}+{Q})"]))
        crit = draw(st.sampled_from(['">0"', '"<=1"', '"abc"', '"<>2"', "1", '"a*"', computed]))
        if draw(st.booleans()):
            return f"COUNTIF({rng},{crit})*{e()}"
        return f"SUMIF({rng},{crit},{draw(st.sampled_from(NUM_RANGES[:2]))})+{e()}"
    if kind == 10:
        return f"SUM({{PQ}},{e()})"  # a range of the parameters themselves
    if kind == 11:
        # text that may read as a number; ABS keeps a minus sign out of it: Excel reads "2-1"
        # as a date (1 February), LibreOffice does not
        return f"({draw(st.sampled_from(TEXTS))}&ABS({e()}))*1"
    if kind == 12:  # functions of the library's categories that pass gradients
        return draw(
            st.sampled_from(
                [
                    f"SIN({e()})",
                    f"COS({e()})",
                    f"TANH({e()})",
                    f"ATAN({e()})",
                    f"_xlfn.NORM.S.DIST({e()},TRUE)",
                    f"_xlfn.NORM.DIST({e()},0.5,2,TRUE)",
                    f"MOD({e()},1.5)",
                    f"PRODUCT({e()},{e()})",
                    f"INDEX(d!$A$1:$A$4,2)*{e()}",
                    f"CHOOSE(2,{e()},{e()})",
                ]
            )
        )
    if kind == 13:
        rng = draw(st.sampled_from(NUM_RANGES[:2]))
        return draw(
            st.sampled_from(
                [
                    f'SUMIFS({rng},d!$C$1:$C$4,">0")*{e()}',
                    f'AVERAGEIF(d!$A$1:$A$4,">0",{rng})+{e()}',
                    f"_xlfn.IFS({c()},{e()},TRUE,{e()})",
                    f"VLOOKUP(3,d!$A$1:$C$4,3,FALSE)*{e()}",
                ]
            )
        )
    if kind == 14:  # the library's later families, where LibreOffice computes as Excel
        return draw(
            st.sampled_from(
                [
                    f"IMABS(COMPLEX({e()},{e()}))",
                    f"IMREAL(IMPRODUCT(COMPLEX({e()},1),COMPLEX(0.5,{e()})))",
                    f'IMAGINARY(IMSUM(COMPLEX({e()},{e()}),"1-2i"))',
                    f"SUBTOTAL(9,{{PQ}})*{e()}",
                    f"SUBTOTAL(101,d!$A$1:$A$4,{{PQ}})+{e()}",
                    f"_xlfn.AGGREGATE(9,6,{{PQ}})*{e()}",
                    f"PRICE(DATE(2008,2,15),DATE(2017,11,15),0.0575,ABS({e()})/10,100,2,0)",
                    f"PRICEDISC(DATE(2008,2,16),DATE(2008,3,1),ABS({e()})/100+0.01,100,2)",
                    f"TBILLPRICE(DATE(2008,3,31),DATE(2008,6,1),ABS({e()})/100+0.01)",
                    f"MDETERM(d!$A$1:$A$1)*{e()}",
                ]
            )
        )
    return f"({e()}*{{P}}+{{Q}})"


@st.composite
def cond(draw, depth: int = 0):
    """A TRUE/FALSE-valued formula."""
    if depth >= 3 or draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(["TRUE", "FALSE", "ISBLANK(d!$B$4)", "ISBLANK(d!$A$1)"]))
    e = lambda: draw(num(depth + 1))  # noqa: E731
    c = lambda: draw(cond(depth + 1))  # noqa: E731
    kind = draw(st.integers(0, 4))
    op = draw(st.sampled_from(["=", "<>", "<", ">", "<=", ">="]))
    if kind <= 1:
        return f"({e()}{op}{e()})"
    if kind == 2:
        return f"({draw(st.sampled_from(TEXTS))}{op}{draw(st.sampled_from(TEXTS + ['1', e()]))})"
    if kind == 3:
        return f"{draw(st.sampled_from(['AND', 'OR']))}({c()},{c()})"
    return f"NOT({c()})"


@st.composite
def expr(draw):
    return draw(num()) if draw(st.integers(0, 4)) else draw(cond())


# smooth in both parameters, so every workbook checks some gradients; and what the test found:
# IFERROR must catch a domain error while training too (the gradient is then the fallback's)
ANCHORS = [
    "{P}*{Q}+EXP(MIN(5,{P}))",
    "SUMPRODUCT(d!$A$1:$A$4*{P})*{Q}^2",
    "IFERROR(LOG(LOG(-({P}^2)-1)),{Q}+3*{P})",
]
PROFILE = settings(
    max_examples=int(os.environ.get("EXCELNET_PROPERTY_EXAMPLES", 6)),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=list(HealthCheck),
)


@PROFILE
@given(
    formulas=st.lists(expr(), min_size=PER_BOOK, max_size=PER_BOOK), seed=st.integers(0, 2**32 - 1)
)
def test_random_formulas_match_libreoffice(tmp_path_factory, recalc, formulas, seed):
    formulas = [*ANCHORS, *formulas]
    params = np.round(np.random.default_rng(seed).uniform(-2, 2, size=(len(formulas), 2)), 3)
    checked = check_formulas(formulas, params, DATA, tmp_path_factory.mktemp("prop"), recalc)
    assert checked > 0
