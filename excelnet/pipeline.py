"""The pipeline behind `excelnet fit` and `excelnet eval`: read the workbook, compile its
formulas, train, write back."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from excelnet.errors import ExcelnetError, ExcelnetWarning, where
from excelnet.formula.book import Book, read_book
from excelnet.formula.compile import Graph, Model, a1
from excelnet.formula.parse import FormulaError, Ref, parse
from excelnet.formula.values import Ctx
from excelnet.history import SHEET as HISTORY
from excelnet.history import add_history
from excelnet.sheets import Changes, render
from excelnet.train import EPOCHS, LR, SheetFit, train
from excelnet.writeback import refuse_if_open, write_values

METRIC_NAMES = {"valid_loss": "excelnet_valid_loss", "accuracy": "excelnet_accuracy"}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ExcelnetError(f"unknown device {device!r}: choose auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ExcelnetError("--device cuda: no CUDA GPU is available here")
    return torch.device(device)


def _named_range(book: Book, sheet: str, name: str) -> tuple[str | None, Ref | None]:
    """A sheet-scoped name's text and, when it names cells, their Ref."""
    text = book.sheets[sheet].names.get(name)
    if text is None:
        return None, None
    try:
        ref = parse(text, sheet)
    except FormulaError:
        return text, None
    ok = isinstance(ref, Ref) and ref.r1 is not None and ref.c1 is not None
    return text, ref if ok else None


def metric_cells(book: Book, sheet: str) -> dict[str, tuple[str, int, int]]:
    """Cells named excelnet_valid_loss / excelnet_accuracy on a model sheet, if any."""
    out = {}
    for key, name in METRIC_NAMES.items():
        _, ref = _named_range(book, sheet, name)
        if ref is not None:
            out[key] = (ref.sheet, ref.r0, ref.c0)
    return out


def gradient_cells(book: Book, model: Model) -> list[tuple[str, int, int]]:
    """The cells named excelnet_gradients on a model sheet (one per parameter), if any."""
    sheet = model.solver.sheet
    text, ref = _named_range(book, sheet, "excelnet_gradients")
    if text is None:
        return []
    if ref is None:
        raise ExcelnetError(
            f"{where(book.path, sheet)}: excelnet_gradients is {text!r}, not a range"
        )
    cells = [
        (ref.sheet, r, c) for r in range(ref.r0, ref.r1 + 1) for c in range(ref.c0, ref.c1 + 1)
    ]
    count = sum(b.size for b in model.params)
    if len(cells) != count:
        raise ExcelnetError(
            f"{where(book.path, sheet)}: excelnet_gradients has {len(cells)} cells for "
            f"{count} parameters"
        )
    return cells


def gradients(model: Model) -> list[float]:
    """d objective / d parameter at the current parameters, in the order of the cells."""
    loss = model.objective_value()
    loss.backward()
    out = []
    for b in model.params:
        out.extend(b.value.x.grad.detach().cpu().reshape(-1).tolist())
        b.value.x.grad = None
    return out


def compile_book(book: Book, sheet: str | None, device: torch.device) -> list[Model]:
    """Compile the Solver model of every sheet (or of `sheet`); check that each objective is a
    number at the starting parameters."""
    ctx = Ctx(device)
    graph = Graph(book)
    models = []
    kept: dict[str, str] = {}  # cells that kept their stored values -> the functions why
    for solver in book.solver_models(sheet):
        model = Model(book, solver, ctx, graph)
        model.compile()  # evaluates every block once, strictly: is the objective a number?
        problem = model.objective_error()
        if problem is not None:
            raise ExcelnetError(
                f"{problem} — the objective of sheet {solver.sheet} "
                f"({a1(solver.objective.r0, solver.objective.c0)}) is not a "
                f"number at the starting parameters"
            )
        models.append(model)
        for b, names in model.warnings:
            span = b.cell() if b.size == 1 else f"{b.cell()}:{b.cell(b.size - 1)}"
            kept[f"{b.sheet}!{span}"] = names
    if kept:
        cells = "; ".join(f"{cell} ({names})" for cell, names in kept.items())
        warnings.warn(
            f"{book.path}: used the values the file stores for cells excelnet does not "
            f"recompute: {cells}",
            ExcelnetWarning,
            stacklevel=3,
        )
    return models


def check_training(epochs: int, lr: float) -> None:
    if epochs < 0:
        raise ExcelnetError(f"--epochs must be 0 or more, not {epochs}")
    if not lr > 0:
        raise ExcelnetError(f"--lr must be a positive number, not {lr}")


