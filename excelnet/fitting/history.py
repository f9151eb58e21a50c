"""The `history` sheet: the losses of every fit, appended fit after fit, with a line chart.

Six columns per model sheet — epoch, training loss, validation loss, accuracy, the method
that fitted it, and the largest constraint violation — so each model's curve is one contiguous
range. A history sheet of four columns per model (before methods and constraints were
recorded) is read and carried on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from excelnet.errors import ExcelnetError, where

if TYPE_CHECKING:
    from excelnet.fitting.train import SheetFit
    from excelnet.formula.book import Book
    from excelnet.xlsx.sheets import Changes

SHEET = "history"
SUFFIXES = ["epoch", "training loss", "validation loss", "accuracy", "method", "max violation"]
# Number formats that stay readable over many orders of magnitude (Excel's conditional
# sections): a loss as 0.00000, in E notation only past 100,000 or under 0.0001; a constraint's
# violation the same, and 0 as 0
LOSS = "[>=100000]0.00E+00;[>=0.0001]0.00000;0.00E+00"
VIOLATION = "[>=0.0001]0.00000;[=0]0;0.0E+00"
FORMATS = ["0", "0.00000", "0.00000", "0.0%", None, VIOLATION]  # number formats of the columns
WIDTH = len(SUFFIXES)
OLD_WIDTH = 4  # the layout before method and violation
Row = tuple[float, float | None, float | None, float | None, str | None, float | None]


def _existing(book: Book) -> dict[str, list[Row]]:
    """The runs already in the history sheet, per model sheet."""
    sheet = book.sheets.get(SHEET)
    if sheet is None:
        return {}
    headers = {c: v for (r, c), v in sheet.values.items() if r == 0}
    groups: dict[str, list[Row]] = {}
    c, end = 0, max(headers, default=-1) + 1
    while c < end:
        h = headers.get(c)
        name = h[: -len(SUFFIXES[0]) - 1] if isinstance(h, str) else None
        width = 0
        while (
            name is not None
            and width < WIDTH
            and headers.get(c + width) == (f"{name} {SUFFIXES[width]}")
        ):
            width += 1
        if width not in (OLD_WIDTH, WIDTH):
            raise ExcelnetError(
                f"{where(book.path, SHEET)}: a sheet named {SHEET!r} exists "
                f"that excelnet did not write; rename it and fit again"
            )
        rows = []
        for r in range(1, sheet.max_row + 1):
            cells = [sheet.values.get((r, c + i)) for i in range(width)] + [None] * (WIDTH - width)
            if cells[0] is None:
                break
            rows.append(
                tuple(
                    v if isinstance(v, str if i == 4 else float) else None
                    for i, v in enumerate(cells)
                )
            )
        groups[name] = rows
        c += width
    return groups


def _merge(groups: dict[str, list[Row]], results: list[SheetFit]) -> dict[str, list[Row]]:
    for res in results:
        rows = groups.setdefault(res.sheet, [])
        offset = rows[-1][0] if rows else 0.0
        new = [(offset + e, t, v, a, res.method, x) for e, t, v, a, x in res.history]
        if rows and new:
            new = new[1:]  # epoch 0 of this fit is the last row of the one before
        rows.extend(new)
    return groups


def history_table(
    book: Book, results: list[SheetFit]
) -> tuple[dict[str, list[Row]], list[str], list[list[float | str | None]]]:
    """The history sheet after these fits: the runs per model sheet, the header, the columns."""
    groups = _merge(_existing(book), results)
    header = [f"{n} {s}" for n in groups for s in SUFFIXES]
    columns = [[row[i] for row in groups[n]] for n in groups for i in range(WIDTH)]
    return groups, header, columns


def add_history(changes: Changes, path: Path, book: Book, results: list[SheetFit]) -> None:
    """Write the updated history sheet (into `changes`)."""
    from excelnet.xlsx.sheets import render

    groups, header, columns = history_table(book, results)
    names = list(groups)

    def chart(wb):
        ch = wb.add_chart({"type": "scatter", "subtype": "straight"})
        for g, n in enumerate(names):
            last = len(groups[n])
            for i, label in ((1, "training"), (2, "validation")):
                if last and any(row[i] is not None for row in groups[n]):
                    ch.add_series(
                        {
                            "name": f"{n} {label} loss",
                            "categories": [SHEET, 1, WIDTH * g, last, WIDTH * g],
                            "values": [SHEET, 1, WIDTH * g + i, last, WIDTH * g + i],
                            "line": {"dash_type": "dash"} if label == "validation" else {},
                        }
                    )
        ch.set_title({"name": "Loss during excelnet fit"})
        ch.set_x_axis({"name": "epoch", "min": 0})
        ch.set_y_axis({"name": "loss", "min": 0})
        ch.set_size({"width": 720, "height": 400})
        return ch

    changes.place(path, SHEET, render(SHEET, header, columns, chart, FORMATS * len(names)))
