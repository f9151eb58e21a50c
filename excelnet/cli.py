"""The `excelnet` command. Bad input: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from excelnet import __version__
from excelnet.errors import ExcelnetError
from excelnet.fitting.options import EPOCHS, LR, METHODS, SEED

WORKBOOKS = ["titanic", "table", "quadratic", "relu", "double-relu"]
ENGINES = {"auto": None, "eager": False, "compiled": True}  # --engine → fit(compiled=…)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2 (argparse's own prints the usage too)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    """A whole number, also written as 1e6."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def _device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        help="where the tensors live: auto (CUDA when present, else the CPU), cpu, cuda "
        "or cuda:N (default: auto)",
    )


def _engine_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=list(ENGINES),
        default="auto",
        help="CPU steps: op by op, or traced once and fused by torch.compile (seconds once, "
        "more for larger models, then ~3× faster); auto compiles when that saves time",
    )


def _epochs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--epochs",
        type=_count,
        default=EPOCHS,
        help=f"steps (gd, adam) or iterations (lbfgs) (default {EPOCHS})",
    )


def _method_options(
    p: argparse.ArgumentParser, default: str = "lbfgs, or gd when --lr is given"
) -> None:
    p.add_argument(
        "--method",
        choices=list(METHODS),
        help=f"gd: the lesson's gradient descent; adam; lbfgs: quasi-Newton with a line search, "
        f"as Solver's GRG (default: {default})",
    )
    p.add_argument(
        "--lr",
        type=float,
        help=f"a fixed step for gd (the lesson's experiments) or adam; without it gd finds its "
        f"own step, starting from {LR}, and adam uses 0.01",
    )


def _workbook_options(
    p: argparse.ArgumentParser, device: bool = True, json: bool = True, what: str = "workbook"
) -> None:
    """The options every command that reads and writes a workbook shares."""
    if device:
        _device_option(p)
    if json:
        p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument(
        "--force",
        action="store_true",
        help=f"replace the {what} even if it is read-only or belongs to another user",
    )
    _quiet_option(p)


