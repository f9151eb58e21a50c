"""`excelnet fit`, `eval`, `lr-sweep` and `compare`: train a workbook's models (or only
evaluate them), with the options a fit takes made into one FitOptions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from excelnet.cli import batch
from excelnet.cli.common import (
    count,
    engine_option,
    epochs_option,
    fit_options,
    method_options,
    progress,
    workbook_options,
)
from excelnet.errors import ExcelnetError
from excelnet.fitting.options import EPOCHS, SEED
from excelnet.fitting.parallel import run_jobs

AUTOMATIC = (
    "as the Solver model asks: simplex when it is linear, evolutionary for solver_eng 3, "
    "else lbfgs; gd when --lr is given"
)


def solver_options(p) -> None:
    """The options of a fit as Excel's Solver has them: the seed of its random draws, and what
    to write when no point meets the constraints."""
    p.add_argument(
        "--seed",
        type=count,
        default=SEED,
        help="where a fit's random draws come from: cells that call RAND, RANDBETWEEN or "
        "RANDARRAY, drawn afresh at every evaluation, and the evolutionary method's population "
        f"(at {SEED}, a file's solver_rsd, when not 0); the same seed, the same fit "
        f"(default {SEED})",
    )
    p.add_argument(
        "--keep-infeasible",
        action="store_true",
        help="when no point meets the constraints, write the one closest to feasible (exit "
        "code 3 all the same; without it the file is left unchanged)",
    )


def add_fit(sub) -> None:
    f = sub.add_parser("fit", help="train the model a workbook's formulas define; write it back")
    batch.books_argument(f, "an .xlsx/.xlsm with a Solver model on a sheet")
    f.add_argument("--sheet", help="fit only this sheet (default: every sheet with a Solver model)")
    epochs_option(f)
    method_options(f, AUTOMATIC)
    solver_options(f)
    f.add_argument("--out", type=Path, help="write a fitted copy here instead of into the workbook")
    engine_option(f)
    f.add_argument(
        "--no-history",
        action="store_true",
        help="do not record the losses in the workbook's history sheet",
    )
    f.add_argument(
        "--verbose",
        action="store_true",
        help="also the Solver settings the workbook holds as Excel and excelnet write them "
        "(by default only those someone changed are noted)",
    )
    seeds_option(f)
    workbook_options(f)
    batch.options(f, "workbooks (or --seeds' starts)")
    f.set_defaults(run=_fit)


def add_sweep(sub) -> None:
    w = sub.add_parser("lr-sweep", help="fit one sheet with several learning rates; chart them")
    w.add_argument("book", type=Path, help="an .xlsx/.xlsm with a Solver model on a sheet")
    w.add_argument("--sheet", required=True, help="the sheet whose Solver model to sweep")
    w.add_argument(
        "--lrs",
        default="0.001,0.01,0.1,1",
        help="comma-separated learning rates (default 0.001,0.01,0.1,1)",
    )
    w.add_argument(
        "--epochs", type=count, default=EPOCHS, help=f"steps per learning rate (default {EPOCHS})"
    )
    workbook_options(w)
    batch.options(w, "learning rates")
    w.set_defaults(run=_sweep)


def add_compare(sub) -> None:
    c = sub.add_parser("compare", help="fit every model sheet; add a compare sheet and chart")
    c.add_argument("book", type=Path, help="an .xlsx/.xlsm with Solver models on its sheets")
    epochs_option(c)
    method_options(c, AUTOMATIC)
    solver_options(c)
    seeds_option(c)
    workbook_options(c)
    batch.options(c, "starts (--seeds)")
    c.set_defaults(run=_compare)


def add_eval(sub) -> None:
    e = sub.add_parser("eval", help="each Solver model's objective and gradients, no training")
    batch.books_argument(e, "an .xlsx/.xlsm with a Solver model on a sheet")
    e.add_argument("--sheet", help="only this sheet (default: every sheet with a Solver model)")
    workbook_options(e)
    batch.options(e)
    e.set_defaults(run=_eval)


def seeds_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seeds",
        type=count,
        default=1,
        metavar="N",
        help="fit each model from N starts — the workbook's parameters and N-1 seeded random "
        "ones around them — side by side, and keep the best (default 1: the workbook's)",
    )


def _options(args: argparse.Namespace):
    """fit_options with the Solver options of fit and compare."""
    from dataclasses import replace

    return replace(fit_options(args), keep_infeasible=getattr(args, "keep_infeasible", False))


def _solve(args: argparse.Namespace, run) -> tuple[list, int, str | None]:
    """run() (fit or compare): its results, the exit code and the line for stderr. No answer
    to write (NotSolved) is code 3; Ctrl-C is 130: once, the best point so far was written;
    twice (or before the fit began), nothing was, and the results are None."""
    from excelnet.errors import NotSolved

    try:
        results = run()
    except NotSolved as e:
        return e.results, 3, e.command_line
    except KeyboardInterrupt:
        return None, 130, "stopped before the write: the file is unchanged"
    if any(r.interrupted for r in results):
        return results, 130, "wrote the best point found so far (Ctrl-C)"
    return results, 0, None


def _report(args: argparse.Namespace, results, code: int, line: str | None, key: str) -> int:
    """The JSON (when asked) and the line on stderr; the exit code."""
    if args.json:
        import json

        rows = [r.summary() for r in results or []]
        written = bool(results) and any(r.written for r in results)
        interrupted = None
        if code == 130:
            interrupted = "written" if results else "unchanged"
        print(
            json.dumps(
                {
                    "book": str(getattr(args, "out", None) or args.book),
                    key: rows,
                    "written": written,
                    "interrupted": interrupted,
                },
                indent=2,
            )
        )
    if line is not None:
        word = "error" if code == 3 else "interrupted"
        print(f"excelnet: {word}: {line}", file=sys.stderr)
    return code


def _fit(args: argparse.Namespace) -> int:
    options = _options(args)
    books = batch.prepare(args, {"--out": args.out})
    if not batch.single(books, args):
        job = (batch.fit_book, lambda b: (b, args.sheet, options, args.force, args.seeds))
        if len(books) == 1:  # one workbook on the cluster: its own output
            args.book = books[0]
            results = batch.one(run_jobs(job[0], [job[1](books[0].absolute())], 1, args.cluster)[0])
            return _fit_report(args, results, 0, None)
        outcomes = batch.run(args, books, *job, "fit")
        return batch.report(args, books, outcomes, "fits", FIT_COLUMNS, _fit_rows, "excelnet fit")
    args.book = books[0]
    from excelnet.fitting.pipeline import fit

    results, code, line = _solve(
        args,
        lambda: fit(
            args.book,
            sheet=args.sheet,
            out=args.out,
            progress=progress(args),
            force=args.force,
            options=options,
            **_starts(args),
        ),
    )
    return _fit_report(args, results, code, line)


FIT_COLUMNS = ["sheet", "params", "method", "epochs", "start", "final", "valid", "acc", "s"]


def _fit_rows(results) -> list[list[str]]:
    """A batch table's rows for one workbook's fits."""
    return [
        [
            r.sheet,
            str(r.parameters),
            r.method,
            str(r.epochs),
            f"{r.initial_loss:.5f}",
            f"{r.final_loss:.5f}",
            "" if r.valid_loss is None else f"{r.valid_loss:.5f}",
            "" if r.accuracy is None else f"{r.accuracy:.1%}",
            f"{r.seconds:.2f}",
        ]
        for r in results
    ]


def _starts(args: argparse.Namespace) -> dict:
    """fit's and compare's --seeds, and where the starts run (-j, --cluster)."""
    return {"seeds": args.seeds, "workers": batch.workers(args), "cluster": args.cluster}


def _fit_report(args: argparse.Namespace, results, code: int, line: str | None) -> int:
    """One workbook's fits: the summary (or the JSON), the line on stderr; the exit code."""
    if not args.json and results is not None:
        _print_fits(args, results, [r.summary() for r in results])
    return _report(args, results, code, line, "fits")


