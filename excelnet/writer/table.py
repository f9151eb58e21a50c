"""A table's workbook: data → features → linear, nn and mmult model sheets, all live formulas.

The Titanic workbook and `excelnet build table` share this layout; what differs is the recipe
(excelnet.writer.features for Titanic, excelnet.writer.recipe for any table): which statistics
and features,
each a formula with its pandas twin. This module lays them out, styles them, and stores each
formula's value (computed by the twin) so programs that do not recalculate see the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from excelnet.data import read_csv
from excelnet.errors import ExcelnetError
from excelnet.formula.parse import ROWS as SHEET_ROWS
from excelnet.writer import (
    check_seed,
    define_metrics,
    define_solver_model,
    new_workbook,
    print_setup,
    write_header,
    write_wrapped,
)
from excelnet.writer import macros as macros_
from excelnet.writer.features import (
    DATA_SHEET,
    FEATURES_SHEET,
    VALID_HEADER,
    Feature,
    Stat,
    validation_split,
)
from excelnet.writer.nets import (
    TABLE_ROW,
    Frame,
    Model,
    metric_formulas,
    metrics,
    mmult_formula,
    models,
)
from excelnet.writer.recipe import (
    choose_rules,
    choose_target,
    stats_and_features,
    text_literal,
    typed,
)
from excelnet.xlsx.files import available_memory, refuse_existing
from excelnet.xlsx.text import MAX_CELL_CHARS, MAX_COLUMNS, MAX_FORMULA_CHARS, check_cell_text

# Workbook-level names that say which data column is the id and which the target (each names
# the column's header cell on the data sheet): `excelnet predict --kaggle` reads them.
ID_NAME, TARGET_NAME = "excelnet_id", "excelnet_target"
MAX_ROWS = SHEET_ROWS - TABLE_ROW  # data rows the model sheets can hold below their header
ROWS_WHY = f"a sheet holds {SHEET_ROWS:,} rows; the model sheets start at row {TABLE_ROW + 1}"
# Peak memory of a build per cell it writes (measured: 190 bytes on a 150,000-row table)
MEMORY_PER_CELL = 200
ABOUT_WIDTH = 80  # characters: the about sheet's one column, a portrait page wide at 100%


@dataclass(frozen=True)
class Recipe:
    """How a table becomes a workbook: its data columns, statistics and features, the model
    frame, and how the model sheets read the target."""

    columns: list[str]  # the data sheet's headers, in order
    stats: list[Stat]
    features: list[Feature]
    frame: Frame
    # data-sheet row (1-based) -> the target cell's formula on a model sheet, and its values
    target_formula: Callable[[int], str]
    target: Callable[[pd.DataFrame], np.ndarray]
    about: list[tuple[str, str]]  # the about sheet: (text, style) lines
    widths: list[int] | None = None  # data sheet column widths (default: from the content)

    def data_letter(self, name: str) -> str:
        return xl_col_to_name(self.columns.index(name))

    @property
    def stats_col(self) -> int:
        """features!… column of the statistics table, one empty column after Valid."""
        return len(self.features) + 2


def compute_stats(recipe: Recipe, df: pd.DataFrame) -> dict:
    return {s.name: s.compute(df) for s in recipe.stats}


def compute_features(recipe: Recipe, df: pd.DataFrame, stats: dict) -> np.ndarray:
    """The n×k feature matrix, exactly as the `features` sheet computes it."""
    columns = [np.asarray(f.compute(df, stats), dtype=float) for f in recipe.features]
    return np.column_stack([np.broadcast_to(c, (len(df),)) for c in columns])


def initial_parameters(seed: int, n: int, k: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The seeded validation split and each model's starting parameters, uniform in (-0.5, 0.5).
    The mmult net starts from the nn net's weights (transposed): the same net, the same numbers."""
    rng = np.random.default_rng(seed)
    valid = validation_split(n, rng)
    linear = rng.uniform(-0.5, 0.5, size=(1, k))
    nn = rng.uniform(-0.5, 0.5, size=(2, k))
    return valid, {"linear": linear, "nn": nn, "mmult": nn.T.copy()}


