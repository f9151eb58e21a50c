"""The pipeline behind `excelnet fit` and `excelnet eval`: read the workbook, compile its
formulas, train, write back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from excelnet.errors import ExcelnetError, where
from excelnet.formula.book import Book, read_book
from excelnet.formula.compile import Graph, Model, a1
from excelnet.formula.parse import FormulaError, Ref, parse
from excelnet.formula.values import Ctx
from excelnet.train import EPOCHS, LR, SheetFit, train
from excelnet.writeback import lock_file, write_values

METRIC_NAMES = {"valid_loss": "excelnet_valid_loss", "accuracy": "excelnet_accuracy"}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ExcelnetError(f"unknown device {device!r}: choose auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ExcelnetError("--device cuda: no CUDA GPU is available here")
    return torch.device(device)


def _metrics(book: Book, sheet: str) -> dict[str, tuple[str, int, int]]:
    """Cells named excelnet_valid_loss / excelnet_accuracy on a model sheet, if any."""
    out = {}
    for key, name in METRIC_NAMES.items():
        text = book.sheets[sheet].names.get(name)
        if text is None:
            continue
        try:
            ref = parse(text, sheet)
        except FormulaError:
            continue
        if isinstance(ref, Ref) and ref.r1 is not None:
            out[key] = (ref.sheet, ref.r0, ref.c0)
    return out


def _compile(book: Book, sheet: str | None, device: torch.device) -> list[Model]:
    ctx = Ctx(device)
    graph = Graph(book)
    models = []
    for solver in book.solver_models(sheet):
        model = Model(book, solver, ctx, graph)
        model.compile()
        model.ctx.strict = True
        model.run(model.train_blocks)  # once, strictly: is the objective a number?
        problem = model.objective_error()
        if problem is not None:
            raise ExcelnetError(
                f"{problem} — the objective of sheet {solver.sheet} "
                f"({a1(solver.objective.r0, solver.objective.c0)}) is not a "
                f"number at the starting parameters"
            )
        models.append(model)
    return models


def fit(
    path: str | Path,
    sheet: str | None = None,
    epochs: int = EPOCHS,
    lr: float = LR,
    device: str = "auto",
    out: str | Path | None = None,
    progress=None,
    history: bool = True,
) -> list[SheetFit]:
    """Fit every Solver model of the workbook (or of `sheet`) and write the fitted parameters,
    and fresh values of every cell that depends on them, into `out` (default: the workbook).
    `history` also records the losses in the workbook's `history` sheet, with a chart."""
    path = Path(path)
    out = Path(out) if out is not None else path
    if epochs < 0:
        raise ExcelnetError(f"--epochs must be 0 or more, not {epochs}")
    if not lr > 0:
        raise ExcelnetError(f"--lr must be a positive number, not {lr}")
    for p in {path, out}:
        if lock_file(p) is not None:
            raise ExcelnetError(
                f"{p}: the workbook is open in Excel or LibreOffice "
                f"({lock_file(p).name} exists); close it and try again"
            )
    dev = resolve_device(device)
    book = read_book(path)
    models = _compile(book, sheet, dev)
    results, updates = [], {}
    for model in models:
        bar = progress(model.solver.sheet, epochs) if progress else None
        try:
            result = train(model, epochs, lr, bar, _metrics(book, model.solver.sheet))
        except ValueError as e:
            raise ExcelnetError(f"{where(path, model.solver.sheet)}: {e}") from None
        finally:
            if bar is not None:
                bar(None, None)
        results.append(result)
        for (s, r, c), v in model.values().items():
            updates.setdefault(s, {})[(r, c)] = v
    extra, replace = {}, {}
    if history:
        from excelnet.history import history_parts

        extra, replace = history_parts(path, book, results)
    write_values(path, updates, out, extra=extra, replace=replace)
    return results


@dataclass
class Evaluation:
    sheet: str
    objective_cell: str
    objective: float
    gradients: dict[str, float]  # parameter cell -> d objective / d parameter

    def summary(self) -> dict:
        return {
            "sheet": self.sheet,
            "objective_cell": self.objective_cell,
            "objective": self.objective,
            "gradients": self.gradients,
        }


def evaluate(path: str | Path, sheet: str | None = None, device: str = "auto") -> list[Evaluation]:
    """Each Solver model's objective and its gradient with respect to each parameter cell."""
    path = Path(path)
    book = read_book(path)
    out = []
    for model in _compile(book, sheet, resolve_device(device)):
        loss = model.objective_value()
        loss.backward()
        grads = {}
        for b in model.params:
            g = b.value.x.grad.detach().cpu().reshape(-1).tolist()
            for i, v in enumerate(g):
                grads[f"{b.sheet}!{b.cell(i)}"] = v
        o = model.solver.objective
        out.append(
            Evaluation(
                model.solver.sheet, f"{o.sheet}!{a1(o.r0, o.c0)}", float(loss.detach()), grads
            )
        )
    return out
