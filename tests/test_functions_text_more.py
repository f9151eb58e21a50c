"""TEXT's currency, Thai, width, byte-counting and notation functions (DOLLAR, BAHTTEXT, ASC,
JIS/DBCS, the …B twins, NUMBERVALUE, ARRAYTOTEXT, PHONETIC), case on non-ASCII text, and the
functions that reach outside the workbook (outside.py): Microsoft's examples and Excel's rules,
LibreOffice where it computes as Excel does."""

from __future__ import annotations

import pytest

from excelnet.formula.parse import Error
from excelnet.xlsx.recalc import check
from tests.conftest import calc_formulas

EXCEL_SAYS = {  # Microsoft's function pages
    "DOLLAR(1234.567,2)": "$1,234.57",
    "DOLLAR(1234.567,-2)": "$1,200",
    "DOLLAR(-1234.567,-2)": "($1,200)",
    "DOLLAR(-0.123,4)": "($0.1230)",
    "DOLLAR(99.888)": "$99.89",
    "BAHTTEXT(1234)": "หนึ่งพันสองร้อยสามสิบสี่บาทถ้วน",
    'NUMBERVALUE("2.500,27",",",".")': 2500.27,
    'NUMBERVALUE("3.5%")': 0.035,
    'ARRAYTOTEXT({TRUE,"x";1234.01234,"Seattle"},0)': "TRUE, x, 1234.01234, Seattle",
    'ARRAYTOTEXT({TRUE,"x";1234.01234,"Seattle"},1)': '{TRUE,"x";1234.01234,"Seattle"}',
    'ENCODEURL("http://contoso.sharepoint.com/teams/Finance/Documents/April Reports/'
    'Profit and Loss Statement.xlsx")': "http%3A%2F%2Fcontoso.sharepoint.com%2Fteams%2FFinance"
    "%2FDocuments%2FApril%20Reports%2FProfit%20and%20Loss%20Statement.xlsx",
    'HYPERLINK("http://example.microsoft.com/report/budget report.xlsx","Click for report")': (
        "Click for report"
    ),
    'EUROCONVERT(1.2,"DEM","EUR")': 0.61,
    'EUROCONVERT(1,"FRF","DEM",TRUE,3)': 0.29728616,
    'EUROCONVERT(1,"FRF","DEM",FALSE,3)': 0.3,
}

