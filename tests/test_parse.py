"""The formula parser and the copied-down detection, on their own (no LibreOffice needed)."""

from __future__ import annotations

import pytest

from excelnet.formula.parse import (
    Chain,
    CopiedDown,
    FormulaError,
    Name,
    Op,
    Ref,
    Union,
    parse,
    relative_key,
)


@pytest.mark.parametrize(
    "text, want",
    [
        ("=1+2*3^2", Op("+", (1.0, Op("*", (2.0, Op("^", (3.0, 2.0))))))),
        ("=-2^2", Op("^", (Op("neg", (2.0,)), 2.0))),  # Excel: unary minus binds tighter: 4
        ("=2^3^2", Chain(("^", "^"), (2.0, 3.0, 2.0))),  # left to right: 64
        ("=1-2+3*4&5", Op("&", (Chain(("-", "+"), (1.0, 2.0, Op("*", (3.0, 4.0)))), 5.0))),
        ("=--1", Op("neg", (Op("neg", (1.0,)),))),
        ("=---1", Op("neg", (1.0,))),  # a run of signs: what matters is odd or even
    ],
)
def test_precedence(text, want):
    def plain(node):
        if isinstance(node, Op):
            return Op(node.op, tuple(plain(a) for a in node.args))
        if isinstance(node, Chain):
            return Chain(node.ops, tuple(plain(a) for a in node.args))
        return node.value

    assert plain(parse(text, "s")) == want


def test_references():
    assert parse("='my sheet'!$B$2:C5", "s") == Ref("my sheet", 1, 1, 4, 2, False, True)
    assert parse("=A:A", "s") == Ref("s", 0, 0, None, 0)
    assert parse("=$2:$3", "s") == Ref("s", 1, 0, 2, None)  # whole rows
    assert parse("='It''s'!A1", "s").sheet == "It's"
    assert parse("='a!b'!B2", "s") == Ref("a!b", 1, 1, 1, 1, True, True)
    assert parse("='Ünïcode ∑'!C3", "s").sheet == "Ünïcode ∑"
    assert parse("=XFD1048576", "s") == Ref("s", 1048575, 16383, 1048575, 16383, True, True)


@pytest.mark.parametrize("name", ["W", "a", "b", "lr", "abc", "XFE", "XFE1", "A1048577", "c_"])
def test_names_are_not_references(name):
    """Excel reads a column or row alone, or a cell past the sheet's edge, as a name."""
    assert parse(f"={name}", "s") == Name(name)
    assert parse(f"=MMULT(A1:B2,{name})", "s").args[1] == Name(name)


def test_unions():
    a, b = Ref("s", 0, 0, 1, 0, True, True), Ref("s", 0, 1, 1, 1, True, True)
    assert parse("=SUM((A1:A2,B1:B2))", "s").args == (Union((a, b)),)
    assert parse("=SUM(A1:A2~B1:B2)", "s").args == (Union((a, b)),)  # LibreOffice's ~


@pytest.mark.parametrize(
    "formula, words",
    [
        ("=" + "(" * 1000 + "1" + ")" * 1000, "nests 1000 levels deep"),
        ("=" + "1+" * 4500 + "1", "9,001 characters long; Excel allows 8,192"),
        ("=[1]!Total", "a name in another workbook"),  # ([1]Sheet1!A1: the file's copy)
    ],
)
def test_formulas_excelnet_refuses_say_why(formula, words):
    with pytest.raises(FormulaError, match=words):
        parse(formula, "s")


def test_long_chains_and_sign_runs_parse_flat():
    """Excel allows 8,192 characters: a + chain of 1,500 cells or 5,000 signs is one flat node."""
    chain = parse("=" + "+".join(f"A{i}" for i in range(1, 1501)), "s")
    assert isinstance(chain, Chain) and len(chain.args) == 1500
    assert parse("=" + "-" * 5000 + "A1", "s") == Op(
        "neg", (Op("neg", (Ref("s", 0, 0, 0, 0, True, True),)),)
    )


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
