"""Parts of workbooks that no Python writer makes, written into a workbook's zip as Excel writes
them: an external link (the other workbook's cells as Excel keeps a copy of them, in
xl/externalLinks/externalLinkN.xml) and What-If data tables (<f t="dataTable" …/>)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from openpyxl.utils.cell import coordinate_from_string

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def rewrite(
    path: Path, edits: dict[str, Callable[[str], str]], add: dict[str, str] | None = None
) -> Path:
    """Rewrite zip members (name → function of its text) and add new ones, in place."""
    add = add or {}
    with zipfile.ZipFile(path) as z:
        members = [(info, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in members:
            if info.filename in edits:
                data = edits[info.filename](data.decode()).encode()
            out.writestr(info, data)
        for name, text in add.items():
            out.writestr(name, text)
    return path


def _cell(ref: str, value: object) -> str:
    if isinstance(value, str):
        return f'<cell r="{ref}" t="str"><v>{value}</v></cell>'
    if isinstance(value, bool):
        return f'<cell r="{ref}" t="b"><v>{int(value)}</v></cell>'
    return f'<cell r="{ref}"><v>{value!r}</v></cell>'


def external_link(
    path: Path, target: str, sheets: dict[str, dict[str, object]], rid: str = "rId90"
) -> Path:
    """Make the workbook at `path` link to another one (`target`, a file name) whose sheets'
    cells (name → {A1: value}) Excel last copied into it: formulas then read them as
    [1]Sheet!A1, the index being the link's place among the workbook's external references."""
    rows = []
    for i, cells in enumerate(sheets.values()):
        by_row: dict[int, list[str]] = {}
        for ref, value in cells.items():
            by_row.setdefault(coordinate_from_string(ref)[1], []).append(_cell(ref, value))
        body = "".join(f'<row r="{r}">{"".join(c)}</row>' for r, c in sorted(by_row.items()))
        rows.append(f'<sheetData sheetId="{i}">{body}</sheetData>')
    names = "".join(f'<sheetName val="{n}"/>' for n in sheets)
    link = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        f'<externalLink xmlns="{MAIN}"><externalBook xmlns:r="{RELS}" r:id="rId1">'
        f"<sheetNames>{names}</sheetNames><sheetDataSet>{''.join(rows)}</sheetDataSet>"
        "</externalBook></externalLink>"
    )
    link_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" '
        f'Type="{RELS}/externalLinkPath" Target="{target}" TargetMode="External"/>'
        "</Relationships>"
    )

    def workbook(text: str) -> str:
        refs = f'<externalReferences><externalReference r:id="{rid}"/></externalReferences>'
        return text.replace("</sheets>", "</sheets>" + refs, 1)

    def workbook_rels(text: str) -> str:
        rel = (
            f'<Relationship Id="{rid}" Type="{RELS}/externalLink" '
            'Target="externalLinks/externalLink1.xml"/>'
        )
        return text.replace("</Relationships>", rel + "</Relationships>")

    def types(text: str) -> str:
        kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"
        part = f'<Override PartName="/xl/externalLinks/externalLink1.xml" ContentType="{kind}"/>'
        return text.replace("</Types>", part + "</Types>")

    return rewrite(
        path,
        {
            "xl/workbook.xml": workbook,
            "xl/_rels/workbook.xml.rels": workbook_rels,
            "[Content_Types].xml": types,
        },
        {
            "xl/externalLinks/externalLink1.xml": link,
            "xl/externalLinks/_rels/externalLink1.xml.rels": link_rels,
        },
    )


def data_tables(path: Path, sheet_part: str, tables: dict[str, dict[str, str]]) -> Path:
    """Turn cells into What-If data tables as Excel stores one: its first cell holds
    <f t="dataTable" ref=… dt2D=… dtr=… r1=… [r2=…]/> and a value, the others values only
    (the cells must exist, each holding a number). `tables`: first cell → attributes."""

    def edit(text: str) -> str:
        for first, attrs in tables.items():
            f = "".join(f' {k}="{v}"' for k, v in {"t": "dataTable", **attrs}.items())
            text, n = re.subn(
                rf'<c r="{first}"([^>]*)><v>', rf'<c r="{first}"\1><f{f}/><v>', text, count=1
            )
            assert n == 1, first
        return text

    return rewrite(path, {sheet_part: edit})