def train_model(
    book: Book,
    model: Model,
    epochs: int,
    lr: float,
    progress=None,
    history: bool = True,
    compiled: bool | None = None,
) -> SheetFit:
    """Train one compiled model, as `fit` does for each. `progress(sheet, epochs)` returns an
    update(epoch, loss) callback, called with (None, None) at the end."""
    sheet = model.solver.sheet
    bar = progress(sheet, epochs) if progress else None
    try:
        return train(model, epochs, lr, bar, metric_cells(book, sheet), history, compiled)
    except ValueError as e:
        raise ExcelnetError(f"{where(book.path, sheet)}: {e}") from None
    finally:
        if bar is not None:
            bar(None, None)


def fit(
    path: str | Path,
    sheet: str | None = None,
    epochs: int = EPOCHS,
    lr: float = LR,
    device: str = "auto",
    out: str | Path | None = None,
    progress=None,
    history: bool = True,
    report=None,
    compiled: bool | None = None,
) -> list[SheetFit]:
    """Fit every Solver model of the workbook (or of `sheet`) and write the fitted parameters,
    and fresh values of every cell that depends on them, into `out` (default: the workbook).
    `history` also records the losses in the workbook's `history` sheet, with a chart.
    `compiled` picks the CPU engine (see `excelnet.train.train`; None: the faster one)."""
    path = Path(path)
    out = Path(out) if out is not None else path
    if out.suffix.lower() != path.suffix.lower():
        # the zip's content types say .xlsx or .xlsm; Excel refuses a file whose name disagrees
        raise ExcelnetError(
            f"{out}: a fitted copy of {path.name} must keep its extension ({path.suffix})"
        )
    check_training(epochs, lr)
    refuse_if_open(path, out)  # before the work, not only at the write
    dev = resolve_device(device)
    book = read_book(path, needed_by=sheet, also=(HISTORY,) if history else ())
    models = compile_book(book, sheet, dev)
    results, updates = [], {}
    for model in models:
        results.append(train_model(book, model, epochs, lr, progress, history, compiled))
        for (s, r, c), v in model.values().items():
            updates.setdefault(s, {})[(r, c)] = v
        cells = gradient_cells(book, model)
        for (s, r, c), g in zip(cells, gradients(model) if cells else [], strict=True):
            updates.setdefault(s, {})[(r, c)] = g
    changes = Changes()
    if history:
        add_history(changes, path, book, results)
    if report is not None:
        report(changes, path, results)
    write_values(path, updates, out, extra=changes.extra, replace=changes.replace)
    return results


@dataclass
class Evaluation:
    sheet: str
    objective_cell: str
    objective: float
    gradients: dict[str, float]  # parameter cell -> d objective / d parameter
    values: dict[str, object]  # every formula cell that depends on the parameters

    def summary(self) -> dict:
        return {
            "sheet": self.sheet,
            "objective_cell": self.objective_cell,
            "objective": self.objective,
            "gradients": self.gradients,
        }


def evaluate_model(model: Model) -> Evaluation:
    """The objective, its gradients and every dependent cell's value at the current parameters."""
    grads = gradients(model)
    names = [f"{b.sheet}!{b.cell(i)}" for b in model.params for i in range(b.size)]
    model.evaluate()
    o = model.solver.objective
    cells = {f"{s}!{a1(r, c)}": v for (s, r, c), v in model.values().items()}
    objective = f"{o.sheet}!{a1(o.r0, o.c0)}"
    return Evaluation(
        model.solver.sheet, objective, cells[objective], dict(zip(names, grads, strict=True)), cells
    )


def evaluate(
    path: str | Path, sheet: str | None = None, device: str = "auto", write: bool = True
) -> list[Evaluation]:
    """Each Solver model's objective, its gradient with respect to each parameter cell, and the
    value of every formula cell that depends on the parameters. Where a sheet names gradient
    cells (excelnet_gradients), `write` fills them in; nothing else in the file changes."""
    path = Path(path)
    book = read_book(path, needed_by=sheet)
    out, updates = [], {}
    for model in compile_book(book, sheet, resolve_device(device)):
        result = evaluate_model(model)
        out.append(result)
        grads = result.gradients.values()
        for (s, r, c), g in zip(gradient_cells(book, model), grads, strict=False):
            updates.setdefault(s, {})[(r, c)] = g
    if write and updates:
        write_values(path, updates)
    return out


