"""Kaggle's Titanic passengers: the bundled files and the checks a user's CSV must pass."""

from __future__ import annotations

import csv
import math
import os
import re
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from excelnet.errors import ExcelnetError
from excelnet.memory import available_memory

# Kaggle's train.csv columns, in the order the `data` sheet lays them out (A..L).
COLUMNS = [
    "PassengerId",
    "Survived",
    "Pclass",
    "Name",
    "Sex",
    "Age",
    "SibSp",
    "Parch",
    "Ticket",
    "Fare",
    "Cabin",
    "Embarked",
]
NUMERIC = ["PassengerId", "Survived", "Pclass", "Age", "SibSp", "Parch", "Fare"]
MAY_BE_MISSING = {"Age", "Fare", "Cabin", "Embarked"}
# What a table's CSV may write for a missing value (pandas' read_csv reads the same as NaN).
MISSING_MARKS = frozenset(
    [
        "",
        "NA",
        "N/A",
        "n/a",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "<NA>",
        "NaN",
        "nan",
        "-NaN",
        "-nan",
        "NULL",
        "null",
        "None",
    ]
)


def bundled(name: str = "train.csv") -> Path:
    """Path of a CSV shipped inside the package (train.csv or test.csv)."""
    return Path(str(resources.files(__package__).joinpath(name)))


@dataclass
class Csv:
    """A CSV file's header and rows, every field stripped; `lines` holds each row's line
    number in the file (for error messages)."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i] for row in self.rows]


# Peak memory of reading a CSV per byte of it (about 20: a Python string and a list slot per
# field): a CSV that cannot fit is refused before it is read.
MEMORY_PER_CSV_BYTE = 20
DECIMAL_COMMA = re.compile(r"-?[0-9]*,[0-9]+(?:[eE][-+]?[0-9]+)?")


def _open_text(path: Path):
    """The file as text (UTF-8, a BOM skipped), after the checks that need no reading."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ExcelnetError(f"{path}: cannot read: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ExcelnetError(f"{path}: a folder, not a CSV file")
    if not stat.S_ISREG(st.st_mode):
        raise ExcelnetError(f"{path}: not a regular file; excelnet reads CSV files")
    have = available_memory()
    if have is not None and st.st_size * MEMORY_PER_CSV_BYTE > have:
        raise ExcelnetError(
            f"{path}: {st.st_size / 1e9:.2f} GB; reading it needs about "
            f"{st.st_size * MEMORY_PER_CSV_BYTE / 1e9:.1f} GB of memory, and "
            f"{max(have, 0) / 1e9:.1f} GB is available"
        )
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as e:
        raise ExcelnetError(f"{path}: cannot read: {e.strerror}") from None


def _delimiter(path: Path, first: str) -> str:
    """The CSV's separator, from its header line: a comma; or a semicolon (Excel's CSV where
    the comma is the decimal separator, much of Europe) or a tab, when the header holds that
    and no comma (or more of that than commas)."""
    commas = first.count(",")
    for sep in (";", "\t"):
        if first.count(sep) > commas:
            return sep
    return ","


def iter_csv(
    path: str | Path,
    max_rows: int | None = None,
    max_columns: int | None = None,
    rows_why: str = "",
):
    """(header, rows): a CSV's header and an iterator of (line number, fields) for each row
    that is not entirely empty, every field stripped, read as a stream: refused (ExcelnetError
    naming the file and line) as soon as it is not UTF-8 text, holds a NUL byte, is not a CSV,
    has a row of the wrong length, or passes `max_rows` rows or `max_columns` columns. A file
    separated by semicolons (or tabs) is read as such, its decimal commas as points."""
    path = Path(path)
    f = _open_text(path)
    try:
        first = f.readline()
        while first and not first.strip():
            first = f.readline()
    except UnicodeDecodeError:
        f.close()
        raise ExcelnetError(f"{path}: not a CSV file (not UTF-8 text)") from None
    if not first.strip():
        f.close()
        raise ExcelnetError(f"{path}: the file is empty")
    sep = _delimiter(path, first)
    f.seek(0)
    if f.read(1) != "\ufeff":  # utf-8-sig: a BOM is skipped; seek(0) would read it again
        f.seek(0)
    reader = csv.reader(f, delimiter=sep)

    def records():
        line = 1
        try:
            for record in reader:
                yield line, record
                line = reader.line_num + 1
        except UnicodeDecodeError:
            raise ExcelnetError(
                f"{path}: line {reader.line_num + 1}: not a CSV file (not UTF-8 text)"
            ) from None
        except csv.Error as e:
            if "NUL" in str(e):
                raise ExcelnetError(f"{path}: not a CSV file (it holds NUL bytes)") from None
            raise ExcelnetError(f"{path}: line {reader.line_num}: not a CSV file ({e})") from None

    stream = records()
    header, head_line = None, 1
    for n, record in stream:
        if any(v.strip() for v in record):
            header, head_line = [v.strip() for v in record], n
            break
    if header is None:
        f.close()
        raise ExcelnetError(f"{path}: the file is empty")
    seen: set[str] = set()
    for i, name in enumerate(header):
        if not name:
            f.close()
            raise ExcelnetError(f"{path}: line {head_line}, column {i + 1}: the header is empty")
        if name in seen:
            f.close()
            raise ExcelnetError(f"{path}: line {head_line}: the header names column {name!r} twice")
        seen.add(name)
    if max_columns is not None and len(header) > max_columns:
        f.close()
        raise ExcelnetError(
            f"{path}: line {head_line}: {len(header):,} columns; an Excel sheet has "
            f"{max_columns:,} (A to XFD)"
        )

    def rows():
        count = 0
        try:
            for n, record in stream:
                row = [v.strip() for v in record]
                if not any(row):
                    continue
                if len(row) != len(header):
                    raise ExcelnetError(
                        f"{path}: line {n}: {len(row)} fields where the header has {len(header)}"
                    )
                count += 1
                if max_rows is not None and count > max_rows:
                    why = f" ({rows_why})" if rows_why else ""
                    raise ExcelnetError(
                        f"{path}: more than {max_rows:,} rows (line {n}); a workbook holds at "
                        f"most {max_rows:,}{why}"
                    )
                if sep != ",":  # no comma separates fields: a comma is a decimal point
                    row = [v.replace(",", ".") if DECIMAL_COMMA.fullmatch(v) else v for v in row]
                yield n, row
        finally:
            f.close()

    return header, rows()