def _quiet_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="show no progress on stderr (errors are still shown)",
    )


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="excelnet",
        description="Neural nets as live spreadsheet formulas (the fast.ai lesson, in Excel).",
        epilog="Run `excelnet COMMAND --help` for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"excelnet {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="write a lesson workbook (.xlsx) of live formulas")
    b.add_argument("workbook", help=f"which workbook: {', '.join(WORKBOOKS)}")
    b.add_argument(
        "-o", "--output", type=Path, help="output file (default: WORKBOOK.xlsx; table: CSV.xlsx)"
    )
    b.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the noisy samples, the validation split and the starting parameters "
        "(a whole number, 0 or more; default 0)",
    )
    b.add_argument(
        "--csv",
        type=Path,
        help="titanic: a CSV in the format of Kaggle's train.csv (default: the bundled one); "
        "table: any CSV with a header row",
    )
    b.add_argument("--target", help="table: the column to predict (numbers, or two values)")
    b.add_argument("--id", help="table: a column that names each row (not a feature)")
    b.add_argument(
        "--drop",
        nargs="+",
        action="extend",
        default=[],
        metavar="COLUMN",
        help="table: columns to leave out of the features",
    )
    b.add_argument(
        "--passengers",
        type=_count,
        help="titanic: resample the passengers to this many rows, up to 1,048,571 (same "
        "formulas, any scale)",
    )
    b.add_argument(
        "--macros",
        action="store_true",
        help="an .xlsm with xlwings' VBA project, a Train button and an Action cell on each "
        "model sheet, and the companion module BOOK.py beside it (default: WORKBOOK.xlsm; table: "
        "CSV.xlsm, as a module name)",
    )
    b.add_argument(
        "--force", action="store_true", help="replace the output file even if it is read-only"
    )
    b.add_argument("-q", "--quiet", action="store_true", help="show no progress on stderr")

    f = sub.add_parser("fit", help="train the model a workbook's formulas define; write it back")
    f.add_argument("book", type=Path, help="an .xlsx/.xlsm with a Solver model on a sheet")
    f.add_argument("--sheet", help="fit only this sheet (default: every sheet with a Solver model)")
    _epochs_option(f)
    _method_options(f)
    f.add_argument("--out", type=Path, help="write a fitted copy here instead of into the workbook")
    _engine_option(f)
    f.add_argument(
        "--no-history",
        action="store_true",
        help="do not record the losses in the workbook's history sheet",
    )
    f.add_argument(
        "--seed",
        type=_count,
        default=SEED,
        help="cells that call RAND, RANDBETWEEN or RANDARRAY are drawn afresh at every "
        f"evaluation, from this seed: the same seed, the same fit (default {SEED})",
    )
    _workbook_options(f)

    w = sub.add_parser("lr-sweep", help="fit one sheet with several learning rates; chart them")
    w.add_argument("book", type=Path, help="an .xlsx/.xlsm with a Solver model on a sheet")
    w.add_argument("--sheet", required=True, help="the sheet whose Solver model to sweep")
    w.add_argument(
        "--lrs",
        default="0.001,0.01,0.1,1",
        help="comma-separated learning rates (default 0.001,0.01,0.1,1)",
    )
    w.add_argument(
        "--epochs", type=_count, default=EPOCHS, help=f"steps per learning rate (default {EPOCHS})"
    )
    _workbook_options(w)

    c = sub.add_parser("compare", help="fit every model sheet; add a compare sheet and chart")
    c.add_argument("book", type=Path, help="an .xlsx/.xlsm with Solver models on its sheets")
    _epochs_option(c)
    _method_options(c)
    _workbook_options(c)

    v = sub.add_parser(
        "live",
        help="train a workbook open in LibreOffice: the cells move as it trains",
        description="Open BOOK in LibreOffice (a window where there is a display, headless "
        "otherwise) or find it in a running LibreOffice (--connect), and train, reset or "
        "evaluate the open document through the same code as Excel's Train button. The "
        "parameters are written a few times a second; the document stays open, unsaved.",
    )
    v.add_argument("book", type=Path, help="an .xlsx/.xlsm/.ods with a Solver model on a sheet")
    v.add_argument("--sheet", help="this sheet (default: every sheet with a Solver model)")
    v.add_argument(
        "--action",
        default="train",
        choices=["train", "reset", "evaluate"],
        help="train (gradient descent, the cells move), reset (new random parameters from the "
        "sheet's Seed) or evaluate (the loss and the gradients only) (default: train)",
    )
    _epochs_option(v)
    _method_options(v, default=f"gd at --lr {LR}, the lesson's, as the Train button")
    _device_option(v)
    _engine_option(v)
    v.add_argument(
        "--connect",
        nargs="?",
        const="socket,host=localhost,port=2002",
        metavar="UNO",
        help='a running LibreOffice, started with soffice --accept="UNO;urp;" (default '
        "UNO: socket,host=localhost,port=2002)",
    )
    v.add_argument(
        "--headless",
        action="store_true",
        help="no window, even with a display (with --connect: load the document hidden, as a "
        "headless LibreOffice needs)",
    )
    v.add_argument("--no-history", action="store_true", help="no rows in the history sheet")
    v.add_argument("--json", action="store_true", help="print the outcome as JSON")

    k = sub.add_parser(
        "calc", help="recalculate every formula cell; store the results as cached values"
    )
    k.add_argument("book", type=Path, help="any .xlsx/.xlsm")
    k.add_argument("-o", "--out", type=Path, help="write a recalculated copy here instead")
    k.add_argument("--json", action="store_true", help="print the report as JSON")
    _workbook_options(k, device=False, json=False)

    h = sub.add_parser(
        "check",
        help="recalculate every formula cell and compare with the values stored in the file "
        "(exit 0: all equal, 1: some differ)",
    )
    h.add_argument("book", type=Path, help="any .xlsx/.xlsm")
    h.add_argument("--json", action="store_true", help="print the report as JSON")
    h.add_argument("--all", action="store_true", help="list every difference, not the first 20")
    _quiet_option(h)

    d = sub.add_parser("predict", help="apply a workbook's model to new rows (a CSV)")
    d.add_argument("book", type=Path, help="a workbook with a Solver model on --sheet")
    d.add_argument("--sheet", required=True, help="the model sheet (e.g. nn)")
    d.add_argument("--csv", type=Path, required=True, help="new rows, with the data's headers")
    d.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the predictions as CSV (default: predictions.csv; with --kaggle submission.csv)",
    )
    d.add_argument(
        "--workbook", type=Path, help="also write a copy of BOOK with a predictions sheet"
    )
    d.add_argument(
        "--kaggle",
        action="store_true",
        help="write Kaggle's submission: the id and the target (0/1: prediction > 0.5)",
    )
    d.add_argument(
        "--column", default="Prediction", help="header of the prediction column (Prediction)"
    )
    _workbook_options(d, device=False, json=False, what="outputs")

    e = sub.add_parser("eval", help="each Solver model's objective and gradients, no training")
    e.add_argument("book", type=Path, help="an .xlsx/.xlsm with a Solver model on a sheet")
    e.add_argument("--sheet", help="only this sheet (default: every sheet with a Solver model)")
    _workbook_options(e)
    return p


