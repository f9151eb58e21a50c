"""The Titanic workbook: data → features → linear, nn and mmult model sheets, all live formulas.

Formulas come from excelnet.features and excelnet.models; this module only lays them out,
styles them, and stores each formula's value (computed by the numpy twin of the formula) so
programs that do not recalculate still see the numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_rowcol_to_cell

from excelnet.atomic import atomic_path
from excelnet.data import COLUMNS, load_titanic
from excelnet.errors import ExcelnetError
from excelnet.features import (
    DATA_SHEET,
    FEATURE_NAMES,
    FEATURES,
    FEATURES_SHEET,
    STATS,
    VALID_HEADER,
    compute_features,
    compute_stats,
    validation_split,
)
from excelnet.models import (
    METRICS,
    METRICS_COL,
    MMULT,
    MODELS,
    TABLE_ROW,
    Model,
    metric_formulas,
    metrics,
    mmult_formula,
)
from excelnet.writer import (
    define_metrics,
    define_solver_model,
    new_workbook,
    write_header,
)
from excelnet.writer import macros as macros_

STATS_COL = len(FEATURES) + 2  # features!M:N hold the data set's statistics
CONTROLS_COL = METRICS_COL + len(METRICS) + 1  # --macros: Action, Seed and Train in R1:S3


def initial_parameters(seed: int, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The seeded validation split and each model's starting parameters, uniform in (-0.5, 0.5).
    The mmult net starts from the nn net's weights (transposed): the same net, the same numbers."""
    rng = np.random.default_rng(seed)
    valid = validation_split(n, rng)
    linear = rng.uniform(-0.5, 0.5, size=(1, len(FEATURES)))
    nn = rng.uniform(-0.5, 0.5, size=(2, len(FEATURES)))
    return valid, {"linear": linear, "nn": nn, "mmult": nn.T.copy()}


def build_titanic(
    path: str | Path = "titanic.xlsx",
    csv: str | Path | None = None,
    seed: int = 0,
    passengers: int | None = None,
    macros: bool = False,
) -> Path:
    """Write the Titanic workbook to `path` (replaced atomically) and return the path.
    `passengers` resamples the rows (with replacement, seeded) to that many: the same
    formulas at any scale. `macros`: an .xlsm with a Train button on each model sheet and the
    companion module beside it (see excelnet.writer.macros)."""
    df = load_titanic(csv)
    if passengers is not None:
        if passengers < 1:
            raise ExcelnetError(f"--passengers must be 1 or more, not {passengers}")
        rows = np.random.default_rng([seed, 1]).integers(0, len(df), size=passengers)
        df = df.iloc[rows].reset_index(drop=True)
    path = Path(path)
    if macros:
        return macros_.build_with_macros(path, lambda tmp: _write(tmp, df, seed, macros))
    with atomic_path(path) as tmp:
        _write(tmp, df, seed)
    return path


def _write(tmp: Path, df: pd.DataFrame, seed: int, macros: bool = False) -> None:
    n = len(df)
    stats = compute_stats(df)
    x = compute_features(df, stats)
    valid, params = initial_parameters(seed, n)
    wb, fmt = new_workbook(tmp)
    if macros:
        macros_.add_vba(wb)
    about = wb.add_worksheet("about")
    _data_sheet(wb.add_worksheet(DATA_SHEET), df, fmt)
    _features_sheet(wb, wb.add_worksheet(FEATURES_SHEET), x, stats, valid, fmt)
    for m in MODELS:
        ws = wb.add_worksheet(m.name)
        _model_sheet(wb, ws, m, df, x, valid, params[m.name], fmt)
        if macros:
            macros_.add_controls(wb, ws, m.name, 0, CONTROLS_COL, seed, fmt)
            ws.set_column(CONTROLS_COL, CONTROLS_COL + 1, 10)
    _about_sheet(about, n, seed, fmt, macros)
    if macros:
        macros_.add_conf_sheet(wb, fmt)
    about.activate()
    wb.close()


def _data_sheet(ws, df: pd.DataFrame, fmt) -> None:
    write_header(ws, 0, 0, COLUMNS, fmt["header"])
    for c, name in enumerate(COLUMNS):
        # missing stays an empty cell (ISBLANK sees it); text stays text, even "=…" or "@…"
        cells = [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            for v in df[name].tolist()
        ]
        ws.write_column(1, c, cells)
    ws.freeze_panes(1, 0)
    for c, width in enumerate([11, 9, 7, 45, 7, 6, 6, 6, 18, 9, 12, 9]):
        ws.set_column(c, c, width)


def _features_sheet(wb, ws, x: np.ndarray, stats: dict, valid: np.ndarray, fmt) -> None:
    n = len(x)
    write_header(ws, 0, 0, [*FEATURE_NAMES, VALID_HEADER], fmt["header"])
    for c, f in enumerate(FEATURES):
        formulas = [f.formula(i + 2) for i in range(n)]
        ws.write_formulas(1, c, formulas, x[:, c].tolist(), fmt["feature"])
    vcol = len(FEATURES)
    ws.write_column(1, vcol, valid.tolist(), fmt["integer"])
    write_header(ws, 0, STATS_COL, ["Statistic", "Value"], fmt["header"])
    for i, s in enumerate(STATS, start=1):
        ws.write_string(i, STATS_COL, s.label)
        ws.write_formula(i, STATS_COL + 1, s.formula(n), fmt["number"], stats[s.name])
        cell = xl_rowcol_to_cell(i, STATS_COL + 1, row_abs=True, col_abs=True)
        wb.define_name(s.name, f"={FEATURES_SHEET}!{cell}")
    ws.write_string(
        len(STATS) + 2,
        STATS_COL,
        "Computed from the data sheet; the features use them by name.",
        fmt["note"],
    )
    ws.freeze_panes(1, 0)
    ws.set_column(0, vcol, 9)
    ws.set_column(STATS_COL, STATS_COL, 24)
    ws.set_column(STATS_COL + 1, STATS_COL + 1, 10)


