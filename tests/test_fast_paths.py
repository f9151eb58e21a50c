"""The fast paths of reading, grouping and writing back give what the general ones give."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import xlsxwriter

import excelnet.xlsx.writeback as writeback
from excelnet.formula.parse import Error
from excelnet.xlsx.scan import scan
from excelnet.xlsx.writeback import patch_sheet, write_values
from excelnet.xlsx.zipcopy import _raw

# One of each form a cell takes in the writers excelnet meets, numbers and formulas first.
CELLS = (
    '<row r="1" spans="1:9"><c r="A1" s="1"><f>B1*2</f><v>4</v></c><c r="B1"><v>2</v></c>'
    '<c r="C1" s="2" t="s"><v>0</v></c><c r="D1" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>'
    '<c r="E1" t="b"><v>1</v></c><c r="F1" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
    '<c r="G1" s="3"/><c r="H1" t="inlineStr"><is><t>x &lt; y</t></is></c>'
    '<c r="I1"><f>A1</f></c></row>'
    '<row r="2"><c r="A2"><f t="shared" ref="A2:A3" si="0">B2*2</f><v>6</v></c>'
    '<c r="B2"><v>3</v></c><c r="C2"><v/></c><c r="D2"><f t="shared" ref="D2:D3" si="1">1/2'
    '</f></c><c r="E2"><f>1/2</f></c></row>'
    '<row r="3"><c r="A3"><f t="shared" si="0"/><v>8</v></c><c r="B3"><v>4</v></c>'
    '<c r="C3"><v></v></c><c r="D3"><f t="shared" si="1"/></c></row>'
    '<row r="5"><c r="B5"><v>1</v></c></row>'
)
SHEET = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://'
    'schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:I5"/>'
    f"<sheetData>{CELLS}</sheetData><pageMargins/></worksheet>"
).encode()


def general(xml: bytes, updates: dict) -> bytes:
    """patch_sheet with its fast path switched off: the cell-by-cell rewrite."""
    saved = writeback._patch_common
    writeback._patch_common = lambda body, want: None
    try:
        return patch_sheet(xml, updates)
    finally:
        writeback._patch_common = saved


UPDATES = [
    {(0, 0): 0.5, (1, 0): 7.0, (2, 0): -0.0, (0, 1): 1e-300, (4, 1): 123456789.0},
    {(0, 6): 2.5},  # an empty <c …/> given a number
    {(0, 2): 1.5, (0, 3): "text & more", (0, 4): False, (0, 5): 3.0},  # typed cells
    {(0, 0): True, (0, 1): "words", (1, 1): Error("#N/A"), (0, 7): 4.0, (0, 8): 0.25},
    {(1, 2): 1.0, (3, 0): 9.0, (3, 5): "new", (0, 20): 1.0, (6, 1): 2.0},  # cells added
    {(1, 3): 0.5, (1, 4): 0.5, (2, 3): 0.5},  # formulas with no value stored
    {(r, c): float(r * 10 + c) for r in range(6) for c in range(9)},  # every cell and more
]


@pytest.mark.parametrize("updates", UPDATES)
def test_the_fast_patch_writes_what_the_cell_by_cell_one_writes(updates):
    assert patch_sheet(SHEET, updates) == general(SHEET, updates)


@pytest.mark.parametrize(
    "old, new",
    [
        (b'<c r="B2">', b'<c s="0" r="B2">'),  # r not first
        (b'<c r="E2"><f>1/2</f></c>', b'<c r="E2"><f>1/2</f><v /></c>'),  # openpyxl's <v />
        (b'<c r="B3"><v>4</v></c>', b'<c r="B3"><v>4</v><extLst/></c>'),  # after the <v>
    ],
)
def test_cells_in_forms_the_fast_patch_does_not_read_go_the_general_way(old, new):
    odd = SHEET.replace(old, new)
    assert odd != SHEET
    assert writeback._patch_common(odd[odd.index(b"<sheetData") :], {b"B2": 1.0}) is None
    for updates in UPDATES:
        assert patch_sheet(odd, updates) == general(odd, updates)


def big_book(path: Path, rows: int) -> Path:
    """A model sheet of `rows` copied-down formulas, a data sheet, and a picture-free extra."""
    with xlsxwriter.Workbook(path) as wb:
        data, model = wb.add_worksheet("data"), wb.add_worksheet("model")
        wb.add_worksheet("notes").write(0, 0, "kept as it is")
        data.write_column(0, 0, [i / rows for i in range(rows)])
        for r in range(rows):
            model.write_formula(r, 0, f"=data!A{r + 1}*2", None, 2 * r / rows)
            model.write_formula(r, 1, f"=A{r + 1}+1", None, 2 * r / rows + 1)
    return path


def test_a_100000_row_write_back_changes_only_its_cells(tmp_path):
    """Every cell of two 100,000-row formula columns rewritten: the patched sheet reads back
    with the new values and the same formulas, equal to the cell-by-cell rewrite, and every
    other member keeps its stored bytes."""
    rows = 100_000
    book = big_book(tmp_path / "big.xlsx", rows)
    out = tmp_path / "out.xlsx"
    updates = {(r, c): (r + 0.25) * (c + 1) for r in range(rows) for c in (0, 1)}
    write_values(book, {"model": updates}, out)
    with zipfile.ZipFile(book) as a, zipfile.ZipFile(out) as b:
        assert a.namelist() == b.namelist() and b.testzip() is None
        part = "xl/worksheets/sheet2.xml"
        with open(book, "rb") as fa, open(out, "rb") as fb:
            for info in a.infolist():
                if info.filename != part:
                    assert _raw(fa, info) == _raw(fb, b.getinfo(info.filename)), info.filename
        before, after = scan(a.read(part), []), scan(b.read(part), [])
        assert after.formulas == before.formulas
        assert after.cached == {} and after.values == {}
        cached = scan(b.read(part), [], cached=True).cached
        assert cached == updates
        assert b.read(part) == general(a.read(part), updates)


def blocks_cell_by_cell(sheet) -> list[tuple[str, int, int, int]]:
    """Graph's column runs as it found them before: each formula against the run's last."""
    from collections import defaultdict

    from excelnet.formula.parse import CopiedDown

    out = []
    by_col: dict[int, list[int]] = defaultdict(list)
    for r, c in sheet.formulas:
        by_col[c].append(r)
    for c, rows in by_col.items():
        rows.sort()
        start = prev = rows[0]
        run = CopiedDown(sheet.formulas[(start, c)], start + 1)
        for r in rows[1:]:
            text = sheet.formulas[(r, c)]
            if r == prev + 1 and run.follows(text):
                prev = r
                continue
            out.append((sheet.name, start, prev, c))
            start = prev = r
            run = CopiedDown(text, r + 1)
        out.append((sheet.name, start, prev, c))
    return out


def graph_columns(book) -> list[tuple[str, int, int, int]]:
    from excelnet.formula.graph import Graph

    graph = Graph.__new__(Graph)  # the grouping alone: no parsing, no splitting
    graph.book, graph.blocks = book, []
    for sheet in book.sheets.values():
        graph._columns(sheet)
    return [(b.sheet, b.r0, b.r1, b.c0) for b in graph.blocks]


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "workbooks").glob("*.xls*")))
def test_formula_runs_are_the_ones_found_cell_by_cell(name):
    from excelnet.xlsx.read import read_book

    book = read_book(ROOT / "workbooks" / name)
    want = [b for s in book.sheets.values() for b in blocks_cell_by_cell(s)]
    assert graph_columns(book) == want
    assert len(want) < sum(len(s.formulas) for s in book.sheets.values())  # runs were found


def test_formula_runs_with_gaps_breaks_and_every_kind_of_reference():
    """Columns out of order, gaps, a run broken and resumed, formulas with no relative row,
    braces, quoted sheets, absolute rows, and runs longer than the chunks compared at once."""
    from excelnet.formula.book import Book, Sheet

    sheet = Sheet("s")
    for r in range(1, 300):
        sheet.formulas[(r, 3)] = f"=A{r + 1}*{{1,2}}+'my sheet'!$B$1+B{r}"
    for r in (2, 3, 4, 7, 8):
        sheet.formulas[(r, 1)] = "=1"
    for r in range(0, 200):
        sheet.formulas[(r, 0)] = f"=C{r + 1}" if r != 77 else "=C1"
    for r in range(400, 401):
        sheet.formulas[(r, 3)] = "=A401"
    sheet.formulas[(5, 9)] = f'="{{}}"&J{5}'
    book = Book(Path("x.xlsx"), {"s": sheet}, {})
    assert graph_columns(book) == blocks_cell_by_cell(sheet)
    assert (("s", 1, 299, 3)) in graph_columns(book)


NAMED = [
    b"<f>data!A1+(data!B2)</f><f>metadata!A1</f>",
    b"<f>'my sheet'!A1+x!B1</f>",
    b"<f>&apos;it&apos;&apos;s&apos;!A1</f>",
    b"!x",
    b"<f>SUM(a.b!A1,c_d!B2)</f>",
    b"<f>x!A1</f><v>#REF!</v>",
    b"<f>" + b"a" * 40 + b"!A1</f>",
    b"<f>" + b"a" * 31 + b"!A1</f>",
    b"<f>data!A1</f>" * 2000 + b"<f>1+(metadata!A1)</f>",  # past the sample: read in full
    b"<f>data!A1</f>" * 2000 + b"<f>1+(data!A1)</f><f>1+'R&amp;D'!A1</f>",
]


@pytest.mark.parametrize("xml", NAMED, ids=range(len(NAMED)))
def test_sheet_names_found_by_counting_are_those_every_match_finds(xml):
    from excelnet.xlsx.read import _SHEET_BEFORE_BANG, _names_by_count, _sheets_named

    every = set(_SHEET_BEFORE_BANG.findall(xml.replace(b"&apos;", b"'")[::-1]))
    counted = _names_by_count(xml)
    assert counted is None or counted == every
    assert _sheets_named(xml) >= {n for n in ("data", "x", "c_d") if f"{n}!".encode() in xml}
    if b"metadata!" in xml:
        assert {"data", "metadata"} <= _sheets_named(xml)
    if b"R&amp;D" in xml:
        assert "r&d" in _sheets_named(xml)
    if b"&apos;it" in xml:
        assert _sheets_named(xml) == {"it's"}


def test_the_common_cells_read_as_every_cell_is_read(monkeypatch):
    """Stretches of plain formulas, numbers and shared strings go through the fast reader,
    any other form through the general one, chunk by chunk: the same cells, in the same
    order, as the general reader alone gives."""
    import excelnet.xlsx.scan as cells

    rows = []
    for r in range(1, 400):
        row = f'<c r="A{r}" s="1"><f>B{r}*2</f><v>{2 * r}</v></c><c r="B{r}"><v>{r}</v></c>'
        row += f'<c r="C{r}" t="s"><v>{r % 2}</v></c><c r="D{r}" s="3"/>'
        if r % 97 == 0:  # now and then a form only the general reader reads
            row += f'<c r="E{r}" t="b"><v>1</v></c><c r="F{r}" t="inlineStr"><is><t>x</t></is></c>'
            row += f'<c r="G{r}"><f t="shared" ref="G{r}:G{r + 1}" si="{r}">A{r}</f></c>'
        if r % 97 == 1 and r > 1:
            row += f'<c r="G{r}"><f t="shared" si="{r - 1}"/></c><c r="H{r}"><v /></c>'
        rows.append(f'<row r="{r}">{row}</row>')
    xml = f"<worksheet><sheetData>{''.join(rows)}</sheetData></worksheet>".encode()
    chunks, general, used = cells._chunks, cells._cells, []
    monkeypatch.setattr(cells, "_chunks", lambda data: chunks(data, 2000))
    monkeypatch.setattr(cells, "_cells", lambda *args: used.append(len(args[0])) or general(*args))
    for cached in (False, True):
        used.clear()
        fast = scan(xml, ["a", "b"], cached)
        assert 0 < sum(used) < 399 * 4  # both readers had stretches to read
        with monkeypatch.context() as m:
            m.setattr(cells, "_common", lambda *args: False)
            slow = scan(xml, ["a", "b"], cached)
        for what in ("formulas", "values", "arrays", "cached", "rich", "max_row", "max_col"):
            a, b = getattr(fast, what), getattr(slow, what)
            assert a == b and list(getattr(a, "items", list)()) == list(getattr(b, "items", list)())
        assert len(fast.formulas) == 399 + 8 and fast.values[(96, 4)] is True


def test_a_large_member_deflated_in_two_halves_is_one_stream():
    import random
    import zlib

    from excelnet.xlsx.zipcopy import SPLIT, _deflated

    rng = random.Random(0)
    data = b"".join(b"<c r='A%d'><v>%r</v></c>" % (i, rng.random()) for i in range(400_000))
    assert len(data) > SPLIT
    packed = _deflated(data)
    assert zlib.decompress(packed, -15) == data
    inflater = zlib.decompressobj(-15)  # one stream: it ends where the data ends
    assert inflater.decompress(packed) == data and inflater.eof and not inflater.unused_data
    assert zlib.decompress(_deflated(b"small"), -15) == b"small"


def test_libreoffice_reads_members_deflated_in_halves(tmp_path, monkeypatch, recalc):
    """A fit whose patched sheets and history are each deflated as two halves (the split
    lowered to a few bytes): LibreOffice opens the file and computes the fitted loss."""
    import openpyxl

    import excelnet.xlsx.zipcopy
    from excelnet.fitting.pipeline import fit
    from tests.handmade import line_fit

    monkeypatch.setattr(excelnet.xlsx.zipcopy, "SPLIT", 64)
    book = line_fit(tmp_path / "line.xlsx")
    (result,) = fit(book, epochs=50)
    (lo,) = recalc([book])
    got = openpyxl.load_workbook(lo, data_only=True)
    loss = read_loss_cell(book)
    assert got[loss[0]][loss[1]].value == pytest.approx(result.final_loss, rel=1e-9)


def read_loss_cell(book: Path) -> tuple[str, str]:
    """(sheet, cell) of the one Solver model's objective."""
    from excelnet.formula.graph import a1
    from excelnet.xlsx.read import read_book

    (model,) = read_book(book).solver_models()
    return model.sheet, a1(model.objective.r0, model.objective.c0)


def test_a_sheet_of_plain_formulas_is_patched_as_the_general_path_does():
    """No shared formula, no inline string: the lighter split, and when a cell in another
    form turns up after all, the full one or the general path."""
    plain = SHEET
    for cell in (
        b'<c r="H1" t="inlineStr"><is><t>x &lt; y</t></is></c>',
        b'<c r="A2"><f t="shared" ref="A2:A3" si="0">B2*2</f><v>6</v></c>',
        b'<c r="D2"><f t="shared" ref="D2:D3" si="1">1/2</f></c>',
        b'<c r="A3"><f t="shared" si="0"/><v>8</v></c>',
        b'<c r="D3"><f t="shared" si="1"/></c>',
    ):
        assert cell in plain
        plain = plain.replace(cell, b"")
    assert b"<f " not in plain and b"<is>" not in plain and plain.count(b"<c ") > 10
    odd = plain.replace(b'<c r="B3"><v>4</v></c>', b'<c r="B3"><v>4</v><extLst/></c>')
    slash = plain.replace(b'<c r="B3">', b'<c r="B3" x="a/b">')
    for sheet in (plain, odd, slash):
        for updates in UPDATES:
            assert patch_sheet(sheet, updates) == general(sheet, updates)
