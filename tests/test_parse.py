"""The formula parser and the copied-down detection, on their own (no LibreOffice needed)."""

from __future__ import annotations

import pytest

from excelnet.formula.parse import CopiedDown, Op, Ref, parse, relative_key


@pytest.mark.parametrize(
    "text, want",
    [
        ("=1+2*3^2", Op("+", (1.0, Op("*", (2.0, Op("^", (3.0, 2.0))))))),
        ("=-2^2", Op("^", (Op("neg", (2.0,)), 2.0))),  # Excel: unary minus binds tighter: 4
        ("=2^3^2", Op("^", (Op("^", (2.0, 3.0)), 2.0))),  # left to right: 64
    ],
)
def test_precedence(text, want):
    def plain(node):
        if isinstance(node, Op):
            return Op(node.op, tuple(plain(a) for a in node.args))
        return node.value

    assert plain(parse(text, "s")) == want


def test_references():
    assert parse("='my sheet'!$B$2:C5", "s") == Ref("my sheet", 1, 1, 4, 2, False, True)
    assert parse("=A:A", "s") == Ref("s", 0, 0, None, 0)


COLUMNS = [
    # (formulas of one column, from row 2; which of them continue the run above)
    (
        [
            "=SUMPRODUCT(features!A2:J2,$B$2:$K$2)",
            "=SUMPRODUCT(features!A3:J3,$B$2:$K$2)",
            "=SUMPRODUCT(features!A4:J4,$B$2:$K$2)",
        ],
        [True, True],
    ),
    (["=A2+2", "=A3+3", "=A4+3"], [False, True]),
    (["=A9*LOG10(B9)", "=A10*LOG10(B10)", '=A11*LOG10(B11)&"A11"'], [True, False]),
    (
        ["='Sheet 1'!A2+Sheet2!$C$1", "='Sheet 1'!A3+Sheet2!$C$1", "='Sheet 1'!A4+Sheet2!$C$2"],
        [True, False],
    ),
    (["=$A$2", "=$A$2", "=$A2"], [True, False]),
]


@pytest.mark.parametrize("formulas, expected", COLUMNS)
def test_copied_down_agrees_with_relative_keys(formulas, expected):
    run = CopiedDown(formulas[0], 2)
    for i, (text, want) in enumerate(zip(formulas[1:], expected, strict=True), start=3):
        same_key = relative_key(text, i) == relative_key(formulas[i - 3], i - 1)
        got = run.follows(text)
        assert got == want == same_key, text
        if not got:
            run = CopiedDown(text, i)
