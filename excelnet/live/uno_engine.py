"""A workbook open in LibreOffice, as an xlwings Book: an xlwings engine over UNO.

xlwings drives Excel; this engine gives its Book / Sheet / Range / Name classes a LibreOffice
document instead, so that `excelnet.live.xl` runs the same code on both. The classes here are the
engine's implementation objects (what xlwings calls `impl`); users get xlwings' own `xw.Book`
wrapped around them, with xlwings' value conversion. Only what excelnet uses is offered.

UNO itself lives in the helper process (uno_bridge.py, run by the Python that has LibreOffice's
`uno` module); this side sends it one JSON request a line over a pipe.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import xlwings as xw
from xlwings import base_classes
from xlwings import utils as xw_utils

from excelnet.errors import ExcelnetError, WorkbookGone

HELPER = Path(__file__).with_name("uno_bridge.py")
ERRORS = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")


def uno_python() -> str:
    """A Python that can `import uno`: $EXCELNET_UNO_PYTHON, this one, or the system's."""
    for exe in (os.environ.get("EXCELNET_UNO_PYTHON"), sys.executable, "/usr/bin/python3"):
        if not exe or not shutil.which(exe):
            continue
        if exe == sys.executable:
            if importlib.util.find_spec("uno") is not None:
                return exe
        elif subprocess.run([exe, "-c", "import uno"], capture_output=True).returncode == 0:
            return exe
    raise ExcelnetError(
        "LibreOffice's Python bridge is missing: install python3-uno (Debian, Ubuntu), or set "
        "EXCELNET_UNO_PYTHON to a Python that can `import uno`"
    )


class Helper:
    """The helper process, one request at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [uno_python(), "-I", str(HELPER)],  # -I: not this folder's modules for its own
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            # its own session: Ctrl-C reaches excelnet alone, which then closes the document
            # and stops LibreOffice through it; if excelnet dies, the end of its stdin does
            start_new_session=True,
        )
        self.pending = 0  # replies owed to requests that were interrupted

    def __call__(self, op: str, **args):
        if self.process.poll() is not None:
            raise WorkbookGone("the connection to LibreOffice is closed")
        try:
            for _ in range(self.pending):  # an interrupted request's late reply: not ours
                self.process.stdout.readline()
            self.pending = 0
            self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.process.stdin.flush()
            self.pending = 1
            line = self.process.stdout.readline()
            self.pending = 0
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise WorkbookGone("LibreOffice stopped or the document was closed (no bridge)")
        reply = json.loads(line)
        if "error" in reply:
            if reply["gone"]:
                raise WorkbookGone(
                    f"LibreOffice stopped or the document was closed ({reply['error']})"
                )
            raise ExcelnetError(f"LibreOffice: {reply['error']}")
        return reply["ok"]

    def close(self) -> None:
        """Say quit (the helper closes the document, stops a LibreOffice of its own and
        removes its profile and lock file) and wait for the helper to end; a helper that
        does not, is told by SIGTERM, which it answers the same way."""
        ENGINE.apps.apps[:] = [a for a in ENGINE.apps.apps if a.helper is not self]
        if self.process.poll() is None:
            try:
                self("quit")
            except ExcelnetError:
                pass
            for stop in (None, self.process.terminate, self.process.kill):
                if stop is not None:
                    stop()
                try:
                    self.process.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def open_book(
    path: str | Path, connect: str | None = None, headless: bool | None = None
) -> xw.Book:
    """`path` open in LibreOffice, as an xlwings Book. `connect`: a running LibreOffice's UNO
    connection string ("socket,host=localhost,port=2002", as given to soffice --accept, without
    ";urp;"), where the document is taken if it is already open there, or else opened (hidden
    with `headless`: a headless LibreOffice stops on a visible document); without `connect`, a
    LibreOffice of its own, with a window where there is a display, headless otherwise."""
    path = Path(path)
    if not path.exists():
        raise ExcelnetError(f"{path}: no such file")
    if headless is None:
        headless = connect is None and not _display()
    helper = Helper()
    try:
        info = helper("open", path=str(path.resolve()), connect=connect, headless=headless)
    except ExcelnetError as e:
        helper.close()
        raise ExcelnetError(f"{path}: {e}") from None
    except BaseException:  # Ctrl-C while LibreOffice starts: stop it, leave nothing behind
        helper.close()
        raise
    _register()
    return xw.Book(impl=Book(App(helper, info), info))


def disconnect(book: xw.Book) -> None:
    """Let go of the document, leaving it open, as it is, in LibreOffice."""
    book.app.impl.helper.close()


def _display() -> bool:
    return sys.platform in ("win32", "darwin") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


# -- the engine ------------------------------------------------------------------------------
class Engine:
    name = "libreoffice"
    type = "desktop"

    @staticmethod
    def clean_value_data(data, datetime_builder, empty_as, number_builder, err_to_str):
        def clean(v):
            if v is None:
                return empty_as
            if isinstance(v, dict):  # an error value
                return v["error"] if err_to_str else None
            if number_builder is not None and isinstance(v, float):
                return number_builder(v)
            return v

        return [[clean(v) for v in row] for row in data]

    @staticmethod
    def prepare_xl_data_element(x, options):
        if x is None or (isinstance(x, float) and x != x):
            return None
        if isinstance(x, bool):
            return float(x)  # LibreOffice stores TRUE as 1
        if isinstance(x, (int, float)):
            return float(x)
        if isinstance(x, (dt.datetime, dt.date)):
            from openpyxl.utils.datetime import to_excel

            return float(to_excel(x))
        if hasattr(x, "item"):  # numpy scalars
            return float(x.item())
        return str(x)


class Apps(base_classes.Apps):
    """The LibreOffice connections of this process, the most recently activated first."""

    def __init__(self) -> None:
        self.apps: list[App] = []

    def keys(self) -> list[int]:
        return [a.pid for a in self.apps]

    def __iter__(self):
        return iter(list(self.apps))

    def __len__(self) -> int:
        return len(self.apps)

    def __getitem__(self, pid: int) -> App:
        return next(a for a in self.apps if a.pid == pid)


ENGINE = Engine()
ENGINE.apps = Apps()


def _register() -> None:
    """xlwings' engine list gets this one, active: xlwings asks it for the active app."""
    if ENGINE.name not in [e.name for e in xw.engines]:
        xw.engines.add(xw.main.Engine(impl=ENGINE))
    xw.engines[ENGINE.name].activate()


