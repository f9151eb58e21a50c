"""`excelnet calc` and `excelnet check`: recalculate every formula cell; store the results, or
compare them with the values the file stores."""

from __future__ import annotations

import argparse
from pathlib import Path

from excelnet.cli.common import progress, quiet_option, workbook_options


def add_calc(sub) -> None:
    k = sub.add_parser(
        "calc", help="recalculate every formula cell; store the results as cached values"
    )
    k.add_argument("book", type=Path, help="any .xlsx/.xlsm")
    k.add_argument("-o", "--out", type=Path, help="write a recalculated copy here instead")
    k.add_argument("--json", action="store_true", help="print the report as JSON")
    workbook_options(k, device=False, json=False)
    k.set_defaults(run=_calc)


def add_check(sub) -> None:
    h = sub.add_parser(
        "check",
        help="recalculate every formula cell and compare with the values stored in the file "
        "(exit 0: all equal, 1: some differ; cells that depend on RAND, NOW, … are listed "
        "apart, not compared)",
    )
    h.add_argument("book", type=Path, help="any .xlsx/.xlsm")
    h.add_argument("--json", action="store_true", help="print the report as JSON")
    h.add_argument("--all", action="store_true", help="list every difference, not the first 20")
    quiet_option(h)
    h.set_defaults(run=_check)


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

    _report(calc(args.book, args.out, progress(args), args.force), args, "calc")
    if not args.json:
        print(f"wrote {args.out or args.book}")


def _check(args: argparse.Namespace) -> int:
    from excelnet.xlsx.recalc import check, exit_code

    reports = check(args.book, progress(args))
    _report(reports, args, "check")
    return exit_code(reports)
