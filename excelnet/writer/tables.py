"""The lesson's workbook laid out as the course lays it out, with Excel Tables: the data as a
table, the features as a table of calculated columns over it, and on each model sheet the rows
with their features as a table whose columns are formulas of structured references
(Linear[[#This Row],[Age]]), the parameters beside it, each loss an AVERAGEIF over the table's
columns. The same recipe, numbers and seed as excelnet.writer.table's layout: the same losses.

Every structured reference is written in the form files store ([[#This Row],[x]], never @),
which Excel 2010+ and LibreOffice 7+ both read; the MMULT stays a legacy array formula (a table
cannot hold one: it sits beside the table)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from excelnet.writer import (
    define_metrics,
    define_solver_model,
    new_workbook,
    print_setup,
    write_header,
)
from excelnet.writer import macros as macros_
from excelnet.writer.features import DATA_SHEET, FEATURES_SHEET, VALID_HEADER
from excelnet.writer.nets import Model, metrics, models
from excelnet.writer.table import (
    Recipe,
    _cells,
    compute_features,
    compute_stats,
    data_widths,
    finish_book,
    initial_parameters,
    stats_block,
)

FEATURES_TABLE = "Features"
STYLE = "Table Style Light 9"


def table_name(sheet: str) -> str:
    """The table of a model sheet: linear_rows, nn_rows, mmult_rows."""
    return f"{sheet}_rows"


def column(name: str) -> str:
    """A column name as a structured reference writes it: [ ] # ' escaped with '."""
    return re.sub(r"([\[\]#'])", r"'\1", name)


def this_row(table: str, first: str, last: str | None = None) -> str:
    """Table[[#This Row],[first]] or Table[[#This Row],[first]:[last]]."""
    span = f"[{column(first)}]" + (f":[{column(last)}]" if last else "")
    return f"{table}[[#This Row],{span}]"


def structured(formula: str, sheet: str, table: str, headers: list[str], row: int) -> str:
    """A formula over `sheet`'s columns (headers in row 1, one row per data row) rewritten with
    structured references to the table there: sheet!F{row} as Table[[#This Row],[Age]], a whole
    column sheet!$F$2:$F$n as Table[Age]."""
    prefix = re.escape(sheet) + "!"

    def name(letters: str) -> str:
        c = 0
        for ch in letters:
            c = c * 26 + ord(ch) - 64
        return headers[c - 1]

    whole = re.compile(prefix + r"\$([A-Z]{1,3})\$2:\$\1\$\d+")
    formula = whole.sub(lambda m: f"{table}[{column(name(m[1]))}]", formula)
    cell = re.compile(prefix + r"([A-Z]{1,3})" + str(row) + r"(?![0-9])")
    return cell.sub(lambda m: this_row(table, name(m[1])), formula)


def write_tables_book(
    tmp: Path,
    df: pd.DataFrame,
    recipe: Recipe,
    seed: int,
    macros: bool = False,
    rows_name: str = "Rows",
) -> None:
    """Write the whole workbook, in tables, to `tmp` (see write_book for the plain layout; the
    same arguments). `rows_name`: the data table's name (Passengers for Titanic)."""
    n = len(df)
    stats = compute_stats(recipe, df)
    x = compute_features(recipe, df, stats)
    valid, params = initial_parameters(seed, n, len(recipe.features))
    wb, fmt = new_workbook(tmp)
    if macros:
        macros_.add_vba(wb)
    about = wb.add_worksheet("about")
    _data_sheet(wb.add_worksheet(DATA_SHEET), df, recipe, rows_name, fmt)
    _features_sheet(wb, wb.add_worksheet(FEATURES_SHEET), x, stats, valid, recipe, rows_name, fmt)
    target = np.asarray(recipe.target(df), dtype=float)
    side = {}
    for m in models(recipe.frame):
        ws = wb.add_worksheet(m.name)
        side[m.name] = _model_sheet(
            wb, ws, m, df, x, target, valid, params[m.name], recipe, rows_name, fmt
        )
        if macros:
            controls = side[m.name] + len(m.frame.metrics) + 1
            macros_.add_controls(wb, ws, m.name, 0, controls, seed, fmt)
            ws.set_column(controls, controls + 1, 10)
    lines = [*recipe.about, ("", "text"), *_about_tables(rows_name)]
    if macros:
        first = side["linear"] + len(recipe.frame.metrics) + 1
        moves = "the yellow cells move"
        lines = [*lines, *((text, "wrap") for text in macros_.about(0, first, moves))]
    finish_book(wb, about, recipe, lines, macros, fmt)


