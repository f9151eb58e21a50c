"""The `excelnet` command. Bad input: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from excelnet import __version__
from excelnet.defaults import EPOCHS, LR
from excelnet.errors import ExcelnetError

WORKBOOKS = ["titanic", "quadratic", "relu", "double-relu"]


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


def _workbook_options(p: argparse.ArgumentParser, device: bool = True) -> None:
    """The options every command that reads and writes a workbook shares."""
    if device:
        p.add_argument(
            "--device",
            default="auto",
            help="where the tensors live: auto (CUDA when present, else the CPU), cpu, cuda "
            "or cuda:N (default: auto)",
        )
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the workbook even if it is read-only or belongs to another user",
    )
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
    b.add_argument("-o", "--output", type=Path, help="output file (default: WORKBOOK.xlsx)")
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
        help="titanic: a CSV in the format of Kaggle's train.csv (default: the bundled one)",
    )
    b.add_argument(
        "--passengers",
        type=_count,
        help="titanic: resample the passengers to this many rows, up to 1,048,571 (same "
        "formulas, any scale)",
    )
    b.add_argument(
        "--force", action="store_true", help="replace the output file even if it is read-only"
    )
    b.add_argument("-q", "--quiet", action="store_true", help="show no progress on stderr")

    f = sub.add_parser("fit", help="train the model a workbook's formulas define; write it back")
    f.add_argument("book", type=Path, help="an .xlsx/.xlsm with a Solver model on a sheet")
    f.add_argument("--sheet", help="fit only this sheet (default: every sheet with a Solver model)")
    f.add_argument(
        "--epochs", type=_count, default=EPOCHS, help=f"gradient descent steps (default {EPOCHS})"
    )
    f.add_argument("--lr", type=float, default=LR, help=f"learning rate (default {LR})")
    f.add_argument("--out", type=Path, help="write a fitted copy here instead of into the workbook")
    f.add_argument(
        "--engine",
        choices=["auto", "eager", "compiled"],
        default="auto",
        help="CPU steps: op by op, or traced once and fused by torch.compile (seconds once, "
        "more for larger models, then ~3× faster); auto compiles when that saves time",
    )
    f.add_argument(
        "--no-history",
        action="store_true",
        help="do not record the losses in the workbook's history sheet",
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
    c.add_argument(
        "--epochs", type=_count, default=EPOCHS, help=f"gradient descent steps (default {EPOCHS})"
    )
    c.add_argument("--lr", type=float, default=LR, help=f"learning rate (default {LR})")
    _workbook_options(c)

    e = sub.add_parser("eval", help="each Solver model's objective and gradients, no training")
    e.add_argument("book", type=Path, help="an .xlsx/.xlsm with a Solver model on a sheet")
    e.add_argument("--sheet", help="only this sheet (default: every sheet with a Solver model)")
    _workbook_options(e)
    return p


def _progress(args: argparse.Namespace):
    from excelnet.progress import Progress, Silent

    return Silent() if args.quiet else Progress()


def _fit(args: argparse.Namespace) -> None:
    from excelnet.pipeline import fit

    results = fit(
        args.book,
        sheet=args.sheet,
        epochs=args.epochs,
        lr=args.lr,
        device=args.device,
        out=args.out,
        progress=_progress(args),
        history=not args.no_history,
        compiled={"auto": None, "eager": False, "compiled": True}[args.engine],
        force=args.force,
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
        "loss: the objective (training loss) at the start and after the fit; valid: "
        "validation loss; acc: validation accuracy; s: seconds",
        style="dim",
    )
    for r in rows:
        if r["diverged"]:
            console.print(f"[bold red]{r['sheet']}: {r['diverged']}[/]")


def _eval(args: argparse.Namespace) -> None:
    from excelnet.pipeline import evaluate

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
    out = args.output or Path(f"{args.workbook}.xlsx")
    if out.suffix.lower() != ".xlsx":
        raise ExcelnetError(f"{out}: excelnet builds .xlsx workbooks; name the output *.xlsx")
    if args.workbook == "titanic":
        from excelnet.writer.titanic import build_titanic

        build_titanic(
            out, csv=args.csv, seed=args.seed, passengers=args.passengers, force=args.force
        )
    else:
        if args.csv is not None or args.passengers is not None:
            raise ExcelnetError("--csv and --passengers are for the titanic workbook only")
        from excelnet.writer import lessons

        build = getattr(lessons, "build_" + args.workbook.replace("-", "_"))
        build(out, seed=args.seed, force=args.force)
    print(f"wrote {out}")


def _rates(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ExcelnetError(f"--lrs: {text!r} is not a comma-separated list of numbers") from None


def _sweep(args: argparse.Namespace) -> None:
    from excelnet.pipeline import lr_sweep

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
    from excelnet.pipeline import compare

    results = compare(
        args.book,
        epochs=args.epochs,
        lr=args.lr,
        device=args.device,
        progress=_progress(args),
        force=args.force,
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
            f"{r['final_loss']:.5f}{valid}{acc} ({r['seconds']:.2f} s)"
        )
    print(f"wrote sheet compare into {args.book}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        {"build": _build, "fit": _fit, "eval": _eval, "lr-sweep": _sweep, "compare": _compare}[
            args.command
        ](args)
        sys.stdout.flush()
    except ExcelnetError as e:
        print(f"excelnet: error: {e.command_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("excelnet: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        # past the estimate made before the work (excelnet.files.check_memory); a write is
        # atomic, so the workbook is the old one
        what = getattr(args, "book", None) or getattr(args, "output", None) or args.workbook
        print(f"excelnet: error: {what}: out of memory; nothing was written", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of our output left (`excelnet fit --json | head`): the work is done and
        # written; say nothing more, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
