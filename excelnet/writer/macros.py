"""The macro-enabled workbooks (`excelnet build … --macros`): training from inside Excel.

xlwings' own standalone quickstart VBA project is copied in from the installed xlwings package
(BSD licence): its SampleCall macro runs `import <book>; <book>.main()` with the workbook's
base name, in the Python that xlwings is configured to use. Each model sheet gets a Train
button bound to SampleCall, an Action cell (a drop-down: Train, Reset, Evaluate) and a Seed
cell (what Reset draws new parameters from), both named on the sheet for `excelnet.live.xl`; the
workbook gets xlwings' `_xlwings.conf` settings sheet, and the companion module <book>.py,
written beside the workbook, whose main() calls `excelnet.live.xl.main`.
"""

from __future__ import annotations

import importlib.util
import io
import keyword
import os
import sys
import zipfile
from collections.abc import Callable
from importlib.machinery import PathFinder
from pathlib import Path

from xlsxwriter.utility import xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from excelnet.errors import ExcelnetError
from excelnet.xlsx.atomic import atomic_path
from excelnet.xlsx.files import check_target, refuse_existing

ACTIONS = ("Train", "Reset", "Evaluate")  # the Action cell's choices; Train is the default
ACTION_NAME, SEED_NAME = "excelnet_action", "excelnet_seed"  # sheet-scoped names of the cells
QUICKSTART = "quickstart_standalone.xlsm"  # in the xlwings package
MACRO = "SampleCall"
CONF_SHEET = "_xlwings.conf"
NOTICE = (
    "The VBA project (the Train buttons' SampleCall macro and the xlwings module) is xlwings' "
    "own, © Zoomer Analytics GmbH, under the BSD 3-clause licence: see the _xlwings.conf sheet."
)

# xlwings' licence for everything but its pro folder; the VBA project comes under it
XLWINGS_LICENCE = """\
Copyright (C) 2014 - present, Zoomer Analytics GmbH.
All rights reserved.

Redistribution and use in source and binary forms, with or without modification,
are permitted provided that the following conditions are met:

* Redistributions of source code must retain the above copyright notice, this
  list of conditions and the following disclaimer.

* Redistributions in binary form must reproduce the above copyright notice, this
  list of conditions and the following disclaimer in the documentation and/or
  other materials provided with the distribution.

* Neither the name of the copyright holder nor the names of its
  contributors may be used to endorse or promote products derived from
  this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND
ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED
WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR
ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES
(INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES;
LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON
ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
(INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS
SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

COMPANION = '''\
"""The companion module of {book}: each Train button in it runs xlwings' SampleCall macro,
which imports this module and calls main(). Written by excelnet build --macros."""

import xlwings as xw

import excelnet.live.xl


def main():
    return excelnet.live.xl.main(xw.Book.caller())


if __name__ == "__main__":
    xw.Book("{book}").set_mock_caller()
    main()
'''


def quickstart() -> Path:
    """xlwings' standalone quickstart workbook, from the installed package."""
    spec = importlib.util.find_spec("xlwings")
    if spec is None or spec.origin is None:
        raise ExcelnetError(
            "macros=True needs xlwings: pip install 'excelnet[xl]'",
            "--macros needs xlwings: pip install 'excelnet[xl]'",
        )
    path = Path(spec.origin).with_name(QUICKSTART)
    if not path.exists():
        raise ExcelnetError(
            f"macros=True: the installed xlwings has no {QUICKSTART}",
            f"--macros: the installed xlwings has no {QUICKSTART}",
        )
    return path


def vba_project() -> bytes:
    """The quickstart's VBA project, taken out of its zip as XlsxWriter's vba_extract does."""
    with zipfile.ZipFile(quickstart()) as z:
        return z.read("xl/vbaProject.bin")


def check_output(path: Path) -> None:
    """SampleCall imports the workbook's base name as a Python module: the name must be one,
    and must not hide a module that Python would otherwise find (xlwings, excelnet, …)."""
    if path.suffix.lower() != ".xlsm":
        raise ExcelnetError(f"{path}: a workbook with macros is an .xlsm; name the output *.xlsm")
    stem = path.stem
    if not stem.isidentifier() or keyword.iskeyword(stem):
        raise ExcelnetError(
            f"{path}: xlwings' SampleCall imports the workbook's name as a Python module, so "
            f"it must be letters, digits and _ (not starting with a digit): try "
            f"{module_name(stem)}.xlsm"
        )
    # the workbook's folder comes first on the path xlwings gives Python; what else is there?
    here = {"", os.getcwd()}
    if stem in sys.builtin_module_names:
        spec = importlib.util.find_spec(stem)
    else:
        spec = PathFinder.find_spec(stem, [p for p in sys.path if p not in here])
    if spec is not None:
        raise ExcelnetError(
            f"{path}: its companion module {stem}.py would hide the Python module {stem!r} "
            f"({spec.origin}); choose another name"
        )