def read_csv(
    path: str | Path,
    what: str = "data",
    max_rows: int | None = None,
    max_columns: int | None = None,
    rows_why: str = "",
) -> Csv:
    """Read a CSV file with a header row (see iter_csv). Raises ExcelnetError naming the file
    (and the line): unreadable, not UTF-8 text, empty, not a CSV, a row of the wrong length,
    an empty or repeated header, no rows after the header, past `max_rows` or `max_columns`.
    Rows that are entirely empty are skipped."""
    path = Path(path)
    header, stream = iter_csv(path, max_rows, max_columns, rows_why)
    rows, lines = [], []
    for n, row in stream:
        rows.append(row)
        lines.append(n)
    if not rows:
        raise ExcelnetError(f"{path}: no {what} rows after the header")
    return Csv(path, header, rows, lines)


def read_chunks(path: str | Path, size: int, what: str = "data", max_rows: int | None = None):
    """A CSV (see iter_csv) as its header and a stream of Csv tables of up to `size` rows
    each: any number of rows in bounded memory. The header is checked before this returns,
    the rows as they come; a file with none is refused at the end of the stream."""
    path = Path(path)
    header, stream = iter_csv(path, max_rows)

    def chunks():
        rows, lines, any_rows = [], [], False
        for n, row in stream:
            rows.append(row)
            lines.append(n)
            if len(rows) == size:
                any_rows = True
                yield Csv(path, header, rows, lines)
                rows, lines = [], []
        if rows:
            yield Csv(path, header, rows, lines)
        elif not any_rows:
            raise ExcelnetError(f"{path}: no {what} rows after the header")

    return header, chunks()


def number(path: Path, line: int, col: str, value: str) -> float:
    """A CSV field that must be a finite number."""
    try:
        x = float(value)
    except ValueError:
        raise ExcelnetError(
            f"{path}: line {line}, column {col}: {value!r} is not a number"
        ) from None
    if not math.isfinite(x):
        raise ExcelnetError(f"{path}: line {line}, column {col}: {value!r} is not a finite number")
    return x


def load_titanic(path: str | Path | None = None) -> pd.DataFrame:
    """Read Kaggle's train.csv (or a file of the same format) and check it cell by cell.

    Returns the 12 Kaggle columns in canonical order: numbers as float64, text as Python str,
    missing values as NaN/None. Raises ExcelnetError naming the file, line and column.
    """
    table = read_csv(Path(path) if path is not None else bundled(), what="passenger")
    path = table.path
    missing = [c for c in COLUMNS if c not in table.header]
    if missing:
        raise ExcelnetError(
            f"{path}: missing column(s) {', '.join(missing)} (expected Kaggle's train.csv header)"
        )
    index = {c: table.header.index(c) for c in COLUMNS}
    columns: dict[str, list] = {c: [] for c in COLUMNS}
    for line, row in zip(table.lines, table.rows, strict=True):
        for col in COLUMNS:
            columns[col].append(_cell(path, line, col, row[index[col]]))
    frame = pd.DataFrame(
        {c: pd.Series(v, dtype=float if c in NUMERIC else object) for c, v in columns.items()}
    )
    bad = frame.index[~frame["Survived"].isin([0, 1])]
    if len(bad):
        raise ExcelnetError(f"{path}: line {table.lines[bad[0]]}, column Survived: must be 0 or 1")
    return frame


def _cell(path: Path, line: int, col: str, value: str) -> float | str | None:
    if value == "":
        if col in MAY_BE_MISSING:
            return float("nan") if col in NUMERIC else None
        raise ExcelnetError(f"{path}: line {line}, column {col}: value is missing")
    return number(path, line, col, value) if col in NUMERIC else value
