"""TEXT and DATE_AND_TIME functions: Excel's own answers (the oracle corpus), LibreOffice where
it computes as Excel does, and Excel's documented examples for what the corpus leaves out."""

from __future__ import annotations

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.formula import ArrayFormula

from excelnet.formula import dates
from excelnet.formula.calculation import Calculation
from excelnet.formula.numfmt import format_value, general, number_text, parse_number
from excelnet.formula.parse import Error
from excelnet.xlsx.read import read_book
from excelnet.xlsx.recalc import check

# -- LibreOffice, where it computes as Excel does ---------------------------------------------

# Dates from 1 March 1900 on (LibreOffice counts earlier days differently); no booleans typed
# as TRUE (LibreOffice writes TRUE()); functions whose corner cases differ in LibreOffice (see
# the Excel examples below) only away from those corners.
AS_EXCEL = """
WEEKDAY(45000)|WEEKDAY(45000,2)|WEEKDAY(45000,3)|WEEKDAY(45000,11)|WEEKDAY(45000,17)
WEEKNUM(45000)|WEEKNUM(DATE(2023,1,1),1)|WEEKNUM(DATE(2023,1,2),2)|WEEKNUM(DATE(2022,12,31),1)
WEEKNUM(DATE(2022,12,31),17)|WEEKNUM(DATE(2022,12,31),21)|_xlfn.ISOWEEKNUM(DATE(2021,1,3))
_xlfn.ISOWEEKNUM(DATE(2024,12,30))|_xlfn.DAYS(45010,45000)|_xlfn.DAYS("2023-03-15","2023-03-01")
EOMONTH(45000,0)|EOMONTH(45000,-1)|EOMONTH(45000.7,1.9)|EOMONTH(DATE(2023,1,31),-1.5)
EDATE(DATE(2024,1,31),1)|EDATE(DATE(2024,3,31),-1)|EDATE(DATE(2023,1,31),-1.5)
DAYS360(DATE(2023,1,31),DATE(2023,3,31))|DAYS360(DATE(2023,2,28),DATE(2023,3,31))
DAYS360(DATE(2023,2,28),DATE(2023,3,31),1)|DAYS360(DATE(2024,1,31),DATE(2024,2,29))
DAYS360(DATE(2023,3,31),DATE(2023,1,31))|DAYS360(DATE(2023,1,29),DATE(2023,3,31))
YEARFRAC(DATE(2023,1,1),DATE(2023,7,1))|YEARFRAC(DATE(2023,1,1),DATE(2023,7,1),1)
YEARFRAC(DATE(2023,1,1),DATE(2023,7,1),2)|YEARFRAC(DATE(2023,1,1),DATE(2023,7,1),3)
YEARFRAC(DATE(2023,1,1),DATE(2023,7,1),4)|YEARFRAC(DATE(2024,2,29),DATE(2024,3,31),0)
YEARFRAC(DATE(2023,2,28),DATE(2024,2,29),1)|YEARFRAC(DATE(2023,6,15),DATE(2024,6,16),1)
YEARFRAC(DATE(2020,6,15),DATE(2024,3,1),1)|YEARFRAC(DATE(2024,3,1),DATE(2020,6,15),1)
DATEDIF(DATE(2020,5,15),DATE(2024,3,10),"Y")|DATEDIF(DATE(2020,5,15),DATE(2024,3,10),"M")
DATEDIF(DATE(2020,5,15),DATE(2024,3,10),"D")|DATEDIF(DATE(2020,5,15),DATE(2024,3,10),"YM")
DATEDIF(DATE(2020,5,15),DATE(2024,3,10),"MD")|DATEDIF(DATE(2020,5,15),DATE(2024,3,10),"yd")
DATEDIF(DATE(2020,1,31),DATE(2020,3,1),"MD")|DATEDIF(DATE(2020,2,29),DATE(2021,2,28),"YD")
NETWORKDAYS(45000,45100)|NETWORKDAYS(45100,45000)|NETWORKDAYS(45000,45100,d!A1:A3)
NETWORKDAYS.INTL(45000,45100,2)|NETWORKDAYS.INTL(45000,45100,11)
NETWORKDAYS.INTL(45000,45100,"0000011")|NETWORKDAYS.INTL(45000,45100,1,d!A1:A3)
WORKDAY(45000,10)|WORKDAY(45000,-10)|WORKDAY(45003,1)|WORKDAY(45000,1000)
WORKDAY(45000,-1000,d!A1:A3)|WORKDAY.INTL(45000,10,"1010100")|WORKDAY.INTL(45000,-33,11,d!A1:A3)
HOUR(0.75)|MINUTE(0.7512)|SECOND(0.75123)|HOUR("13:45")|MINUTE("1:30 PM")|TIME(25,0,0)
TIME(1,-30,0)|DATEVALUE("15-Mar-2023")|DATEVALUE("Mar 15, 2023")|DATEVALUE("3/15/23")
TIMEVALUE("2023-03-15 18:30")|TIMEVALUE("6:45:30 PM")|TIMEVALUE("6 PM")|DATE(2023,14,35)
DATE(99,1,1)|YEAR("2023-03-15")|MONTH(45000.99)|DAY(2958465)
FIND("b","abc",3)|SEARCH("b*","abc")|SEARCH("a?c","ABC")|SUBSTITUTE("aaaa","a","b",2.7)
SUBSTITUTE("aaaa","aa","b")|SUBSTITUTE("aaaa","aa","b",2)|REPLACE("abcdef",2,3,"X")
REPLACE("abcdef",10,3,"X")|REPLACE("abcdef",0,3,"X")|REPLACE("abcdef",2.9,1.9,"X")
FIXED(1234.567)|FIXED(1234.567,1)|FIXED(1234.567,-1)|FIXED(-1234.567,0)|FIXED(0.5,0)
CHAR(65)|CHAR(256)|CODE("A")|CLEAN("a"&CHAR(9)&"b")|TRIM("  a   b  ")
PROPER("hello WORLD o'neil 2nd-place")|LOWER("ÀÉÎ")|LEN(123.456)|LEN(1/3)|LEFT(123.456,4)
RIGHT("abc",0)|MID("abc",4,1)|REPT("ab",2.9)|EXACT("a","A")|T(5)|VALUE("1,234.5")
VALUE("$1,234")|VALUE(" 12 ")|VALUE("12:30")|VALUE("(100)")|VALUE("-5%")|VALUE("1 1/4")
VALUE("abc")|TEXT(1234.5,"#,##0.00")|TEXT(0.125,"0.0%")|TEXT(45000,"dddd d mmmm yyyy")
TEXT(0.5,"h:mm AM/PM")|TEXT(1.5,"[h]:mm")|TEXT(-1234.5,"#,##0.00;(#,##0.00)")
TEXT(0,"0.00;-0.00;""zero"" 0")|TEXT(1234567,"0.00E+00")|TEXT(0.75,"# ?/?")|TEXT("12","0.00")
TEXT(45000.75,"yyyy-mm-dd hh:mm:ss")|TEXT(12,"000")|CONCATENATE("a",1,1/4)|"x"&1/3
_xlfn.UNICHAR(9731)|_xlfn.UNICODE("☃")|_xlfn.CONCAT(d!A1:A3,"z")
"""