def _model_sheet(
    wb, ws, m: Model, df: pd.DataFrame, x: np.ndarray, valid: np.ndarray, p: np.ndarray, fmt
) -> None:
    n = len(df)
    survived = df["Survived"].to_numpy()
    columns = m.forward(x, p)
    scores = metrics(columns[-1], survived, valid)

    # Parameters: the cells to change (by hand, with Solver, or with `excelnet fit`).
    (pr, pc), (ph, pw) = m.param_origin, m.param_shape
    if m is MMULT:
        write_header(ws, pr - 1, pc - 1, ["Feature", "Unit 1", "Unit 2"], fmt["header"])
        for i, name in enumerate(FEATURE_NAMES):
            ws.write_string(pr + i, pc - 1, name)
        ws.write_string(pr + ph + 1, pc - 1, "← yellow cells: the parameters", fmt["note"])
    else:
        write_header(ws, pr - 1, pc - 1, ["Parameters", *FEATURE_NAMES], fmt["header"])
        labels = ["Weights"] if ph == 1 else [f"Unit {i + 1}" for i in range(ph)]
        for i, label in enumerate(labels):
            ws.write_string(pr + i, pc - 1, label, fmt["header"])
        ws.write_string(pr + ph, pc - 1, "↑ yellow cells: the parameters", fmt["note"])
    for i in range(ph):
        for j in range(pw):
            ws.write_number(pr + i, pc + j, float(p[i, j]), fmt["param"])

    # Metrics over the table; the training loss is the Solver objective.
    write_header(ws, 0, METRICS_COL, METRICS, fmt["header"])
    for j, (formula, value) in enumerate(zip(metric_formulas(m, n), scores["values"], strict=True)):
        style = fmt["metric"] if j < 2 else fmt["metric_pct"]
        ws.write_formula(1, METRICS_COL + j, formula, style, float(value))
    loss = xl_rowcol_to_cell(1, METRICS_COL, row_abs=True, col_abs=True)
    define_solver_model(wb, m.name, loss, m.params_ref)
    define_metrics(
        wb,
        m.name,
        *(xl_rowcol_to_cell(1, METRICS_COL + j, row_abs=True, col_abs=True) for j in (1, 3)),
    )
    wb.define_name(f"{m.name}_loss", f"={m.name}!{loss}")
    wb.define_name(f"{m.name}_params", f"={m.name}!{m.params_ref}")

    # One row per passenger.
    top = TABLE_ROW - 1  # 0-based header row
    write_header(ws, top, 0, m.headers, fmt["header"])
    k = len(m.hidden) + 1  # hidden columns + Prediction
    values = [v.tolist() for v in (*columns, scores["sq"], scores["ok"])]
    rows = range(TABLE_ROW + 1, TABLE_ROW + 1 + n)  # 1-based sheet rows; data row = i + 2
    ids, valid_list = df["PassengerId"].tolist(), valid.tolist()
    sources = [
        (f"={DATA_SHEET}!A", ids),
        (f"={DATA_SHEET}!B", survived.tolist()),
        (f"={FEATURES_SHEET}!K", valid_list),
    ]
    for c, (ref, got) in enumerate(sources):
        formulas = [f"{ref}{i + 2}" for i in range(n)]
        ws.write_formulas(top + 1, c, formulas, [float(v) for v in got], fmt["integer"])
    per_row = [
        [
            *m.formulas(r, m),
            f"=({m.column('Prediction')}{r}-B{r})^2",
            f"=IF(({m.column('Prediction')}{r}>0.5)=(B{r}=1),1,0)",
        ]
        for r in rows
    ]
    for j, (formulas, got) in enumerate(zip(zip(*per_row, strict=True), values, strict=True)):
        if formulas[0] is not None:
            style = fmt["integer"] if j == k + 1 else fmt["number"]
            ws.write_formulas(top + 1, 3 + j, list(formulas), got, style)
    if m is MMULT:
        a = m.headers.index("MMULT 1")
        ws.write_array_formula(
            top + 1, a, top + n, a + 1, mmult_formula(n, m), fmt["number"], values[0][0]
        )
        # the array's other cells carry their values, as Excel stores them
        ws.write_column(top + 2, a, values[0][1:], fmt["number"])
        ws.write_column(top + 1, a + 1, values[1], fmt["number"])
    ws.freeze_panes(TABLE_ROW, 0)
    ws.set_column(0, len(m.headers) - 1, 12)
    ws.set_column(METRICS_COL, METRICS_COL + len(METRICS) - 1, 18)


MACROS_HOW = (
    "Excel with xlwings: the Train button on a model sheet does what its Action cell (S1) "
    "says — Train (gradient descent, the yellow cells move as it runs), Reset (new random "
    "parameters from the Seed (S2)) or Evaluate (the loss and the gradients only). It runs "
    "the companion module of the same name (.py, beside this workbook) through xlwings."
)


def _about_sheet(ws, n: int, seed: int, fmt, macros: bool = False) -> None:
    ws.set_column(0, 0, 110)
    lines = [
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
            "Python: excelnet fit titanic.xlsx  — reads these formulas, fits them with gradient "
            "descent in torch (on the GPU when there is one) and writes the fitted parameters back "
            "into the yellow cells. Add --sheet nn to fit one sheet.",
            "wrap",
        ),
    ]
    if macros:
        lines += [(MACROS_HOW, "wrap"), (macros_.NOTICE, "wrap")]
    for i, (text, style) in enumerate(lines):
        if text:
            ws.write_string(i, 0, text, fmt[style])