@dataclass
class SweepRun:
    lr: float
    losses: list[float]
    final_loss: float
    diverged: str | None

    def summary(self) -> dict:
        return {
            "lr": self.lr,
            "epochs": len(self.losses),
            "final_loss": self.final_loss,
            "diverged": self.diverged,
        }


SWEEP_SHEET = "lr_sweep"


def lr_sweep(
    path: str | Path, sheet: str, lrs: list[float], epochs: int = EPOCHS, device: str = "auto"
) -> list[SweepRun]:
    """Fit one sheet's Solver model from the same starting parameters with each learning rate,
    leave the model sheet as it is, and write an lr_sweep sheet: every rate's loss curve in one
    chart (log scale), the rates that diverged marked."""
    path = Path(path)
    if not lrs:
        raise ExcelnetError("--lrs needs at least one learning rate")
    bad = [lr for lr in lrs if not (lr > 0 and math.isfinite(lr))]
    if bad:
        raise ExcelnetError(f"--lrs: learning rates must be positive numbers, not {bad[0]:g}")
    if epochs < 1:
        raise ExcelnetError(f"--epochs must be 1 or more, not {epochs}")
    refuse_if_open(path)
    book = read_book(path, needed_by=sheet)
    (model,) = compile_book(book, sheet, resolve_device(device))
    params = model.parameters()
    start = [p.detach().clone() for p in params]
    runs = []
    for lr in lrs:
        with torch.no_grad():
            for p, s in zip(params, start, strict=True):
                p.copy_(s)
        r = train(model, epochs, lr)
        runs.append(SweepRun(lr, r.losses, r.final_loss, r.diverged))

    header = ["epoch"] + [f"lr {r.lr:g}" + (" (diverged)" if r.diverged else "") for r in runs]
    columns = [list(map(float, range(epochs)))] + [list(r.losses) for r in runs]

    def chart(wb):
        ch = wb.add_chart({"type": "scatter", "subtype": "straight"})
        for i, r in enumerate(runs, start=1):
            if r.losses:
                ch.add_series(
                    {
                        "name": header[i],
                        "categories": [SWEEP_SHEET, 1, 0, len(r.losses), 0],
                        "values": [SWEEP_SHEET, 1, i, len(r.losses), i],
                        "line": {"dash_type": "dash"} if r.diverged else {},
                    }
                )
        ch.set_title({"name": f"Learning rates on sheet {sheet}"})
        ch.set_x_axis({"name": "epoch"})
        ch.set_y_axis({"name": "loss (log scale)", "log_base": 10})
        ch.set_size({"width": 720, "height": 400})
        return ch

    changes = Changes()
    changes.place(path, SWEEP_SHEET, render(SWEEP_SHEET, header, columns, chart))
    write_values(path, {}, extra=changes.extra, replace=changes.replace)
    return runs


COMPARE_SHEET = "compare"
COMPARE_HEADER = [
    "model",
    "parameters",
    "training loss",
    "validation loss",
    "validation accuracy",
    "fit seconds",
]


def compare(
    path: str | Path,
    epochs: int = EPOCHS,
    lr: float = LR,
    device: str = "auto",
    out: str | Path | None = None,
) -> list[SheetFit]:
    """Fit every model sheet (as `fit` does) and write a compare sheet: per model its
    validation loss and accuracy, number of parameters and fit time, with a chart."""

    def report(changes: Changes, book_path: Path, results: list[SheetFit]) -> None:
        rows = [
            [r.sheet, r.parameters, r.final_loss, r.valid_loss, r.accuracy, r.seconds]
            for r in results
        ]
        columns = [list(c) for c in zip(*rows, strict=True)]
        n = len(rows)

        def chart(wb):
            ch = wb.add_chart({"type": "column"})
            use = 3 if any(r.valid_loss is not None for r in results) else 2
            ch.add_series(
                {
                    "name": COMPARE_HEADER[use],
                    "categories": [COMPARE_SHEET, 1, 0, n, 0],
                    "values": [COMPARE_SHEET, 1, use, n, use],
                }
            )
            ch.set_title({"name": f"Models compared: {COMPARE_HEADER[use]}"})
            ch.set_y_axis({"name": COMPARE_HEADER[use]})
            ch.set_legend({"none": True})
            return ch

        changes.place(
            book_path, COMPARE_SHEET, render(COMPARE_SHEET, COMPARE_HEADER, columns, chart)
        )

    return fit(path, epochs=epochs, lr=lr, device=device, out=out, report=report)
