"""Read a workbook's cells, formulas, cached values, names and Solver models (openpyxl)."""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.formula import ArrayFormula

from excelnet.errors import ExcelnetError, where
from excelnet.files import check_memory, check_source, check_zip, read_member, sheet_parts
from excelnet.formula.cells import scan
from excelnet.formula.parse import (
    ERRORS,
    NEWER_ERRORS,
    Error,
    FormulaError,
    Ref,
    parse,
    split_union,
)

Cell = tuple[int, int]  # 0-based (row, col)
MAX_ADJUSTABLE = 1_000_000  # parameters a Solver model may have (each one a cell)


@dataclass
class Sheet:
    name: str
    formulas: dict[Cell, str] = field(default_factory=dict)
    arrays: dict[Cell, tuple[str, tuple[int, int, int, int]]] = field(default_factory=dict)
    values: dict[Cell, object] = field(default_factory=dict)  # literal cells
    names: dict[str, str] = field(default_factory=dict)  # sheet-scoped defined names
    cached: dict[Cell, object] = field(default_factory=dict)  # formula cells' stored values
    rich: dict[Cell, int] = field(default_factory=dict)  # error cells with value metadata
    max_row: int = 0  # 0-based, inclusive
    max_col: int = 0


RELATIONS = {1: "<=", 2: "=", 3: ">=", 4: "int", 5: "bin", 6: "dif"}  # solver_relN codes


@dataclass
class Constraint:
    """One row of Solver's constraint list: solver_lhsN, solver_relN, solver_rhsN."""

    index: int  # the N in the names
    lhs: Ref
    rel: int  # a key of RELATIONS
    rhs: str  # as stored: a number, a reference, a formula, or "integer"/"binary"/"AllDifferent"

    @property
    def relation(self) -> str:
        return RELATIONS[self.rel]


@dataclass
class SolverModel:
    sheet: str
    objective: Ref
    adjustable: list[Ref]
    goal: int  # 1 maximise, 2 minimise, 3 value of
    value: str | None = None  # solver_val: the target of "value of", as stored
    nonnegative: bool = False  # solver_neg = 1: unbounded-below variables stay >= 0
    constraints: list[Constraint] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)  # every other solver_* name, as stored


