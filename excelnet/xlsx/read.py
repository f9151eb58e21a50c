"""The file as a source: a workbook's cells, formulas, cached values, names and Solver models
read from its zip (the sheet XML by scan.py, the rest by openpyxl) into the engine's Book."""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from excelnet.errors import ExcelnetError, where
from excelnet.formula.book import Book, Cell, Sheet
from excelnet.formula.parse import (
    ERRORS,
    NEWER_ERRORS,
    Error,
)
from excelnet.xlsx import parts as wbparts
from excelnet.xlsx.files import check_memory, check_source, check_zip, read_member, sheet_parts
from excelnet.xlsx.scan import scan


def _literal(v: object, data_type: str) -> object:
    if data_type == "e":
        return Error(str(v).upper() if str(v).upper() in ERRORS + NEWER_ERRORS else "#N/A")
    if isinstance(v, bool) or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if v is None:
        return None
    # dates and times: Excel stores serial numbers; openpyxl hands back datetimes
    from openpyxl.utils.datetime import to_excel

    try:
        return float(to_excel(v))
    except (TypeError, ValueError):
        return str(v)


def _sheet_list(wb) -> str:
    """'its sheets: a, b, c; with a Solver model: b' — for a sheet that is not there."""
    titles = [ws.title for ws in wb.worksheets]
    models = [ws.title for ws in wb.worksheets if "solver_adj" in getattr(ws, "defined_names", {})]
    return f"its sheets: {', '.join(titles)}" + (
        f"; with a Solver model: {', '.join(models)}" if models else "; none has a Solver model"
    )


def read_book(
    path: str | Path,
    needed_by: str | None = None,
    also: tuple[str, ...] = (),
    cached: bool = False,
) -> Book:
    """Load formulas and literal values. Bad files → ExcelnetError naming the file.
    With `needed_by` (a sheet's name), only the sheets its Solver model can involve are read:
    those its formulas may refer to, and those that may refer to it, each way transitively;
    and the sheets named in `also`. `cached` also reads the values stored with formula cells
    (what the application that saved the file computed)."""
    path = Path(path)
    check_source(path)  # a regular file, readable: not a folder, a pipe or a device
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ExcelnetError(
            f"{path}: encrypted (password-protected) or a legacy .xls file; "
            f"excelnet reads unencrypted .xlsx/.xlsm"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip(path, archive)  # no member twice, none past the budget
            parts = sheet_parts(archive)
            missing = {t: p for t, p in parts.items() if p not in archive.NameToInfo}
            check_memory(path, archive, list(parts.values()))
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ExcelnetError(f"{path}: not a readable .xlsx/.xlsm workbook ({e})") from None
    if missing:
        title, part = next(iter(missing.items()))
        raise ExcelnetError(
            f"{where(path, title)}: its part {part} is missing from the zip; the file is damaged"
        )
    try:
        # One pass: formulas and literal values. Stored results of formulas are read only when
        # asked for: excelnet computes everything the model needs from the formulas themselves.
        formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise ExcelnetError(f"{path}: not a readable .xlsx/.xlsm workbook ({e})") from None
    except MemoryError:
        raise
    except Exception as e:  # openpyxl raises many kinds on corrupt XML
        raise ExcelnetError(f"{path}: corrupt workbook ({type(e).__name__}: {e})") from None
    try:
        if needed_by is not None and needed_by not in formulas.sheetnames:
            raise ExcelnetError(f"{path}: no sheet named {needed_by!r} ({_sheet_list(formulas)})")
        sheets = {}
        names = {n: d.attr_text for n, d in formulas.defined_names.items()}
        # each sheet's XML, read from the zip once; openpyxl's read-only sheets know its part
        paths = {ws.title: getattr(ws, "_worksheet_path", None) for ws in formulas.worksheets}
        xml = _members(path, paths)
        with zipfile.ZipFile(path) as archive:
            # every sheet's tables: formulas use a table by its name alone, wherever it is
            found_tables = {
                title: wbparts.tables(archive, part) for title, part in paths.items() if part
            }
        wanted = set(xml)
        if needed_by in xml and None not in xml.values():
            by_name = {t.name: title for title, ts in found_tables.items() for t in ts}
            wanted = _involved(formulas, xml, names, needed_by, by_name)
            wanted |= set(also) & set(xml)
        meta: dict[str, dict[Cell, int]] = {}
        for ws in formulas.worksheets:
            part = xml.pop(ws.title)  # let each sheet's XML go once it is read
            if ws.title in wanted:
                sheets[ws.title], meta[ws.title] = _read_sheet(ws, part, cached)
        if cached and any(s.cached is None for s in sheets.values()):
            _read_cached(path, sheets)
        with zipfile.ZipFile(path) as archive:
            if any(s.rich for s in sheets.values()):
                errors = rich_errors(archive)
                for s in sheets.values():
                    for cell, vm in s.rich.items():
                        if vm in errors:
                            s.values[cell] = Error(errors[vm])
            dynamic = wbparts.dynamic_metadata(archive) if any(meta.values()) else set()
            linked = wbparts.externals(archive)
        for title, s in sheets.items():
            s.tables = found_tables.get(title, [])
            s.spills = {cell for cell, cm in meta[title].items() if cm in dynamic}
    except (ExcelnetError, MemoryError):
        raise
    except Exception as e:
        raise ExcelnetError(f"{path}: corrupt workbook ({type(e).__name__}: {e})") from None
    finally:
        formulas.close()
    book = Book(path, sheets, names, cached, reread=lambda: read_book(path, cached=True))
    book.externals = linked
    return book


def _members(path: Path, parts: dict[str, str | None]) -> dict[str, bytes | None]:
    """Zip members by key (None for None), inflated two at a time: zlib lets go of the
    interpreter while it inflates, so on two cores the sheets of a large workbook take about
    two thirds of the time (each thread reads through its own handle on the zip)."""

    def read(part: str | None) -> bytes | None:
        if part is None:
            return None
        with zipfile.ZipFile(path) as archive:
            return read_member(path, archive, part)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(parts, pool.map(read, parts.values()), strict=True))


