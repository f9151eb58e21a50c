"""The function library's index: one record per function, its parameters written as data (the
arity the registry checks, the kinds `cellwise` and the distributions convert by), and the
flags the compiler reads from it."""

from __future__ import annotations

import pytest
import torch

from excelnet.formula.functions import FUNCTIONS
from excelnet.formula.functions.criteria import sum_range_shape
from excelnet.formula.functions.registry import NEWER_NOT_COMPUTED, Params, newer_excel
from excelnet.formula.parse import Const, FormulaError, Ref
from excelnet.formula.values import Ctx, scalar


@pytest.mark.parametrize(
    "spec, lo, hi, letters",
    [
        ("", 0, 0, ""),
        ("n", 1, 1, "n"),
        ("tn?", 1, 2, "tn"),
        ("ttn?n?", 2, 4, "ttnn"),
        ("r+", 1, None, "rrr"),
        ("nv*", 1, None, "nvv"),
        ("nr{1,254}", 2, 255, "nrr"),
    ],
)
def test_parameters_make_the_arity_and_each_arguments_kind(spec, lo, hi, letters):
    p = Params.of(spec)
    assert (p.lo, p.hi) == (lo, hi)
    assert p.letters(len(letters)) == letters


@pytest.mark.parametrize("spec", ["n?n", "x", "n+n", "n?r+", "n{1,}"])
def test_parameters_badly_written_are_refused(spec):
    with pytest.raises(ValueError):
        Params.of(spec)


@pytest.mark.parametrize(
    "name, count, message",
    [
        ("IF", 4, "IF takes 1 to 3 argument(s), not 4"),
        ("PI", 1, "PI takes 0 argument(s), not 1"),
        ("EXP", 2, "EXP takes 1 argument(s), not 2"),
        ("LOGEST", 5, "LOGEST takes 1 to 4 argument(s), not 5"),  # its own name, not LINEST's
        ("SUM", 0, "SUM takes 1 to many argument(s), not 0"),
        ("CONCAT", 254, "CONCAT takes 1 to many argument(s), not 254"),
        ("NORM.DIST", 3, "NORM.DIST takes 4 argument(s), not 3"),
        ("LEFT", 3, "LEFT takes 1 to 2 argument(s), not 3"),
    ],
)
def test_the_registry_checks_the_arity_before_the_function_runs(name, count, message):
    ctx = Ctx(torch.device("cpu"))
    with pytest.raises(FormulaError) as e:
        FUNCTIONS[name].fn(ctx, [scalar(1.0, ctx)] * count)
    assert str(e.value) == message


def test_cellwise_functions_convert_by_their_registered_letters():
    ctx = Ctx(torch.device("cpu"))
    left = FUNCTIONS["LEFT"]
    assert left.args.letters(2) == "tn"
    out = left.fn(ctx, [scalar("excel", ctx), scalar("2", ctx)])  # "2" read as a number
    assert out.texts().reshape(-1).tolist() == ["ex"]


def test_one_record_says_what_the_compiler_needs():
    assert FUNCTIONS["MMULT"].array_result and not FUNCTIONS["SUM"].array_result
    assert FUNCTIONS["IFNA"].newer and not FUNCTIONS["IF"].newer
    assert FUNCTIONS["VAR.S"].newer and not FUNCTIONS["VAR"].newer  # one registration
    assert FUNCTIONS["RAND"].volatile and FUNCTIONS["SUM"].unions
    assert FUNCTIONS["SUMIF"].resolve is sum_range_shape
    assert FUNCTIONS["AVERAGEIF"].resolve is sum_range_shape


def test_newer_functions_excelnet_does_not_compute_are_still_excels():
    assert not NEWER_NOT_COMPUTED & set(FUNCTIONS)
    assert newer_excel("LET") and newer_excel("XLOOKUP")
    assert not newer_excel("SUM") and not newer_excel("NOSUCHFUNCTION")


def test_sumif_reads_a_sum_range_of_the_criteria_ranges_shape():
    rng, crit = Ref("S", 0, 0, 2, 1, True, True), Const(">1")
    corner = Ref("S", 5, 3, 5, 3, True, True)
    assert sum_range_shape((rng, crit, corner)) == (rng, crit, Ref("S", 5, 3, 7, 4, True, True))
    assert sum_range_shape((rng, crit)) == (rng, crit)
