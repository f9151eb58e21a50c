"""FINANCIAL's securities, depreciation and dollar fractions (securities.py): Microsoft's
documented examples, Excel's answers across day-count bases and frequencies (as the
ExcelFinancialFunctions project recorded them from Excel), and values and gradients against
LibreOffice where it computes as Excel does (its DURATION, MDURATION, TBILLEQ past 182 days and
the odd-first-period functions differ from Excel's, so those are checked against Excel's own
answers instead)."""

from __future__ import annotations

import numpy as np
import pytest

from excelnet.formula.parse import Error
from tests.conftest import calc_formulas
from tests.libreoffice_check import check_formulas

# Microsoft's function pages: formula → the result they show (rounded as shown)
EXCEL_SAYS = {
    "COUPDAYBS(DATE(2011,1,25),DATE(2011,11,15),2,1)": 71,
    "COUPDAYS(DATE(2011,1,25),DATE(2011,11,15),2,1)": 181,
    "COUPDAYSNC(DATE(2011,1,25),DATE(2011,11,15),2,1)": 110,
    "COUPNCD(DATE(2011,1,25),DATE(2011,11,15),2,1)": 40678,  # 15 May 2011
    "COUPNUM(DATE(2007,1,25),DATE(2008,11,15),2,1)": 4,
    "COUPPCD(DATE(2011,1,25),DATE(2011,11,15),2,1)": 40497,  # 15 November 2010
    "PRICE(DATE(2008,2,15),DATE(2017,11,15),0.0575,0.065,100,2,0)": 94.63436162,
    "YIELD(DATE(2008,2,15),DATE(2016,11,15),0.0575,95.04287,100,2,0)": 0.065,
    "DURATION(DATE(2018,7,1),DATE(2048,1,1),0.08,0.09,2,1)": 10.9191453,
    "MDURATION(DATE(2008,1,1),DATE(2016,1,1),0.08,0.09,2,1)": 5.73567,
    "PRICEDISC(DATE(2008,2,16),DATE(2008,3,1),0.0525,100,2)": 99.79583333,
    "PRICEMAT(DATE(2008,2,15),DATE(2008,4,13),DATE(2007,11,11),0.061,0.061,0)": 99.98449888,
    "YIELDDISC(DATE(2008,2,16),DATE(2008,3,1),99.795,100,2)": 0.052823,
    "YIELDMAT(DATE(2008,3,15),DATE(2008,11,3),DATE(2007,11,8),0.0625,100.0123,0)": 0.060954,
    "RECEIVED(DATE(2008,2,15),DATE(2008,5,15),1000000,0.0575,2)": 1014584.654,
    "TBILLEQ(DATE(2008,3,31),DATE(2008,6,1),0.0914)": 0.094151494,
    "TBILLPRICE(DATE(2008,3,31),DATE(2008,6,1),0.09)": 98.45,
    "TBILLYIELD(DATE(2008,3,31),DATE(2008,6,1),98.45)": 0.091417,
    "ODDFPRICE(DATE(2008,11,11),DATE(2021,3,1),DATE(2008,10,15),DATE(2009,3,1),"
    "0.0785,0.0625,100,2,1)": 113.597717,
    "ODDFYIELD(DATE(2008,11,11),DATE(2021,3,1),DATE(2008,10,15),DATE(2009,3,1),"
    "0.0575,84.5,100,2,0)": 0.077245542,
    "ODDLPRICE(DATE(2008,2,7),DATE(2008,6,15),DATE(2007,10,15),0.0375,0.0405,100,2,0)": 99.8782860,
    "ODDLYIELD(DATE(2008,4,20),DATE(2008,6,15),DATE(2007,12,24),0.0375,99.875,100,2,0)": 0.0451922,
    "AMORDEGRC(2400,DATE(2008,8,19),DATE(2008,12,31),300,1,0.15,1)": 776,
    "AMORLINC(2400,DATE(2008,8,19),DATE(2008,12,31),300,1,0.15,1)": 360,
    "VDB(2400,300,10*365,0,1)": 1.32,
    "VDB(2400,300,10*12,0,1)": 40.0,
    "VDB(2400,300,10,0,1)": 480.0,
    "VDB(2400,300,10*12,6,18)": 396.31,
    "VDB(2400,300,10*12,6,18,1.5)": 311.81,
    "VDB(2400,300,10,0,0.875,1.5)": 315.0,
    "DOLLARDE(1.02,16)": 1.125,
    "DOLLARDE(1.1,32)": 1.3125,
    "DOLLARFR(1.125,16)": 1.02,
    "DOLLARFR(1.125,32)": 1.04,
}