# Solver settings as Excel's Solver (or excelnet build) writes them when nobody changes them:
# a fit notes only the others, unless --verbose (solver_neg = 2: nothing applied)
SOLVER_DEFAULTS = {
    "solver_eng": 1,  # GRG Nonlinear
    "solver_lin": 2,  # not assumed linear
    "solver_val": 0,
    "solver_ver": 3,
    "solver_num": 0,
    "solver_cvg": 0.0001,
    "solver_drv": 1,
    "solver_est": 1,
    "solver_itr": 2147483647,
    "solver_mip": 2147483647,
    "solver_nod": 2147483647,
    "solver_tim": 2147483647,
    "solver_pre": 0.000001,
    "solver_rbv": 1,
    "solver_rlx": 2,
    "solver_scl": 1,
    "solver_sho": 2,
    "solver_ssz": 100,
    "solver_tol": 0.01,
    "solver_mrt": 0.075,
    "solver_msl": 2,
    "solver_nwt": 1,
    "solver_rsd": 0,
}


def _is_default(name: str, text: str) -> bool:
    """Whether a Solver name's value ("2", or "2: why" as fit reports it) is the default."""
    value = text.split(":", 1)[0].strip().lstrip("=")
    try:
        return float(value) == SOLVER_DEFAULTS.get(name)
    except ValueError:
        return False