def check_limits(source: Path, df: pd.DataFrame, recipe: Recipe, macros: bool = False) -> None:
    """Refuse, before anything is written, a workbook past Excel's limits: a sheet wider than
    16,384 columns (XlsxWriter drops what is past XFD without a word), a text longer than a
    cell holds (it cuts it), a formula longer than Excel reads."""
    n, frame = len(df), recipe.frame
    if n > MAX_ROWS:
        raise ExcelnetError(
            f"{source}: {n:,} rows; a workbook holds at most {MAX_ROWS:,} ({ROWS_WHY})"
        )
    k = len(recipe.features)
    widths = {
        DATA_SHEET: (len(recipe.columns), f"the CSV has {len(recipe.columns):,} columns"),
        FEATURES_SHEET: (
            recipe.stats_col + 2,
            f"{k:,} features (Ones, the numbers and a dummy column per category value)",
        ),
    }
    for m in models(frame):
        (_, pc), (_, pw) = m.param_origin, m.param_shape
        width = max(pc + pw, frame.metrics_col + len(frame.metrics) + (3 if macros else 0))
        widths[m.name] = (width, f"{k:,} features, each with its weights")
    for sheet, (width, why) in widths.items():
        if width > MAX_COLUMNS:
            raise ExcelnetError(
                f"{source}: sheet {sheet} would need {width:,} columns, and an Excel sheet has "
                f"{MAX_COLUMNS:,} (A to XFD): {why}; leave columns out (--drop) or split the table"
            )
    for name in recipe.columns:
        check_cell_text(name, f"{source}: line 1, the header of column {name[:20]!r}…")
        col = df[name]
        if col.dtype == object:
            lengths = col.map(lambda v: len(v) if isinstance(v, str) else 0)
            if len(lengths) and lengths.max() > MAX_CELL_CHARS:
                i = int(lengths.to_numpy().argmax())
                check_cell_text(col.iloc[i], f"{source}: row {i + 1} of the data, column {name}")
    for f in recipe.features:
        check_cell_text(f.name, f"{source}: feature {f.name[:20]!r}…")
    for text, _ in recipe.about:
        check_cell_text(text, f"{source}: the about sheet's line {text[:20]!r}…")
    cells = n * (len(recipe.columns) + k + 1 + sum(len(m.headers) for m in models(frame)))
    need, have = cells * MEMORY_PER_CELL, available_memory()
    if have is not None and need > have:
        raise ExcelnetError(
            f"{source}: {n:,} rows make {cells:,} cells, which need about {need / 1e9:.1f} GB "
            f"of memory to build; {max(have, 0) / 1e9:.1f} GB is available"
        )
    formulas = [(s.label, s.formula(n)) for s in recipe.stats]
    formulas += [(f.name, f.formula(n + 1)) for f in recipe.features]
    for label, text in formulas:
        if len(text) - 1 > MAX_FORMULA_CHARS:
            raise ExcelnetError(
                f"{source}: the formula of {label} would be {len(text) - 1:,} characters long; "
                f"Excel reads formulas of up to {MAX_FORMULA_CHARS:,} (its values are long "
                f"texts: leave the column out with --drop)"
            )


def write_book(
    tmp: Path, df: pd.DataFrame, recipe: Recipe, seed: int, macros: bool = False
) -> None:
    """Write the whole workbook for `df` to `tmp` (the caller renames it into place). `macros`:
    xlwings' VBA project, and the Action and Seed cells and the Train button on each model
    sheet, right of its metrics (see excelnet.writer.macros)."""
    n = len(df)
    stats = compute_stats(recipe, df)
    x = compute_features(recipe, df, stats)
    valid, params = initial_parameters(seed, n, len(recipe.features))
    wb, fmt = new_workbook(tmp)
    if macros:
        macros_.add_vba(wb)
    about = wb.add_worksheet("about")
    _data_sheet(wb.add_worksheet(DATA_SHEET), df, recipe, fmt)
    _features_sheet(wb, wb.add_worksheet(FEATURES_SHEET), x, stats, valid, recipe, fmt)
    target = np.asarray(recipe.target(df), dtype=float)
    frame = recipe.frame
    controls = frame.metrics_col + len(frame.metrics) + 1  # one empty column after the metrics
    for m in models(frame):
        ws = wb.add_worksheet(m.name)
        _model_sheet(wb, ws, m, df, x, target, valid, params[m.name], recipe, fmt)
        if macros:
            macros_.add_controls(wb, ws, m.name, 0, controls, seed, fmt)
            ws.set_column(controls, controls + 1, 10)
    lines = recipe.about
    if macros:
        moves = "the yellow cells move"
        lines = [*lines, *((text, "wrap") for text in macros_.about(0, controls, moves))]
    finish_book(wb, about, recipe, lines, macros, fmt)


