"""The lesson's three models (linear, nn, mmult), each in its two faithful forms side by side:
the formulas of its model sheet, and the same arithmetic in numpy (used for the cells' cached
values). They work on any number of features: the Titanic workbook's ten, or a table's.

Every model sheet has the same frame (see writer.table): metrics in row 2, parameters near the
top, a table with one row per data row from row TABLE_ROW + 1, and the columns
[id,] target, Valid, <model columns>, Prediction, Squared error[, Correct].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from excelnet.writer.features import FEATURES_SHEET, VALID_HEADER

TABLE_ROW = 5  # 1-based header row of the per-row table; data rows start below it
METRICS = ["Training loss", "Validation loss", "Training accuracy", "Validation accuracy"]


@dataclass(frozen=True)
class Frame:
    """What every model sheet of one workbook shares: the features it reads (features!A:…),
    the table's leading columns, and whether the target is 0/1 (then accuracy is reported)."""

    features: list[str]
    id: str | None  # header of the id column, if any
    target: str
    binary: bool

    @property
    def k(self) -> int:
        return len(self.features)

    @property
    def lead(self) -> list[str]:
        return [*([self.id] if self.id else []), self.target, VALID_HEADER]

    @property
    def metrics(self) -> list[str]:
        return METRICS if self.binary else METRICS[:2]

    @property
    def metrics_col(self) -> int:
        """0-based column of the metrics (M for up to ten features), right of the weights."""
        return max(12, self.k + 2)

    def feature_row(self, r: int) -> str:
        """The feature vector of the row in model-sheet row r, as a relative range."""
        d = r - TABLE_ROW + 1  # features/data rows start at 2
        return f"{FEATURES_SHEET}!A{d}:{xl_col_to_name(self.k - 1)}{d}"

    def features_range(self, n: int) -> str:
        """All n rows of the features, absolute."""
        return f"{FEATURES_SHEET}!$A$2:${xl_col_to_name(self.k - 1)}${n + 1}"


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, x)


@dataclass(frozen=True)
class Model:
    name: str  # sheet name
    summary: str
    frame: Frame
    param_shape: tuple[int, int]
    param_origin: tuple[int, int]  # 0-based (row, col) of the parameter block's top-left cell
    hidden: list[str]  # headers of the model columns between Valid and Prediction
    # sheet row -> formula of each hidden column and of Prediction (per-row models)
    formulas: Callable[[int, Model], list[str | None]]
    # features (n×k), parameters -> the hidden columns and the prediction, as numpy
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
        scores = ["Squared error", "Correct"] if self.frame.binary else ["Squared error"]
        return [*self.frame.lead, *self.hidden, "Prediction", *scores]


def _linear_formulas(r: int, m: Model) -> list[str | None]:
    return [f"=SUMPRODUCT({m.frame.feature_row(r)},{m.param_row_ref(0)})"]


def _nn_formulas(r: int, m: Model) -> list[str | None]:
    d, e = m.column("Unit 1"), m.column("Unit 2")
    x = m.frame.feature_row(r)
    units = [f"=MAX(0,SUMPRODUCT({x},{m.param_row_ref(i)}))" for i in (0, 1)]
    return [*units, f"={d}{r}+{e}{r}"]


def _mmult_formulas(r: int, m: Model) -> list[str | None]:
    # The two MMULT columns are one legacy array formula over the whole table (see
    # mmult_formula); per row come the ReLUs and their sum.
    a, b = m.column("MMULT 1"), m.column("MMULT 2")
    f, g = m.column("ReLU 1"), m.column("ReLU 2")
    return [None, None, f"=MAX(0,{a}{r})", f"=MAX(0,{b}{r})", f"={f}{r}+{g}{r}"]


def mmult_formula(n: int, m: Model) -> str:
    """The legacy array formula filling the MMULT 1 and MMULT 2 columns for all n rows."""
    return f"{{=MMULT({m.frame.features_range(n)},{m.params_ref})}}"


def _linear(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    return [x @ p[0]]


def _nn(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    u1, u2 = relu(x @ p[0]), relu(x @ p[1])
    return [u1, u2, u1 + u2]


def _mmult(x: np.ndarray, p: np.ndarray) -> list[np.ndarray]:
    z = x @ p
    h = relu(z)
    return [z[:, 0], z[:, 1], h[:, 0], h[:, 1], h.sum(axis=1)]


def models(frame: Frame) -> list[Model]:
    """The linear model, the two-unit net, and the same net as MMULT, over `frame`'s features."""
    k = frame.k
    return [
        Model(
            "linear",
            "Linear model: prediction = SUMPRODUCT(features, weights).",
            frame,
            (1, k),
            (1, 1),
            [],
            _linear_formulas,
            _linear,
        ),
        Model(
            "nn",
            "Neural net: two ReLU units MAX(0, SUMPRODUCT(features, weights)), added.",
            frame,
            (2, k),
            (1, 1),
            ["Unit 1", "Unit 2"],
            _nn_formulas,
            _nn,
        ),
        Model(
            "mmult",
            "The same net as matrix multiplication: MMULT(features, weights), ReLU, sum.",
            frame,
            (k, 2),
            (TABLE_ROW, frame.metrics_col),
            ["MMULT 1", "MMULT 2", "ReLU 1", "ReLU 2"],
            _mmult_formulas,
            _mmult,
        ),
    ]


def metric_formulas(m: Model, n: int) -> list[str]:
    """Training/validation loss (and accuracy for a 0/1 target), over the table's Valid column,
    in the order of Frame.metrics."""
    first, last = TABLE_ROW + 1, TABLE_ROW + n

    def rng(header: str) -> str:
        c = m.column(header)
        return f"${c}${first}:${c}${last}"

    valid = rng(VALID_HEADER)
    scores = [rng(h) for h in m.headers[-(len(m.frame.metrics) // 2) :]]
    return [f"=SUMIF({valid},{v},{col})/COUNTIF({valid},{v})" for col in scores for v in (0, 1)]


def metrics(
    pred: np.ndarray, target: np.ndarray, valid: np.ndarray, binary: bool = True
) -> dict[str, np.ndarray]:
    """The table's score columns and the metrics, as the sheet computes them."""
    sq = (pred - target) ** 2
    ok = ((pred > 0.5) == (target == 1)).astype(float)
    t, v = valid == 0, valid == 1

    def mean(x: np.ndarray, rows: np.ndarray) -> float | str:
        # no rows (a table of one or two): the sheet's SUMIF/COUNTIF is #DIV/0!, and says so
        return float(x[rows].mean()) if rows.any() else "#DIV/0!"

    values = [mean(sq, t), mean(sq, v), mean(ok, t), mean(ok, v)]
    return {"sq": sq, "ok": ok, "values": values if binary else values[:2]}


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