def _notes(r, verbose: bool) -> tuple[list[str], list[str]]:
    """The lines on what excelnet applied (the goal aside) and the Solver names read but not
    used, less the settings nobody made (unless `verbose`)."""
    honoured, ignored = list(r.honoured[1:]), list(r.ignored)
    if verbose:
        return honoured, ignored
    quiet = ("solver_neg = 2:", "solver_pre = 1e-06:")
    honoured = [line for line in honoured if not line.startswith(quiet)]
    ignored = [k for k in ignored if not _is_default(k, str(r.ignored[k]))]
    return honoured, ignored


COLUMNS = ("sheet", "params", "method", "epochs", "device", "start", "final", "valid", "acc", "s")


def _cells(r: dict) -> list[str]:
    return [
        r["sheet"],
        str(r["parameters"]),
        r["method"],
        str(r["epochs"]),
        r["device"],
        f"{r['initial_loss']:.5f}",
        f"{r['final_loss']:.5f}",
        "" if r["valid_loss"] is None else f"{r['valid_loss']:.5f}",
        "" if r["accuracy"] is None else f"{r['accuracy']:.1%}",
        f"{r['seconds']:.2f}",
    ]


def _print_fits(args: argparse.Namespace, results: list, rows: list[dict]) -> None:
    """The summary: a table where the terminal is wide enough, else a few lines a sheet
    (nothing cut at 80 columns); the notes; and what was written."""
    import os

    from rich import box
    from rich.console import Console
    from rich.table import Table

    wide = sys.stdout.isatty() or "COLUMNS" in os.environ
    console = Console(width=None if wide else 100)
    title = f"excelnet fit {args.book}" + (f" → {args.out}" if args.out else "")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title)
    for col in COLUMNS:
        table.add_column(
            col, justify="left" if col in ("sheet", "device") else "right", no_wrap=True
        )
    for r in rows:
        table.add_row(*_cells(r))
    # the table's width uncut (measured as if the terminal had no edge)
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    if natural <= console.width:
        console.print(table)
        console.print(
            "start, final: the objective at the start and after the fit (the best parameters "
            "seen); valid: validation loss; acc: validation accuracy; s: seconds",
            style="dim",
        )
    else:  # stacked: each sheet in two short lines
        console.print(title, highlight=False)
        for r in rows:
            valid = "" if r["valid_loss"] is None else f"; validation loss {r['valid_loss']:.5f}"
            acc = "" if r["accuracy"] is None else f"; accuracy {r['accuracy']:.1%}"
            console.print(
                f"{r['sheet']}: {r['parameters']} parameters, {r['method']}, {r['epochs']} "
                f"epochs on {r['device']}, {r['seconds']:.2f} s",
                highlight=False,
            )
            console.print(
                f"  objective {r['initial_loss']:.5f} → {r['final_loss']:.5f}{valid}{acc}",
                highlight=False,
            )
    for r in results:
        console.print(f"{r.sheet}: {_outcome(r)}", highlight=False)
        if r.message:
            console.print(f"  {r.message}", highlight=False)
        honoured, ignored = _notes(r, args.verbose)
        for line in honoured:
            console.print(f"  {line}", style="dim", highlight=False)
        for note in r.notes:
            console.print(f"  note: {note}", highlight=False)
        if ignored:
            console.print(
                f"  Solver names read, not used (see --json): {', '.join(ignored)}",
                style="dim",
                highlight=False,
            )
        if r.diverged:
            console.print(f"[bold red]{r.sheet}: {r.diverged}[/]")
    if any(r.written is not False for r in results):
        written = args.out or args.book
        sheets = ", ".join(r.sheet for r in results if r.written is not False)
        history = "" if args.no_history else "; their losses in sheet history"
        console.print(
            f"wrote {written}: the fitted parameters of {sheets} and the cells that depend on "
            f"them{history}",
            highlight=False,
        )