def test_as_libreoffice_computes(tmp_path, recalc):
    formulas = [f for line in AS_EXCEL.split("\n") for f in line.split("|") if f]
    wb = openpyxl.Workbook()
    t = wb.active
    t.title = "t"
    d = wb.create_sheet("d")
    for i, v in enumerate([45000, 45010, 45017], start=1):
        d.cell(i, 1).value = v
    for i, f in enumerate(formulas, start=1):
        t.cell(i, 1).value = "=" + f
    path = tmp_path / "functions.xlsx"
    wb.save(path)
    (lo,) = recalc([path])
    reports = check(lo)
    assert not [f.where for r in reports for f in r.not_computed]
    assert not [d.summary() for r in reports for d in r.different]
    assert sum(r.equal for r in reports) == len(formulas)


# -- Excel's documented examples --------------------------------------------------------------


def _calc(tmp_path, cells: dict[str, object]) -> dict[str, object]:
    """Values of a sheet's cells ({"A1": 5, "B1": "=LEN(A1)"}) as excelnet computes them."""
    wb = openpyxl.Workbook()
    for ref, v in cells.items():
        wb.active[ref] = v
    path = tmp_path / "book.xlsx"
    wb.save(path)
    calc = Calculation(read_book(path))
    assert not calc.failures, [(f.where, f.reason) for f in calc.failures]
    name = wb.active.title
    out = {}
    for (sheet, r, c), v in calc.values.items():
        out[get_column_letter(c + 1) + str(r + 1)] = v
        assert sheet == name
    return out


