"""`excelnet predict`: a workbook's model applied to new rows (a CSV)."""

from __future__ import annotations

import argparse
from pathlib import Path

from excelnet.cli.common import progress, workbook_options


def add(sub) -> None:
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
    workbook_options(d, device=False, json=False, what="outputs")
    d.set_defaults(run=_predict)


def _predict(args: argparse.Namespace) -> None:
    from excelnet.predictions import predict_rows

    out = args.output or Path("submission.csv" if args.kaggle else "predictions.csv")
    rows = predict_rows(
        args.book,
        args.sheet,
        args.csv,
        out,
        args.workbook,
        args.kaggle,
        args.column,
        progress=progress(args),
        force=args.force,
    )
    print(f"wrote {out} ({rows:,} rows)")
    if args.workbook:
        print(f"wrote {args.workbook} (sheet predictions)")
