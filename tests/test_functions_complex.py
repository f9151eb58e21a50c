"""ENGINEERING's complex numbers (COMPLEX and the IM… functions): Microsoft's documented
examples and ECMA-376's, Excel's text form and rules, values and gradients against LibreOffice
(which writes complex numbers as Excel does, to 15 digits), and gradients through nested calls
against central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from excelnet.formula.functions import FUNCTIONS
from excelnet.formula.functions.complex import Complex, parse, text
from excelnet.formula.parse import Error
from excelnet.formula.values import Ctx, V, from_python
from tests.conftest import calc_formulas
from tests.libreoffice_check import check_formulas

CPU = Ctx(torch.device("cpu"))

# Microsoft's function pages (and ECMA-376 Part 1, §18.17.7, where marked), formula → result
EXCEL_SAYS = {
    "COMPLEX(3,4)": "3+4i",
    'COMPLEX(3,4,"j")': "3+4j",
    "COMPLEX(0,1)": "i",
    "COMPLEX(1,0)": "1",
    'IMABS("5+12i")': 13.0,
    'IMAGINARY("3+4i")': 4.0,
    'IMAGINARY("0-j")': -1.0,
    "IMAGINARY(4)": 0.0,
    'IMARGUMENT("3+4i")': 0.92729521800161,
    'IMCONJUGATE("3+4i")': "3-4i",
    'IMCOS("1+i")': "0.833730025131149-0.988897705762865i",
    'IMCOSH("4+3i")': "-27.0349456030742+3.85115333481178i",
    'IMCSC("4+3i")': "-0.0754898329158637+0.0648774713706355i",
    'IMDIV("-238+240i","10+24i")': "5+12i",
    'IMEXP("1+i")': "1.46869393991589+2.28735528717884i",
    'IMEXP("2.3+4.5i")': "-2.10251576423113-9.75006374866818i",  # ECMA-376
    'IMEXP("-1-4j")': "-0.240462049968584+0.278412079051034j",  # ECMA-376
    'IMLN("3+4i")': "1.6094379124341+0.927295218001612i",
    'IMLOG10("3+4i")': "0.698970004336019+0.402719196273373i",
    'IMLOG2("3+4i")': "2.32192809488736+1.33780421245098i",
    'IMPOWER("2+3i",3)': "-46+9.00000000000001i",  # Excel's polar form, to the last digit
    'IMPRODUCT("3+4i","5-3i")': "27+11i",
    'IMPRODUCT("1+2i",30)': "30+60i",
    'IMPRODUCT("-3-3.5i","5+3i")': "-4.5-26.5i",  # ECMA-376
    'IMPRODUCT("1.3-2j","-3.4+3j","2.3-6j")': "67.834+15.13j",  # ECMA-376
    'IMREAL("6-9i")': 6.0,
    'IMSEC("4+3i")': "-0.0652940278579471-0.0752249603027732i",
    'IMSECH("4+3i")': "-0.0362534969158689-0.00516434460775318i",
    'IMSIN("4+3i")': "-7.61923172032141-6.548120040911i",
    'IMSINH("4+3i")': "-27.0168132580039+3.85373803791938i",
    'IMSQRT("1+i")': "1.09868411346781+0.455089860562227i",
    'IMSQRT("-4")': "1.22464679914735E-16+2i",  # polar: cos(π/2) is not quite 0
    'IMSUB("13+4i","5+3i")': "8+i",
    'IMSUM("3+4i","5-3i")': "8+i",
    'IMTAN("4+3i")': "0.00490825806749606+1.00070953606723i",
    # IMCOT's page shows 0.0049011823943045-0.999266927805902i: cot(4+3i)'s real part is
    # 0.00490118239430447335…, which these formulas give to the 15 digits Excel writes
    'IMCOT("4+3i")': "0.00490118239430447-0.999266927805902i",
}

RULES = {
    # Excel's rules: text that is not a complex number #NUM!, a logical #VALUE!, units mixed
    # #VALUE!, no imaginary part then no unit, coefficients of 1 left out
    'IMABS("3+4I")': Error("#NUM!"),
    'IMABS("3 + 4i")': Error("#NUM!"),
    "IMABS(TRUE)": Error("#VALUE!"),
    'IMSUM("1+i","2j")': Error("#VALUE!"),
    'COMPLEX(1,2,"k")': Error("#VALUE!"),
    'COMPLEX(1,2,"")': "1+2i",
    'COMPLEX("2",-1)': "2-i",
    'IMSUM("i","-i")': "0",
    'IMSUM("1+j",2)': "3+j",
    "IMLN(0)": Error("#NUM!"),
    "IMARGUMENT(0)": Error("#DIV/0!"),
    'IMDIV("1+i",0)': Error("#NUM!"),
    "IMPOWER(0,-1)": Error("#NUM!"),
    "IMPOWER(0,2)": "0",
    "IMSQRT(0)": "0",
    'IMREAL("1e3+.5i")': 1000.0,
    'IMAGINARY("-2.5e-1j")': -0.25,
    "IMSUM(A1:A3)": "4+2i",  # a range: its empty cell left out
    "IMPRODUCT(A1:A3)": "3+6i",
    "IMABS(A3)": 0.0,  # an empty cell is 0
    "COMPLEX(1E+20,1E-20)": "1E+20+1E-20i",
}


def _values(tmp_path, table: dict) -> dict:
    cells = {"A1": "1+2i", "A2": 3.0}  # A3 empty
    refs = {}
    for k, formula in enumerate(table, start=1):
        refs[f"C{k}"] = formula
        cells[f"C{k}"] = "=" + formula
    got = calc_formulas(tmp_path, cells)
    return {formula: got[ref] for ref, formula in refs.items()}


@pytest.mark.parametrize("table", [EXCEL_SAYS, RULES], ids=["documented", "rules"])
def test_excel_examples(tmp_path, table):
    got = _values(tmp_path, table)
    for formula, want in table.items():
        if isinstance(want, float):
            assert got[formula] == pytest.approx(want, rel=1e-12), formula
        else:
            assert got[formula] == want, formula


def test_text_form_reads_back_what_it_writes():
    for re_, im, unit, written in [
        (0.0, 0.0, "i", "0"),
        (0.0, -1.0, "j", "-j"),
        (2.5, 1.0, "i", "2.5+i"),
        (-1e-20, 3.0, "i", "-1E-20+3i"),
        (1 / 3, -2 / 3, "j", "0.333333333333333-0.666666666666667j"),
    ]:
        assert text(re_, im, unit) == written
        a, b, _ = parse(written)
        assert a == pytest.approx(re_, rel=1e-14, abs=1e-30)
        assert b == pytest.approx(im, rel=1e-14)
    assert parse("") == (0.0, 0.0, "")
    for bad in ("i2", "1+2", "++1i", "1i+2", "1e", "ii", "1+2k"):
        assert parse(bad) is None, bad


def test_results_carry_their_parts_over_a_block():
    block = from_python(np.array([[[1.0]], [[-2.0]], [["3-4j"]]], dtype=object), CPU)
    out = FUNCTIONS["IMSQRT"].fn(CPU, [block])
    assert isinstance(out, Complex)
    # the polar form's √2·sin(π/2) is 1.4142135623730949, which 15 digits write …309
    assert out.texts().reshape(-1).tolist() == [
        "1",
        "8.65956056235493E-17+1.41421356237309i",
        "2-j",
    ]
    assert out.re.reshape(-1).tolist() == pytest.approx([1.0, 8.659560562354932e-17, 2.0])
    assert out.im.reshape(-1).tolist() == pytest.approx([0.0, 2**0.5, -1.0])


def test_gradient_of_imabs_of_complex_by_central_differences():
    p = torch.tensor([[[0.7]], [[-1.3]]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[[2.0]], [[0.4]]], dtype=torch.float64, requires_grad=True)

    def f(p, q):
        z = FUNCTIONS["COMPLEX"].fn(CPU, [V(p), V(q)])
        e = FUNCTIONS["IMEXP"].fn(CPU, [FUNCTIONS["IMPRODUCT"].fn(CPU, [z, z])])
        return FUNCTIONS["IMABS"].fn(CPU, [e]).x + FUNCTIONS["IMARGUMENT"].fn(CPU, [z]).x

    f(p, q).sum().backward()
    h = 1e-6
    with torch.no_grad():
        dp = (f(p + h, q) - f(p - h, q)) / (2 * h)
        dq = (f(p, q + h) - f(p, q - h)) / (2 * h)
    # the text between the calls holds 15 digits: differences of 1e-6 see them to ~1e-9
    assert torch.allclose(p.grad, dp, rtol=1e-6)
    assert torch.allclose(q.grad, dq, rtol=1e-6)


# -- against LibreOffice: values and gradients ------------------------------------------------

FORMULAS = [
    ("IMABS(COMPLEX({P},{Q}))", (0.7, -1.3)),
    ("IMREAL(IMEXP(COMPLEX({P},{Q})))+IMAGINARY(IMSIN(COMPLEX({Q},{P})))", (0.4, 0.9)),
    ("IMARGUMENT(IMPOWER(COMPLEX({P},{Q}),2.5))", (1.1, 0.6)),
    ("IMABS(IMDIV(COMPLEX({P},1),COMPLEX(2,{Q})))", (0.3, 0.8)),
    ("IMREAL(IMSQRT(COMPLEX({P},{Q})))*IMAGINARY(IMLN(COMPLEX({P},{Q})))", (0.5, 1.5)),
    ('IMABS(IMSUM(COMPLEX({P},{Q}),"1+i",{P}))+IMREAL(IMPRODUCT({P},COMPLEX({Q},2)))', (0.5, 1.5)),
    ("IMREAL(IMTAN(COMPLEX({P},{Q})))+IMAGINARY(IMCOT(COMPLEX({P},{Q})))", (0.5, 0.25)),
    ("IMABS(IMLOG10(COMPLEX({P},{Q})))+IMABS(IMSECH(COMPLEX({P},{Q})))", (0.5, 0.25)),
    (
        "IMREAL(IMCOSH(COMPLEX({P},{Q})))+IMAGINARY(IMCSC(IMCONJUGATE(COMPLEX({P},{Q}))))",
        (0.2, 0.6),
    ),
    ("IMABS(IMSUB(IMLOG2(COMPLEX({P},{Q})),IMCSCH(COMPLEX({Q},{P}))))", (0.9, 0.3)),
    ('IMREAL(IMSEC(COMPLEX({P},{Q},"j")))+IMAGINARY(IMSINH(COMPLEX({P},{Q},"j")))', (0.3, 0.7)),
]


def test_values_and_gradients_match_libreoffice(tmp_path, recalc):
    params = np.array([point for _, point in FORMULAS])
    checked = check_formulas([f for f, _ in FORMULAS], params, {}, tmp_path, recalc)
    assert checked >= 2 * len(FORMULAS)
