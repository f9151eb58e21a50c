"""What a newcomer sees: every sheet prints one page wide with its header row repeated, the
lesson sheets print all their data, wrapped text has rows tall enough, and the sheets excelnet
adds have styled headers, number formats and loss axes from 0."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import openpyxl
import pytest

from excelnet.fitting.pipeline import compare, fit, lr_sweep
from excelnet.writer.lessons import ABOUT_WIDTH, TABLE_ROW

ROOT = Path(__file__).resolve().parents[1]
LESSONS = {"quadratic": "quadratic", "relu": "relu", "double-relu": "double_relu"}


def one_page_wide(ws) -> bool:
    setup = ws.page_setup
    return bool(ws.sheet_properties.pageSetUpPr.fitToPage) and (
        setup.fitToWidth in (None, 1) and setup.fitToHeight == 0
    )


@pytest.mark.parametrize("name", list(LESSONS))
def test_lesson_sheets_print_all_their_data(name):
    wb = openpyxl.load_workbook(ROOT / "workbooks" / f"{name}.xlsx")
    ws = wb[LESSONS[name]]
    last = max(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value is not None)
    assert last > 22  # the data runs past the old print area's end
    (area,) = ws.print_area if isinstance(ws.print_area, list) else [ws.print_area]
    assert area.endswith(f"$N${last}"), area
    assert ws.print_title_rows == f"${TABLE_ROW + 1}:${TABLE_ROW + 1}"
    assert one_page_wide(ws) and ws.page_setup.orientation == "landscape"


@pytest.mark.parametrize("name", ["titanic", *LESSONS])
def test_wrapped_text_has_rows_tall_enough(name):
    ws = openpyxl.load_workbook(ROOT / "workbooks" / f"{name}.xlsx")["about"]
    assert ws.column_dimensions["A"].width <= ABOUT_WIDTH + 1  # a portrait page wide
    wrapped = [c for c in ws["A"] if c.value and c.alignment.wrap_text]
    assert len(wrapped) >= 3
    for cell in wrapped:
        lines = math.ceil(len(cell.value) / (ABOUT_WIDTH * 0.95))
        height = ws.row_dimensions[cell.row].height
        assert height is not None and height >= 15 * lines, (cell.row, height, lines)
    assert one_page_wide(ws)


def test_every_titanic_sheet_prints_one_page_wide_with_its_header_repeated():
    wb = openpyxl.load_workbook(ROOT / "workbooks" / "titanic.xlsx")
    for ws in wb.worksheets:
        assert one_page_wide(ws), ws.title
    for name, row in (("data", 1), ("features", 1), ("linear", 5), ("nn", 5), ("mmult", 5)):
        assert wb[name].print_title_rows == f"${row}:${row}", name


def header_styled(ws) -> bool:
    return all(c.font.b and c.fill.fgColor.rgb == "FFD9E1F2" for c in ws[1] if c.value is not None)


def test_added_sheets_have_styled_headers_number_formats_and_axes_from_0(tmp_path, recalc):
    book = Path(shutil.copy(ROOT / "workbooks" / "quadratic.xlsx", tmp_path / "q.xlsx"))
    fit(book, epochs=30)
    compare(book, epochs=30)
    lr_sweep(book, "quadratic", [0.01, 0.1], epochs=30)
    wb = openpyxl.load_workbook(book)
    history, compared, sweep = wb["history"], wb["compare"], wb["lr_sweep"]
    loss = "[>=100000]0.00E+00;[>=0.0001]0.00000;0.00E+00"  # E notation only at the extremes
    expected = {  # column: format (the quadratic has no validation loss or accuracy)
        history: {1: "0", 2: "0.00000"},
        compared: {1: "General", 2: "0", 3: "0.00000", 6: "0.00"},
        sweep: {1: "0", 2: loss, 3: loss},
    }
    for ws, formats in expected.items():
        assert header_styled(ws), ws.title
        assert {c: ws.cell(2, c).number_format for c in formats} == formats, ws.title
        assert ws.print_title_rows == "$1:$1" and one_page_wide(ws), ws.title
    assert history._charts[0].y_axis.scaling.min == 0
    assert compared._charts[0].y_axis.scaling.min == 0
    # LibreOffice reads the merged styles.xml: its own copy keeps the formats and headers
    (lo,) = recalc([book])
    lo = openpyxl.load_workbook(lo)
    assert lo["history"]["B2"].number_format == "0.00000"
    assert lo["compare"]["F2"].number_format == "0.00"
    assert lo["lr_sweep"]["B2"].number_format == loss
    assert header_styled(lo["history"])


def test_build_table_and_macros_workbooks_share_the_page_setup(tmp_path):
    """The layout's page setup reaches every builder that uses it: `build table`, and the
    .xlsm that --macros writes."""
    from excelnet.data import bundled
    from excelnet.writer.table import build_table
    from excelnet.writer.titanic import build_titanic

    table = build_table(tmp_path / "t.xlsx", bundled("train.csv"), "Survived", "PassengerId")
    macros = build_titanic(tmp_path / "titanic.xlsm", passengers=40, macros=True)
    for path in (table, macros):
        wb = openpyxl.load_workbook(path)
        for name, row in (("data", 1), ("features", 1), ("linear", 5), ("nn", 5), ("mmult", 5)):
            assert wb[name].print_title_rows == f"${row}:${row}", (path.name, name)
        for ws in wb.worksheets:
            if ws.title != "_xlwings.conf":
                assert one_page_wide(ws), (path.name, ws.title)
        about = wb["about"]
        assert about.column_dimensions["A"].width <= ABOUT_WIDTH + 1
        assert about.page_setup.orientation == "portrait"


def test_the_predictions_sheet_has_a_styled_header_repeated_on_every_page(tmp_path):
    from excelnet.data import bundled
    from excelnet.predictions import predict

    copy = tmp_path / "predicted.xlsx"
    predict(ROOT / "workbooks" / "titanic.xlsx", "nn", bundled("test.csv"), workbook=copy)
    ws = openpyxl.load_workbook(copy)["predictions"]
    assert header_styled(ws)
    # 28 columns: too wide for one page, so a page wide per section, the ids on each
    assert ws.print_title_rows == "$1:$1" and ws.print_title_cols == "$A:$A"
    assert ws.page_setup.fitToWidth == 2 and ws.page_setup.fitToHeight == 0
    assert ws.page_setup.orientation == "landscape"
    formats = {ws.cell(2, c).number_format for c in range(13, ws.max_column + 1)}
    assert formats == {"0.0000"}, formats  # the model's columns, each a number format