class App(base_classes.App):
    def __init__(self, helper: Helper, info: dict):
        self.helper, self.info = helper, info
        self.engine = ENGINE
        ENGINE.apps.apps.insert(0, self)
        self._status: str | bool = False
        self._books: list[Book] = []
        self.alerts: list[str] = []  # every message shown, in order (headless: only here)

    @property
    def pid(self) -> int:
        return self.info["pid"]

    @property
    def books(self) -> list[Book]:
        return self._books

    @property
    def api(self) -> Helper:
        return self.helper

    @property
    def visible(self) -> bool:
        return self.info["visible"]

    @property
    def status_bar(self) -> str | bool:
        return self._status

    @status_bar.setter
    def status_bar(self, value: str | bool) -> None:
        self._status = value
        self.helper("status", text=value if isinstance(value, str) else None)

    @property
    def screen_updating(self) -> bool:
        return True

    @screen_updating.setter
    def screen_updating(self, value: bool) -> None:
        pass

    def alert(self, prompt, title, buttons, mode, callback):
        self.alerts.append(prompt)
        self.helper("alert", text=prompt, title=title or "excelnet")
        return "ok"

    def calculate(self) -> None:
        self.helper("calculate_all")

    def activate(self, steal_focus=False) -> None:
        apps = ENGINE.apps.apps
        if self in apps:
            apps.remove(self)
        apps.insert(0, self)


