"""The lesson's three Titanic models, each in its two faithful forms side by side: the formulas
of its model sheet, and the same arithmetic in numpy (used for the cells' cached values).

Every model sheet has the same frame (see writer.titanic): metrics in row 2, parameters near the
top, a table with one row per passenger from row TABLE_ROW + 1, and the columns
PassengerId, Survived, Valid, <model columns>, Prediction, Squared error, Correct.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from excelnet.features import FEATURE_NAMES, FEATURES_SHEET

N_FEATURES = len(FEATURE_NAMES)
TABLE_ROW = 5  # 1-based header row of the per-passenger table; passengers start below it
FEATURES_FIRST, FEATURES_LAST = "A", xl_col_to_name(N_FEATURES - 1)  # features!A:J
METRICS = ["Training loss", "Validation loss", "Training accuracy", "Validation accuracy"]
METRICS_COL = 12  # 0-based: the metrics sit in M1:P2


def feature_row(r: int) -> str:
    """The feature vector of the passenger in model-sheet row r, as a relative range."""
    d = r - TABLE_ROW + 1  # features/data rows start at 2
    return f"{FEATURES_SHEET}!{FEATURES_FIRST}{d}:{FEATURES_LAST}{d}"


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, x)


@dataclass(frozen=True)
class Model:
    name: str  # sheet name
    summary: str
    param_shape: tuple[int, int]
    param_origin: tuple[int, int]  # 0-based (row, col) of the parameter block's top-left cell
    hidden: list[str]  # headers of the model columns between Valid and Prediction
    # sheet row -> formula of each hidden column and of Prediction (per-row models)
    formulas: Callable[[int, Model], list[str]]
    # features (n×10), parameters -> the hidden columns and the prediction, as numpy
    forward: Callable[[np.ndarray, np.ndarray], list[np.ndarray]]

    @property
    def params_ref(self) -> str:
        (r, c), (h, w) = self.param_origin, self.param_shape
        first = xl_rowcol_to_cell(r, c, row_abs=True, col_abs=True)
        return first + ":" + xl_rowcol_to_cell(r + h - 1, c + w - 1, row_abs=True, col_abs=True)

    def param_row_ref(self, i: int) -> str:
        (r, c), (_, w) = self.param_origin, self.param_shape
        return (
            xl_rowcol_to_cell(r + i, c, True, True)
            + ":"
            + xl_rowcol_to_cell(r + i, c + w - 1, True, True)
        )

    def column(self, header: str) -> str:
        """Letter of a table column of this sheet."""
        return xl_col_to_name(self.headers.index(header))

    @property
    def headers(self) -> list[str]:
        return ["PassengerId", "Survived", "Valid", *self.hidden,
                "Prediction", "Squared error", "Correct"]  # fmt: skip


def _linear_formulas(r: int, m: Model) -> list[str]:
    return [f"=SUMPRODUCT({feature_row(r)},{m.param_row_ref(0)})"]


def _nn_formulas(r: int, m: Model) -> list[str]:
    d, e = m.column("Unit 1"), m.column("Unit 2")
    units = [f"=MAX(0,SUMPRODUCT({feature_row(r)},{m.param_row_ref(i)}))" for i in (0, 1)]
    return [*units, f"={d}{r}+{e}{r}"]


def _mmult_formulas(r: int, m: Model) -> list[str]:
    # The two MMULT columns are one legacy array formula over the whole table (see
    # mmult_formula); per row come the ReLUs and their sum.
    a, b = m.column("MMULT 1"), m.column("MMULT 2")
    f, g = m.column("ReLU 1"), m.column("ReLU 2")
    return [None, None, f"=MAX(0,{a}{r})", f"=MAX(0,{b}{r})", f"={f}{r}+{g}{r}"]


def mmult_formula(n: int, m: Model) -> str:
    """The legacy array formula filling the MMULT 1 and MMULT 2 columns for all n passengers."""
    feats = f"{FEATURES_SHEET}!${FEATURES_FIRST}$2:${FEATURES_LAST}${n + 1}"
    return f"{{=MMULT({feats},{m.params_ref})}}"


def _linear(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    return [x @ p[0]]


def _nn(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    u1, u2 = relu(x @ p[0]), relu(x @ p[1])
    return [u1, u2, u1 + u2]


def _mmult(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    z = x @ p
    h = relu(z)
    return [z[:, 0], z[:, 1], h[:, 0], h[:, 1], h.sum(axis=1)]


LINEAR = Model(
    "linear",
    "Linear model: prediction = SUMPRODUCT(features, weights).",
    (1, N_FEATURES),
    (1, 1),
    [],
    _linear_formulas,
    _linear,
)
NN = Model(
    "nn",
    "Neural net: two ReLU units MAX(0, SUMPRODUCT(features, weights)), added.",
    (2, N_FEATURES),
    (1, 1),
    ["Unit 1", "Unit 2"],
    _nn_formulas,
    _nn,
)
MMULT = Model(
    "mmult",
    "The same net as matrix multiplication: MMULT(features, weights), ReLU, sum.",
    (N_FEATURES, 2),
    (TABLE_ROW, 12),
    ["MMULT 1", "MMULT 2", "ReLU 1", "ReLU 2"],
    _mmult_formulas,
    _mmult,
)
MODELS = [LINEAR, NN, MMULT]


def metric_formulas(m: Model, n: int) -> list[str]:
    """Training/validation loss and accuracy, over the table's Valid column."""
    first, last = TABLE_ROW + 1, TABLE_ROW + n

    def rng(header: str) -> str:
        c = m.column(header)
        return f"${c}${first}:${c}${last}"

    valid, sq, ok = rng("Valid"), rng("Squared error"), rng("Correct")
    # In METRICS order: training loss, validation loss, training accuracy, validation accuracy.
    return [f"=SUMIF({valid},{v},{col})/COUNTIF({valid},{v})" for col in (sq, ok) for v in (0, 1)]