RULES = {
    # Thai words: ten is สิบ, twenty ยี่สิบ, a one after tens เอ็ด, millions ล้าน, minus ลบ
    "BAHTTEXT(21.5)": "ยี่สิบเอ็ดบาทห้าสิบสตางค์",
    "BAHTTEXT(-1000001.01)": "ลบหนึ่งล้านหนึ่งบาทหนึ่งสตางค์",
    "BAHTTEXT(0)": "ศูนย์บาทถ้วน",
    "BAHTTEXT(11)": "สิบเอ็ดบาทถ้วน",
    # NUMBERVALUE: spaces ignored, each trailing % divides by 100, group separators before
    # the decimal one dropped, after it #VALUE!, an empty text 0
    'NUMBERVALUE(" 1 000 ")': 1000.0,
    'NUMBERVALUE("5%%")': 0.0005,
    'NUMBERVALUE("1,5.5")': 15.5,
    'NUMBERVALUE("1.5,5")': Error("#VALUE!"),
    'NUMBERVALUE("")': 0.0,
    'NUMBERVALUE("1.2.3")': Error("#VALUE!"),
    'NUMBERVALUE("1;5",";","")': 1.5,
    # full and half width
    'ASC("ＥＸＣＥＬ　２")': "EXCEL 2",
    'ASC("ガ")': "ｶﾞ",
    'JIS("EXCEL ｶﾞ1")': "ＥＸＣＥＬ\u3000ガ１",
    'DBCS("abc")': "ａｂｃ",
    # the …B twins, in a language that is not double-byte
    'LENB("abc")': 3.0,
    'MIDB("abcdef",2,3)': "bcd",
    'REPLACEB("abcdef",2,3,"X")': "aXef",
    'FINDB("c","abc")': 3.0,
    # Unicode's simple case mappings: one character to one
    'UPPER("ßᾳé")': "ßᾼÉ",
    'LOWER("İÀ")': "ià",
    'PROPER("élan ÉCOLE")': "Élan École",
    # the functions of a connection, without one
    'WEBSERVICE("http://example.com")': Error("#VALUE!"),
    'CUBEVALUE("Sales","[Measures].[Profit]")': Error("#NAME?"),
    'CUBEMEMBER("Sales","[Time].[2004]")': Error("#NAME?"),
    'RTD("excel.rtd",,"topic")': Error("#N/A"),
    'FIELDVALUE(A1,"Price")': Error("#FIELD!"),
    'IMAGE("https://example.com/a.png")': Error("#CONNECT!"),
    'STOCKHISTORY("MSFT",DATE(2020,1,1))': Error("#CONNECT!"),
    'CALL("Kernel32","GetTickCount","J!")': Error("#NAME?"),
    # FILTERXML: XPath over the text given, numbers where the text is one
    'FILTERXML("<a><b>1</b><b>x</b></a>","//b")': 1.0,
    'INDEX(FILTERXML("<a><b>1</b><b>x</b></a>","//b"),2)': "x",
    'FILTERXML("<a><b t=\'q\'>1</b></a>","//b/@t")': "q",
    'FILTERXML("<a><b>1</b></a>","//c")': Error("#VALUE!"),
    'FILTERXML("<a>","//a")': Error("#VALUE!"),
    'ENCODEURL("a b&c/é")': "a%20b%26c%2F%C3%A9",
    'INFO("system")': "pcdos",
    'INFO("nonsense")': Error("#VALUE!"),
    "HYPERLINK(A2,5)": 5.0,
    'EUROCONVERT(1,"XYZ","EUR")': Error("#VALUE!"),
}


def _values(tmp_path, table: dict) -> dict:
    refs = {f"C{k}": f for k, f in enumerate(table, start=1)}
    cells = {"A1": "Seattle", "A2": "http://example.com"}
    cells.update({ref: "=" + f for ref, f in refs.items()})
    got = calc_formulas(tmp_path, cells)
    return {f: got[ref] for ref, f in refs.items()}


@pytest.mark.parametrize("table", [EXCEL_SAYS, RULES], ids=["documented", "rules"])
def test_excel_answers(tmp_path, table):
    got = _values(tmp_path, table)
    for formula, want in table.items():
        if isinstance(want, float):
            assert got[formula] == pytest.approx(want, rel=1e-12), formula
        else:
            assert got[formula] == want, formula


# LibreOffice computes these as Excel does
AS_EXCEL = [
    "DOLLAR(1234.567,2)",
    "DOLLAR(99.888)",
    'ASC("ＥＸＣＥＬ")',
    '_xlfn.NUMBERVALUE("2.500,27",",",".")',
    '_xlfn.NUMBERVALUE(" 1 000 ")',
    '_xlfn.NUMBERVALUE("5%%")',
    'LENB("abc")',
    'LEFTB("abcdef",2)',
    'RIGHTB("abcdef",2)',
    'MIDB("abcdef",2,3)',
    'SEARCHB("c","abc")',
    'HYPERLINK("http://x","name")',
    'HYPERLINK("http://x",5)',
    'EUROCONVERT(1.2,"DEM","EUR")',
    'EUROCONVERT(1,"FRF","DEM",FALSE,3)',
    'CUBEVALUE("c","m")',
    'LOWER("ÀÉÎ")',
]


def test_as_libreoffice_computes(tmp_path, recalc):
    import openpyxl

    wb = openpyxl.Workbook()
    for i, f in enumerate(AS_EXCEL, start=1):
        wb.active.cell(i, 1).value = "=" + f
    path = tmp_path / "text.xlsx"
    wb.save(path)
    (lo,) = recalc([path])
    reports = check(lo)
    assert not [f.where for r in reports for f in r.not_computed]
    assert not [d.summary() for r in reports for d in r.different]
    assert sum(r.equal for r in reports) == len(AS_EXCEL)
