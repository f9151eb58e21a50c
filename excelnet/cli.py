"""The `excelnet` command. Bad input: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from excelnet.errors import ExcelnetError

WORKBOOKS = ["titanic"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2 (argparse's own prints the usage too)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="excelnet",
        description="Neural nets as live spreadsheet formulas (the fast.ai lesson, in Excel).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="write a lesson workbook (.xlsx) of live formulas")
    b.add_argument("workbook", help=f"which workbook: {', '.join(WORKBOOKS)}")
    b.add_argument("-o", "--output", type=Path, help="output file (default: WORKBOOK.xlsx)")
    b.add_argument("--seed", type=int, default=0, help="seed of the split and parameters")
    b.add_argument(
        "--csv",
        type=Path,
        help="a CSV in the format of Kaggle's train.csv (default: the bundled one)",
    )
    return p


def _build(args: argparse.Namespace) -> None:
    if args.workbook not in WORKBOOKS:
        raise ExcelnetError(
            f"unknown workbook {args.workbook!r}: choose one of {', '.join(WORKBOOKS)}"
        )
    from excelnet.writer.titanic import build_titanic

    out = build_titanic(args.output or Path(f"{args.workbook}.xlsx"), csv=args.csv, seed=args.seed)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        {"build": _build}[args.command](args)
    except ExcelnetError as e:
        print(f"excelnet: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("excelnet: interrupted", file=sys.stderr)
        return 130
    return 0