def _progress(args: argparse.Namespace):
    from excelnet.progress import Progress, Silent

    return Silent() if args.quiet else Progress()


def _fit(args: argparse.Namespace) -> None:
    from excelnet.fitting.pipeline import fit

    results = fit(
        args.book,
        sheet=args.sheet,
        epochs=args.epochs,
        lr=args.lr,
        device=args.device,
        out=args.out,
        progress=_progress(args),
        history=not args.no_history,
        compiled=ENGINES[args.engine],
        force=args.force,
        method=args.method,
        seed=args.seed,
    )
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


def _eval(args: argparse.Namespace) -> None:
    from excelnet.fitting.pipeline import evaluate

    found = evaluate(
        args.book, sheet=args.sheet, device=args.device, progress=_progress(args), force=args.force
    )
    rows = [e.summary() for e in found]
    if args.json:
        import json

        print(json.dumps({"book": str(args.book), "models": rows}, indent=2))
        return
    for r in rows:
        print(f"{r['sheet']}: objective {r['objective_cell']} = {r['objective']!r}")
        for cell, g in r["gradients"].items():
            print(f"  d/d {cell} = {g!r}")


def _build(args: argparse.Namespace) -> None:
    if args.workbook not in WORKBOOKS:
        raise ExcelnetError(
            f"unknown workbook {args.workbook!r}: choose one of {', '.join(WORKBOOKS)}"
        )
    table_only = {"--target": args.target, "--id": args.id, "--drop": args.drop}
    if args.workbook != "table" and any(table_only.values()):
        used = ", ".join(k for k, v in table_only.items() if v)
        raise ExcelnetError(f"{used}: for excelnet build table only")
    if args.workbook == "table":
        if args.csv is None or args.target is None:
            raise ExcelnetError("build table needs --csv FILE and --target COLUMN")
        if args.passengers is not None:
            raise ExcelnetError("--passengers is for the titanic workbook only")
    default = args.csv.stem if args.workbook == "table" else args.workbook
    if args.macros:
        from excelnet.writer.macros import module_name

        default = module_name(default)  # xlwings imports the workbook's name as a module
    out = args.output or Path(f"{default}.{'xlsm' if args.macros else 'xlsx'}")
    if not args.macros and out.suffix.lower() != ".xlsx":
        raise ExcelnetError(f"{out}: excelnet builds .xlsx workbooks; name the output *.xlsx")
    if args.workbook not in ("table", "titanic") and (
        args.csv is not None or args.passengers is not None
    ):
        raise ExcelnetError("--csv and --passengers are for the titanic workbook only")
    with _progress(args).phase(f"building {out}"):
        if args.workbook == "table":
            from excelnet.writer.table import build_table

            build_table(
                out,
                args.csv,
                args.target,
                args.id,
                args.drop,
                args.seed,
                macros=args.macros,
                force=args.force,
            )
        elif args.workbook == "titanic":
            from excelnet.writer.titanic import build_titanic

            build_titanic(
                out,
                csv=args.csv,
                seed=args.seed,
                passengers=args.passengers,
                macros=args.macros,
                force=args.force,
            )
        else:
            from excelnet.writer import lessons

            build = getattr(lessons, "build_" + args.workbook.replace("-", "_"))
            build(out, seed=args.seed, macros=args.macros, force=args.force)
    print(f"wrote {out}")
    if args.macros:
        from excelnet.writer.macros import companion_path

        print(f"wrote {companion_path(out)} (its Train buttons run main() in it)")


def _predict(args: argparse.Namespace) -> None:
    from excelnet.predictions import predict

    out = args.output or Path("submission.csv" if args.kaggle else "predictions.csv")
    rows = predict(
        args.book,
        args.sheet,
        args.csv,
        out,
        args.workbook,
        args.kaggle,
        args.column,
        progress=_progress(args),
        force=args.force,
    )
    print(f"wrote {out} ({len(rows)} rows)")
    if args.workbook:
        print(f"wrote {args.workbook} (sheet predictions)")


