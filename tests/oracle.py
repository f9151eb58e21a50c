"""Excel's own answers as the oracle: the workbooks in tests/corpus/ (IronCalc's calculation
tests, MIT licence beside them) were saved by Microsoft Excel, so the value stored with each
formula cell is what Excel computed.

For each workbook: strip the stored values of its formula cells, recalculate it with
`excelnet calc`, and compare each cell with Excel's value. Cells whose formulas use what
excelnet leaves out by design (dynamic arrays, the LAMBDA family, other workbooks) are counted
apart.

    python -m tests.oracle [--markdown] [FILE_OR_FOLDER ...]   # the table by category
"""

from __future__ import annotations

import math
import re
import shutil
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "excel-calc-tests"  # IronCalc's, MIT: its LICENSE-MIT

# The categories issue 10 named first (the table lists them first; every category is asserted).
TARGET = {
    "MATH_AND_TRIGONOMETRY",
    "STATISTICAL",
    "LOGICAL",
    "INFORMATION",
    "LOOKUP_AND_REFERENCE",
    "TEXT",
    "DATE_AND_TIME",
    "FINANCIAL",
}
# Excel 365's functions excelnet does not read (spill references, A1#, are not compared either).
OUT_OF_SCOPE = {
    "RANDARRAY",
    "ANCHORARRAY",
    "SINGLE",
    "TRIMRANGE",
}
_NAME = re.compile(r"(?:_xlfn\.|_xlws\.|_xlpm\.)*([A-Za-z][A-Za-z0-9._]*)\(")
_STRING = re.compile(r'"(?:[^"]|"")*"')


def out_of_scope(formula: str) -> str | None:
    """Why a formula is outside what excelnet reads, or None."""
    text = _STRING.sub('""', formula)
    for name in _NAME.findall(text):
        if name.upper() in OUT_OF_SCOPE:
            return name.upper()
    if re.search(r"[A-Z]+\d+#", text):
        return "dynamic array"
    return None


_C = re.compile(rb"<c\b([^>]*?)(/>|>(.*?)</c>)", re.S)
_V = re.compile(rb"<v\b[^>]*>[^<]*</v>|<v/>")
_T = re.compile(rb'\s+t="[^"]*"')
_REF = re.compile(rb'\br="([A-Z]+)(\d+)"')


def strip(src: Path, dst: Path, areas: dict[str, set[tuple[int, int]]]) -> None:
    """Copy a workbook without the stored values of its formula cells (and of the cells an
    array formula fills), as a script or openpyxl would write it."""
    from excelnet.xlsx.writeback import sheet_parts

    with zipfile.ZipFile(src) as z:
        parts = {part: name for name, part in sheet_parts(z).items()}
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
            for info in z.infolist():
                data = z.read(info)
                if info.filename in parts:
                    cells = areas.get(parts[info.filename], set())
                    data = _C.sub(lambda m, cells=cells: _strip_cell(m, cells), data)
                out.writestr(info, data)


def _strip_cell(m: re.Match, cells: set[tuple[int, int]]) -> bytes:
    attrs, inner = m.group(1), m.group(3)
    if inner is None:
        return m.group(0)
    ref = _REF.search(attrs)
    key = None
    if ref:
        from openpyxl.utils.cell import column_index_from_string

        key = (int(ref.group(2)) - 1, column_index_from_string(ref.group(1).decode()) - 1)
    if b"<f" not in inner and key not in cells:
        return m.group(0)
    return b"<c" + _T.sub(b"", attrs) + b">" + _V.sub(b"", inner) + b"</c>"


@dataclass
class FileResult:
    path: Path
    category: str
    cells: int = 0
    equal: int = 0
    out_of_scope: Counter = field(default_factory=Counter)
    different: list[tuple[str, str, object, object]] = field(default_factory=list)
    error: str | None = None
    tolerance: float | None = None  # the corpus engine's, for a file of IRR/XIRR (else 1e-9)

    @property
    def in_scope(self) -> int:
        return self.cells - sum(self.out_of_scope.values())


def category(path: Path) -> str:
    return path.parent.name if path.parent.name != CORPUS.name else "(other)"


# Excel's IRR and XIRR stop short of the exact root (its stored answers are up to 2e-8 from it,
# and NPV at Excel's IRR is 1e-10 rather than 0), so a file that uses them is compared as the
# corpus's own engine (IronCalc) compares it: within the tolerance in its METADATA!A1, else
# 5e-8, absolute or relative. Every other file: 1e-9 relative.
ITERATIVE = re.compile(r"\b(?:_xlfn\.)?X?IRR\(", re.I)
ENGINE_TOLERANCE = 5e-8


def engine_tolerance(path: Path) -> float:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    if "METADATA" in book.sheetnames:
        value = book["METADATA"]["A1"].value
        if isinstance(value, float):
            return value
    return ENGINE_TOLERANCE


