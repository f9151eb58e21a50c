"""Train, reset or evaluate the model of a workbook that is open in Excel or LibreOffice.

A workbook built with `excelnet build … --macros` has, on each model sheet, a Train button that
runs xlwings' SampleCall macro, which imports the companion module <book>.py and calls its
main(), which calls `excelnet.live.xl.main()`. That acts on the active sheet — the one whose button
was pressed — as its Action cell says: Train, Reset or Evaluate.

Everything goes through xlwings' Book / Sheet / Range / Name API: the model is read from the
live workbook (its defined names, formulas and values; excelnet/live/source.py), compiled and
trained as `excelnet fit` does, and the parameters, gradients and history are written back with
Range.value, so that the spreadsheet application recalculates everything else itself. Excel
holds the file open, so nothing is written to the file. `excelnet live` runs the same code on
a LibreOffice document (excelnet/live/uno_engine.py offers xlwings' API over UNO).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from pathlib import Path

import numpy as np

from excelnet.errors import ExcelnetError, ExcelnetWarning, WorkbookGone, where
from excelnet.fitting.history import SHEET as HISTORY
from excelnet.fitting.history import history_table
from excelnet.fitting.options import LR, FitOptions
from excelnet.fitting.pipeline import (
    Evaluation,
    compile_book,
    evaluate_model,
    gradient_cells,
    gradients,
    resolve_device,
    train_model,
)
from excelnet.fitting.train import SheetFit
from excelnet.formula.book import Book
from excelnet.formula.graph import a1
from excelnet.formula.model import Model
from excelnet.live.source import holds_formula, read_live
from excelnet.progress import Silent
from excelnet.writer.macros import ACTION_NAME, ACTIONS, SEED_NAME

EVERY = 0.25  # seconds between writes of the parameters while a fit runs
GONE = "; each write of the parameters was all of them at once, and the file is unchanged"
START = 0.5  # Reset draws each parameter uniformly from (-START, START), as the builders do


@dataclass
class Outcome:
    """What one press of the button did."""

    sheet: str
    action: str
    message: str  # one line for the status bar
    notes: list[str] = field(default_factory=list)  # for a message box
    fit: SheetFit | None = None
    evaluation: Evaluation | None = None
    params: dict[str, float] = field(default_factory=dict)  # cell -> value written

    def summary(self) -> dict:
        return {
            "sheet": self.sheet,
            "action": self.action,
            "message": self.message,
            "notes": self.notes,
            "fit": self.fit.summary() if self.fit else None,
            "evaluation": self.evaluation.summary() if self.evaluation else None,
            "params": self.params,
        }


def main(book=None) -> Outcome | None:
    """The Train button (xlwings' SampleCall → <book>.main() → here): act on the active sheet
    as its Action cell says. The outcome goes to the status bar; notes and errors to a
    message box, one line each, never a traceback."""
    if book is None:
        import xlwings as xw

        book = xw.Book.caller()
    try:
        outcome = act(book)
    except ExcelnetError as e:
        _alert(book, str(e))
        return None
    except Exception as e:  # the spreadsheet shows a line, never a traceback
        _alert(book, f"excelnet stopped: {type(e).__name__}: {e}")
        return None
    _status(book, f"excelnet: {outcome.message}")
    if outcome.notes:
        _alert(book, "\n".join([outcome.message, *outcome.notes]))
    return outcome


def act(
    book,
    action: str | None = None,
    sheet: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    device: str | None = None,
    history: bool | None = None,
    path: str | Path | None = None,
    every: float = EVERY,
    compiled: bool | None = None,
    method: str | None = None,
    options: FitOptions | None = None,
) -> Outcome:
    """Train, reset or evaluate the Solver model of `sheet` (default: the active sheet) of an
    open workbook (an xlwings Book). `action` None: as the sheet's Action cell says (Train
    when it is empty or unknown, with a note). `path`: the workbook's file, for xlwings
    engines that send no formulas (see read_live). How Train trains and where the model
    lives: `options` with the knobs given here in its place, as for `excelnet.fit`, except
    that with neither a method nor an lr Train runs the lesson's gradient descent at lr 0.1
    (what the workbooks' about sheets say the button does). Bad input raises ExcelnetError."""
    options = FitOptions.of(
        options,
        epochs=epochs,
        lr=lr,
        method=method,
        device=device,
        compiled=compiled,
        history=history,
    )
    if options.method is None and options.lr is None:
        options = replace(options, lr=LR)
    if sheet is not None and sheet not in [s.name for s in book.sheets]:
        raise ExcelnetError(f"{where(book.fullname)}: no sheet named {sheet!r}")
    ws = book.sheets[sheet] if sheet is not None else book.sheets.active
    notes: list[str] = []
    if action is None:
        action = _action_cell(book, ws, notes)
    elif action.capitalize() not in ACTIONS:
        raise ExcelnetError(f"unknown action {action!r}: choose Train, Reset or Evaluate")
    action = action.capitalize()
    live = read_live(book, path)
    if action == "Reset":
        return _reset(book, live, ws, notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExcelnetWarning)
        (model,) = compile_book(live, ws.name, resolve_device(options.device), seed=options.seed)
    for w in caught:  # the spreadsheet's user sees excelnet's warnings in the message box
        if issubclass(w.category, ExcelnetWarning):
            notes.append(str(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if action == "Evaluate":
        return _evaluate(book, live, model, notes)
    return _train(book, live, model, options, every, notes)


# -- the three actions -----------------------------------------------------------------------
def _train(book, live: Book, model: Model, options: FitOptions, every, notes) -> Outcome:
    sheet = model.solver.sheet
    due = [time.perf_counter() + every]  # when the parameters are next written

    class Moving(Silent):
        """All the parameters written at once, a few times a second: the sheet moves."""

        def epochs(self, _sheet: str, total: int):
            def update(epoch: int, loss: float) -> None:
                start = time.perf_counter()
                if start < due[0]:
                    return
                values = [p.detach().cpu().reshape(-1).tolist() for p in model.parameters()]
                if all(math.isfinite(v) for vs in values for v in vs):
                    _write_params(book, model, values)
                _status(
                    book, f"excelnet: training {sheet}, epoch {epoch} of {total}, loss {loss:.6g}"
                )
                took = time.perf_counter() - start  # a slow recalculation: train as long between
                due[0] = start + took + max(every, took)

            return update

    try:
        result = train_model(live, model, options, Moving())
        values = [p.detach().cpu().reshape(-1).tolist() for p in model.parameters()]
        params = _write_params(book, model, values)
        _write_gradients(book, live, model)
        if options.history:
            _write_history(book, live, result)
        _status(book, False)  # the status bar back to the application
    except WorkbookGone as e:
        raise WorkbookGone(f"{where(book.fullname, sheet)}: while training, {e}{GONE}") from None
    o = model.solver.objective
    step = "" if result.lr is None else f", lr {result.lr:g}"
    message = (
        f"{sheet}: trained {result.epochs} epochs ({result.method}{step}, {result.device}, "
        f"{result.seconds:.1f} s): loss {result.initial_loss:.6g} → {result.final_loss:.6g} "
        f"({o.sheet}!{a1(o.r0, o.c0)})"
    )
    if result.diverged:
        notes.append(f"{sheet}: {result.diverged}")
    return Outcome(sheet, "Train", message, notes, fit=result, params=params)


def _evaluate(book, live: Book, model: Model, notes) -> Outcome:
    result = evaluate_model(model)
    cells = _write_gradients(book, live, model, list(result.gradients.values()))
    steepest = max(result.gradients.items(), key=lambda kv: abs(kv[1]))
    message = f"{result.sheet}: objective {result.objective_cell} = {result.objective:.6g}; " + (
        f"gradients in {cells}" if cells else f"steepest d/d {steepest[0]} = {steepest[1]:.6g}"
    )
    return Outcome(result.sheet, "Evaluate", message, notes, evaluation=result)


def _reset(book, live: Book, ws, notes) -> Outcome:
    (solver,) = live.solver_models(ws.name)
    seed = _seed(book, ws)
    rng = np.random.default_rng(seed)
    blocks = []
    for ref in solver.adjustable:  # the cells must hold numbers, as for training
        target = live.sheets.get(ref.sheet)
        if target is None:
            raise ExcelnetError(f"{where(live.path, ws.name)}: solver_adj names a missing sheet")
        for r in range(ref.r0, ref.r1 + 1):
            for c in range(ref.c0, ref.c1 + 1):
                v = target.values.get((r, c))
                formula = holds_formula(target, r, c)
                if formula or isinstance(v, (str, bool)):
                    raise ExcelnetError(
                        f"{where(live.path, ref.sheet, a1(r, c))}: adjustable cell holds "
                        f"{'a formula' if formula else repr(v)}; Reset writes numbers only there"
                    )
        size = (ref.r1 - ref.r0 + 1) * (ref.c1 - ref.c0 + 1)
        blocks.append((ref, rng.uniform(-START, START, size).tolist()))
    params = {}
    for ref, values in blocks:
        params.update(_write_block(book, ref.sheet, ref.r0, ref.c0, ref.r1, ref.c1, values))
    message = (
        f"{ws.name}: reset {len(params)} parameters to random values in "
        f"(−{START:g}, {START:g}) from seed {seed}"
    )
    return Outcome(ws.name, "Reset", message, notes, params=params)


# -- cells -----------------------------------------------------------------------------------
def _named_cell(book, ws, name: str):
    """The cell a sheet-scoped name refers to, or None when the sheet has no such name."""
    for n in ws.names:
        if n.name.rpartition("!")[2].lower() == name:
            try:
                return n.refers_to_range
            except Exception:
                raise ExcelnetError(
                    f"{where(book.fullname, ws.name)}: {name} is {n.refers_to!r}, not a cell"
                ) from None
    return None


def _cell_name(rng) -> str:
    return f"{rng.sheet.name}!{rng.address.replace('$', '')}"


def _action_cell(book, ws, notes: list[str]) -> str:
    cell = _named_cell(book, ws, ACTION_NAME)
    if cell is None:
        return "Train"
    value = cell.value
    text = str(value).strip() if value is not None else ""
    if text.capitalize() in ACTIONS:
        return text.capitalize()
    what = "is empty" if not text else f"holds {text!r}, not Train, Reset or Evaluate"
    notes.append(f"the Action cell {_cell_name(cell)} {what}: trained")
    return "Train"


def _seed(book, ws) -> int:
    cell = _named_cell(book, ws, SEED_NAME)
    at = where(book.fullname, ws.name)
    if cell is None:
        raise ExcelnetError(f"{at}: no seed cell (the sheet-scoped name {SEED_NAME}) for Reset")
    v = cell.value
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < 0:
        raise ExcelnetError(
            f"{where(book.fullname, ws.name, cell.address.replace('$', ''))}: the seed is "
            f"{v!r}; type a whole number, 0 or more"
        )
    return int(v)


def _write_block(book, sheet: str, r0: int, c0: int, r1: int, c1: int, values: list) -> dict:
    """One rectangle of cells in one Range.value assignment: all new, or (if it fails) all
    old. Returns cell -> value."""
    cols = c1 - c0 + 1
    rows = [values[i : i + cols] for i in range(0, len(values), cols)]
    with _answering():
        book.sheets[sheet].range((r0 + 1, c0 + 1), (r1 + 1, c1 + 1)).value = rows
    return {f"{sheet}!{a1(r0 + i // cols, c0 + i % cols)}": v for i, v in enumerate(values)}


def _write_params(book, model: Model, values: list[list[float]]) -> dict[str, float]:
    out = {}
    for b, vs in zip(model.params, values, strict=True):
        out.update(_write_block(book, b.sheet, b.r0, b.c0, b.r1, b.c1, vs))
    return out


def _write_gradients(book, live: Book, model: Model, grads: list[float] | None = None) -> str:
    """The gradient cells a sheet names (excelnet_gradients), at the current parameters."""
    cells = gradient_cells(live, model)
    if not cells:
        return ""
    grads = gradients(model) if grads is None else grads
    (s, r0, c0), (_, r1, c1) = cells[0], cells[-1]
    _write_block(book, s, r0, c0, r1, c1, grads)
    return f"{s}!{a1(r0, c0)}:{a1(r1, c1)}"


def _write_history(book, live: Book, result: SheetFit) -> None:
    """The history sheet (as `excelnet fit` keeps it) with this fit added, in one assignment;
    a new sheet at the end if there is none."""
    _, header, columns = history_table(live, [result])
    rows = [header, *(list(r) for r in zip_longest(*columns))]
    with _answering():
        names = [s.name for s in book.sheets]
        if HISTORY not in names:
            book.sheets.add(HISTORY, after=book.sheets[names[-1]])
        book.sheets[HISTORY].range((1, 1), (len(rows), len(header))).value = rows


@contextlib.contextmanager
def _answering():
    """A write to the live workbook that fails (Excel quit, the workbook closed) → WorkbookGone."""
    try:
        yield
    except ExcelnetError:
        raise
    except Exception as e:
        raise WorkbookGone(f"the workbook stopped answering ({type(e).__name__}: {e})") from None


# -- what the user sees ------------------------------------------------------------------------
def _status(book, text: str | bool) -> None:
    try:
        book.app.status_bar = text
    except (NotImplementedError, AttributeError):  # engines without a status bar
        pass


def _alert(book, text: str) -> None:
    try:
        book.app.alert(text, title="excelnet")
    except Exception:  # the workbook or the application is gone: nowhere to show it
        pass