def _rates(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ExcelnetError(f"--lrs: {text!r} is not a comma-separated list of numbers") from None


def _sweep(args: argparse.Namespace) -> None:
    from excelnet.fitting.pipeline import lr_sweep

    runs = lr_sweep(
        args.book,
        args.sheet,
        _rates(args.lrs),
        epochs=args.epochs,
        device=args.device,
        progress=_progress(args),
        force=args.force,
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
    from excelnet.fitting.pipeline import compare

    results = compare(
        args.book,
        epochs=args.epochs,
        lr=args.lr,
        device=args.device,
        progress=_progress(args),
        force=args.force,
        method=args.method,
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


def _live(args: argparse.Namespace) -> None:
    from excelnet.live.uno_engine import disconnect, open_book

    book = open_book(args.book, connect=args.connect, headless=args.headless or None)
    from excelnet.live import xl  # torch: after the quick checks
    from excelnet.live.source import read_live

    outcomes = []
    try:
        sheets = [args.sheet] if args.sheet else [m.sheet for m in read_live(book).solver_models()]
        for sheet in sheets:
            outcome = xl.act(
                book,
                action=args.action,
                sheet=sheet,
                epochs=args.epochs,
                lr=args.lr,
                method=args.method,
                device=args.device,
                history=not args.no_history,
                compiled=ENGINES[args.engine],
            )
            outcomes.append(outcome)
            if not args.json:
                print("\n".join([outcome.message, *outcome.notes]))
    finally:
        stays = args.connect is not None or book.app.visible  # the user's LibreOffice keeps it
        try:
            if stays:
                disconnect(book)
            else:
                book.close()
        except ExcelnetError:  # LibreOffice is already gone: the error above says so
            pass
    if args.json:
        import json

        print(json.dumps({"book": str(args.book), "live": [o.summary() for o in outcomes]}))
    elif stays:
        print(f"{args.book} stays open in LibreOffice, unsaved")
    else:
        print("headless: LibreOffice closed it again, unsaved (the file is unchanged)")


def _report(reports, args: argparse.Namespace, what: str) -> None:
    """The calc/check report: per sheet, formula cells, computed, equal, what differs, what
    could not be computed and why."""
    if args.json:
        import json

        print(
            json.dumps(
                {"book": str(args.book), "sheets": [r.summary() for r in reports]},
                indent=2,
                default=str,
            )
        )
        return
    shown = 0
    limit = None if getattr(args, "all", False) else 20
    for r in reports:
        if not r.formula_cells:
            continue
        line = f"{r.sheet}: {r.formula_cells} formula cells, {r.computed} computed"
        if what == "check":
            line += f", {r.equal} equal to the stored values, {len(r.different)} different"
            if r.volatile:
                line += f", {sum(v.count for v in r.volatile)} volatile (not compared)"
        print(line)
        for d in r.different:
            if limit is None or shown < limit:
                print(f"  {d.cell} {d.formula}: stored {d.stored!r}, computed {d.computed!r}")
            shown += 1
        for f in r.not_computed:
            keep = "kept the stored values" if what == "calc" else "not computed"
            print(f"  {f.where} {f.formula}: {keep}: {f.reason}")
        if what == "check":
            for v in r.volatile:
                print(f"  {v.cells} {v.formula}: volatile, not compared")
        if r.unknown:
            counts = ", ".join(f"{n} ({k})" for n, k in r.unknown.most_common())
            print(f"  functions excelnet does not know: {counts}")
    if limit is not None and shown > limit:
        print(f"… and {shown - limit} more differences (--all lists them)")


def _calc(args: argparse.Namespace) -> None:
    from excelnet.xlsx.recalc import calc

    _report(calc(args.book, args.out, _progress(args), args.force), args, "calc")
    if not args.json:
        print(f"wrote {args.out or args.book}")


def _check(args: argparse.Namespace) -> int:
    from excelnet.xlsx.recalc import check

    reports = check(args.book, _progress(args))
    _report(reports, args, "check")
    return 1 if any(r.different for r in reports) else 0


def _warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"excelnet: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.showwarning = _warning  # one line each, no source location
    args = _parser().parse_args(argv)
    commands = {
        "build": _build,
        "fit": _fit,
        "eval": _eval,
        "predict": _predict,
        "calc": _calc,
        "check": _check,
        "live": _live,
        "lr-sweep": _sweep,
        "compare": _compare,
    }
    try:
        code = commands[args.command](args)
        sys.stdout.flush()
    except ExcelnetError as e:
        print(f"excelnet: error: {e.command_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("excelnet: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        # past the estimate made before the work (excelnet.xlsx.files.check_memory); a write is
        # atomic, so the workbook is the old one
        what = getattr(args, "book", None) or getattr(args, "output", None) or args.workbook
        print(f"excelnet: error: {what}: out of memory; nothing was written", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of our output left (`excelnet fit --json | head`): the work is done and
        # written; say nothing more, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code or 0