@dataclass
class Book:
    path: Path
    sheets: dict[str, Sheet]
    names: dict[str, str]  # workbook-level defined names
    cached: bool = False  # were the formula cells' stored values read?

    def stored(self, sheet: str) -> dict[Cell, object]:
        """The values the file stores for a sheet's formula cells (read on first use)."""
        if not self.cached:
            again = read_book(self.path, cached=True)
            for name, s in self.sheets.items():
                if name in again.sheets:
                    s.cached = again.sheets[name].cached
            self.cached = True
        return self.sheets[sheet].cached or {}

    def solver_models(self, only: str | None = None) -> list[SolverModel]:
        """The Solver model of every sheet that has one (or of `only`), checked."""
        if only is not None and only not in self.sheets:
            raise ExcelnetError(f"{where(self.path)}: no sheet named {only!r}")
        found = []
        for sheet in self.sheets.values():
            if only is not None and sheet.name != only:
                continue
            names = sheet.names
            if not any(k in names for k in ("solver_opt", "solver_adj", "solver_typ")):
                if only is not None:
                    raise ExcelnetError(
                        f"{where(self.path, sheet.name)}: no Solver model (the sheet-scoped "
                        f"names solver_opt, solver_adj and solver_typ)"
                    )
                continue
            found.append(self._solver_model(sheet))
        if not found:
            raise ExcelnetError(
                f"{where(self.path)}: no sheet carries a Solver model "
                f"(sheet-scoped names solver_opt, solver_adj, solver_typ)"
            )
        return found

    def _solver_model(self, sheet: Sheet) -> SolverModel:
        at = where(self.path, sheet.name)
        names = {
            k: v.lstrip("=").strip() for k, v in sheet.names.items() if k.startswith("solver_")
        }
        for key in ("solver_opt", "solver_adj", "solver_typ"):
            if key not in names:
                raise ExcelnetError(f"{at}: Solver model is missing the name {key}")
        goal = _code(names, "solver_typ", (1, 2, 3), at)
        if goal == 3 and "solver_val" not in names:
            raise ExcelnetError(f"{at}: solver_typ is 3 (Value Of) but solver_val is missing")
        nonnegative = _code(names, "solver_neg", (1, 2), at, default=2) == 1
        objective = _ref_or_fail(names["solver_opt"], sheet.name, f"{at}: solver_opt")
        if (objective.r0, objective.c0) != (objective.r1, objective.c1):
            raise ExcelnetError(f"{at}: solver_opt must name one cell, not a range")
        adjustable = [
            _ref_or_fail(part, sheet.name, f"{at}: solver_adj")
            for part in split_union(names["solver_adj"].strip("()"))
            if part
        ]
        cells = sum((r.r1 - r.r0 + 1) * (r.c1 - r.c0 + 1) for r in adjustable)
        if cells > MAX_ADJUSTABLE:
            raise ExcelnetError(
                f"{at}: solver_adj ({names['solver_adj'][:60]}) names {cells:,} cells; "
                f"excelnet fits at most {MAX_ADJUSTABLE:,} adjustable cells (Excel's Solver: 200)"
            )
        constraints = self._constraints(sheet.name, names, at)
        parts = re.compile(r"solver_(lhs|rel|rhs)\d+$")
        structural = {"solver_opt", "solver_adj", "solver_typ", "solver_num"}
        options = {k: v for k, v in names.items() if k not in structural and not parts.match(k)}
        value = names.get("solver_val") if goal == 3 else None
        return SolverModel(
            sheet.name, objective, adjustable, goal, value, nonnegative, constraints, options
        )

    def _constraints(self, sheet: str, names: dict[str, str], at: str) -> list[Constraint]:
        """solver_num constraints, each three names; one that is missing, or extra, is bad."""
        count = _code(names, "solver_num", None, at, default=0)
        present = {int(m[1]) for k in names if (m := re.match(r"solver_(?:lhs|rel|rhs)(\d+)$", k))}
        extra = sorted(n for n in present if not 1 <= n <= count)
        if extra:
            name = next(
                f"solver_{p}{extra[0]}"
                for p in ("lhs", "rel", "rhs")
                if f"solver_{p}{extra[0]}" in names
            )
            raise ExcelnetError(
                f"{at}: solver_num is {count} but the sheet names {name}; the constraint "
                f"names must be numbered 1 to solver_num"
            )
        out = []
        for n in range(1, count + 1):
            for p in ("lhs", "rel", "rhs"):
                if f"solver_{p}{n}" not in names:
                    raise ExcelnetError(f"{at}: solver_num is {count} but solver_{p}{n} is missing")
            rel = _code(names, f"solver_rel{n}", tuple(RELATIONS), at)
            lhs = _ref_or_fail(names[f"solver_lhs{n}"], sheet, f"{at}: solver_lhs{n}")
            if lhs.sheet not in self.sheets:
                raise ExcelnetError(f"{at}: solver_lhs{n} refers to a missing sheet {lhs.sheet!r}")
            out.append(Constraint(n, lhs, rel, names[f"solver_rhs{n}"]))
        return out


def _code(
    names: dict[str, str], key: str, allowed: tuple[int, ...] | None, at: str, default=None
) -> int:
    """A Solver name that holds a whole-number code (solver_typ, solver_relN, ...)."""
    if key not in names and default is not None:
        return default
    text = names[key]
    try:
        code = float(text)
        ok = code == int(code) and (int(code) in allowed if allowed else code >= 0)
    except ValueError:
        ok = False
    if not ok:
        what = ", ".join(map(str, allowed)) if allowed else "a count (0 or more)"
        if key.startswith("solver_rel"):
            what = "a relation code 1-6 (1 <=, 2 =, 3 >=, 4 int, 5 bin, 6 dif)"
        raise ExcelnetError(f"{at}: {key} is {text!r}, not {what}")
    return int(code)


