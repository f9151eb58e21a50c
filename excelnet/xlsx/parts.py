"""The parts of a workbook beside its sheets' cells that its formulas need: the Excel Tables of
each sheet (xl/tables/*.xml, through the sheet's relationships), the copies of other
workbooks' cells that external links keep (xl/externalLinks/*.xml), and which array formulas
are Excel 365's dynamic arrays (xl/metadata.xml). Read, never written: a write-back leaves
these parts byte for byte as they are."""

from __future__ import annotations

import posixpath
import re
import zipfile
from xml.etree import ElementTree

from openpyxl.utils.cell import range_boundaries

from excelnet.formula.book import Cell, DataTable, Table, TableColumn
from excelnet.formula.parse import ERRORS, NEWER_ERRORS, Error

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_REL = re.compile(rb"<Relationship\b[^>]*?>")
_ATTR = re.compile(rb'(\w+(?::\w+)?)="([^"]*)"')
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _unescape(text: str) -> str:
    """An OOXML string with its _xHHHH_ escapes (a line break in a header: _x000a_) read."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text else text


def relationships(z: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """A part's relationships: id → (type's last word, the target part's path in the zip)."""
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", name + ".rels")
    if rels not in z.NameToInfo:
        return {}
    out = {}
    for m in _REL.finditer(z.read(rels)):
        attrs = {k.decode(): v.decode() for k, v in _ATTR.findall(m.group(0))}
        if attrs.get("TargetMode") == "External":
            continue
        target = attrs.get("Target", "")
        path = (
            target.lstrip("/")
            if target.startswith("/")
            else posixpath.normpath(posixpath.join(folder, target))
        )
        out[attrs.get("Id", "")] = (attrs.get("Type", "").rsplit("/", 1)[-1], path)
    return out


def _box(ref: str) -> tuple[int, int, int, int]:
    c0, r0, c1, r1 = range_boundaries(ref)
    return r0 - 1, c0 - 1, r1 - 1, c1 - 1


def tables(z: zipfile.ZipFile, sheet_part: str) -> list[Table]:
    """The Excel Tables of a sheet, from the table parts its relationships name."""
    out = []
    for kind, path in relationships(z, sheet_part).values():
        if kind != "table" or path not in z.NameToInfo:
            continue
        root = ElementTree.fromstring(z.read(path))
        r0, c0, r1, c1 = _box(root.get("ref"))
        columns = []
        for col in root.iter(MAIN + "tableColumn"):
            formula = col.find(MAIN + "calculatedColumnFormula")
            totals = col.find(MAIN + "totalsRowFormula")
            columns.append(
                TableColumn(
                    _unescape(col.get("name", "")),
                    formula.text if formula is not None else None,
                    totals.text if totals is not None else None,
                    col.get("totalsRowFunction"),
                )
            )
        out.append(
            Table(
                root.get("displayName") or root.get("name"),
                r0,
                c0,
                r1,
                c1,
                columns,
                int(root.get("headerRowCount", "1")),
                int(root.get("totalsRowCount", "0")),
                path,
            )
        )
    return out


def externals(z: zipfile.ZipFile) -> dict[str, dict[Cell, object]]:
    """Other workbooks' cells as Excel last copied them into this one (the sheetDataSet of
    each external link), by the name formulas use for the sheet: "[1]WACC"."""
    if "xl/workbook.xml" not in z.NameToInfo:
        return {}
    root = ElementTree.fromstring(z.read("xl/workbook.xml"))
    refs = root.find(MAIN + "externalReferences")
    if refs is None:
        return {}
    rels = relationships(z, "xl/workbook.xml")
    out: dict[str, dict[Cell, object]] = {}
    for n, ref in enumerate(refs.iter(MAIN + "externalReference"), start=1):
        _, path = rels.get(ref.get(REL + "id"), ("", ""))
        if path not in z.NameToInfo:
            continue
        book = ElementTree.fromstring(z.read(path)).find(MAIN + "externalBook")
        if book is None:  # a DDE or OLE link: no cells
            continue
        names = [s.get("val", "") for s in book.iter(MAIN + "sheetName")]
        for data in book.iter(MAIN + "sheetData"):
            i = int(data.get("sheetId", "0"))
            if i >= len(names):
                continue
            cells = out.setdefault(f"[{n}]{names[i]}", {})
            for cell in data.iter(MAIN + "cell"):
                value = _external_value(cell)
                if value is not None:
                    c0, r0, _, _ = range_boundaries(cell.get("r"))
                    cells[(r0 - 1, c0 - 1)] = value
        for name in names:  # a sheet of which no cell was copied is still there
            out.setdefault(f"[{n}]{name}", {})
    return out


def _external_value(cell) -> object:
    v = cell.find(MAIN + "v")
    if v is None or v.text is None:
        return None
    t = cell.get("t", "n")
    if t == "n":
        return float(v.text)
    if t == "b":
        return v.text.strip() in ("1", "true")
    if t == "e":
        code = v.text.strip().upper()
        return Error(code if code in ERRORS + NEWER_ERRORS else "#N/A")
    return v.text  # str, s, inlineStr: the text itself (no shared strings here)


def dynamic_metadata(z: zipfile.ZipFile) -> set[int]:
    """The cell metadata indexes (a cell's cm, 1-based) that mark an Excel 365 dynamic array
    (metadata type XLDAPR, dynamicArrayProperties fDynamic="1")."""
    if "xl/metadata.xml" not in z.NameToInfo:
        return set()
    text = z.read("xl/metadata.xml").decode("utf-8", "replace")
    types = re.findall(r'<metadataType\b[^>]*\bname="([^"]*)"', text)
    future = re.search(
        r'<futureMetadata\b[^>]*\bname="XLDAPR"[^>]*>(.*?)</futureMetadata>', text, re.S
    )
    dynamic_bk = []
    if future:
        for bk in re.findall(r"<bk>(.*?)</bk>", future.group(1), re.S):
            dynamic_bk.append('fDynamic="1"' in bk or "fDynamic" not in bk)
    cell_meta = re.search(r"<cellMetadata\b[^>]*>(.*?)</cellMetadata>", text, re.S)
    out = set()
    if cell_meta:
        for i, bk in enumerate(re.findall(r"<bk>(.*?)</bk>", cell_meta.group(1), re.S), start=1):
            rc = re.search(r'<rc\b[^>]*\bt="(\d+)"[^>]*\bv="(\d+)"', bk)
            if rc is None:
                continue
            t, v = int(rc.group(1)), int(rc.group(2))
            if 0 < t <= len(types) and types[t - 1] == "XLDAPR":
                if v >= len(dynamic_bk) or dynamic_bk[v]:
                    out.add(i)
    return out


def data_table(cell: Cell, attrs: dict[str, str]) -> DataTable:
    """A What-If data table's <f t="dataTable" …> attributes."""
    r0, c0, r1, c1 = _box(attrs.get("ref") or "A1")
    if (r0, c0) != cell:
        r0, c0 = cell
    one = attrs.get("del1") not in ("1", "true")
    two = attrs.get("del2") not in ("1", "true")
    return DataTable(
        r0,
        c0,
        r1,
        c1,
        attrs.get("dt2D") in ("1", "true"),
        attrs.get("dtr") in ("1", "true"),
        attrs.get("r1") if one else None,
        attrs.get("r2") if two else None,
    )