class Book(base_classes.Book):
    def __init__(self, app: App, info: dict):
        self._app, self.info = app, info
        app._books.append(self)

    @property
    def api(self) -> Helper:
        return self._app.helper

    @property
    def app(self) -> App:
        return self._app

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def fullname(self) -> str:
        return self.info["path"]

    @property
    def sheets(self) -> Sheets:
        return Sheets(self)

    @property
    def names(self) -> Names:
        return Names(self, [Name(self, n) for n in self.api("names")])

    def close(self) -> None:
        """Close the document without saving (and the headless LibreOffice excelnet started)."""
        try:
            self.api("close")
        finally:
            self._app.helper.close()

    def activate(self, steal_focus=False) -> None:
        pass


class Sheets(base_classes.Sheets):
    def __init__(self, book: Book):
        self.book = book
        self.names = book.api("sheets")

    @property
    def api(self) -> list[str]:
        return self.names

    @property
    def active(self) -> Sheet:
        return Sheet(self.book, self.book.api("active"))

    def __call__(self, name_or_index):
        if isinstance(name_or_index, int):
            return Sheet(self.book, self.names[name_or_index - 1])
        for n in self.names:
            if n.lower() == str(name_or_index).lower():
                return Sheet(self.book, n)
        raise KeyError(name_or_index)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return (Sheet(self.book, n) for n in self.names)

    def add(self, before=None, after=None, name=None):
        index = len(self.names)
        if before is not None:
            index = before.index - 1
        elif after is not None:
            index = after.index
        name = name or f"Sheet{len(self.names) + 1}"
        self.book.api("add_sheet", name=name, index=index)
        return Sheet(self.book, name)


class Sheet(base_classes.Sheet):
    def __init__(self, book: Book, name: str):
        self._book, self._name = book, name

    @property
    def api(self) -> tuple[Helper, str]:
        return self._book.api, self._name

    @property
    def name(self) -> str:
        return self._name

    @property
    def book(self) -> Book:
        return self._book

    @property
    def index(self) -> int:
        return self._book.api("sheets").index(self._name) + 1

    @property
    def names(self) -> Names:
        return Names(self._book, [n for n in self._book.names if n.sheet == self._name])

    def range(self, arg1, arg2=None) -> Range:
        return Range(self, arg1, arg2)

    @property
    def used_range(self) -> Range:
        r0, c0, r1, c1 = self._book.api("used", sheet=self._name)
        return Range(self, (r0 + 1, c0 + 1), (r1 + 1, c1 + 1))

    def activate(self) -> None:
        self._book.api("activate", sheet=self._name)