EXCEL_SAYS = {  # from Microsoft's function pages
    "WEEKNUM(DATE(2012,3,9))": 10.0,
    "WEEKNUM(DATE(2012,3,9),2)": 11.0,
    "ISOWEEKNUM(DATE(2012,3,9))": 10.0,
    "NETWORKDAYS(DATE(2012,10,1),DATE(2013,3,1))": 110.0,
    "NETWORKDAYS(DATE(2012,10,1),DATE(2013,3,1),DATE(2012,11,22))": 109.0,
    "NETWORKDAYS.INTL(DATE(2006,1,1),DATE(2006,1,31))": 22.0,
    'NETWORKDAYS.INTL(DATE(2006,1,1),DATE(2006,2,1),7,{"2006/1/2","2006/1/16"})': 22.0,
    'NETWORKDAYS.INTL(DATE(2006,2,28),DATE(2006,1,31),"0010001")': -21.0,
    "WORKDAY(DATE(2008,10,1),151)": 39933.0,
    "WORKDAY(DATE(2008,10,1),151,Z1:Z3)": 39938.0,  # 5 May 2009
    "WORKDAY.INTL(DATE(2012,1,1),90,11)": 41013.0,
    "WORKDAY.INTL(DATE(2012,1,1),30,17)": 40944.0,
    "YEARFRAC(DATE(2012,1,1),DATE(2012,7,30))": 0.58055555555555556,
    "YEARFRAC(DATE(2012,1,1),DATE(2012,7,30),1)": 0.57650273224043716,
    "YEARFRAC(DATE(2012,1,1),DATE(2012,7,30),3)": 0.57808219178082192,
    'DAYS360("1-Jan-11","31-Dec-11")': 360.0,
    'DATEDIF("2001/6/1","2002/8/15","D")': 440.0,
    'DATEDIF("2001/6/1","2002/8/15","YD")': 75.0,
    'DATEDIF("2001/6/1","2002/8/15","MD")': 14.0,
    'DATEDIF("2001/1/1","2003/1/1","Y")': 2.0,
    "EDATE(DATE(2011,1,15),-1)": 40527.0,
    "EOMONTH(DATE(2011,1,1),-3)": 40482.0,
    'DAYS("15-MAR-2021","1-FEB-2021")': 42.0,
    "WEEKDAY(DATE(2008,2,14),3)": 3.0,
    "HOUR(0.7)": 16.0,
    'MINUTE("12:45:00 PM")': 45.0,
    'SECOND("4:48:18 PM")': 18.0,
    'TIMEVALUE("22-Aug-2011 6:35 AM")': 0.27430555555555558,
    'DATEVALUE("8/22/2011")': 40777.0,
    'DATEVALUE("22-MAY-2011")': 40685.0,
    'DATEVALUE("2011/02/23")': 40597.0,
    "TIME(12,0,0)": 0.5,
    "TIME(16,48,10)": 0.70011574074074079,
    'TEXT(1234.567,"$#,##0.00")': "$1,234.57",
    'TEXT(0.285,"0.0%")': "28.5%",
    'TEXT(4.34,"# ?/?")': "4 1/3",
    'TEXT(1234.567,"0.00E+00")': "1.23E+03",
    'TEXT(1234,"0000000")': "0001234",
    "TEXT(123456,\"##0° 00' 00''\")": "12° 34' 56''",
    "FIXED(1234.567,-1)": "1,230",
    "FIXED(-1234.567,-1,TRUE)": "-1230",
    "FIXED(44.332)": "44.33",
    'TEXTBEFORE("Red riding hood\'s, red hood","hood")': "Red riding ",
    'TEXTAFTER("Red riding hood\'s, red hood","HOOD",1,1)': "'s, red hood",
    'TEXTAFTER("Red riding hood\'s, red hood","basket",1,0,0,"Not found")': "Not found",
    'TEXTJOIN(", ",TRUE,"US","Canada","","Mexico")': "US, Canada, Mexico",
    'TEXTJOIN({", ","; "},FALSE,"a","b","c","d")': "a, b; c, d",
    'SUBSTITUTE("Quarter 1, 2011","1","2",3)': "Quarter 1, 2012",
    'REPLACE("2009",3,2,"10")': "2010",
    'SEARCH("margin","Profit Margin")': 8.0,
    'FIND("M","Miriam McGovern",3)': 8.0,
    'REGEXEXTRACT("Dylan Williams","([A-Z][a-z]+) ([A-Z][a-z]+)",2)': "Dylan",
    'REGEXREPLACE("Sonia Rees","([A-Z][a-z]+) ([A-Z][a-z]+)","$2, $1")': "Rees, Sonia",
    'REGEXREPLACE("a1b22c","[0-9]+","#",2)': "a1b#c",
    'REGEXTEST("alpha","^A",1)': True,
    'REGEXTEST("alpha","(")': Error("#VALUE!"),
    'VALUETOTEXT("Hello",1)': '"Hello"',
    "VALUETOTEXT(1234.01234,1)": "1234.01234",
    'CODE("A")': 65.0,
    "CHAR(33)": "!",
    'CLEAN(CHAR(9)&"Monthly report"&CHAR(10))': "Monthly report",
    'PROPER("2-way street")': "2-Way Street",
    'PROPER("76BudGet")': "76Budget",
    'LEN("😀")': 2.0,
    'LEFT("😀a",2)': "😀",
    'UNICODE("😀")': 128512.0,
    "UNICHAR(32)": " ",
    "DATE(2008,1,-15)": 39432.0,
    "DATE(108,1,2)": 39449.0,
    "DATE(1900,2,29)": 60.0,
    "DAY(60)": 29.0,
    "WEEKDAY(1)": 1.0,
    'TEXT(60,"d mmmm yyyy")': "29 February 1900",
}