def metrics(pred: np.ndarray, survived: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
    """The table's last three columns and the four metrics, as the sheet computes them."""
    sq = (pred - survived) ** 2
    ok = ((pred > 0.5) == (survived == 1)).astype(float)
    t, v = valid == 0, valid == 1
    values = [sq[t].mean(), sq[v].mean(), ok[t].mean(), ok[v].mean()]
    return {"sq": sq, "ok": ok, "values": values}


# -- the lesson's small models: one input x, a handful of parameters ------------------------


@dataclass(frozen=True)
class CurveModel:
    """y = f(x; parameters), as a formula over the parameter cells and as numpy."""

    name: str  # sheet name
    title: str
    params: list[str]  # parameter names, in the order of their cells
    start: list[float]  # starting values
    # (x cell, parameter cells by name) -> formula
    formula: Callable[[str, dict[str, str]], str]
    forward: Callable[[np.ndarray, list[float]], np.ndarray]


QUADRATIC = CurveModel(
    "quadratic",
    "A general quadratic a·x² + b·x + c",
    ["a", "b", "c"],
    [1.0, 1.0, 1.0],
    lambda x, p: f"={p['a']}*{x}^2+{p['b']}*{x}+{p['c']}",
    lambda x, p: p[0] * x**2 + p[1] * x + p[2],
)
RELU = CurveModel(
    "relu",
    "A rectified linear unit MAX(0, m·x + b)",
    ["m", "b"],
    [1.0, 0.5],
    lambda x, p: f"=MAX(0,{p['m']}*{x}+{p['b']})",
    lambda x, p: relu(p[0] * x + p[1]),
)
DOUBLE_RELU = CurveModel(
    "double_relu",
    "Two ReLUs added: MAX(0, m1·x + b1) + MAX(0, m2·x + b2)",
    ["m1", "b1", "m2", "b2"],
    [1.0, 0.5, -0.5, 0.3],
    lambda x, p: f"=MAX(0,{p['m1']}*{x}+{p['b1']})+MAX(0,{p['m2']}*{x}+{p['b2']})",
    lambda x, p: relu(p[0] * x + p[1]) + relu(p[2] * x + p[3]),
)