def finish_book(wb, about, recipe: Recipe, lines: list, macros: bool, fmt) -> None:
    """What every table workbook ends with: the id and target columns' names, the about
    sheet's lines, the macros' settings sheet; then the file written."""
    frame = recipe.frame
    for name, header in ((ID_NAME, frame.id), (TARGET_NAME, frame.target)):
        if header is not None:
            wb.define_name(name, f"={DATA_SHEET}!${recipe.data_letter(header)}$1")
    about.set_column(0, 0, ABOUT_WIDTH)
    for i, (text, style) in enumerate(lines):
        if style == "wrap":
            write_wrapped(about, i, text, fmt[style], ABOUT_WIDTH)
        elif text:
            about.write_string(i, 0, text, fmt[style])
    print_setup(about, landscape=False)
    if macros:
        macros_.add_conf_sheet(wb, fmt)
    about.activate()
    wb.close()


def _cells(values: list) -> list:
    """Missing stays an empty cell (ISBLANK sees it); text stays text, even "=…" or "@…"."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def _data_sheet(ws, df: pd.DataFrame, recipe: Recipe, fmt) -> None:
    write_header(ws, 0, 0, recipe.columns, fmt["header"])
    for c, name in enumerate(recipe.columns):
        ws.write_column(1, c, _cells(df[name].tolist()))
    ws.freeze_panes(1, 0)
    data_widths(ws, df, recipe)
    print_setup(ws, header_row=0)


def data_widths(ws, df: pd.DataFrame, recipe: Recipe) -> None:
    """The data sheet's columns as the recipe says, else as wide as each one's header and first
    values (between 6 and 45 characters)."""
    widths = recipe.widths or [
        min(45, max(6, len(name) + 2, *(len(str(v)) + 1 for v in df[name].head(200).tolist())))
        for name in recipe.columns
    ]
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)


def _features_sheet(wb, ws, x: np.ndarray, stats: dict, valid: np.ndarray, recipe: Recipe, fmt):
    n, k = x.shape
    write_header(ws, 0, 0, [f.name for f in recipe.features] + [VALID_HEADER], fmt["header"])
    for c, f in enumerate(recipe.features):
        formulas = [f.formula(i + 2) for i in range(n)]
        ws.write_formulas(1, c, formulas, x[:, c].tolist(), fmt["feature"])
    ws.write_column(1, k, valid.tolist(), fmt["integer"])
    formulas = [s.formula(n) for s in recipe.stats]
    stats_block(wb, ws, recipe, stats, formulas, k, recipe.stats_col, "the data sheet", fmt)


def stats_block(wb, ws, recipe: Recipe, stats: dict, formulas: list[str], k: int, col: int,
                source: str, fmt) -> None:  # fmt: skip
    """The features sheet's statistics at `col` (their `formulas`, each a workbook name the
    features use), the note saying they come from `source`, the columns' widths and the page
    (k: the feature columns and the validation flag's)."""
    write_header(ws, 0, col, ["Statistic", "Value"], fmt["header"])
    for i, (s, formula) in enumerate(zip(recipe.stats, formulas, strict=True), start=1):
        ws.write_string(i, col, s.label)
        ws.write_formula(i, col + 1, formula, fmt["number"], stats[s.name])
        cell = xl_rowcol_to_cell(i, col + 1, row_abs=True, col_abs=True)
        wb.define_name(s.name, f"={FEATURES_SHEET}!{cell}")
    note = f"Computed from {source}; the features use them by name."
    ws.write_string(len(recipe.stats) + 2, col, note, fmt["note"])
    ws.freeze_panes(1, 0)
    ws.set_column(0, k, 9)
    ws.set_column(col, col, 24)
    ws.set_column(col + 1, col + 1, 10)
    print_setup(ws, header_row=0)


def _model_sheet(
    wb,
    ws,
    m: Model,
    df: pd.DataFrame,
    x: np.ndarray,
    target: np.ndarray,
    valid: np.ndarray,
    p: np.ndarray,
    recipe: Recipe,
    fmt,
) -> None:
    n, frame = len(df), m.frame
    columns = m.forward(x, p)
    scores = metrics(columns[-1], target, valid, frame.binary)
    names = frame.features

    # Parameters: the cells to change (by hand, with Solver, or with `excelnet fit`).
    (pr, pc), (ph, pw) = m.param_origin, m.param_shape
    if m.name == "mmult":
        write_header(ws, pr - 1, pc - 1, ["Feature", "Unit 1", "Unit 2"], fmt["header"])
        for i, name in enumerate(names):
            ws.write_string(pr + i, pc - 1, name)
        ws.write_string(pr + ph + 1, pc - 1, "← yellow cells: the parameters", fmt["note"])
    else:
        write_header(ws, pr - 1, pc - 1, ["Parameters", *names], fmt["header"])
        labels = ["Weights"] if ph == 1 else [f"Unit {i + 1}" for i in range(ph)]
        for i, label in enumerate(labels):
            ws.write_string(pr + i, pc - 1, label, fmt["header"])
        ws.write_string(pr + ph, pc - 1, "↑ yellow cells: the parameters", fmt["note"])
    for i in range(ph):
        for j in range(pw):
            ws.write_number(pr + i, pc + j, float(p[i, j]), fmt["param"])

    # Metrics over the table; the training loss is the Solver objective.
    mc = frame.metrics_col
    write_header(ws, 0, mc, frame.metrics, fmt["header"])
    for j, (formula, value) in enumerate(zip(metric_formulas(m, n), scores["values"], strict=True)):
        style = fmt["metric"] if j < 2 else fmt["metric_pct"]
        ws.write_formula(1, mc + j, formula, style, value)
    loss = xl_rowcol_to_cell(1, mc, row_abs=True, col_abs=True)
    define_solver_model(wb, m.name, loss, m.params_ref)
    cells = [xl_rowcol_to_cell(1, mc + j, row_abs=True, col_abs=True) for j in (1, 3)]
    define_metrics(wb, m.name, cells[0], cells[1] if frame.binary else None)
    wb.define_name(f"{m.name}_loss", f"={m.name}!{loss}")
    wb.define_name(f"{m.name}_params", f"={m.name}!{m.params_ref}")

    # One row per data row.
    top = TABLE_ROW - 1  # 0-based header row
    write_header(ws, top, 0, m.headers, fmt["header"])
    valid_col = xl_col_to_name(len(recipe.features))
    lead = [
        (recipe.target_formula, target.tolist()),
        (lambda d: f"={FEATURES_SHEET}!{valid_col}{d}", valid.tolist()),
    ]
    if frame.id is not None:
        ids = _cells(df[frame.id].tolist())
        lead.insert(0, (lambda d: f"={DATA_SHEET}!{recipe.data_letter(frame.id)}{d}", ids))
    for c, (formula, got) in enumerate(lead):
        formulas = [formula(i + 2) for i in range(n)]
        got = [0.0 if v is None else v if isinstance(v, str) else float(v) for v in got]
        _write_lead(ws, top + 1, c, formulas, got, fmt["integer"])
    rows = range(TABLE_ROW + 1, TABLE_ROW + 1 + n)  # 1-based sheet rows; data row = i + 2
    pred = m.column("Prediction")
    tcol = m.column(frame.target)
    score_formulas = [lambda r: f"=({pred}{r}-{tcol}{r})^2"]
    values = [v.tolist() for v in (*columns, scores["sq"])]
    if frame.binary:
        score_formulas.append(lambda r: f"=IF(({pred}{r}>0.5)=({tcol}{r}=1),1,0)")
        values.append(scores["ok"].tolist())
    per_row = [[*m.formulas(r, m), *(f(r) for f in score_formulas)] for r in rows]
    first = len(frame.lead)
    k = len(m.hidden) + 1  # hidden columns + Prediction
    for j, (formulas, got) in enumerate(zip(zip(*per_row, strict=True), values, strict=True)):
        if formulas[0] is not None:
            style = fmt["integer"] if j == k + 1 else fmt["number"]
            ws.write_formulas(top + 1, first + j, list(formulas), got, style)
    if m.name == "mmult":
        a = m.headers.index("MMULT 1")
        ws.write_array_formula(
            top + 1, a, top + n, a + 1, mmult_formula(n, m), fmt["number"], values[0][0]
        )
        # the array's other cells carry their values, as Excel stores them
        ws.write_column(top + 2, a, values[0][1:], fmt["number"])
        ws.write_column(top + 1, a + 1, values[1], fmt["number"])
    ws.freeze_panes(TABLE_ROW, 0)
    ws.set_column(0, len(m.headers) - 1, 12)
    ws.set_column(mc, mc + len(frame.metrics) - 1, 18)
    print_setup(ws, header_row=top)


def _write_lead(ws, row: int, col: int, formulas: list[str], values: list, style) -> None:
    """A leading column (id, target, Valid): formulas with their cached values, text or numbers."""
    if not any(isinstance(v, str) for v in values):
        ws.write_formulas(row, col, formulas, values, style)
        return
    for r, (f, v) in enumerate(zip(formulas, values, strict=True), start=row):
        ws.write_formula(r, col, f, style, v)


# -- any table: `excelnet build table` ---------------------------------------------------------


def build_table(
    path: str | Path | None = None,
    csv: str | Path = "train.csv",
    target: str = "",
    id: str | None = None,
    drop: list[str] | tuple[str, ...] = (),
    seed: int = 0,
    macros: bool = False,
    force: bool = False,
) -> Path:
    """Write the lesson's workbook for any CSV to `path` (default: the CSV's name, .xlsx) and
    return the path: a data sheet, features chosen per column by the rules of excelnet.writer.recipe
    (stated in the about sheet), a validation split and the linear, nn and mmult model sheets,
    each with its Solver model. `target` is the column to predict (numbers, or two values).
    `macros`: an .xlsm (default name: the CSV's, as a Python module name) with a Train button
    on each model sheet and the companion module beside it (see excelnet.writer.macros).
    `force` replaces a read-only file."""
    check_seed(seed)
    if path is None:  # with macros, a name that xlwings' SampleCall can import
        stem = Path(csv).stem
        path = f"{macros_.module_name(stem)}.xlsm" if macros else f"{stem}.xlsx"
    refuse_existing(Path(path), force)  # before the work
    # read as a stream, refused as soon as a sheet could not hold it
    table = read_csv(csv, max_rows=MAX_ROWS, max_columns=MAX_COLUMNS, rows_why=ROWS_WHY)
    df = typed(table)
    goal = choose_target(table, df, target)
    rules = choose_rules(table, df, target, id, list(drop))
    stats, features = stats_and_features(rules, table.header)
    if len(features) == 1:
        why = "; ".join(f"{r.column}: {r.note}" for r in rules if r.kind != "target")
        raise ExcelnetError(f"{table.path}: no usable feature column ({why})")
    letter = xl_col_to_name(table.header.index(target))
    if goal.positive is None:
        target_formula = lambda d: f"={DATA_SHEET}!{letter}{d}"  # noqa: E731
        values = lambda df: df[target].to_numpy(float)  # noqa: E731
    else:
        positive = goal.positive
        literal = text_literal(positive)
        target_formula = lambda d: f"=IF({DATA_SHEET}!{letter}{d}={literal},1,0)"  # noqa: E731
        values = lambda df: (df[target].str.lower() == positive.lower()).to_numpy(float)  # noqa: E731
    frame = Frame([f.name for f in features], id, target, goal.binary)
    recipe = Recipe(
        table.header,
        stats,
        features,
        frame,
        target_formula,
        values,
        _table_about(table, rules, goal, frame, seed),
    )
    check_limits(table.path, df, recipe, macros)
    write = lambda tmp: write_book(tmp, df, recipe, seed, macros)  # noqa: E731
    return macros_.save_book(path, write, macros, force)


def _table_about(table, rules, goal, frame: Frame, seed: int) -> list[tuple[str, str]]:
    if goal.positive is not None:
        kind = (
            f"a 0/1 target ({goal.column} = {goal.positive} counts as 1, "
            f"{goal.negative} as 0): squared error and accuracy"
        )
    elif goal.binary:
        kind = f"a 0/1 target ({goal.column}): squared error and accuracy"
    else:
        kind = f"a number to predict ({goal.column}): squared error"
    lines = [
        (f"excelnet: the fast.ai lesson's models for {table.path.name}, as live formulas", "title"),
        (
            f"{len(table.rows)} rows; {kind}. Validation split and starting parameters drawn "
            f"with seed {seed}.",
            "wrap",
        ),
        ("", "text"),
        ("data — the CSV as values. Empty cells are missing values; text is always text.", "wrap"),
        (
            "features — the model inputs, computed by formulas from data, one rule per column "
            "(chosen from the data when the workbook was built): Ones (a constant, the bias), "
            "then the numbers, then the dummy columns. The statistics the rules use (modes, "
            "maxima) are named cells beside them. Column Valid marks the 20% of rows held out "
            "for validation (1 = validation).",
            "wrap",
        ),
        ("", "text"),
        ("The rule of each column", "title"),
        *((f"{r.column} — {r.note}", "wrap") for r in rules),
        ("", "text"),
        (
            "linear — prediction = SUMPRODUCT(features, weights); nn — two ReLU units "
            "MAX(0, SUMPRODUCT(features, weights)), added; mmult — the same net as one array "
            f"formula MMULT(features, {frame.k}×2 weights), ReLU, sum. The loss is the mean "
            "squared error over the training rows.",
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
            "Python: excelnet fit BOOK.xlsx — fits every model sheet as Solver would (L-BFGS; "
            "--lr 0.1 for the lesson's gradient descent) and writes the fitted parameters back; "
            "excelnet predict BOOK.xlsx --sheet nn --csv "
            "new.csv — the fitted model applied to new rows.",
            "wrap",
        ),
    ]
    return lines
