"""`excelnet build`: a lesson workbook (or `build table`: one of any CSV) of live formulas."""

from __future__ import annotations

import argparse
from pathlib import Path

from excelnet.cli.common import count, progress
from excelnet.errors import ExcelnetError

WORKBOOKS = ["titanic", "table", "quadratic", "relu", "double-relu"]


def add(sub) -> None:
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
        type=count,
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
        "--tables",
        action="store_true",
        help="titanic: laid out as the course lays it out, in Excel Tables whose columns are "
        "formulas of structured references (the same models and numbers)",
    )
    b.add_argument(
        "--force", action="store_true", help="replace the output file even if it is read-only"
    )
    b.add_argument("-q", "--quiet", action="store_true", help="show no progress on stderr")
    b.set_defaults(run=_build)


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
    if args.tables and args.workbook != "titanic":
        raise ExcelnetError("--tables is for the titanic workbook only")
    with progress(args).phase(f"building {out}"):
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
                tables=args.tables,
            )
        else:
            from excelnet.writer import lessons

            build = getattr(lessons, "build_" + args.workbook.replace("-", "_"))
            build(out, seed=args.seed, macros=args.macros, force=args.force)
    print(f"wrote {out}")
    if args.macros:
        from excelnet.writer.macros import companion_path

        print(f"wrote {companion_path(out)} (its Train buttons run main() in it)")