# `Name!` or `'Name'!` read backwards from each "!", so that the search starts at a literal.
# A quoted name may hold entities (R&amp;D): its bound is for the escaped text.
_SHEET_BEFORE_BANG = re.compile(rb"!([\w.]{1,31}|'(?:[^']|''){1,186}')")
# the same, unquoted, with the character before it, which must end the name: `(data!`
_TOKEN_BEFORE_BANG = re.compile(rb"!([\w.]{1,31})([^\w.])")


def _names_by_count(text: bytes) -> set[bytes] | None:
    """_SHEET_BEFORE_BANG's distinct matches (reversed), from a sample: the tokens
    (a character that ends a name, the name, "!") near the first "!", each counted in the
    whole text. A "!" after a name always belongs to one such token, so if their counts add
    up to the number of "!"s, every "!" is explained and these are all the names; else None
    (then every "!" is read). A few C-level counts instead of millions of matches."""
    first = text.find(b"!")
    sample = text[max(0, first - 64) : first + (1 << 16)]
    tokens = {b"!" + name + c for name, c in _TOKEN_BEFORE_BANG.findall(sample[::-1])}
    if sum(text.count(t[::-1]) for t in tokens) != text.count(b"!"):
        return None
    return {t[1:-1] for t in tokens}


def _sheets_named(text: bytes, xml: bool = True) -> set[str]:
    """The lower-cased sheet names that a text (a sheet's XML, or with `xml` False a name's
    definition) puts before a "!". The search runs on the text as it is, each distinct match
    decoded once: in XML a formula's 'Weekly data'! may be stored as &apos;Weekly
    data&apos;! (LibreOffice does), and R&D as R&amp;D."""
    if b"!" not in text:
        return set()
    found = _names_by_count(text)  # unquoted names only: a quoted one is never explained
    if found is None:  # millions of matches, a few distinct
        if xml and b"&apos;" in text:
            text = text.replace(b"&apos;", b"'")
        found = set(_SHEET_BEFORE_BANG.findall(text[::-1]))
    names = (m[::-1].decode("utf-8", "replace") for m in found)
    if xml:
        names = (html.unescape(n) for n in names)
    return {n.strip("'").replace("''", "'").lower() for n in names}