def module_name(stem: str) -> str:
    """A workbook name that SampleCall can import: other characters become _."""
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem)
    return name if name and not name[0].isdigit() else "book_" + name


def companion_path(path: Path) -> Path:
    return path.with_name(path.stem + ".py")


def companion_text(path: Path) -> str:
    return COMPANION.format(book=path.name)


def check_companion(path: Path) -> None:
    """Refuse to replace a companion module that someone has changed."""
    module = companion_path(path)
    if module.exists() and module.read_text(errors="replace") != companion_text(path):
        raise ExcelnetError(
            f"{module}: exists and is not the companion module excelnet writes (edited?); "
            f"move it away or name the workbook differently"
        )


def write_companion(path: Path, force: bool = False) -> Path:
    module = companion_path(path)
    with atomic_path(module, force) as tmp:
        tmp.write_text(companion_text(path))
    return module


def add_vba(wb: Workbook) -> None:
    wb.add_vba_project(io.BytesIO(vba_project()), is_stream=True)
    wb.set_vba_name("ThisWorkbook")


def add_controls(
    wb: Workbook, ws: Worksheet, sheet: str, row: int, col: int, seed: int, fmt: dict
) -> None:
    """The Action cell and the Seed cell at (row, col + 1) and (row + 1, col + 1), labelled
    to their left, and the Train button below them."""
    ws.write_string(row, col, "Action", fmt["header"])
    ws.write_string(row, col + 1, ACTIONS[0], fmt["param"])
    ws.data_validation(
        row,
        col + 1,
        row,
        col + 1,
        {
            "validate": "list",
            "source": list(ACTIONS),
            "input_title": "What Train does",
            "input_message": "Train: fit the model. Reset: new random parameters from the "
            "seed. Evaluate: the loss and the gradients only.",
        },
    )
    ws.write_string(row + 1, col, "Seed", fmt["header"])
    ws.write_number(row + 1, col + 1, seed, fmt["integer"])
    for name, r in ((ACTION_NAME, row), (SEED_NAME, row + 1)):
        cell = xl_rowcol_to_cell(r, col + 1, row_abs=True, col_abs=True)
        wb.define_name(f"{sheet}!{name}", f"={sheet}!{cell}")
    ws.insert_button(row + 2, col, {"macro": MACRO, "caption": "Train", "width": 150, "height": 22})


def add_conf_sheet(wb: Workbook, fmt: dict) -> None:
    """xlwings' settings sheet, as in its quickstart: inactive until renamed xlwings.conf."""
    import openpyxl

    source = openpyxl.load_workbook(quickstart())[CONF_SHEET]
    ws = wb.add_worksheet(CONF_SHEET)
    ws.hide()  # settings, not a page to print or read
    ws.set_column(0, 0, source.column_dimensions["A"].width)
    ws.set_column(1, 1, source.column_dimensions["B"].width)
    bold = wb.add_format({"bold": True})
    for row in source.iter_rows():
        for cell in row:
            v = cell.value
            if isinstance(v, bool):
                ws.write_boolean(cell.row - 1, cell.column - 1, v)
            elif v is not None:
                style = bold if cell.font.b else None
                ws.write_string(cell.row - 1, cell.column - 1, str(v), style)
    # the VBA project is xlwings' (BSD 3-clause): its notice travels with the workbook
    top = source.max_row + 2
    ws.write_string(top, 0, "Licence of this workbook's VBA project (from xlwings):", bold)
    for i, paragraph in enumerate(XLWINGS_LICENCE.split("\n\n"), start=1):
        ws.write_string(top + i, 0, " ".join(paragraph.split()))


def about(row: int, col: int, what_moves: str) -> list[str]:
    """The about sheet's lines on the controls that add_controls(…, row, col, …) placed on each
    model sheet, and xlwings' notice."""
    action, seed = (xl_rowcol_to_cell(r, col + 1) for r in (row, row + 1))
    return [
        f"Excel with xlwings: the Train button on a model sheet does what its Action cell "
        f"({action}) says — Train (gradient descent: {what_moves} as it runs), Reset (new random "
        f"parameters from the Seed, {seed}) or Evaluate (the loss and the gradients only). It "
        f"runs the companion module of the same name (.py, beside this workbook) through xlwings.",
        NOTICE,
    ]


def save_book(
    path: str | Path, write: Callable[[Path], None], macros: bool, force: bool = False
) -> Path:
    """Write a built workbook with `write(tmp)`, atomically. With `macros`, check its name and
    its companion module first (nothing is written if a check fails) and write the companion
    after it. A file already there is replaced only when `force`d (a read-only one too: see
    excelnet.xlsx.files.check_target)."""
    path = Path(path)
    refuse_existing(path, force)
    if macros:
        check_output(path)
        check_companion(path)
        refuse_existing(companion_path(path), force)
        check_target(companion_path(path), force)
    with atomic_path(path, force) as tmp:
        write(tmp)
    if macros:
        write_companion(path, force)
    return path
