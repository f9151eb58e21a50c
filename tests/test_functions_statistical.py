"""STATISTICAL functions: every workbook of the Excel corpus's STATISTICAL folder recalculated
equal to Excel's stored values; values and gradients against LibreOffice; Excel's rules for
blanks, text, errors and copied-down blocks."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from excelnet.formula.functions import FUNCTIONS
from excelnet.formula.parse import Error
from excelnet.formula.values import Ctx, V, scalar
from tests.conftest import calc_formulas
from tests.libreoffice_check import check_formulas

# -- against LibreOffice -----------------------------------------------------------------------

DATA = {
    "A": [1.5, -2.0, 0.25, 3.0, 7.0, 2.0],
    "B": [2.0, "abc", None, 8.0, 4.0, 1.0],
    "C": [0.5, 1.0, -1.5, 2.0, 4.5, 3.0],
}
NEW = re.compile(r"\b([A-Z]+(?:\.[A-Z0-9]+)+|GAUSS|PHI|GAMMA|PERMUTATIONA)\(")


def xlfn(formula: str) -> str:
    """Excel 2010's new names as a file stores them (_xlfn.NORM.DIST), as LibreOffice reads them."""
    return NEW.sub(r"_xlfn.\1(", formula)


# formula and the point (P, Q) it is checked at: values, and gradients where the function has one
SMOOTH = [
    ("NORM.DIST({P},0.5,{Q},TRUE)", (0.3, 1.7)),
    ("NORM.DIST({P},{Q},1.5,FALSE)", (-0.4, 0.9)),
    ("NORMDIST({P},0,{Q},TRUE)", (-9.0, 1.1)),
    ("NORM.S.DIST({P},TRUE)*{Q}", (-1.3, 2.0)),
    ("NORM.S.DIST({P},FALSE)+{Q}", (0.7, 0.1)),
    ("NORMSDIST({P}-{Q})", (0.2, 1.9)),
    ("NORM.INV({P},{Q},2)", (0.3, 1.5)),
    ("NORM.S.INV({P})*{Q}", (0.9, 3.0)),
    ("LOGNORM.DIST({P},{Q},1.2,TRUE)", (2.5, 0.4)),
    ("LOGNORM.DIST({P},0.3,{Q},FALSE)", (1.5, 0.8)),
    ("LOGNORM.INV({P},{Q},0.7)", (0.35, 0.2)),
    ("EXPON.DIST({P},{Q},TRUE)", (0.5, 2.0)),
    ("EXPON.DIST({P},{Q},FALSE)", (1.5, 0.6)),
    ("WEIBULL.DIST({P},{Q},3,TRUE)", (1.5, 2.0)),
    ("WEIBULL.DIST({P},1.7,{Q},FALSE)", (0.8, 1.3)),
    ("GAMMA.DIST({P},2.5,{Q},TRUE)", (3.0, 1.5)),
    ("GAMMA.DIST({P},0.7,{Q},FALSE)", (1.2, 2.0)),
    ("GAMMALN({P})+GAMMALN.PRECISE({Q})", (0.3, 4.5)),
    ("STANDARDIZE({P},1,{Q})", (2.5, 0.7)),
    ("FISHER({P})*{Q}", (0.6, 1.5)),
    ("GAUSS({P})+PHI({Q})", (0.8, -1.2)),
    ("AVERAGE(d!$A$1:$C$6,{P},{Q})", (1.0, 2.0)),
    ("AVERAGEA(d!$A$1:$C$6,{PQ})", (3.0, -1.0)),
    ("VAR.S(d!$A$1:$A$6,{PQ})", (0.5, 4.0)),
    ("VAR.P({P},{Q},d!$C$1:$C$6)", (2.5, -3.0)),
    ("STDEV.S(d!$A$1:$C$6,{PQ})", (1.0, 5.0)),
    ("STDEV.P({PQ},d!$B$1:$B$6)", (0.2, 0.9)),
    ("STDEVA({PQ},d!$A$1:$A$6)", (1.0, 2.0)),
    ("DEVSQ({PQ},d!$A$1:$A$6)", (3.0, 4.0)),
    ("AVEDEV({PQ},d!$C$1:$C$6)", (0.3, 6.0)),
    ("GEOMEAN({PQ},d!$B$1:$B$6)", (1.5, 2.5)),
    ("HARMEAN({PQ},3)", (1.5, 2.5)),
    ("SKEW({PQ},d!$A$1:$A$6)", (0.7, 5.0)),
    ("KURT({PQ},d!$A$1:$A$6)", (0.7, 5.0)),
    ("COVARIANCE.S({PQ},d!$A$1:$B$1)", (0.7, 5.0)),
    ("COVARIANCE.P(d!$A$1:$A$6,d!$C$1:$C$6)*{P}+{Q}", (0.7, 5.0)),
    ("CORREL({PQ},d!$A$3:$B$3)+PEARSON({PQ},{2,5})", (0.7, 5.0)),
    ("SLOPE({PQ},{1,3})+INTERCEPT({PQ},{1,3})", (0.7, 5.0)),
    ("RSQ({PQ},{1,3})+STEYX(d!$C$1:$C$3,d!$A$1:$A$3)*{Q}", (0.7, 5.0)),
    ("FORECAST({P},d!$C$1:$C$6,d!$A$1:$A$6)*{Q}", (0.7, 5.0)),
    ("SMALL(d!$A$1:$A$6,2)*{P}+SMALL({PQ},1)", (0.7, 5.0)),
    ("LARGE({PQ},1)+LARGE(d!$A$1:$C$6,3)*{Q}", (0.7, 5.0)),
    ("MEDIAN({PQ},d!$A$1:$A$4)", (2.4, 1.8)),
    ("PERCENTILE.INC({PQ},0.3)+PERCENTILE({PQ},{P}/10)", (0.7, 5.0)),
    ("PERCENTILE.EXC(d!$A$1:$C$6,0.25)*{P}+QUARTILE({PQ},1)", (0.7, 5.0)),
    ("TRIMMEAN(d!$A$1:$C$6,0.2)*{P}+MAXA({PQ})-MINA({PQ},4)", (0.7, 5.0)),
]
# functions without a gradient (computed with scipy): their values, at P = 1.3, Q = 3
VALUES = [
    "T.DIST({P},{Q},TRUE)",
    "T.DIST({P},{Q},FALSE)",
    "T.DIST.2T({P},{Q})",
    "T.DIST.RT({P},{Q})",
    "TDIST({P},{Q},2)",
    "T.INV({P}/4,{Q})",
    "T.INV.2T({P}/20,{Q})",
    "TINV({P}/4,{Q})",
    "F.DIST({P},{Q},7,TRUE)",
    "F.DIST({P},3,{Q},FALSE)",
    "F.DIST.RT({P},{Q},7)",
    "F.INV({P}/4,{Q},7)",
    "F.INV.RT({P}/100,{Q},7)",
    "FINV({P}/3,4,{Q})",
    "CHISQ.DIST({P},{Q},TRUE)",
    "CHISQ.DIST({P},{Q},FALSE)",
    "CHISQ.DIST.RT({P},{Q})",
    "CHISQ.INV({P}/4,{Q})",
    "CHISQ.INV.RT({P}/100,{Q})",
    "BETA.DIST({P}/10,2,{Q},TRUE)",
    "BETA.DIST({P},2,3,FALSE,0,{Q})",
    "BETA.INV(0.3,{P},{Q})",
    "BETAINV(0.7,2,3,{P},{Q})",
    "GAMMA.INV(0.3,{P},{Q})",
    "GAMMA({P})",
    "GAMMA(-{P})",
    "BINOM.DIST(3,{Q}*4,{P}/10,FALSE)",
    "BINOM.DIST(3,{Q}*4,{P}/10,TRUE)",
    "BINOM.INV({Q}*4,{P}/10,0.6)",
    "NEGBINOM.DIST(10,{Q},{P}/10,TRUE)",
    "NEGBINOM.DIST(10,{Q},{P}/10,FALSE)",
    "POISSON.DIST(3,{P},TRUE)",
    "POISSON.DIST(3,{P},FALSE)",
    "HYPGEOM.DIST(1,4,{Q}*3,20,TRUE)",
    "HYPGEOM.DIST(1,4,{Q}*3,20,FALSE)",
    "CONFIDENCE.T(0.05,{P},{Q}*10)",
    "CONFIDENCE.NORM(0.05,{P},{Q}*10)",
    "FISHERINV({P})",
    "PERMUT({Q}*3,3)",
    "PERMUTATIONA({Q},3)",
    "MODE.SNGL({PQ},{P})",
    "RANK.EQ({P},{PQ})",
    "RANK.AVG({Q},{PQ},1)",
    "PERCENTRANK.INC(d!$A$1:$C$6,{P})",
    "PERCENTRANK.EXC(d!$A$1:$C$6,{P},4)",
    "Z.TEST(d!$A$1:$C$6,{P})",
    "Z.TEST(d!$A$1:$C$6,{P},{Q})",
    "T.TEST({PQ},d!$A$4:$A$6,2,3)",
    "T.TEST({PQ},d!$A$1:$A$6,1,2)",
    "F.TEST({PQ},d!$C$1:$C$6)",
    "CHISQ.TEST({PQ},{2,3})",
    "FREQUENCY({PQ},2)",
]