def test_excel_examples(tmp_path):
    formulas = list(EXCEL_SAYS)
    cells = {f"A{i}": "=" + f for i, f in enumerate(formulas, start=1)}
    holidays = [(2008, 11, 26), (2008, 12, 4), (2009, 1, 21)]
    cells.update({f"Z{i}": dates.serial(*d) for i, d in enumerate(holidays, start=1)})
    got = _calc(tmp_path, cells)
    wrong = {}
    for i, f in enumerate(formulas, start=1):
        want, value = EXCEL_SAYS[f], got[f"A{i}"]
        ok = (
            abs(value - want) <= 1e-12 * abs(want)
            if isinstance(want, float) and isinstance(value, float)
            else value == want and type(value) is type(want)
        )
        if not ok:
            wrong[f] = (want, value)
    assert not wrong


def test_a_copied_down_block_of_mixed_values(tmp_path):
    """One formula down a column (one block of N rows) over numbers, text, booleans, blanks
    and errors: each row as Excel computes it on its own."""
    column = [12.5, "abc", True, None, "=1/0", "2/3/2023", "  x  y ", 45000]
    cells = {}
    for i, v in enumerate(column, start=1):
        if v is not None:
            cells[f"A{i}"] = v
        for col, f in zip("BCDEFG", ["LEN", "TRIM", "UPPER", "VALUE", "T", "DAY"], strict=True):
            cells[f"{col}{i}"] = f"={f}(A{i})"
        cells[f"H{i}"] = f'=TEXT(A{i},"0.0")'
        cells[f"I{i}"] = f'=TEXTJOIN("-",TRUE,A{i},A{i})'
    got = _calc(tmp_path, cells)
    div0, value = Error("#DIV/0!"), Error("#VALUE!")
    want = {
        "B": [4.0, 3.0, 4.0, 0.0, div0, 8.0, 7.0, 5.0],
        "C": ["12.5", "abc", "TRUE", "", div0, "2/3/2023", "x y", "45000"],
        "D": ["12.5", "ABC", "TRUE", "", div0, "2/3/2023", "  X  Y ", "45000"],
        "E": [12.5, value, value, 0.0, div0, 44960.0, value, 45000.0],
        "F": ["", "abc", "", "", div0, "2/3/2023", "  x  y ", ""],
        "G": [12.0, value, 1.0, 0.0, div0, 3.0, value, 15.0],
        "H": ["12.5", "abc", "TRUE", "0.0", div0, "44960.0", "  x  y ", "45000.0"],
        "I": [
            "12.5-12.5",
            "abc-abc",
            "TRUE-TRUE",
            "",
            div0,
            "2/3/2023-2/3/2023",
            "  x  y -  x  y ",
            "45000-45000",
        ],
    }
    for col, values in want.items():
        assert [got[f"{col}{i}"] for i in range(1, 9)] == values, col