def _involved(
    wb,
    parts: dict[str, bytes],
    names: dict[str, str],
    start: str,
    tables: dict[str, str] | None = None,
) -> set[str]:
    """The sheets a Solver model on `start` may involve: its own, those its formulas refer to
    (through defined names and tables' names too: `tables` maps each to its sheet), and those
    that refer to it, each way transitively. A search of each sheet's XML, not a parse: it
    may find a sheet that is not needed, never miss one."""
    titles = [ws.title for ws in wb.worksheets]
    always = {t for t in titles if not t.isascii()}  # case-folding may differ: assume so
    # only formulas refer to cells: a sheet of values alone (a data sheet) is not searched
    parts = {t: part if b"<f" in part else b"" for t, part in parts.items()}
    lowered: dict[str, bytes] = {}

    def uses(title: str, name: bytes) -> bool:
        """Whether a sheet's XML holds a (lower-cased) name, in any case."""
        if title not in lowered:  # only for sheets a name matters for: lowering costs
            lowered[title] = parts[title].lower()
        return name in lowered[title]

    def named(text: bytes, xml: bool = False) -> set[str]:
        """Sheets a text (a definition, or a sheet's XML) names before a "!"."""
        found = _sheets_named(text, xml)
        return {t for t in titles if t.lower() in found} | always

    # A name reaches the sheets its text names, and those of the names its text uses, in turn.
    # On a sheet, the workbook's names and the sheet's own can be used unqualified (another
    # sheet's scoped name is written Sheet!name, and so found as that sheet).
    scoped = {t: dict(getattr(wb[t], "defined_names", {}).items()) for t in titles}
    texts = {n.lower().encode(): (d or "").lower().encode() for n, d in names.items()}
    everywhere = dict(texts)  # for names inside names: every definition of that name
    for t in titles:
        for n, d in scoped[t].items():
            key = n.lower().encode()
            everywhere[key] = everywhere.get(key, b"") + b" " + (d.attr_text or "").lower().encode()
    reach = {n: named(text) for n, text in everywhere.items()}
    for _ in everywhere:  # a name uses at most every other name
        grown = {
            n: reach[n].union(*(reach[m] for m in everywhere if m in text))
            for n, text in everywhere.items()
        }
        if grown == reach:
            break
        reach = grown

    def reaches(text: bytes) -> set[str]:
        """The sheets a lower-cased definition reaches."""
        return named(text).union(*(reach[m] for m in everywhere if m in text))

    usable = {t: {n: reach[n] for n in texts} for t in titles}
    for name, home in (tables or {}).items():  # Table1[Age] reads the sheet Table1 is on
        for t in titles:
            usable[t][name.lower().encode()] = usable[t].get(name.lower().encode(), set()) | {home}
    for t in titles:
        for n, d in scoped[t].items():
            usable[t][n.lower().encode()] = reaches((d.attr_text or "").lower().encode())
    direct = {t: named(parts[t], xml=True) for t in titles}

    def refers(title: str, to: set[str]) -> set[str]:
        """Which of `to` a sheet's formulas may refer to, directly or through names."""
        hits = direct[title] & to
        for n, sheets in usable[title].items():
            if sheets & (to - hits) and uses(title, n):
                hits |= sheets & to
        return hits

    wanted = {start}.union(  # where the parameters and the objective are
        *(reaches((d.attr_text or "").lower().encode()) for d in scoped[start].values())
    )
    while True:  # sheets that may depend on the model's (forward) ...
        more = {t for t in titles if t not in wanted and refers(t, wanted)}
        if not more:
            break
        wanted |= more
    todo = list(wanted)
    while todo:  # ... and every sheet any of them may read (backward)
        title = todo.pop()
        for t in refers(title, set(titles) - wanted):
            wanted.add(t)
            todo.append(t)
    return wanted


# Excel 365 stores #SPILL!, #CALC! and its other newer errors as #VALUE! with a rich value:
# the cell's vm attribute → valueMetadata → futureMetadata → rdrichvalue's errorType.
RICH_ERRORS = {
    0: "#NULL!",
    1: "#DIV/0!",
    2: "#VALUE!",
    3: "#REF!",
    4: "#NAME?",
    5: "#NUM!",
    6: "#N/A",
    7: "#GETTING_DATA",
    8: "#SPILL!",
    9: "#CONNECT!",
    10: "#BLOCKED!",
    11: "#UNKNOWN!",
    12: "#FIELD!",
    13: "#CALC!",
}


def rich_errors(archive: zipfile.ZipFile) -> dict[int, str]:
    """vm index (1-based) → the error it stands for, from the workbook's rich-value parts."""
    try:
        meta = archive.read("xl/metadata.xml").decode()
        values = archive.read("xl/richData/rdrichvalue.xml").decode()
    except KeyError:
        return {}
    blocks = re.search(r"<valueMetadata\b.*?</valueMetadata>", meta, re.S)
    future = re.findall(r'<xlrd:rvb i="(\d+)"', meta)
    rich = [re.findall(r"<v>([^<]*)</v>", rv) for rv in re.findall(r"<rv\b.*?</rv>", values, re.S)]
    out = {}
    for k, v in enumerate(re.findall(r'<rc t="\d+" v="(\d+)"', blocks.group(0) if blocks else "")):
        i = int(future[int(v)]) if int(v) < len(future) else None
        if i is not None and i < len(rich) and rich[i] and rich[i][0].isdigit():
            out[k + 1] = RICH_ERRORS.get(int(rich[i][0]), "#VALUE!")
    return out


