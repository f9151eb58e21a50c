"""Kaggle's Titanic passengers: the bundled files and the checks a user's CSV must pass."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from excelnet.errors import ExcelnetError

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


def read_csv(path: str | Path, what: str = "data") -> Csv:
    """Read a CSV file with a header row. Raises ExcelnetError naming the file (and the line):
    unreadable, not UTF-8 text, empty, not a CSV, a row of the wrong length, an empty or
    repeated header, no rows after the header. Rows that are entirely empty are skipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExcelnetError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExcelnetError(f"{path}: not a CSV file (not UTF-8 text)") from None
    if not text.strip():
        raise ExcelnetError(f"{path}: the file is empty")
    if "\0" in text:
        raise ExcelnetError(f"{path}: not a CSV file (it holds NUL bytes)")
    reader = csv.reader(io.StringIO(text, newline=""))
    records, line = [], 1
    try:
        for record in reader:
            records.append((line, record))
            line = reader.line_num + 1
    except csv.Error as e:
        raise ExcelnetError(f"{path}: line {reader.line_num}: not a CSV file ({e})") from None
    records = [(n, [v.strip() for v in r]) for n, r in records if any(v.strip() for v in r)]
    if not records:
        raise ExcelnetError(f"{path}: the file is empty")
    header = records[0][1]
    for i, name in enumerate(header):
        if not name:
            raise ExcelnetError(f"{path}: line 1, column {i + 1}: the header is empty")
        if name in header[:i]:
            raise ExcelnetError(f"{path}: line 1: the header names column {name!r} twice")
    body = records[1:]
    if not body:
        raise ExcelnetError(f"{path}: no {what} rows after the header")
    for n, row in body:
        if len(row) != len(header):
            raise ExcelnetError(
                f"{path}: line {n}: {len(row)} fields where the header has {len(header)}"
            )
    return Csv(path, header, [r for _, r in body], [n for n, _ in body])


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
