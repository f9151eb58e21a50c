"""`excelnet live`: train, reset or evaluate a workbook open in LibreOffice, through the same
code as Excel's Train button."""

from __future__ import annotations

import argparse
from pathlib import Path

from excelnet.cli.common import (
    device_option,
    engine_option,
    epochs_option,
    fit_options,
    method_options,
)
from excelnet.errors import ExcelnetError
from excelnet.fitting.options import LR


def add(sub) -> None:
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
    epochs_option(v)
    method_options(v, default=f"gd at --lr {LR}, the lesson's, as the Train button")
    device_option(v)
    engine_option(v)
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
    v.set_defaults(run=_live)


def _live(args: argparse.Namespace) -> None:
    options = fit_options(args)
    import signal

    from excelnet.live.uno_engine import disconnect, open_book

    def stop(signum, frame):  # as Ctrl-C: the document closed, LibreOffice stopped, no trace
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    book = open_book(args.book, connect=args.connect, headless=args.headless or None)
    from excelnet.live import xl  # torch: after the quick checks
    from excelnet.live.source import read_live

    outcomes = []
    try:
        sheets = [args.sheet] if args.sheet else [m.sheet for m in read_live(book).solver_models()]
        for sheet in sheets:
            outcome = xl.act(book, action=args.action, sheet=sheet, options=options)
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
