"""The Titanic workbook: the lesson's recipe (excelnet.writer.features) laid out by writer.table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from excelnet.data import COLUMNS, load_titanic
from excelnet.errors import ExcelnetError
from excelnet.writer import check_seed
from excelnet.writer.features import DATA_SHEET, FEATURE_NAMES, FEATURES, STATS
from excelnet.writer.macros import save_book
from excelnet.writer.nets import TABLE_ROW, Frame
from excelnet.writer.table import MAX_ROWS, SHEET_ROWS, Recipe, write_book

MAX_PASSENGERS = MAX_ROWS
FRAME = Frame(FEATURE_NAMES, "PassengerId", "Survived", binary=True)


def recipe(n: int, seed: int) -> Recipe:
    return Recipe(
        columns=COLUMNS,
        stats=STATS,
        features=FEATURES,
        frame=FRAME,
        target_formula=lambda d: f"={DATA_SHEET}!B{d}",
        target=lambda df: df["Survived"].to_numpy(),
        about=_about(n, seed),
        widths=[11, 9, 7, 45, 7, 6, 6, 6, 18, 9, 12, 9],
    )


def build_titanic(
    path: str | Path = "titanic.xlsx",
    csv: str | Path | None = None,
    seed: int = 0,
    passengers: int | None = None,
    macros: bool = False,
    force: bool = False,
    tables: bool = False,
) -> Path:
    """Write the Titanic workbook to `path` (replaced atomically) and return the path.
    `passengers` resamples the rows (with replacement, seeded) to that many: the same
    formulas at any scale. `macros`: an .xlsm with a Train button on each model sheet and the
    companion module beside it (see excelnet.writer.macros). `force` replaces a read-only
    file. `tables`: laid out as the course lays it out, in Excel Tables with structured
    references (see excelnet.writer.tables); the same models and numbers."""
    check_seed(seed)
    if passengers is not None and not 1 <= passengers <= MAX_PASSENGERS:
        raise ExcelnetError(
            f"passengers must be from 1 to {MAX_PASSENGERS:,} (a sheet holds "
            f"{SHEET_ROWS:,} rows; the model sheets start at row {TABLE_ROW + 1}), "
            f"not {passengers:,}"
        )
    df = load_titanic(csv)
    if passengers is not None:
        rows = np.random.default_rng([seed, 1]).integers(0, len(df), size=passengers)
        df = df.iloc[rows].reset_index(drop=True)
    book = recipe(len(df), seed)
    if tables:
        from excelnet.writer.tables import write_tables_book

        def write(tmp: Path) -> None:
            write_tables_book(tmp, df, book, seed, macros, rows_name="Passengers")

        return save_book(path, write, macros, force)
    return save_book(path, lambda tmp: write_book(tmp, df, book, seed, macros), macros, force)


def _about(n: int, seed: int) -> list[tuple[str, str]]:
    return [
        ("excelnet: the fast.ai lesson's Titanic models as live formulas", "title"),
        (
            f"{n} passengers from Kaggle's Titanic train.csv; validation split and starting "
            f"parameters drawn with seed {seed}.",
            "text",
        ),
        ("", "text"),
        ("data — the passengers as Kaggle gives them. Empty cells are missing values.", "wrap"),
        (
            "features — the model inputs, computed by formulas from data: Ones (a constant, the "
            "bias), Age (missing ages → the mode of Age, then ÷ the maximum Age), SibSp, Parch, "
            "LogFare (LOG10(Fare+1) ÷ its maximum), and dummy variables Male, Pclass_1, Pclass_2, "
            "Embark_S, Embark_C (missing Embarked → its most common value). Column Valid marks the "
            "20% of passengers held out for validation (1 = validation). Paste another passenger "
            "into data and its features follow.",
            "wrap",
        ),
        (
            "linear — prediction = SUMPRODUCT(features, weights); squared error against Survived; "
            "the loss is the mean squared error over the training rows.",
            "wrap",
        ),
        (
            "nn — a neural net: two ReLU units MAX(0, SUMPRODUCT(features, weights)), added "
            "together, then the same loss.",
            "wrap",
        ),
        (
            "mmult — the same neural net written as matrix multiplication: one array formula "
            "MMULT(features, 10×2 weights) for all passengers, then ReLU, sum and loss.",
            "wrap",
        ),
        ("", "text"),
        (
            "On each model sheet the yellow cells are the parameters: change them and watch the "
            "predictions and the loss change. Row 2 shows training and validation loss and "
            "accuracy (a prediction above 0.5 counts as 'survived').",
            "wrap",
        ),
        ("", "text"),
        ("How to train a model sheet", "title"),
        (
            "Excel: Data → Solver. The Solver model is stored on each model sheet (minimise the "
            "training loss by changing the yellow cells), so Solver opens filled in: press Solve.",
            "wrap",
        ),
        (
            "Python: excelnet fit titanic.xlsx  — reads these formulas, fits them in torch (with "
            "L-BFGS, as Solver would; --lr 0.1 for the lesson's gradient descent; on the GPU when "
            "there is one) and writes the fitted parameters back into the yellow cells. Add "
            "--sheet nn to fit one sheet.",
            "wrap",
        ),
    ]