def test_arrays_expand_as_excel_does(tmp_path):
    """Legacy array formulas: a shorter array leaves #N/A, arrays map element by element,
    REGEXEXTRACT's matches fill a row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for i, v in enumerate([2022, 2023, 2024], start=1):
        ws[f"A{i}"] = v
    ws["B1"], ws["B2"] = 1, 6
    ws["C1"] = ArrayFormula("C1:C3", "=DATE(A1:A3,B1:B2,1)")
    ws["D1"] = ArrayFormula("D1:E2", '=LEN({"a","bb";"ccc","dddd"})')
    ws["F1"] = ArrayFormula("F1:H1", '=REGEXEXTRACT("a1b22c333","[0-9]+",1)')
    path = tmp_path / "arrays.xlsx"
    wb.save(path)
    calc = Calculation(read_book(path))
    assert not calc.failures, [(f.where, f.reason) for f in calc.failures]
    v = {get_column_letter(c + 1) + str(r + 1): x for (_, r, c), x in calc.values.items()}
    assert [v["C1"], v["C2"], v["C3"]] == [44562.0, 45078.0, Error("#N/A")]
    assert [v["D1"], v["E1"], v["D2"], v["E2"]] == [1.0, 2.0, 3.0, 4.0]
    assert [v["F1"], v["G1"], v["H1"]] == ["1", "22", "333"]


def test_dates_typed_as_text_follow_the_region():
    assert parse_number("2/3/2023") == 44960.0  # 3 February (en-US, Excel's default)
    with dates.regional("DMY"):
        assert parse_number("2/3/2023") == 44987.0  # 2 March (en-GB)
        assert parse_number("30/2/2010") is None
    assert parse_number("2023-03-02") == 44987.0  # year first reads the same everywhere
    assert parse_number(" 2024-01-10") is None  # Excel: EXP(" 2024-01-10 ") is #VALUE!
    assert parse_number(" 1:30 ") == 0.0625


def test_numbers_as_text():
    """A number a formula turns into text (Apache POI's measurements of Excel), and General."""
    cases = {
        1 / 3: "0.333333333333333",
        1234567.8901234567: "1234567.89012346",
        1.2345678901234568e-5: "1.23456789012346E-05",
        1.2345678901234567e-4: "0.000123456789012346",
        5.6789012345e-8: "0.000000056789012345",
        5.67890123456e-8: "5.67890123456E-08",
        1.2345678901234567e19: "12345678901234600000",
        1.2345678901234568e20: "1.23456789012346E+20",
        1e20: "1E+20",
        -0.5: "-0.5",
        2e-50: "2E-50",
    }
    assert {x: number_text(x) for x in cases} == cases
    assert [general(x) for x in (1 / 3, 123456789012, 25000000000, -2.5e-9, 1e-8)] == [
        "0.333333333",
        "1.23457E+11",
        "25000000000",
        "-2.5E-09",
        "0.00000001",
    ]
    assert format_value(-1 / 3, "0") == "0"  # no minus sign on a zero
    assert format_value(-1 / 3, "0.00") == "-0.33"
