"""The lesson's small workbooks: a quadratic fitted by hand, a ReLU, two ReLUs added.

Each has one model sheet — parameter cells (yellow) with a gradient cell beside each, the mean
squared error, the data with the model's prediction per point, and a chart of both — and an
`about` sheet. The formulas come from excelnet.writer.nets; cached values from their numpy twins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from xlsxwriter.utility import xl_rowcol_to_cell

from excelnet.data.synthetic import TRUE_QUADRATIC, bend_samples, quadratic_samples
from excelnet.writer import (
    check_seed,
    define_solver_model,
    new_workbook,
    print_setup,
    write_header,
    write_wrapped,
)
from excelnet.writer import macros as macros_
from excelnet.writer.nets import DOUBLE_RELU, QUADRATIC, RELU, CurveModel

TABLE_ROW = 9  # 0-based header row of the data table
ABOUT_WIDTH = 80  # characters: the about sheet's one column, a portrait page wide at 100%
LOSS = "$B$7"
CONTROLS = (6, 3)  # --macros: Action in E7, Seed in E8, the Train button in D9


def _abs(r: int, c: int) -> str:
    return xl_rowcol_to_cell(r, c, row_abs=True, col_abs=True)


def build_lesson(
    model: CurveModel,
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    about: list[str],
    truth: tuple[float, ...] | None = None,
    seed: int = 0,
    macros: bool = False,
    force: bool = False,
) -> Path:
    return macros_.save_book(
        path, lambda tmp: _write(model, tmp, x, y, about, truth, seed, macros), macros, force
    )


def _write(
    model: CurveModel,
    tmp: Path,
    x: np.ndarray,
    y: np.ndarray,
    about: list[str],
    truth: tuple[float, ...] | None,
    seed: int,
    macros: bool,
) -> None:
    wb, fmt = new_workbook(tmp)
    if macros:
        macros_.add_vba(wb)
    ws = wb.add_worksheet(model.name)
    info = wb.add_worksheet("about")
    n = len(x)
    k = len(model.params)
    cells = {name: _abs(1 + i, 1) for i, name in enumerate(model.params)}

    write_header(
        ws,
        0,
        0,
        ["Parameter", "Value", "Gradient"] + (["True value"] if truth else []),
        fmt["header"],
    )
    for i, (name, start) in enumerate(zip(model.params, model.start, strict=True)):
        ws.write_string(1 + i, 0, name, fmt["header"])
        ws.write_number(1 + i, 1, start, fmt["param"])
        ws.write_blank(1 + i, 2, None, fmt["number"])  # the gradient, once computed
        if truth:
            ws.write_number(1 + i, 3, truth[i], fmt["number"])
    ws.write_string(
        1 + k, 0, "↑ change the yellow cells; excelnet fit fills in the gradients", fmt["note"]
    )

    pred = model.forward(x, model.start)
    sq = (pred - y) ** 2
    first, last = TABLE_ROW + 2, TABLE_ROW + 1 + n  # 1-based rows of the data
    ws.write_string(6, 0, "Mean squared error", fmt["header"])
    ws.write_formula(6, 1, f"=AVERAGE(D{first}:D{last})", fmt["metric"], float(sq.mean()))

    write_header(ws, TABLE_ROW, 0, ["x", "y", "model", "squared error"], fmt["header"])
    for i in range(n):
        r = TABLE_ROW + 1 + i
        ws.write_number(r, 0, float(x[i]), fmt["number"])
        ws.write_number(r, 1, float(y[i]), fmt["number"])
        ws.write_formula(r, 2, model.formula(f"A{r + 1}", cells), fmt["number"], float(pred[i]))
        ws.write_formula(r, 3, f"=(C{r + 1}-B{r + 1})^2", fmt["number"], float(sq[i]))

    params_ref = f"{_abs(1, 1)}:{_abs(k, 1)}"
    define_solver_model(wb, model.name, LOSS, params_ref)
    wb.define_name(f"{model.name}!excelnet_gradients", f"={model.name}!{_abs(1, 2)}:{_abs(k, 2)}")

    chart = wb.add_chart({"type": "scatter"})
    chart.add_series(
        {
            "name": "data",
            "categories": [model.name, first - 1, 0, last - 1, 0],
            "values": [model.name, first - 1, 1, last - 1, 1],
            "marker": {"type": "circle", "size": 5},
        }
    )
    chart.add_series(
        {
            "name": "model",
            "categories": [model.name, first - 1, 0, last - 1, 0],
            "values": [model.name, first - 1, 2, last - 1, 2],
            "line": {"width": 2.25},
            "marker": {"type": "none"},
        }
    )
    chart.set_title({"name": model.title})
    chart.set_x_axis({"name": "x"})
    chart.set_y_axis({"name": "y"})
    chart.set_size({"width": 560, "height": 340})
    ws.insert_chart(1, 5, chart)
    ws.set_column(0, 0, 20)
    ws.set_column(1, 4, 13)
    ws.freeze_panes(TABLE_ROW + 1, 0)
    print_setup(ws, header_row=TABLE_ROW, area=(0, 0, last - 1, 13))

    if macros:
        macros_.add_controls(wb, ws, model.name, *CONTROLS, seed, fmt)
        about = [*about, *macros_.about(*CONTROLS, "the curve moves")]
    info.set_column(0, 0, ABOUT_WIDTH)
    info.write_string(0, 0, model.title, fmt["title"])
    for i, line in enumerate(about, start=1):
        write_wrapped(info, i, line, fmt["wrap"], ABOUT_WIDTH)
    print_setup(info, landscape=False)
    if macros:
        macros_.add_conf_sheet(wb, fmt)
    ws.activate()
    wb.close()


_HOW = [
    "Excel: Data → Solver is set up on the model sheet (minimise the mean squared error by "
    "changing the yellow cells): press Solve.",
    "Python: excelnet fit BOOK.xlsx --lr 0.1 — the lesson's gradient descent on these formulas "
    "(without --lr, excelnet fits as Solver would, with L-BFGS); it writes the fitted "
    "parameters into the yellow cells and each parameter's gradient beside it. excelnet eval "
    "fills in the gradients without training; excelnet lr-sweep tries several learning rates.",
]


def build_quadratic(
    path: str | Path = "quadratic.xlsx", seed: int = 0, macros: bool = False, force: bool = False
) -> Path:
    check_seed(seed)
    x, y = quadratic_samples(seed)
    a, b, c = TRUE_QUADRATIC
    return build_lesson(
        QUADRATIC,
        Path(path),
        x,
        y,
        [
            f"The dots are noisy samples (seed {seed}) of f(x) = {a:g}x² + {b:g}x + {c:g}; "
            "the true a, b and c are shown beside the parameters.",
            "Turn a, b and c by hand until the curve fits the dots. You do not need good eyes: the "
            "mean squared error (B7) tells you how good the fit is — lower is better.",
            "Each gradient says how much the error changes when that parameter grows by 1: move "
            "the parameter a little against its gradient and the error falls. That is gradient "
            "descent, and the learning rate is how big that little step is.",
            *_HOW,
        ],
        truth=TRUE_QUADRATIC,
        seed=seed,
        macros=macros,
        force=force,
    )


def build_relu(
    path: str | Path = "relu.xlsx", seed: int = 0, macros: bool = False, force: bool = False
) -> Path:
    check_seed(seed)
    x, y = bend_samples(seed)
    return build_lesson(
        RELU,
        Path(path),
        x,
        y,
        [
            f"The dots bend both ways (noisy x²/2, seed {seed}). One ReLU, MAX(0, m·x + b), is a "
            "straight line with everything below zero cut off: it can follow only one side.",
            *_HOW,
        ],
        seed=seed,
        macros=macros,
        force=force,
    )


def build_double_relu(
    path: str | Path = "double-relu.xlsx", seed: int = 0, macros: bool = False, force: bool = False
) -> Path:
    check_seed(seed)
    x, y = bend_samples(seed)
    return build_lesson(
        DOUBLE_RELU,
        Path(path),
        x,
        y,
        [
            f"The same dots as the relu workbook (seed {seed}). Two ReLUs added can bend twice, "
            "so they follow both sides: add enough ReLUs and you can follow any curve — that is "
            "what a neural net does.",
            *_HOW,
        ],
        seed=seed,
        macros=macros,
        force=force,
    )
