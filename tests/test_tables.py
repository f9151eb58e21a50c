"""Excel Tables and structured references: read from the file's table parts, resolved to the
ranges Excel defines, computed as LibreOffice computes them (and as Excel does where LibreOffice
7 reads a form differently), trained, and written back with the table parts untouched."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import xlsxwriter

import excelnet.data
from excelnet.formula.book import Book, Sheet, Table, TableColumn
from excelnet.formula.calculation import Calculation
from excelnet.formula.graph import Graph
from excelnet.formula.parse import Error, FormulaError, Ref, Structured, parse
from excelnet.xlsx.read import read_book
from tests.conftest import run_cli

# -- reading the grammar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, table, items, first, last",
    [
        ("Table13[Age]", "Table13", (), "Age", "Age"),
        ("Table13[[#This Row],[Age]]", "Table13", ("#this row",), "Age", "Age"),
        ("Table13[[#This Row],[SibSp]:[Ones]]", "Table13", ("#this row",), "SibSp", "Ones"),
        ("T[@Age]", "T", ("#this row",), "Age", "Age"),
        ("[@Age]", None, ("#this row",), "Age", "Age"),
        ("[@[Col 1]]", None, ("#this row",), "Col 1", "Col 1"),
        ("T[@[a]:[b]]", "T", ("#this row",), "a", "b"),
        ("T[@]", "T", ("#this row",), None, None),
        ("T[#This Row]", "T", ("#this row",), None, None),
        ("[[#This Row],Age]", None, ("#this row",), "Age", "Age"),  # XlsxWriter's @
        ("T[[a]:[b]]", "T", (), "a", "b"),
        ("T[#All]", "T", ("#all",), None, None),
        ("T[[#All]]", "T", ("#all",), None, None),
        ("T[#Data]", "T", ("#data",), None, None),
        ("T[#Headers]", "T", ("#headers",), None, None),
        ("T[#Totals]", "T", ("#totals",), None, None),
        ("T[[#Headers],[#Data],[Col]]", "T", ("#data", "#headers"), "Col", "Col"),
        ("T[[#Data],[#Totals],[a]:[b]]", "T", ("#data", "#totals"), "a", "b"),
        ("T[[#all],[Col]]", "T", ("#all",), "Col", "Col"),
        ("T[]", "T", (), None, None),
        ("[Col]", None, (), "Col", "Col"),
        ("T[ [#This Row] , [a] ]", "T", ("#this row",), "a", "a"),
        ("T[Sale Amount]", "T", (), "Sale Amount", "Sale Amount"),
        ("T['#n'[1']]", "T", (), "#n[1]", "#n[1]"),
        ("T[a''b]", "T", (), "a'b", "a'b"),
        ("Sheet2!T[a]", "T", (), "a", "a"),
    ],
)
def test_every_form_of_a_structured_reference_is_read(text, table, items, first, last):
    node = parse(f"={text}", "s")
    assert isinstance(node, Structured), node
    assert (node.table, node.items, node.first, node.last) == (table, items, first, last)


def test_structured_references_inside_formulas_and_ranges_between_them():
    node = parse("=SUMPRODUCT(Table13[[#This Row],[SibSp]:[Ones]],$R$4:$AA$4)", "s")
    assert isinstance(node.args[0], Structured) and isinstance(node.args[1], Ref)
    span = parse("=SUM(T[a]:T[[#This Row],[c]])", "s").args[0]
    assert span.op == ":" and [a.first for a in span.args] == ["a", "c"]
    with pytest.raises(FormulaError, match="structured reference"):
        parse("=T[[a],[b]]", "s")  # two columns without ':' is no reference Excel writes
    with pytest.raises(FormulaError, match="structured reference"):
        parse("=T[[#Headers],[#Totals]]", "s")


def _book(tables: list[Table], formulas: dict, values: dict) -> Book:
    s = Sheet("S", formulas=formulas, values=values, tables=tables)
    s.max_row = max(r for r, _ in [*formulas, *values])
    s.max_col = max(c for _, c in [*formulas, *values])
    return Book(None, {"S": s}, {})


def test_the_ranges_excel_defines():
    """B2:D6: header row 2, data rows 3-5, totals row 6."""
    t = Table(
        "Sales",
        1,
        1,
        5,
        3,
        [TableColumn("Region"), TableColumn("Sale Amount"), TableColumn("Units")],
        totals_rows=1,
    )
    graph = Graph(_book([t], {(0, 7): "=1"}, {(2, 1): 1.0}))

    def ref(text: str):
        return graph.resolve(parse(f"={text}", "S"), "S", 0)

    assert ref("Sales[Units]") == Ref("S", 2, 3, 4, 3)
    assert ref("SALES[[sale amount]:[units]]") == Ref("S", 2, 2, 4, 3)
    assert ref("Sales[#All]") == Ref("S", 1, 1, 5, 3)
    assert ref("Sales[#Data]") == ref("Sales[]") == ref("Sales") == Ref("S", 2, 1, 4, 3)
    assert ref("Sales[#Headers]") == Ref("S", 1, 1, 1, 3)
    assert ref("Sales[#Totals]") == Ref("S", 5, 1, 5, 3)
    assert ref("Sales[[#Headers],[#Data],[Units]]") == Ref("S", 1, 3, 4, 3)
    assert ref("Sales[[#Data],[#Totals],[Units]]") == Ref("S", 2, 3, 5, 3)
    assert ref("Sales[[#All],[Region]]") == Ref("S", 1, 1, 5, 1)
    with pytest.raises(FormulaError, match="no column 'Price'"):
        ref("Sales[Price]")
    with pytest.raises(FormulaError, match="no table named Costs"):
        ref("Costs[Units]")
    no_totals = Table("T", 1, 1, 4, 1, [TableColumn("a")])
    graph = Graph(_book([no_totals], {(0, 7): "=1"}, {(2, 1): 1.0}))
    assert graph.resolve(parse("=T[#Totals]", "S"), "S", 0).value == Error("#REF!")


def test_a_calculated_column_is_one_block_of_relative_rows():
    """[#This Row] down a table's column is a relative row reference: the column is one
    copied-down block (891 rows, the Titanic's), computed as one tensor operation."""
    n = 891
    t = Table("People", 0, 0, n, 2, [TableColumn(c) for c in ("Age", "x1", "Twice")])
    formulas = {
        (r, 2): "=People[[#This Row],[Age]]*People[[#This Row],[x1]]" for r in range(1, n + 1)
    }
    values = {(r, 0): float(r) for r in range(1, n + 1)} | {(r, 1): 2.0 for r in range(1, n + 1)}
    book = _book([t], formulas, values)
    graph = Graph(book)
    assert len(graph.blocks) == 1 and graph.blocks[0].rows == n
    assert graph.blocks[0].refs == [
        Ref("S", 1, 0, 1, 0, True, True),
        Ref("S", 1, 1, 1, 1, True, True),
    ]
    calc = Calculation(book)
    assert not calc.failures
    assert [calc.values[("S", r, 2)] for r in (1, 891)] == [2.0, 1782.0]


def test_this_row_outside_the_tables_rows_is_value_error():
    """A column of one formula that runs past the table: its rows inside read their row, the
    rows outside are #VALUE! (Excel's implicit intersection), the header row's too."""
    t = Table("T", 1, 0, 3, 0, [TableColumn("a")])  # header A2, data A3:A4
    formulas = {(r, 2): "=T[[#This Row],[a]]*10" for r in range(0, 6)}
    book = _book([t], formulas, {(2, 0): 1.0, (3, 0): 2.0})
    calc = Calculation(book)
    got = [calc.values[("S", r, 2)] for r in range(0, 6)]
    assert got == [Error("#VALUE!")] * 2 + [10.0, 20.0] + [Error("#VALUE!")] * 2


# -- files: read, computed, trained, written back -----------------------------------------------

COLUMNS = ["Age", "Fare x", "#n[1]", "Twice", "Sum"]


def _tables_book(path):
    """Tables as XlsxWriter writes them (add_table, calculated columns with structured
    references), used from their own sheet and from another, in forms LibreOffice 7 reads."""
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("data")
    ws.add_table(
        "B2:F6",
        {
            "name": "People_1",
            "data": [[1, 2.5, 7], [2, 3.5, 8], [3, 4.5, 9], [4, 10, 11]],
            "columns": [
                {"header": "Age"},
                {"header": "Fare x"},
                {"header": "#n[1]"},
                {"header": "Twice", "formula": "=People_1[[#This Row],[Age]]*2"},
                {"header": "Sum", "formula": "=SUM(People_1[[#This Row],[Age]:[Fare x]])"},
            ],
        },
    )
    ws.add_table(
        "H2:I5",
        {
            "name": "Totals",
            "total_row": True,
            "data": [[1, 4], [2, 5]],
            "columns": [{"header": "p", "total_value": 3}, {"header": "q"}],
        },
    )
    ws.write("H5", 3)
    formulas = {
        "K1": "=SUM(People_1[['#n'[1']]])",
        "K2": "=SUM(people_1[[age]:[FARE X]])",
        "K3": "=SUM(People_1[[#This Row],[age]],1)",
        "K4": "=SUM(People_1[[#This Row],[Twice]:[Sum]])",
        "K5": "=MAX(People_1[Fare x])",
        "K6": "=COUNTA(People_1[[#Headers]])",
        "K7": "=SUM(Totals[[#All]])",
        "K8": "=SUM(Totals[[#Data]])",
        "K9": "=SUM(Totals[[#Totals]])",
        "K10": "=SUM(Totals[[#Data],[#Totals],[p]])",
        "K11": "=SUM(Totals[[#Headers],[#Data],[q]])",
        "K12": "=ROWS(Totals[[#All],[q]])",
        "K13": "=INDEX(People_1[Fare x],3)",
        "K14": "=People_1[[#Headers],[Fare x]]",
        "K15": "=SUM(People_1[])",
        "K16": '=SUM(INDIRECT("People_1[Fare x]"))',
    }
    for cell, formula in formulas.items():
        ws.write_formula(cell, formula)
    other = wb.add_worksheet("other sheet")
    for r in range(1, 8):  # rows 2 to 8: the header row, the 4 data rows, 2 below
        other.write_formula(r, 0, "=People_1[[#This Row],[Sum]]*10")
    for r in range(2, 6):  # (LibreOffice sums the range of a row outside as 0; Excel: #VALUE!)
        other.write_formula(r, 1, "=SUMPRODUCT(People_1[[#This Row],[Age]:[Fare x]],{1,2})")
    wb.close()
    return path


@pytest.fixture(scope="module")
def tables_book(tmp_path_factory, recalc):
    folder = tmp_path_factory.mktemp("tables")
    book = _tables_book(folder / "tables.xlsx")
    (lo,) = recalc([book])
    return book, lo


def test_tables_are_read_from_the_files_table_parts(tables_book):
    book = read_book(tables_book[0])
    (people, totals) = book.sheets["data"].tables
    assert (people.name, people.r0, people.c0, people.r1, people.c1) == ("People_1", 1, 1, 5, 5)
    assert [c.name for c in people.columns] == COLUMNS
    assert people.columns[3].formula == "People_1[[#This Row],[Age]]*2"
    assert (people.header_rows, people.totals_rows, people.part) == (1, 0, "xl/tables/table1.xml")
    assert (totals.totals_rows, totals.data) == (1, (2, 3))
    assert book.sheets["other sheet"].tables == []


def test_calc_equals_libreoffice(tables_book, tmp_path):
    book, lo = tables_book
    copy = shutil.copy(book, tmp_path / "copy.xlsx")
    run = run_cli("calc", copy)
    assert run.returncode == 0, run.stderr + run.stdout
    ours, theirs = (openpyxl.load_workbook(p, data_only=True) for p in (copy, lo))
    compared = 0
    for sheet in ("data", "other sheet"):
        for row in theirs[sheet].iter_rows():
            for cell in row:
                formula = openpyxl.load_workbook(book)[sheet][cell.coordinate].value
                if not (isinstance(formula, str) and formula.startswith("=")):
                    continue
                assert ours[sheet][cell.coordinate].value == cell.value, (sheet, cell.coordinate)
                compared += 1
    assert compared == 16 + 2 * 4 + 7 + 4
    run = run_cli("check", copy)
    assert run.returncode == 0, run.stdout


def test_excels_rules_where_libreoffice_reads_otherwise(tmp_path):
    """LibreOffice 7.4 reads a lone special item in one pair of brackets (Table1[#All]) as
    #NAME?, the table's name alone as the whole table with its totals row, and XlsxWriter's
    form of @ ([[#This Row],a]) as #N/A; Excel reads them as the ranges they name."""
    path = tmp_path / "forms.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("S")
    ws.add_table(
        "A1:B4",
        {
            "name": "T",
            "total_row": True,
            "data": [[1, 10], [2, 20]],
            "columns": [
                {"header": "a", "total_value": 100},
                {"header": "b", "formula": "=[@a]*10"},  # written [[#This Row],a]*10
            ],
        },
    )
    ws.write("A4", 100)
    for cell, formula in {
        "D1": "=SUM(T[#All])",
        "D2": "=SUM(T[#Data])",
        "D3": "=SUM(T[#Totals])",
        "D4": "=SUM(T)",
        "D5": "=ROWS(T[#Headers])",
        "D6": "=SUM(T[@a],5)",
    }.items():
        ws.write_formula(cell, formula)
    wb.close()
    with zipfile.ZipFile(path) as z:
        assert "[[#This Row],a]*10" in z.read("xl/tables/table1.xml").decode()
    calc = Calculation(read_book(path))
    assert not calc.failures
    got = {
        cell: calc.values[("S", int(cell[1:]) - 1, 3)] for cell in ("D1", "D2", "D3", "D4", "D5")
    }
    assert got == {"D1": 133.0, "D2": 33.0, "D3": 100.0, "D4": 33.0, "D5": 1.0}
    assert [calc.values[("S", r, 1)] for r in (1, 2)] == [10.0, 20.0]
    assert calc.values[("S", 5, 3)] == Error("#VALUE!")  # D6's row is no data row of T


# -- a model over a table: fit, the loss checked, the table parts kept -------------------------


def _regression(path, n: int = 40, seed: int = 3):
    """A least-squares fit whose rows are an Excel Table; the prediction and the error are
    calculated columns of structured references, the loss an AVERAGE over the table's column."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = 1.5 * x1 - 0.5 * x2 + 0.25 + rng.normal(0, 0.1, n)
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("fit")
    pred = "=Rows[[#This Row],[x1]]*$H$2+Rows[[#This Row],[x2]]*$H$3+$H$4"
    err = "=(Rows[[#This Row],[Prediction]]-Rows[[#This Row],[y]])^2"
    ws.add_table(
        0,
        0,
        n,
        4,
        {
            "name": "Rows",
            "data": [[a, b, c] for a, b, c in zip(x1, x2, y, strict=True)],
            "columns": [
                {"header": "x1"},
                {"header": "x2"},
                {"header": "y"},
                {"header": "Prediction", "formula": pred},
                {"header": "Error", "formula": err},
            ],
        },
    )
    for r, v in ((1, 0.1), (2, 0.2), (3, 0.3)):
        ws.write_number(r, 7, v)
    ws.write_formula("H6", "=AVERAGE(Rows[Error])")
    wb.define_name("fit!solver_opt", "=fit!$H$6")
    wb.define_name("fit!solver_adj", "=fit!$H$2:$H$4")
    wb.define_name("fit!solver_typ", "=2")
    wb.define_name("fit!solver_neg", "=2")
    wb.close()
    return path, np.column_stack([x1, x2, np.ones(n)]), y


def test_a_model_over_a_table_trains_and_its_parts_stay(tmp_path, recalc):
    import excelnet

    path, x, y = _regression(tmp_path / "regression.xlsx")
    before = zipfile.ZipFile(path)
    (fitted,) = excelnet.fit(path, epochs=200, history=False)
    params = np.array([openpyxl.load_workbook(path)["fit"][f"H{r}"].value for r in (2, 3, 4)])
    numpy_loss = float(np.mean((x @ params - y) ** 2))
    assert fitted.final_loss == pytest.approx(numpy_loss, rel=1e-9, abs=1e-15)
    best = np.linalg.lstsq(x, y, rcond=None)[0]
    assert numpy_loss <= float(np.mean((x @ best - y) ** 2)) * (1 + 1e-9)
    after = zipfile.ZipFile(path)
    for name in before.namelist():  # the table part, its relationship, everything but the sheet
        if name != "xl/worksheets/sheet1.xml":
            assert after.read(name) == before.read(name), name
    sheet = after.read("xl/worksheets/sheet1.xml")
    assert (
        sheet[sheet.index(b"</sheetData>") :]
        == (
            before.read("xl/worksheets/sheet1.xml")[
                before.read("xl/worksheets/sheet1.xml").index(b"</sheetData>") :
            ]
        )
    )  # <tableParts> and all after the cells, byte for byte
    (lo,) = recalc([path])
    assert openpyxl.load_workbook(lo, data_only=True)["fit"]["H6"].value == pytest.approx(
        numpy_loss, rel=1e-9
    )
    assert run_cli("check", path).returncode == 0


# -- the lesson's workbook in tables -----------------------------------------------------------


def test_build_titanic_in_tables(tmp_path, titanic_book, recalc):
    """excelnet build titanic --tables: the course's layout — the passengers and their
    features as an Excel Table on each model sheet, columns of structured references, the
    parameters beside, the losses AVERAGEIF over the table — recomputed by LibreOffice as
    excelnet stores it, and trained to the same losses as the default layout."""
    path = tmp_path / "titanic-tables.xlsx"
    run = run_cli("build", "titanic", "--tables", "-o", path)
    assert run.returncode == 0, run.stderr
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.startswith("xl/tables/"))
        assert len(names) == 5
        sheets = {n: z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/s")}
    book = read_book(path)
    tables = {t.name: (s.name, t) for s in book.sheets.values() for t in s.tables}
    assert sorted(tables) == ["Features", "Passengers", "linear_rows", "mmult_rows", "nn_rows"]
    linear = tables["linear_rows"][1]
    assert linear.columns[13].formula == (
        "SUMPRODUCT(linear_rows[[#This Row],[Ones]:[Embark_C]],$S$5:$AB$5)"
    )
    xml = "".join(sheets.values())
    assert "@" not in xml and "[#This Row]" in xml  # the form Excel 2010+ and LibreOffice read
    mmult = book.sheets["mmult"]
    ((text, box),) = mmult.arrays.values()
    assert text.startswith("=MMULT(mmult_rows[[Ones]:[Embark_C]],") and not mmult.spills
    graph = Graph(book)
    blocks = [b for b in graph.blocks if b.sheet == "linear" and b.rows > 1]
    assert len(blocks) == 16 and all(b.rows == 891 for b in blocks)  # one block per column

    (lo,) = recalc([path])
    ours, theirs = (openpyxl.load_workbook(p, data_only=True) for p in (path, lo))
    compared = 0
    for sheet in ("features", "linear", "nn", "mmult"):
        for mine, other in zip(ours[sheet].iter_rows(), theirs[sheet].iter_rows(), strict=True):
            for a, b in zip(mine, other, strict=True):
                if isinstance(a.value, float):
                    assert b.value == pytest.approx(a.value, rel=1e-9, abs=1e-12), a.coordinate
                    compared += 1
    assert compared > 40_000

    plain = shutil.copy(titanic_book, tmp_path / "plain.xlsx")
    a = excelnet_fit(path)
    b = excelnet_fit(plain)
    for x, y in zip(a, b, strict=True):
        assert x.sheet == y.sheet
        assert x.initial_loss == pytest.approx(y.initial_loss, rel=1e-9)
        assert x.final_loss == pytest.approx(y.final_loss, rel=1e-9)
    test_csv = Path(excelnet.data.__file__).parent / "test.csv"
    for p in (path, plain):
        run = run_cli("predict", p, "--sheet", "nn", "--csv", test_csv, "-o", p.with_suffix(".csv"))
        assert run.returncode == 0, run.stderr
    assert path.with_suffix(".csv").read_text() == plain.with_suffix(".csv").read_text()


def excelnet_fit(path):
    import excelnet

    return excelnet.fit(path, epochs=15, history=False, device="cpu")
