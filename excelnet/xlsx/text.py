"""Text as a workbook's XML holds it, and Excel's limits on what a workbook holds.

XML 1.0 cannot hold most control characters (U+0001…U+001F but tab and line feed), nor keep
a carriage return (a reader takes it for a line feed), and UTF-8 cannot hold a lone UTF-16
surrogate (`=LEFT("😀",1)` gives one). Excel writes such a character as `_xHHHH_` (its UTF-16
code unit in hex), and a text that holds
`_xHHHH_` itself with its underscore escaped (`_x005F_xHHHH_`); Excel, LibreOffice and excelnet
read both back as the characters they stand for. Every text excelnet writes into a cell's
value goes through `escape`; every shared or inline string it reads, through `unescape`
(`cell_text` from the XML as it is in the file).

In a formula, LibreOffice does not read `_xHHHH_` back (it reads the six characters), so a
text literal with a control character is written as "…"&CHAR(n)&"…" instead (`formula_text`).
"""

from __future__ import annotations

import html
import re

from xlsxwriter.worksheet import Worksheet as XlsxWorksheet

from excelnet.errors import ExcelnetError

# Excel's limits (https://support.microsoft.com/office/excel-specifications-and-limits)
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384  # A … XFD
MAX_CELL_CHARS = 32_767  # characters a cell holds
MAX_FORMULA_CHARS = 8_192  # characters of a formula
MAX_NESTING = 64  # levels of functions inside one another

# characters XML 1.0 cannot hold (tab, LF, CR and the rest can), and lone surrogates; and an
# `_xHHHH_` already in the text, whose underscore is escaped so that it reads back as itself
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]|[\ud800-\udfff]|_(?=x[0-9A-Fa-f]{4}_)")
_ESCAPED = re.compile("_x([0-9A-Fa-f]{4})_")
_XML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _code(m: re.Match) -> str:
    return f"_x{ord(m.group(0)):04X}_"


def escape(text: str) -> str:
    """`text` with every character XML or UTF-8 cannot hold as `_xHHHH_`, as Excel writes it
    (not yet XML-escaped: & < > are the writer's)."""
    return _UNSAFE.sub(_code, text) if _UNSAFE.search(text) else text


def xml_text(text: str) -> str:
    """`text` ready for an element's content: escaped, then & < > as entities."""
    return escape(text).translate(_XML)


def unescape(text: str) -> str:
    """The text a stored string stands for: each `_xHHHH_` as its character (a UTF-16 code unit;
    a surrogate pair written as two escapes becomes one character)."""
    if "_x" not in text:
        return text
    out = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    if any("\ud800" <= ch <= "\udbff" for ch in out):  # pairs written as two escapes
        out = out.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
    return out


def cell_text(raw: str) -> str:
    """A <v> or <t> element's content, as it is in the file, as the text it stands for: line
    ends normalised as an XML parser does (a CR LF or lone CR written as such is a LF; one
    written `&#13;` or `_x000D_` stays a CR), then entities and escapes decoded."""
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return unescape(html.unescape(raw) if "&" in raw else raw)


def has_control(text: str) -> bool:
    """Whether a text holds a character a formula's literal cannot hold as it is."""
    return _CONTROL.search(text) is not None


_IN_FORMULA = re.compile("([\x00-\x08\x0b-\x1f])|_(?=x[0-9A-Fa-f]{4}_)")


def formula_text(text: str) -> str:
    """A text literal for a formula: "…" with quotes doubled; each control character (CR
    included) as &CHAR(n)& between literals, which Excel and LibreOffice both read; and a
    literal _xHHHH_ split after its underscore, so that no reader takes it for an escape."""
    quoted = '"' + text.replace('"', '""') + '"'
    if not _IN_FORMULA.search(text):
        return quoted
    parts, start = [], 0
    for m in _IN_FORMULA.finditer(text):
        end = m.start() + (0 if m.group(1) else 1)  # an underscore ends the literal before
        if end > start:
            parts.append('"' + text[start:end].replace('"', '""') + '"')
        if m.group(1):
            parts.append(f"CHAR({ord(m.group(1))})")
        start = m.end() if m.group(1) else end
    if start < len(text):
        parts.append('"' + text[start:].replace('"', '""') + '"')
    return "(" + "&".join(parts) + ")" if len(parts) > 1 else parts[0]


def check_cell_text(text: str, where: str) -> None:
    """Refuse a text longer than a cell holds."""
    if len(text) > MAX_CELL_CHARS:
        raise ExcelnetError(
            f"{where}: a text of {len(text):,} characters; an Excel cell holds at most "
            f"{MAX_CELL_CHARS:,}"
        )


_SURROGATE = re.compile("[\ud800-\udfff]")


class Worksheet(XlsxWorksheet):
    """XlsxWriter's worksheet that never writes a file excelnet cannot read back: the text a
    formula's cell stores as its value escaped (XlsxWriter writes it as it is), and a lone
    surrogate in a shared string (which XlsxWriter escapes but for those, and UTF-8 cannot
    hold) replaced by U+FFFD."""

    def _write_formula(self, row, col, formula, cell_format=None, value=0):
        if isinstance(value, str):
            value = escape(value)
        return super()._write_formula(row, col, formula, cell_format, value)

    def _write_array_formula(
        self, first_row, first_col, last_row, last_col, formula, cell_format=None, value=0, *a
    ):
        if isinstance(value, str):
            value = escape(value)
        return super()._write_array_formula(
            first_row, first_col, last_row, last_col, formula, cell_format, value, *a
        )

    def _write_string(self, row, col, string, cell_format=None):
        if _SURROGATE.search(string):
            string = _SURROGATE.sub("\ufffd", string)
        return super()._write_string(row, col, string, cell_format)