def _about_tables(rows_name: str) -> list[tuple[str, str]]:
    return [
        ("This workbook's layout: Excel Tables", "title"),
        (
            f"data holds the rows as the table {rows_name}; features holds the table "
            f"{FEATURES_TABLE}, whose columns are formulas over {rows_name}'s same row "
            f"({rows_name}[[#This Row],[Age]]); each model sheet holds its own table "
            "(linear_rows, nn_rows, mmult_rows) of the rows with their features and the model's "
            "columns, the parameters and the losses to its right. The losses are AVERAGEIF over "
            "the table's Valid and Squared error columns.",
            "wrap",
        ),
    ]


def _add_table(ws, first_row: int, n: int, headers: list[str], name: str, formulas: dict, fmt):
    """An Excel Table at (first_row, 0): headers, n data rows; `formulas` (header → its first
    row's formula) make calculated columns. The cells are written after, with their values:
    add_table is given no formula (it would write each of them, a Python object per cell, to
    be replaced), and the table's calculatedColumnFormula is set as XlsxWriter sets it."""
    columns = [{"header": h, "header_format": fmt["header"]} for h in headers]
    ws.add_table(
        first_row,
        0,
        first_row + n,
        len(headers) - 1,
        {"name": name, "columns": columns, "style": STYLE, "autofilter": False},
    )
    for column_data, header in zip(ws.tables[-1]["columns"], headers, strict=True):
        if header in formulas:
            text = ws._prepare_table_formula(formulas[header].lstrip("="))
            column_data["formula"] = ws._prepare_formula(text, True)


def _data_sheet(ws, df: pd.DataFrame, recipe: Recipe, name: str, fmt) -> None:
    _add_table(ws, 0, len(df), recipe.columns, name, {}, fmt)
    for c, header in enumerate(recipe.columns):
        ws.write_column(1, c, _cells(df[header].tolist()))
    ws.freeze_panes(1, 0)
    data_widths(ws, df, recipe)
    print_setup(ws, header_row=0)


def _features_sheet(wb, ws, x, stats: dict, valid, recipe: Recipe, rows_name: str, fmt) -> None:
    n, k = x.shape
    headers = [f.name for f in recipe.features] + [VALID_HEADER]

    # each column's formula, the same in every row ([#This Row] is the row it is in)
    formulas = {
        f.name: structured(f.formula(2), DATA_SHEET, rows_name, recipe.columns, 2)
        for f in recipe.features
    }
    _add_table(ws, 0, n, headers, FEATURES_TABLE, formulas, fmt)
    for c, f in enumerate(recipe.features):
        ws.write_formulas(1, c, [formulas[f.name]] * n, x[:, c].tolist(), fmt["feature"])
    ws.write_column(1, k, valid.tolist(), fmt["integer"])
    formulas = [
        structured(s.formula(n), DATA_SHEET, rows_name, recipe.columns, -1) for s in recipe.stats
    ]
    stats_block(wb, ws, recipe, stats, formulas, k, k + 2, f"the table {rows_name}", fmt)