def test_values_and_gradients_match_libreoffice(tmp_path, recalc):
    formulas = [xlfn(f) for f, _ in SMOOTH] + [xlfn(f) for f in VALUES]
    params = np.array([p for _, p in SMOOTH] + [(1.3, 3.0)] * len(VALUES))
    checked = check_formulas(formulas, params, DATA, tmp_path, recalc)
    assert checked >= 2 * len(SMOOTH) - 4, checked  # a few points sit on a kink


# -- Excel's rules ---------------------------------------------------------------------------


def test_copied_down_blocks_compute_row_by_row(tmp_path):
    cells = {}
    rows = [(1.0, 2.0, 4.0), (3.0, "x", 5.0), (-1.0, None, 2.0), (2.0, 2.0, 2.0)]
    for i, (a, b, c) in enumerate(rows, start=1):
        cells.update({f"A{i}": a, f"B{i}": b, f"C{i}": c})
        cells[f"E{i}"] = f"=STDEV.S(A{i}:C{i})"
        cells[f"F{i}"] = f"=SMALL($A$1:$C$4,{i})"
        cells[f"G{i}"] = f"=NORM.DIST(A{i},0,C{i}-2,TRUE)"
        cells[f"H{i}"] = f"=GEOMEAN(A{i}:C{i})"
        cells[f"I{i}"] = f"=RANK.EQ(A{i},$A$1:$A$4)"
        cells[f"J{i}"] = f"=PERCENTILE.INC(A{i}:C{i},0.5)"
    got = calc_formulas(tmp_path, cells)
    assert got["E1"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert got["E2"] == pytest.approx(np.std([3, 5], ddof=1))  # text skipped
    assert got["E4"] == 0.0
    assert [got[f"F{i}"] for i in range(1, 5)] == [-1.0, 1.0, 2.0, 2.0]
    assert got["G1"] == pytest.approx(0.5 * math.erfc(-1 / 2 / math.sqrt(2)))
    assert got["G4"] == Error("#NUM!")  # sd = 0
    assert got["H3"] == Error("#NUM!")  # a negative value
    assert got["H2"] == pytest.approx(math.sqrt(15))
    assert [got[f"I{i}"] for i in range(1, 5)] == [3.0, 1.0, 4.0, 2.0]
    assert got["J2"] == 4.0


def test_errors_blanks_and_text(tmp_path):
    got = calc_formulas(
        tmp_path,
        {
            "A1": 1.0,
            "A2": "=1/0",
            "A3": 3.0,
            "B1": 2.0,
            "B2": "two",
            "B3": 5.0,
            "C1": "=VAR.S(A1:A3)",  # an error in a range is the result
            "C2": "=VAR.S(B1:B3)",  # text in a range is skipped
            "C3": '=VAR.S(2,"4")',  # numeric text typed into the call counts
            "C4": '=VAR.S(2,"four")',  # other text typed into the call is #VALUE!
            "C5": "=VAR.S(B2)",  # nothing to count: #DIV/0!
            "C6": "=NORM.DIST(B2,0,1,TRUE)",  # a text argument: #VALUE!
            "C7": "=NORM.DIST(A2,B2,1,TRUE)",  # the first error in argument order
            "C8": "=NORM.DIST(1,0,1,D1)",  # a blank cumulative is FALSE: the density
            "C9": "=MEDIAN(B1:B3,D1:D3)",  # blanks are skipped
            "C10": "=CORREL(A1:A3,B1:B2)",  # different sizes: #N/A
            "C11": "=AVERAGEA(B1:B3)",  # text in a range counts as 0
            "C12": "=MINA(B2,7)",
        },
    )
    assert got["C1"] == Error("#DIV/0!")
    assert got["C2"] == pytest.approx(4.5)
    assert got["C3"] == pytest.approx(2.0)
    assert got["C4"] == Error("#VALUE!")
    assert got["C5"] == Error("#DIV/0!")
    assert got["C6"] == Error("#VALUE!")
    assert got["C7"] == Error("#DIV/0!")
    assert got["C8"] == pytest.approx(math.exp(-0.5) / math.sqrt(2 * math.pi))
    assert got["C9"] == 3.5
    assert got["C10"] == Error("#N/A")
    assert got["C11"] == pytest.approx(7 / 3)
    assert got["C12"] == 0.0


def test_training_path_has_finite_gradients_without_device_syncs():
    """Not strict (inside a training step): domain errors are NaN values, never NaN gradients,
    and nothing leaves the tensor world."""
    ctx = Ctx(torch.device("cpu"), strict=False)
    x = torch.tensor([[[0.5]], [[-1.0]], [[2.0]]], dtype=torch.float64, requires_grad=True)
    v = V(x)
    checks = {
        "LOGNORM.DIST": [v, scalar(0.0, ctx), scalar(1.0, ctx), scalar(False, ctx)],
        "GAMMA.DIST": [v, scalar(0.5, ctx), scalar(1.0, ctx), scalar(False, ctx)],
        "WEIBULL.DIST": [v, scalar(0.5, ctx), scalar(1.0, ctx), scalar(False, ctx)],
        "FISHER": [v],
        "NORM.INV": [v, scalar(0.0, ctx), scalar(1.0, ctx)],
        "GEOMEAN": [v, scalar(2.0, ctx)],
        "STDEV.S": [v],
    }
    for name, args in checks.items():
        y = FUNCTIONS[name].fn(ctx, args).x
        (grad,) = torch.autograd.grad(torch.nan_to_num(y).sum(), x, allow_unused=True)
        assert grad is None or torch.isfinite(grad).all(), name