# Excel's answers over the bases (0 US 30/360, 1 actual/actual, 2 actual/360, 3 actual/365,
# 4 European 30/360) and frequencies, from the ExcelFinancialFunctions test data (ten digits)
EXCEL_ANSWERS = {
    "PRICE(DATE(1980,2,15),DATE(2000,2,28),0.07,0.03,100,1,2)": 159.5561168405,
    "PRICE(DATE(1980,2,15),DATE(2000,2,28),0.07,0.03,100,1,4)": 159.5850391768,
    "PRICE(DATE(1980,2,15),DATE(2000,2,28),0.07,0.03,100,2,1)": 159.9072526481,
    "PRICE(DATE(1980,2,15),DATE(2000,2,28),0.07,0.03,100,4,0)": 160.0727427466,
    "PRICE(DATE(1980,2,15),DATE(2000,2,28),0.1,0.1,130,2,1)": 104.2386414789,
    "ODDFPRICE(DATE(1999,2,28),DATE(2010,6,30),DATE(1998,2,28),DATE(2009,6,30),"
    "0.07,0.03,100,1,2)": 127.9031273745,
    "ODDFPRICE(DATE(1999,2,28),DATE(2010,6,30),DATE(1998,2,28),DATE(2009,6,30),"
    "0.07,0.03,100,2,1)": 127.7049586143,
    "ODDFPRICE(DATE(1999,2,28),DATE(2010,6,30),DATE(1998,2,28),DATE(2009,6,30),"
    "0.07,0.03,100,4,0)": 127.5831938096,
    "ODDFPRICE(DATE(1999,2,28),DATE(2010,6,30),DATE(1998,2,28),DATE(2009,6,30),"
    "0.07,0.1,67,4,3)": 45.82439147473,
    "COUPDAYSNC(DATE(1980,2,15),DATE(1995,11,30),4,0)": 15,
    "COUPDAYSNC(DATE(1980,2,15),DATE(1995,11,30),4,4)": 14,
    "COUPDAYSNC(DATE(1980,2,15),DATE(2008,2,29),1,0)": 15,
    "COUPDAYSNC(DATE(1980,3,15),DATE(2000,2,28),1,4)": 343,
    "COUPDAYSNC(DATE(1980,3,15),DATE(2008,2,29),2,1)": 169,
    "COUPDAYS(DATE(2003,2,14),DATE(2003,5,14),2,3)": 182.5,
    "COUPDAYS(DATE(2003,2,14),DATE(2003,5,14),4,1)": 89,
    "TBILLEQ(DATE(1980,2,15),DATE(1980,9,21),0.75)": 1.265095264028,  # past 182 days
    "TBILLEQ(DATE(1993,2,28),DATE(1994,2,14),0.75)": 1.932789175562,
    "AMORDEGRC(100,DATE(1998,2,28),DATE(2000,2,29),10,1,0.3,1)": 5,
    "AMORDEGRC(100,DATE(1998,2,28),DATE(2000,2,29),10,2,0.07,3)": 9,
    "AMORDEGRC(100,DATE(1998,2,28),DATE(2000,2,29),50,1,0.3,3)": 23,
}

RULES = {  # the ToolPak's argument rules
    "COUPDAYS(DATE(2011,1,25),DATE(2011,11,15),3,1)": Error("#NUM!"),  # frequency 1, 2 or 4
    "COUPDAYS(DATE(2011,1,25),DATE(2011,11,15),2,5)": Error("#NUM!"),  # basis 0 to 4
    "COUPDAYS(DATE(2011,11,15),DATE(2011,1,25),2,1)": Error("#NUM!"),  # settlement first
    "COUPNUM(DATE(2007,1,25.9),DATE(2008,11,15),2.9,1.7)": 4.0,  # whole numbers, truncated
    "COUPNUM(TRUE,DATE(2008,11,15),2,1)": Error("#VALUE!"),
    "PRICE(DATE(2008,2,15),DATE(2017,11,15),-0.01,0.065,100,2,0)": Error("#NUM!"),
    "YIELD(DATE(2008,2,15),DATE(2016,11,15),0.0575,0,100,2,0)": Error("#NUM!"),
    "TBILLPRICE(DATE(2008,3,31),DATE(2009,6,1),0.09)": Error("#NUM!"),  # over a year
    "DOLLARDE(1.02,0.5)": Error("#DIV/0!"),
    "DOLLARDE(1.02,-1)": Error("#NUM!"),
    "DOLLARDE(-1.02,16)": -1.125,
    "AMORDEGRC(2400,DATE(2008,8,19),DATE(2008,12,31),300,1,0.4,1)": Error("#NUM!"),  # life 2.5
    "VDB(2400,300,10,5,4)": Error("#NUM!"),
    "ODDFPRICE(DATE(2008,11,11),DATE(2021,3,1),DATE(2008,10,15),DATE(2009,4,1),"
    "0.0785,0.0625,100,2,1)": Error("#NUM!"),  # the first coupon off maturity's schedule
}


