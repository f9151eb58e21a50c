"""`excelnet calc` and `excelnet check`: recalculate every formula cell; store the results, or
compare them with the values the file stores."""

from __future__ import annotations

import argparse
from pathlib import Path

from excelnet.cli import batch
from excelnet.cli.common import progress, quiet_option, workbook_options
from excelnet.fitting.parallel import run_jobs


def add_calc(sub) -> None:
    k = sub.add_parser(
        "calc", help="recalculate every formula cell; store the results as cached values"
    )
    batch.books_argument(k, "any .xlsx/.xlsm")
    k.add_argument("-o", "--out", type=Path, help="write a recalculated copy here instead")
    k.add_argument("--json", action="store_true", help="print the report as JSON")
    workbook_options(k, device=False, json=False)
    batch.options(k)
    k.set_defaults(run=_calc)


def add_check(sub) -> None:
    h = sub.add_parser(
        "check",
        help="recalculate every formula cell and compare with the values stored in the file "
        "(exit 0: all equal, 1: some differ; cells that depend on RAND, NOW, … are listed "
        "apart, not compared)",
    )
    batch.books_argument(h, "any .xlsx/.xlsm")
    h.add_argument("--json", action="store_true", help="print the report as JSON")
    h.add_argument("--all", action="store_true", help="list every difference, not the first 20")
    quiet_option(h)
    batch.options(h)
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


CALC_COLUMNS = ["sheets", "formula cells", "computed", "not computed"]


def _calc_rows(reports) -> list[list[str]]:
    return [
        [
            str(sum(1 for r in reports if r.formula_cells)),
            str(sum(r.formula_cells for r in reports)),
            str(sum(r.computed for r in reports)),
            str(sum(len(r.not_computed) for r in reports)),
        ]
    ]


def _check_rows(reports) -> list[list[str]]:
    return [
        [
            str(sum(1 for r in reports if r.formula_cells)),
            str(sum(r.formula_cells for r in reports)),
            str(sum(r.equal for r in reports)),
            str(sum(len(r.different) for r in reports)),
        ]
    ]


def _calc(args: argparse.Namespace) -> int | None:
    books = batch.prepare(args, {"--out": args.out})
    if not batch.single(books, args):
        job = (batch.calc_book, lambda b: (b, args.force))
        if len(books) == 1:
            args.book = books[0]
            reports = batch.one(run_jobs(job[0], [job[1](books[0].absolute())], 1, args.cluster)[0])
            return _calc_report(args, reports)
        outcomes = batch.run(args, books, *job, "calc")
        return batch.report(
            args, books, outcomes, "sheets", CALC_COLUMNS, _calc_rows, "excelnet calc"
        )
    args.book = books[0]
    from excelnet.xlsx.recalc import calc

    return _calc_report(args, calc(args.book, args.out, progress(args), args.force))


def _calc_report(args: argparse.Namespace, reports) -> None:
    _report(reports, args, "calc")
    if not args.json:
        print(f"wrote {args.out or args.book}")


def _check(args: argparse.Namespace) -> int:
    from excelnet.xlsx.recalc import exit_code

    books = batch.prepare(args, {})
    if not batch.single(books, args):
        job = (batch.check_book, lambda b: (b,))
        if len(books) == 1:
            args.book = books[0]
            reports = batch.one(run_jobs(job[0], [job[1](books[0].absolute())], 1, args.cluster)[0])
            return _check_report(args, reports)
        outcomes = batch.run(args, books, *job, "check")
        columns = ["sheets", "formula cells", "equal", "different"]
        code = batch.report(args, books, outcomes, "sheets", columns, _check_rows, "excelnet check")
        differs = any(o.ok and exit_code(o.value) for o in outcomes)
        return 1 if code or differs else 0
    args.book = books[0]
    from excelnet.xlsx.recalc import check

    return _check_report(args, check(args.book, progress(args)))


def _check_report(args: argparse.Namespace, reports) -> int:
    from excelnet.xlsx.recalc import exit_code

    _report(reports, args, "check")
    return exit_code(reports)
