"""The one error type users see: a single clear line, never a traceback."""


class ExcelnetError(Exception):
    """Bad input or a refused operation. The CLI prints it as one line and exits with code 2.
    `command_line` is the same message in the command's words, where they differ (an option
    is --force there, force=True in Python)."""

    def __init__(self, message: str, command_line: str | None = None):
        super().__init__(message)
        self.command_line = command_line or message


def where(path: object, sheet: str | None = None, cell: str | None = None) -> str:
    """'file.xlsx, sheet nn, cell B2' — the prefix every error message starts with."""
    parts = [str(path)]
    if sheet is not None:
        parts.append(f"sheet {sheet}")
    if cell is not None:
        parts.append(f"cell {cell}")
    return ", ".join(parts)


class ExcelnetWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints one line)."""


class WorkbookGone(ExcelnetError):
    """A live workbook stopped answering: its application quit or the workbook was closed."""


class NotSolved(ExcelnetError):
    """A fit ended without an answer to write: no point meets the constraints, an LP is
    unbounded, or the best point shows an error value. The CLI exits with code 3. `results`:
    every model's SheetFit (its `solution` says which); `written`: whether the file was
    written all the same (keep_infeasible: the point closest to feasible)."""

    exit_code = 3

    def __init__(self, message: str, results: list, written: bool):
        super().__init__(message)
        self.results = results
        self.written = written