class Range(base_classes.Range):
    """A rectangle of cells; rows and columns 1-based, as xlwings counts them."""

    max_cells_per_read = None  # one request reads or writes any size
    max_cells_per_write = None

    def __init__(self, sheet: Sheet, arg1, arg2=None):
        self.sheet, self.options = sheet, {}
        if isinstance(arg1, Range):
            arg1 = (arg1.row, arg1.column) if arg2 is None else arg1
        if isinstance(arg1, Range) and isinstance(arg2, Range):
            corners = [(arg1.row, arg1.column), (arg2.last_row, arg2.last_column)]
            arg1, arg2 = corners
        elif isinstance(arg2, Range):
            arg2 = (arg2.last_row, arg2.last_column)
        if isinstance(arg1, str):
            arg1, arg2 = self._address(arg1)
        if len(arg1) == 4:  # (row, column, rows, columns)
            r, c, h, w = arg1
            arg1, arg2 = (r, c), (r + h - 1, c + w - 1)
        arg2 = arg2 or arg1
        self.first = (min(arg1[0], arg2[0]), min(arg1[1], arg2[1]))
        self.last = (max(arg1[0], arg2[0]), max(arg1[1], arg2[1]))

    def _address(self, text: str) -> tuple[tuple[int, int], tuple[int, int] | None]:
        first, last = xw_utils.a1_to_tuples(text)
        if first:
            return first, last
        for n in self.sheet.book.names:  # a defined name: the sheet's own before the book's
            if n.local_name.lower() == text.lower() and n.sheet in (None, self.sheet.name):
                target = n.refers_to_range
                if target.sheet.name != self.sheet.name:
                    raise ValueError(f"{text} refers to sheet {target.sheet.name}")
                return target.first, target.last
        raise ValueError(f"{text!r} is not a cell address or a defined name here")

    @property
    def api(self) -> tuple[str, list[int]]:
        return self.sheet.name, self.area

    @property
    def area(self) -> list[int]:
        return [self.first[0] - 1, self.first[1] - 1, self.last[0] - 1, self.last[1] - 1]

    @property
    def row(self) -> int:
        return self.first[0]

    @property
    def column(self) -> int:
        return self.first[1]

    @property
    def last_row(self) -> int:
        return self.last[0]

    @property
    def last_column(self) -> int:
        return self.last[1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.last[0] - self.first[0] + 1, self.last[1] - self.first[1] + 1

    def __len__(self) -> int:
        h, w = self.shape
        return h * w

    @property
    def coords(self):
        return (self.sheet.name, self.row, self.column, *self.shape)

    def __call__(self, row: int, col: int | None = None) -> Range:
        if col is None:  # the n-th cell, row by row
            row, col = divmod(row - 1, self.shape[1])
            row, col = row + 1, col + 1
        return Range(self.sheet, (self.row + row - 1, self.column + col - 1))

    def get_address(self, row_absolute=True, col_absolute=True, external=False):
        def cell(r, c):
            col = xw_utils.col_name(c)
            return f"{'$' if col_absolute else ''}{col}{'$' if row_absolute else ''}{r}"

        text = cell(*self.first) + ("" if self.first == self.last else ":" + cell(*self.last))
        return f"{self.sheet.name}!{text}" if external else text

    @property
    def address(self) -> str:
        return self.get_address()

    @property
    def raw_value(self):
        return self.sheet.book.api("values", sheet=self.sheet.name, area=self.area)

    @raw_value.setter
    def raw_value(self, data) -> None:
        h, w = self.shape
        if not isinstance(data, (list, tuple)):
            data = [[data] * w for _ in range(h)]
        self.sheet.book.api("write", sheet=self.sheet.name, area=self.area, values=data)

    @property
    def formula(self):
        """As Excel's Range.Formula: a cell's formula in Excel's grammar, or its constant as
        text ("" when empty); a tuple of row tuples for several cells."""
        rows = self.sheet.book.api("formulas", sheet=self.sheet.name, area=self.area)
        if len(self) == 1:
            return rows[0][0]
        return tuple(tuple(row) for row in rows)

    @property
    def has_array(self):
        return self.sheet.book.api("has_array", sheet=self.sheet.name, area=self.area)


class Names(base_classes.Names):
    def __init__(self, book: Book, names: list[Name]):
        self.book, self.names = book, names

    @property
    def api(self) -> list[Name]:
        return self.names

    def __call__(self, name_or_index):
        if isinstance(name_or_index, int):
            return self.names[name_or_index - 1]
        for n in self.names:
            if n.name.lower() == str(name_or_index).lower():
                return n
        raise KeyError(name_or_index)

    def contains(self, name_or_index) -> bool:
        try:
            self(name_or_index)
        except (KeyError, IndexError):
            return False
        return True

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return iter(self.names)


class Name(base_classes.Name):
    def __init__(self, book: Book, info: dict):
        self.book, self.info = book, info

    @property
    def api(self) -> dict:
        return self.info

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def local_name(self) -> str:
        return self.name.rsplit("!", 1)[-1]

    @property
    def sheet(self) -> str | None:
        return self.info["sheet"]

    @property
    def refers_to(self) -> str:
        return self.info["refers_to"]

    @property
    def refers_to_range(self) -> Range:
        from excelnet.formula.parse import FormulaError, Ref, parse

        try:
            ref = parse(self.refers_to, self.sheet or "")
        except FormulaError:
            ref = None
        if not isinstance(ref, Ref) or ref.r1 is None or ref.c1 is None:
            raise ValueError(f"{self.name} refers to {self.refers_to}, not to cells")
        sheet = Sheet(self.book, ref.sheet)
        return Range(sheet, (ref.r0 + 1, ref.c0 + 1), (ref.r1 + 1, ref.c1 + 1))