def _read_sheet(ws, xml: bytes | None, cached: bool = False) -> tuple[Sheet, dict[Cell, int]]:
    """A sheet's cells, and its array formulas' cell metadata (cm: Excel 365 marks its
    dynamic arrays so)."""
    sheet = Sheet(ws.title)
    sheet.names = {n: d.attr_text for n, d in getattr(ws, "defined_names", {}).items()}
    strings = getattr(ws, "_shared_strings", None)  # the workbook's, as openpyxl read them
    fast = scan(xml, strings, cached) if xml is not None and strings is not None else None
    meta: dict[Cell, int] = {}
    if fast is not None:
        sheet.formulas, sheet.arrays, sheet.values = fast.formulas, fast.arrays, fast.values
        sheet.rich = fast.rich
        sheet.cached = fast.cached
        sheet.max_row, sheet.max_col = fast.max_row, fast.max_col
        meta = fast.meta
        sheet.data_tables = {
            cell: wbparts.data_table(cell, attrs) for cell, attrs in fast.data_tables.items()
        }
    else:
        _read_cells(ws, sheet)  # not in the common form: openpyxl reads it, cell by cell
        sheet.cached = None if cached else {}  # read by _read_cached, from Excel's values
    areas = [box for _, box in sheet.arrays.values()]
    areas += [(t.r0, t.c0, t.r1, t.c1) for t in sheet.data_tables.values()]
    for r0, c0, r1, c1 in areas:
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                value = sheet.values.pop((r, c), None)  # the array's cells hold its results
                if cached and value is not None and sheet.cached is not None:
                    sheet.cached.setdefault((r, c), value)
        sheet.max_row, sheet.max_col = max(sheet.max_row, r1), max(sheet.max_col, c1)
    return sheet, meta


def _read_cached(path: Path, sheets: dict[str, Sheet]) -> None:
    """Stored values of formula cells, through openpyxl, for sheets the scan could not read."""
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        for name, sheet in sheets.items():
            if sheet.cached is not None:
                continue
            sheet.cached = {}
            areas = [(r0, c0, r1, c1) for _, (r0, c0, r1, c1) in sheet.arrays.values()]
            areas += [(t.r0, t.c0, t.r1, t.c1) for t in sheet.data_tables.values()]
            for key, v, data_type in _parsed(wb[name], data_only=True):
                in_array = any(
                    r0 <= key[0] <= r1 and c0 <= key[1] <= c1 for r0, c0, r1, c1 in areas
                )
                if key in sheet.formulas or in_array:
                    sheet.cached[key] = _literal(v, data_type)
    finally:
        wb.close()


def _parsed(ws, data_only: bool = False) -> Iterator[tuple[Cell, object, str]]:
    """(cell, value, data type) of every cell openpyxl's parser finds, as it finds it: not
    padded out to the sheet's bounding box as its iter_rows is (one far cell would make that
    billions of cells)."""
    from openpyxl.worksheet._reader import WorkSheetParser

    wb = ws.parent
    with ws._get_source() as src:
        parser = WorkSheetParser(
            src,
            ws._shared_strings,
            data_only=data_only,
            epoch=wb.epoch,
            date_formats=wb._date_formats,
            timedelta_formats=wb._timedelta_formats,
        )
        for _, row in parser.parse():
            for cell in row:
                if cell["value"] is not None:
                    yield (cell["row"] - 1, cell["column"] - 1), cell["value"], cell["data_type"]


def _read_cells(ws, sheet: Sheet) -> None:
    """Every cell of a sheet the scan could not read: formulas, arrays and literal values."""
    from openpyxl.utils.cell import range_boundaries

    for key, v, data_type in _parsed(ws):
        sheet.max_row = max(sheet.max_row, key[0])
        sheet.max_col = max(sheet.max_col, key[1])
        if isinstance(v, ArrayFormula):
            c0, r0, c1, r1 = range_boundaries(v.ref)
            sheet.arrays[key] = (v.text, (r0 - 1, c0 - 1, r1 - 1, c1 - 1))
        elif isinstance(v, DataTableFormula):
            sheet.data_tables[key] = wbparts.data_table(key, dict(v))
        elif data_type == "f":
            sheet.formulas[key] = v
        else:
            sheet.values[key] = _literal(v, data_type)