def _model_sheet(
    wb, ws, m: Model, df, x, target, valid, p: np.ndarray, recipe: Recipe, rows_name: str, fmt
) -> int:
    """One model sheet; returns the first column right of its table (the metrics')."""
    n, frame = len(df), m.frame
    names = frame.features
    t = table_name(m.name)
    columns = m.forward(x, p)
    scores = metrics(columns[-1], target, valid, frame.binary)
    lead_headers = m.headers[: len(frame.lead)]
    rest = m.headers[len(frame.lead) :]
    inside = [*lead_headers, *names, *(h for h in rest if not h.startswith("MMULT"))]
    outside = [h for h in rest if h.startswith("MMULT")]  # the array sits beside the table
    side = len(inside) + len(outside) + 1  # metrics and parameters from here, one column after
    (ph, pw) = m.param_shape
    m = dataclasses.replace(m, param_origin=(4, side + 1))
    pr, pc = m.param_origin

    # the table's columns: lead, features, the model's, prediction, scores
    lead = {}
    if frame.id is not None:
        lead[frame.id] = ("=" + this_row(rows_name, frame.id), _cells(df[frame.id].tolist()))
    target_formula = structured(recipe.target_formula(2), DATA_SHEET, rows_name, recipe.columns, 2)
    lead[frame.target] = (target_formula, target.tolist())
    lead[VALID_HEADER] = ("=" + this_row(FEATURES_TABLE, VALID_HEADER), valid.tolist())
    cols = dict(lead)
    for j, name in enumerate(names):
        cols[name] = ("=" + this_row(FEATURES_TABLE, name), x[:, j].tolist())
    features = this_row(t, names[0], names[-1])
    values = [v.tolist() for v in columns]
    if m.name == "linear":
        cols["Prediction"] = (f"=SUMPRODUCT({features},{m.param_row_ref(0)})", values[0])
    elif m.name == "nn":
        for i in (0, 1):
            cols[f"Unit {i + 1}"] = (
                f"=MAX(0,SUMPRODUCT({features},{m.param_row_ref(i)}))",
                values[i],
            )
        cols["Prediction"] = (f"={this_row(t, 'Unit 1')}+{this_row(t, 'Unit 2')}", values[2])
    else:
        mm = [xl_col_to_name(len(inside) + i) for i in (0, 1)]  # beside the table
        cols["ReLU 1"] = (lambda r: f"=MAX(0,{mm[0]}{r})", values[2])
        cols["ReLU 2"] = (lambda r: f"=MAX(0,{mm[1]}{r})", values[3])
        cols["Prediction"] = (f"={this_row(t, 'ReLU 1')}+{this_row(t, 'ReLU 2')}", values[4])
    pred, y = this_row(t, "Prediction"), this_row(t, frame.target)
    cols["Squared error"] = (f"=({pred}-{y})^2", scores["sq"].tolist())
    if frame.binary:
        cols["Correct"] = (f"=IF(({pred}>0.5)=({y}=1),1,0)", scores["ok"].tolist())
    assert list(cols) == inside, (list(cols), inside)

    def text(formula, r: int) -> str:
        return formula(r) if callable(formula) else formula

    computed = {h: text(f, 2) for h, (f, _) in cols.items()}
    _add_table(ws, 0, n, inside, t, computed, fmt)
    for c, (h, (formula, got)) in enumerate(cols.items()):
        style = fmt["feature"] if h in names else fmt["number"]
        if h in lead or h == "Correct":
            style = fmt["integer"]
        formulas = [text(formula, r) for r in range(2, n + 2)]
        got = [0.0 if v is None else v if isinstance(v, str) else float(v) for v in got]
        if any(isinstance(v, str) for v in got):
            for r, (f, v) in enumerate(zip(formulas, got, strict=True), start=1):
                ws.write_formula(r, c, f, style, v)
        else:
            ws.write_formulas(1, c, formulas, got, style)
    if outside:  # the MMULT columns: one legacy array formula beside the table
        a = len(inside)
        write_header(ws, 0, a, outside, fmt["header"])
        array = f"{{=MMULT({t}[[{column(names[0])}]:[{column(names[-1])}]],{m.params_ref})}}"
        ws.write_array_formula(1, a, n, a + 1, array, fmt["number"], values[0][0])
        ws.write_column(2, a, values[0][1:], fmt["number"])
        ws.write_column(1, a + 1, values[1], fmt["number"])

    # the metrics: AVERAGEIF over the table's columns; the training loss is the objective
    write_header(ws, 0, side, frame.metrics, fmt["header"])
    scored = ["Squared error", "Correct"][: len(frame.metrics) // 2]
    metric = [
        f"=AVERAGEIF({t}[{VALID_HEADER}],{v},{t}[{column(h)}])" for h in scored for v in (0, 1)
    ]
    for j, (formula, value) in enumerate(zip(metric, scores["values"], strict=True)):
        style = fmt["metric"] if j < 2 else fmt["metric_pct"]
        ws.write_formula(1, side + j, formula, style, float(value))
    loss = xl_rowcol_to_cell(1, side, row_abs=True, col_abs=True)
    define_solver_model(wb, m.name, loss, m.params_ref)
    cells = [xl_rowcol_to_cell(1, side + j, row_abs=True, col_abs=True) for j in (1, 3)]
    define_metrics(wb, m.name, cells[0], cells[1] if frame.binary else None)
    wb.define_name(f"{m.name}_loss", f"={m.name}!{loss}")
    wb.define_name(f"{m.name}_params", f"={m.name}!{m.params_ref}")

    # the parameters, beside the table
    if m.name == "mmult":
        write_header(ws, pr - 1, pc - 1, ["Feature", "Unit 1", "Unit 2"], fmt["header"])
        for i, name in enumerate(names):
            ws.write_string(pr + i, pc - 1, name)
        ws.write_string(pr + ph, pc - 1, "↑ yellow cells: the parameters", fmt["note"])
    else:
        write_header(ws, pr - 1, pc - 1, ["Parameters", *names], fmt["header"])
        labels = ["Weights"] if ph == 1 else [f"Unit {i + 1}" for i in range(ph)]
        for i, label in enumerate(labels):
            ws.write_string(pr + i, pc - 1, label, fmt["header"])
        ws.write_string(pr + ph, pc - 1, "↑ yellow cells: the parameters", fmt["note"])
    for i in range(ph):
        for j in range(pw):
            ws.write_number(pr + i, pc + j, float(p[i, j]), fmt["param"])
    ws.freeze_panes(1, 0)
    ws.set_column(0, side - 1, 12)
    ws.set_column(side, side + max(len(frame.metrics), pw + 1), 14)
    print_setup(ws, header_row=0)
    return side