def _outcome(r) -> str:
    """One line: the goal, the constraints and how the method ended."""
    words = [r.goal, r.status]  # r: a SheetFit
    if r.method == "simplex":
        gap = f", gap {r.gap:.2g}" if r.gap else ""
        words.append(f"HiGHS: {r.solution} after {r.epochs} iterations{gap}")
    elif r.method == "evolutionary":
        words.append(f"evolutionary: {r.epochs} generations, seed {r.seed}")
    elif r.method == "lbfgs":
        words.append(
            f"lbfgs {'converged' if r.converged else 'stopped'} after {r.epochs} iterations"
        )
    elif r.lr is not None:
        words.append(f"{r.method} ended with step {r.lr:.3g}")
    last = r.final_loss if r.last_loss is None else r.last_loss
    if abs(last - r.final_loss) > 1e-12 * max(abs(last), abs(r.final_loss)):
        words.append(f"kept the best parameters seen, of epoch {r.best_epoch}")
    if r.written is False:
        words.append("not written")
    return "; ".join(words)


def _eval(args: argparse.Namespace) -> int | None:
    books = batch.prepare(args, {})
    if not batch.single(books, args):
        job = (batch.eval_book, lambda b: (b, args.sheet, args.device, args.force))
        if len(books) == 1:
            args.book = books[0]
            found = batch.one(run_jobs(job[0], [job[1](books[0].absolute())], 1, args.cluster)[0])
            return _eval_report(args, found)
        outcomes = batch.run(args, books, *job, "eval")
        columns = ["sheet", "objective cell", "objective"]

        def rows(found):
            return [[e.sheet, e.objective_cell, f"{e.objective!r}"] for e in found]

        return batch.report(args, books, outcomes, "models", columns, rows, "excelnet eval")
    args.book = books[0]
    from excelnet.fitting.pipeline import evaluate

    found = evaluate(
        args.book, sheet=args.sheet, device=args.device, progress=progress(args), force=args.force
    )
    return _eval_report(args, found)


def _eval_report(args: argparse.Namespace, found) -> None:
    rows = [e.summary() for e in found]
    if args.json:
        import json

        print(json.dumps({"book": str(args.book), "models": rows}, indent=2))
        return
    for r in rows:
        names = r["labels"]
        what = names.get(r["objective_cell"])
        named = f"{what} ({r['objective_cell']})" if what else r["objective_cell"]
        print(f"{r['sheet']}: objective {named} = {_number(r['objective'])}")
        print("  gradient (d objective / d parameter), by parameter:")
        cells = list(r["gradients"])
        tags = [f"{names[c]} ({c})" if c in names else c for c in cells]
        width = max(map(len, tags), default=0)
        for tag, cell in zip(tags, cells, strict=True):
            print(f"    {tag:<{width}}  {_number(r['gradients'][cell])}")
        print("  (--json: every digit)")


def _number(x) -> str:
    """A value to read: six significant digits (--json keeps them all)."""
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def _rates(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ExcelnetError(f"--lrs: {text!r} is not a comma-separated list of numbers") from None


def _sweep(args: argparse.Namespace) -> None:
    rates = _rates(args.lrs)
    options = fit_options(args)
    from excelnet.fitting.pipeline import lr_sweep

    runs = lr_sweep(
        args.book,
        args.sheet,
        rates,
        progress=progress(args),
        force=args.force,
        options=options,
        workers=batch.workers(args),
        cluster=args.cluster,
    )
    if args.json:
        import json

        print(
            json.dumps(
                {"book": str(args.book), "sheet": args.sheet, "runs": [r.summary() for r in runs]},
                indent=2,
            )
        )
        return
    for r in runs:
        state = f"diverged after {r.epochs} epochs" if r.diverged else "ok"
        print(f"lr {r.lr:<8g} final loss {r.final_loss:<14.6g} {state}")
    print(f"wrote sheet lr_sweep into {args.book}")


def _compare(args: argparse.Namespace) -> int:
    options = _options(args)
    from excelnet.fitting.pipeline import compare

    results, code, line = _solve(
        args,
        lambda: compare(
            args.book,
            progress=progress(args),
            force=args.force,
            options=options,
            **_starts(args),
        ),
    )
    if args.json or results is None:
        return _report(args, results, code, line, "fits")
    for r in [r.summary() for r in results]:
        valid = "" if r["valid_loss"] is None else f" validation loss {r['valid_loss']:.5f}"
        acc = "" if r["accuracy"] is None else f" accuracy {r['accuracy']:.1%}"
        print(
            f"{r['sheet']:<12} {r['parameters']:>4} parameters  training loss "
            f"{r['final_loss']:.5f}{valid}{acc} ({r['method']}, {r['seconds']:.2f} s)"
        )
    if any(r.written for r in results):
        print(f"wrote sheet compare into {args.book}")
    return _report(args, results, code, line, "fits")