def engine_close(want: object, got: object, eps: float) -> bool:
    """IronCalc's comparison: |a − b| < eps, or |a − b| / √(a² + b²) < eps."""
    if not (isinstance(want, float) and isinstance(got, float)):
        return False
    d = abs(want - got)
    return d < eps or d / math.hypot(want, got) < eps


def region(path: Path) -> str:
    """The date order the workbook was computed in, where it says (a sheet Metadata with
    Locale in A1 and the locale beside it, as some of the corpus's files have)."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    if "Metadata" in book.sheetnames:
        rows = book["Metadata"].iter_rows(min_row=1, max_row=1, max_col=2, values_only=True)
        label, locale = next(rows)
        if label == "Locale" and locale in ("en-GB", "en-AU", "en-NZ", "en-IE"):
            return "DMY"
    return "MDY"


def run(path: Path, tmp: Path) -> FileResult:
    """Strip, recalculate with excelnet calc (in the workbook's date order), compare with
    Excel's stored values."""
    from excelnet.formula import dates
    from excelnet.formula.calculation import cell_name, formula_cells
    from excelnet.formula.parse import Error
    from excelnet.xlsx.read import read_book
    from excelnet.xlsx.recalc import calc, same

    result = FileResult(path, category(path))
    excel = read_book(path, cached=True)
    areas = {}
    formula_of = {}
    for sheet in excel.sheets.values():
        for (r, c), f in sheet.formulas.items():
            formula_of[(sheet.name, r, c)] = f
        for f, (r0, c0, r1, c1) in sheet.arrays.values():
            cells = {(rr, cc) for rr in range(r0, r1 + 1) for cc in range(c0, c1 + 1)}
            areas.setdefault(sheet.name, set()).update(cells)
            formula_of.update({(sheet.name, rr, cc): f for rr, cc in cells})
    bare = tmp / path.name
    strip(path, bare, areas)
    try:
        with dates.regional(region(path)):
            calc(bare)
        ours = read_book(bare, cached=True)
    except Exception as e:  # recorded, and a failure of the test: no file may crash calc
        result.error = f"{type(e).__name__}: {e}"
        return result
    if any(ITERATIVE.search(f) for f in formula_of.values()):
        result.tolerance = engine_tolerance(path)
    for cell in formula_cells(excel):
        want = excel.sheets[cell[0]].cached.get(cell[1:])
        if want is None:  # Excel stored nothing (an empty result): nothing to compare
            continue
        result.cells += 1
        formula = formula_of.get(cell, "")
        why = out_of_scope(formula)
        if why:
            result.out_of_scope[why] += 1
            continue
        got = ours.sheets[cell[0]].cached.get(cell[1:])
        if isinstance(want, str) and isinstance(got, Error) and want == got.code:
            want = got  # a file not saved by Excel (GEOMEAN.xlsx) stores errors as text
        if same(want, got) or (result.tolerance and engine_close(want, got, result.tolerance)):
            result.equal += 1
        else:
            result.different.append((cell_name(cell), formula, want, got))
    return result


def corpus_files() -> list[Path]:
    return sorted(CORPUS.rglob("*.xlsx"))


def table(results: list[FileResult]) -> str:
    rows: dict[str, list[int]] = {}
    for r in results:
        row = rows.setdefault(r.category, [0, 0, 0, 0])
        row[0] += 1
        row[1] += r.in_scope
        row[2] += r.equal
        row[3] += sum(r.out_of_scope.values())
    lines = [
        "| category | files | formula cells | equal to Excel | left out (A1#, RANDARRAY) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    total = [0, 0, 0, 0]
    for cat in sorted(rows, key=lambda c: (c not in TARGET, c)):
        f, n, eq, out = rows[cat]
        total = [a + b for a, b in zip(total, rows[cat], strict=True)]
        lines.append(f"| {cat} | {f} | {n:,} | {eq:,} ({eq / max(n, 1):.1%}) | {out:,} |")
    f, n, eq, out = total
    lines.append(f"| all | {f} | {n:,} | {eq:,} ({eq / max(n, 1):.1%}) | {out:,} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    markdown = "--markdown" in argv
    targets = [Path(a) for a in argv if a != "--markdown"] or [CORPUS]
    files = []
    for t in targets:
        files.extend(sorted(t.rglob("*.xlsx")) if t.is_dir() else [t])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            r = run(path, Path(tmp))
            results.append(r)
            if not markdown:
                state = r.error or f"{r.equal}/{r.in_scope} equal"
                print(f"{category(path)}/{path.name}: {state}")
                for cell, formula, want, got in r.different[:10]:
                    print(f"  {cell} {formula}: Excel {want!r}, excelnet {got!r}")
                if len(r.different) > 10:
                    print(f"  … {len(r.different) - 10} more")
            shutil.rmtree(Path(tmp) / path.name, ignore_errors=True)
    print(table(results))


if __name__ == "__main__":
    main(sys.argv[1:])
