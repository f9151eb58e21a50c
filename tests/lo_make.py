"""Make workbooks in LibreOffice, the way a person would: type numbers and formulas into cells,
define the sheet's Solver names (as Excel stores them; LibreOffice 7 keeps no Solver model of
its own in a file), save as .xlsx. All the workbooks of one spec in one soffice start.

    /usr/bin/python3 tests/lo_make.py SPEC.json

SPEC: a list of {"path": ..., "sheets": {name: {"A1": number | "text" | "=formula"}},
"names": {sheet: {name: text}}, "open": a workbook to edit instead of a new one}. Formulas and
names are written as in Excel (Sheet!$A$1); in a new document the first sheet of "sheets" is
the one it starts with; a name that exists is changed.
"""

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # python3-uno's interpreter

from excelnet.xlsx.soffice import uno_load, uno_office  # noqa: E402

_REF = re.compile(r"(?:'((?:[^']|'')+)'|([A-Za-z_][\w.]*))!(\$?[A-Z]+\$?\d+(?::\$?[A-Z]+\$?\d+)?)")


def calc_syntax(text: str) -> str:
    """Excel's Sheet!$A$1:$B$2 as LibreOffice's $Sheet.$A$1:$B$2 (its own formula syntax)."""

    def one(m: re.Match) -> str:
        sheet = m.group(1) or m.group(2)
        quoted = f"'{sheet}'" if m.group(1) else sheet
        first, _, last = m.group(3).partition(":")
        return f"${quoted}.{first}" + (f":{last}" if last else "")

    return _REF.sub(one, text)


def make(ctx, spec: dict) -> None:
    import uno

    doc = uno_load(ctx, spec.get("open"))
    sheets = doc.Sheets
    for i, name in enumerate(spec["sheets"]):
        if i == 0 and "open" not in spec:
            sheets.getByIndex(0).Name = name
        elif not sheets.hasByName(name):
            sheets.insertNewByName(name, sheets.Count)
    for name, cells in spec["sheets"].items():
        sheet = sheets.getByName(name)
        for ref, value in cells.items():
            cell = sheet.getCellRangeByName(ref)
            if isinstance(value, str) and value.startswith("="):
                cell.setFormula(calc_syntax(value))
            elif isinstance(value, str):
                cell.setString(value)
            else:
                cell.setValue(float(value))
    for name, names in spec.get("names", {}).items():
        sheet = sheets.getByName(name)
        index = list(sheets.ElementNames).index(name)
        where = uno.createUnoStruct("com.sun.star.table.CellAddress")
        where.Sheet, where.Column, where.Row = index, 0, 0
        for key, text in names.items():
            if sheet.NamedRanges.hasByName(key):
                sheet.NamedRanges.getByName(key).setContent(calc_syntax(text))
            else:
                sheet.NamedRanges.addNewByName(key, calc_syntax(text), where, 0)
    doc.calculateAll()
    prop = uno.createUnoStruct("com.sun.star.beans.PropertyValue")
    prop.Name, prop.Value = "FilterName", "Calc MS Excel 2007 XML"
    doc.storeToURL(uno.systemPathToFileUrl(str(Path(spec["path"]).resolve())), (prop,))
    doc.close(True)


if __name__ == "__main__":
    specs = json.loads(Path(sys.argv[1]).read_text())
    with uno_office() as context:
        for one in specs:
            make(context, one)
