"""Kaggle's Titanic passengers: the bundled files and the checks a user's CSV must pass."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import pandas as pd

from excelnet.errors import ExcelnetError

# Kaggle's train.csv columns, in the order the `data` sheet lays them out (A..L).
COLUMNS = [
    "PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
    "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked",
]  # fmt: skip
NUMERIC = ["PassengerId", "Survived", "Pclass", "Age", "SibSp", "Parch", "Fare"]
MAY_BE_MISSING = {"Age", "Fare", "Cabin", "Embarked"}


def bundled(name: str = "train.csv") -> Path:
    """Path of a CSV shipped inside the package (train.csv or test.csv)."""
    return Path(str(resources.files(__package__).joinpath(name)))


def load_titanic(path: str | Path | None = None) -> pd.DataFrame:
    """Read Kaggle's train.csv (or a file of the same format) and check it cell by cell.

    Returns the 12 Kaggle columns in canonical order: numbers as float64, text as Python str,
    missing values as NaN/None. Raises ExcelnetError naming the file, line and column.
    """
    path = Path(path) if path is not None else bundled()
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
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as e:
        raise ExcelnetError(f"{path}: not a CSV file ({e})") from None
    header = [h.strip() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ExcelnetError(
            f"{path}: missing column(s) {', '.join(missing)} (expected Kaggle's train.csv header)"
        )
    body = [r for r in rows[1:] if any(v.strip() for v in r)]
    if not body:
        raise ExcelnetError(f"{path}: no passenger rows after the header")
    index = {c: header.index(c) for c in COLUMNS}
    table: dict[str, list] = {c: [] for c in COLUMNS}
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ExcelnetError(
                f"{path}: line {line}: {len(row)} fields where the header has {len(header)}"
            )
        for col in COLUMNS:
            table[col].append(_cell(path, line, col, row[index[col]].strip()))
    frame = pd.DataFrame(
        {c: pd.Series(v, dtype=float if c in NUMERIC else object) for c, v in table.items()}
    )
    bad = frame.index[~frame["Survived"].isin([0, 1])]
    if len(bad):
        raise ExcelnetError(f"{path}: line {bad[0] + 2}, column Survived: must be 0 or 1")
    return frame


def _cell(path: Path, line: int, col: str, value: str) -> float | str | None:
    if value == "":
        if col in MAY_BE_MISSING:
            return float("nan") if col in NUMERIC else None
        raise ExcelnetError(f"{path}: line {line}, column {col}: value is missing")
    if col not in NUMERIC:
        return value
    try:
        number = float(value)
    except ValueError:
        raise ExcelnetError(
            f"{path}: line {line}, column {col}: {value!r} is not a number"
        ) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ExcelnetError(f"{path}: line {line}, column {col}: {value!r} is not a finite number")
    return number