def test_one_coupon_left_is_discounted_with_simple_interest(tmp_path):
    """With one coupon left Excel's PRICE discounts it linearly (LibreOffice compounds), and
    YIELD is that price's inverse in closed form."""
    dates = "DATE(2008,2,15),DATE(2008,4,1)"
    got = calc_formulas(
        tmp_path,
        {
            "A1": f"=PRICE({dates},0.05,0.04,105,4,3)",
            "A2": f"=YIELD({dates},0.05,A1,105,4,3)",
            "A3": f"=COUPDAYBS({dates},4,3)/COUPDAYS({dates},4,3)",
        },
    )
    c, a = 100 * 0.05 / 4, got["A3"]  # the coupon, and the share of its period gone
    dsc = 1 - a
    assert got["A1"] == pytest.approx((105 + c) / (1 + dsc * 0.04 / 4) - c * a, rel=1e-14)
    assert got["A2"] == pytest.approx(0.04, rel=1e-12)


def _values(tmp_path, table: dict) -> dict:
    refs = {f"A{k}": f for k, f in enumerate(table, start=1)}
    got = calc_formulas(tmp_path, {ref: "=" + f for ref, f in refs.items()})
    return {f: got[ref] for ref, f in refs.items()}


def _digits(x: float) -> float:
    """The relative error a value shown with x's digits has."""
    text = f"{x!r}".lstrip("-").replace(".", "").lstrip("0")
    return 0.6 * 10.0 ** -(len(text) - 1) if "." in repr(x) else 1e-12


@pytest.mark.parametrize(
    "table", [EXCEL_SAYS, EXCEL_ANSWERS, RULES], ids=["documented", "excel", "rules"]
)
def test_excel_answers(tmp_path, table):
    got = _values(tmp_path, table)
    for formula, want in table.items():
        if isinstance(want, Error):
            assert got[formula] == want, formula
        else:
            assert isinstance(got[formula], float), (formula, got[formula])
            assert got[formula] == pytest.approx(want, rel=max(_digits(float(want)), 1e-11)), (
                formula
            )


# -- against LibreOffice: values and gradients ------------------------------------------------

FORMULAS = [
    ("PRICE(DATE(2008,2,15),DATE(2017,11,15),{P},{Q},100,2,0)", (0.0575, 0.065)),
    ("YIELD(DATE(2008,2,15),DATE(2016,11,15),{P},{Q},100,2,1)", (0.0575, 95.04)),
    ("PRICEDISC(DATE(2008,2,16),DATE(2008,3,1),{P},{Q},2)", (0.0525, 100)),
    ("PRICEMAT(DATE(2008,2,15),DATE(2008,4,13),DATE(2007,11,11),{P},{Q},0)", (0.061, 0.061)),
    ("YIELDMAT(DATE(2008,3,15),DATE(2008,11,3),DATE(2007,11,8),{P},{Q},1)", (0.0625, 100.0123)),
    ("YIELDDISC(DATE(2008,2,16),DATE(2008,3,1),{P},{Q},2)", (99.795, 100)),
    ("RECEIVED(DATE(2008,2,15),DATE(2008,5,15),{P},{Q},3)", (1000000, 0.0575)),
    (
        "TBILLPRICE(DATE(2008,3,31),DATE(2008,6,1),{P})"
        "+TBILLYIELD(DATE(2008,3,31),DATE(2008,6,1),{Q})",
        (0.09, 98.45),
    ),
    (
        "ODDLPRICE(DATE(2008,2,7),DATE(2008,6,15),DATE(2007,10,15),{P},{Q},100,2,0)",
        (0.0375, 0.0405),
    ),
    ("ODDLYIELD(DATE(2008,4,20),DATE(2008,6,15),DATE(2007,12,24),{P},{Q},100,2,4)", (0.0375, 99.8)),
    (
        "COUPDAYBS(DATE(2011,1,25),DATE(2011,11,15),2,1)*{P}"
        "+COUPNUM(DATE(2007,1,25),DATE(2008,11,15),2,1)*{Q}",
        (1.5, 0.5),
    ),
    ("AMORLINC(2400,DATE(2008,8,19),DATE(2008,12,31),300,3,0.15,1)*{P}", (1.5, 0.0)),
    ("VDB(2400,300,10,0.5,3.7,2,TRUE)*{P}+DOLLARFR(1.125,16)*{Q}", (1.5, 0.5)),
]


def test_values_and_gradients_match_libreoffice(tmp_path, recalc):
    params = np.array([point for _, point in FORMULAS], dtype=float)
    checked = check_formulas([f for f, _ in FORMULAS], params, {}, tmp_path, recalc)
    assert checked >= 2 * 12