def _ref_or_fail(text: str, sheet: str, what: str) -> Ref:
    try:
        node = parse(text, sheet)
    except FormulaError:
        node = None
    if not isinstance(node, Ref) or node.r1 is None or node.c1 is None:
        raise ExcelnetError(f"{what} is {text!r}, not a cell or range reference")
    return node


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
        xml = _members(
            path, {ws.title: getattr(ws, "_worksheet_path", None) for ws in formulas.worksheets}
        )
        wanted = set(xml)
        if needed_by in xml and None not in xml.values():
            wanted = _involved(formulas, xml, names, needed_by) | (set(also) & set(xml))
        for ws in formulas.worksheets:
            part = xml.pop(ws.title)  # let each sheet's XML go once it is read
            if ws.title in wanted:
                sheets[ws.title] = _read_sheet(ws, part, cached)
        if cached and any(s.cached is None for s in sheets.values()):
            _read_cached(path, sheets)
        if any(s.rich for s in sheets.values()):
            with zipfile.ZipFile(path) as archive:
                errors = rich_errors(archive)
            for s in sheets.values():
                for cell, vm in s.rich.items():
                    if vm in errors:
                        s.values[cell] = Error(errors[vm])
    except (ExcelnetError, MemoryError):
        raise
    except Exception as e:
        raise ExcelnetError(f"{path}: corrupt workbook ({type(e).__name__}: {e})") from None
    finally:
        formulas.close()
    return Book(path, sheets, names, cached)


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


def _involved(wb, parts: dict[str, bytes], names: dict[str, str], start: str) -> set[str]:
    """The sheets a Solver model on `start` may involve: its own, those its formulas refer to
    (through defined names too), and those that refer to it, each way transitively. A search
    of each sheet's XML, not a parse: it may find a sheet that is not needed, never miss one."""
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


def _read_sheet(ws, xml: bytes | None, cached: bool = False) -> Sheet:
    sheet = Sheet(ws.title)
    sheet.names = {n: d.attr_text for n, d in getattr(ws, "defined_names", {}).items()}
    strings = getattr(ws, "_shared_strings", None)  # the workbook's, as openpyxl read them
    fast = scan(xml, strings, cached) if xml is not None and strings is not None else None
    if fast is not None:
        sheet.formulas, sheet.arrays, sheet.values = fast.formulas, fast.arrays, fast.values
        sheet.rich = fast.rich
        sheet.cached = fast.cached
        sheet.max_row, sheet.max_col = fast.max_row, fast.max_col
    else:
        _read_cells(ws, sheet)  # not in the common form: openpyxl reads it, cell by cell
        sheet.cached = None if cached else {}  # read by _read_cached, from Excel's values
    for _, (r0, c0, r1, c1) in sheet.arrays.values():
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                value = sheet.values.pop((r, c), None)  # the array's cells hold its results
                if cached and value is not None and sheet.cached is not None:
                    sheet.cached.setdefault((r, c), value)
        sheet.max_row, sheet.max_col = max(sheet.max_row, r1), max(sheet.max_col, c1)
    return sheet


def _read_cached(path: Path, sheets: dict[str, Sheet]) -> None:
    """Stored values of formula cells, through openpyxl, for sheets the scan could not read."""
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        for name, sheet in sheets.items():
            if sheet.cached is not None:
                continue
            sheet.cached = {}
            areas = [(r0, c0, r1, c1) for _, (r0, c0, r1, c1) in sheet.arrays.values()]
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
        elif data_type == "f":
            sheet.formulas[key] = v
        else:
            sheet.values[key] = _literal(v, data_type)
