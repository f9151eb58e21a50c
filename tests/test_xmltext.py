"""Text Excel can store: characters XML 1.0 forbids are written _xHHHH_ (and a literal _xHHHH_
has its underscore written _x005F_), read back exactly; a CHAR(1..255) workbook recalculated by
`calc` is well-formed and opens in LibreOffice and openpyxl."""

from __future__ import annotations

import zipfile
from xml.parsers import expat

import openpyxl

from excelnet.formula.functions.text import f_char
from excelnet.xlsx.files import sheet_parts
from excelnet.xlsx.read import read_book
from excelnet.xlsx.recalc import calc
from excelnet.xlsx.strings import parse as shared_strings
from excelnet.xlsx.text import unescape as unescape_text
from excelnet.xlsx.text import xml_text as escape_text


def test_escapes_as_excel_writes_them():
    assert escape_text("a\x07b") == "a_x0007_b"
    assert escape_text("a\rb\nc\td") == "a_x000D_b\nc\td"  # a CR would come back a LF
    assert escape_text("_x0041_") == "_x005F_x0041_"
    assert escape_text("x_x41_ & <y>") == "x_x41_ &amp; &lt;y&gt;"
    assert escape_text("\ud83d") == "_xD83D_"  # a lone surrogate, which UTF-8 cannot hold
    for s in ["a\x07b", "\x00\x1f\ufffe", "_x0041_", "__x005F_x0000__", "é€😀", "x_x41_"]:
        assert unescape_text(_xml_text(escape_text(s))) == s


def _xml_text(escaped: str) -> str:
    parser, out = expat.ParserCreate(), []
    parser.CharacterDataHandler = out.append
    parser.Parse(f"<t>{escaped}</t>", True)
    return "".join(out)


def test_shared_strings_are_read_exactly():
    xml = (
        b'<sst xmlns="x"><si><t>a_x0007_b</t></si><si><t>_x005F_x0041_</t></si>'
        b'<si><r><t xml:space="preserve">x </t></r><r><t>y&amp;</t></r>'
        b"<rPh><t>FURIGANA</t></rPh></si><si/></sst>"
    )
    assert shared_strings(xml) == ["a\x07b", "_x0041_", "x y&", ""]


def test_char_1_to_255_round_trips_through_calc(tmp_path, recalc):
    path = tmp_path / "chars.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    for n in range(1, 256):
        ws.cell(n, 1, n)
        ws.cell(n, 2, f"=CHAR(A{n})")
        # text that holds an escape's pattern (built so: in a formula, _x0041_ is an escape)
        ws.cell(n, 3, f'="_"&"x0041_"&CHAR(A{n})&" "')
    wb.save(path)
    calc(path)
    with zipfile.ZipFile(path) as z:
        part = sheet_parts(z)[ws.title]
        expat.ParserCreate().Parse(z.read(part), True)  # well-formed
    cached = read_book(path, cached=True).sheets[ws.title].cached
    for n in range(1, 256):
        assert cached[(n - 1, 1)] == f_char(float(n)), n
        assert cached[(n - 1, 2)] == "_x0041_" + f_char(float(n)) + " ", n
    # openpyxl opens it (and shows the escapes, as it does for Excel's own files)
    shown = openpyxl.load_workbook(path, data_only=True).active
    assert shown["B7"].value == "_x0007_" and shown["B65"].value == "A"
    # LibreOffice opens it, and writes the control characters back as Excel does (its CHAR
    # of 128 and up is its own character set's)
    (lo,) = recalc([path])
    again = read_book(lo, cached=True).sheets[ws.title].cached
    assert [again[(n - 1, 1)] for n in (1, 7, 10, 13, 31, 65)] == [
        cached[(n - 1, 1)] for n in (1, 7, 10, 13, 31, 65)
    ]
