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


def add_fit(sub) -> None:
    f = sub.add_parser("fit", help="train the model a workbook's formulas define; write it back")
    batch.books_argument(f, "an .xlsx/.xlsm with a Solver model on a sheet")
    f.add_argument("--sheet", help="fit only this sheet (default: every sheet with a Solver model)")
    epochs_option(f)
    method_options(f)
    f.add_argument("--out", type=Path, help="write a fitted copy here instead of into the workbook")
    engine_option(f)
    f.add_argument(
        "--no-history",
        action="store_true",
        help="do not record the losses in the workbook's history sheet",
    )
    f.add_argument(
        "--seed",
        type=count,
        default=SEED,
        help="cells that call RAND, RANDBETWEEN or RANDARRAY are drawn afresh at every "
        f"evaluation, from this seed: the same seed, the same fit (default {SEED})",
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
    method_options(c)
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


def _fit(args: argparse.Namespace) -> int | None:
    options = fit_options(args)
    books = batch.prepare(args, {"--out": args.out})
    if not batch.single(books, args):
        job = (batch.fit_book, lambda b: (b, args.sheet, options, args.force, args.seeds))
        if len(books) == 1:  # one workbook on the cluster: its own output
            args.book = books[0]
            results = batch.one(run_jobs(job[0], [job[1](books[0].absolute())], 1, args.cluster)[0])
            return _fit_report(args, results)
        outcomes = batch.run(args, books, *job, "fit")
        return batch.report(args, books, outcomes, "fits", FIT_COLUMNS, _fit_rows, "excelnet fit")
    args.book = books[0]
    from excelnet.fitting.pipeline import fit

    results = fit(
        args.book,
        sheet=args.sheet,
        out=args.out,
        progress=progress(args),
        force=args.force,
        options=options,
        seeds=args.seeds,
        workers=batch.workers(args),
        cluster=args.cluster,
    )
    return _fit_report(args, results)


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


def _fit_report(args: argparse.Namespace, results) -> None:
    rows = [r.summary() for r in results]
    if args.json:
        import json

        print(json.dumps({"book": str(args.out or args.book), "fits": rows}, indent=2))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=f"excelnet fit {args.book}" + (f" → {args.out}" if args.out else ""),
    )
    for col in (
        "sheet",
        "params",
        "method",
        "epochs",
        "device",
        "start",
        "final",
        "valid",
        "acc",
        "s",
    ):
        table.add_column(
            col, justify="left" if col in ("sheet", "device") else "right", no_wrap=True
        )
    for r in rows:
        table.add_row(
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
        )
    console = Console(width=None if sys.stdout.isatty() else 100)
    console.print(table)
    console.print(
        "start, final: the objective at the start and after the fit (the best parameters "
        "seen); valid: validation loss; acc: validation accuracy; s: seconds",
        style="dim",
    )
    for r in results:
        console.print(f"{r.sheet}: {_outcome(r)}", highlight=False)
        for line in r.honoured[1:]:  # the first is the goal, said above
            console.print(f"  {line}", style="dim", highlight=False)
        if r.ignored:
            console.print(
                f"  Solver names read, not used (see --json): {', '.join(r.ignored)}",
                style="dim",
                highlight=False,
            )
        if r.diverged:
            console.print(f"[bold red]{r.sheet}: {r.diverged}[/]")


def _outcome(r) -> str:
    """One line: the goal, the constraints and how the method ended."""
    words = [r.goal, r.status]  # r: a SheetFit
    if r.method == "lbfgs":
        words.append(
            f"lbfgs {'converged' if r.converged else 'stopped'} after {r.epochs} iterations"
        )
    elif r.lr is not None:
        words.append(f"{r.method} ended with step {r.lr:.3g}")
    last = r.final_loss if r.last_loss is None else r.last_loss
    if abs(last - r.final_loss) > 1e-12 * max(abs(last), abs(r.final_loss)):
        words.append(f"kept the best parameters seen, of epoch {r.best_epoch}")
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
        print(f"{r['sheet']}: objective {r['objective_cell']} = {r['objective']!r}")
        for cell, g in r["gradients"].items():
            print(f"  d/d {cell} = {g!r}")


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


def _compare(args: argparse.Namespace) -> None:
    options = fit_options(args)
    from excelnet.fitting.pipeline import compare

    results = compare(
        args.book,
        progress=progress(args),
        force=args.force,
        options=options,
        seeds=args.seeds,
        workers=batch.workers(args),
        cluster=args.cluster,
    )
    rows = [r.summary() for r in results]
    if args.json:
        import json

        print(json.dumps({"book": str(args.book), "fits": rows}, indent=2))
        return
    for r in rows:
        valid = "" if r["valid_loss"] is None else f" validation loss {r['valid_loss']:.5f}"
        acc = "" if r["accuracy"] is None else f" accuracy {r['accuracy']:.1%}"
        print(
            f"{r['sheet']:<12} {r['parameters']:>4} parameters  training loss "
            f"{r['final_loss']:.5f}{valid}{acc} ({r['method']}, {r['seconds']:.2f} s)"
        )
    print(f"wrote sheet compare into {args.book}")
