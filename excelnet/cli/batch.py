"""Many workbooks in one command: `excelnet fit|calc|check|eval A.xlsx B.xlsx 'runs/*.xlsx'`.

The names are expanded here too (for shells that do not expand patterns); each workbook is one
job, run by the same function as a single one (locked, read, written as it is alone) in worker
processes (-j N, default the cores) or on a Ray cluster (--cluster). One summary table, or one
JSON document (--json); a workbook that fails is reported in one line and stops no other; the
exit code is 1 if any failed (check: or differs). One workbook, and no cluster: the command's
own output, as it always was.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from excelnet.errors import ExcelnetError
from excelnet.fitting.parallel import CLUSTER_HELP, Outcome, check_workers, run_jobs


def options(p: argparse.ArgumentParser, what: str = "workbooks") -> None:
    """-j and --cluster, for a command that runs jobs side by side."""
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help=f"{what} at once, in N worker processes (default: the cores, "
        f"{os.cpu_count() or 1} here)",
    )
    p.add_argument("--cluster", metavar="ADDRESS", help=CLUSTER_HELP)


def workers(args: argparse.Namespace) -> int:
    """-j, checked; by default the cores."""
    return check_workers(args.jobs)


def books_argument(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument(
        "books",
        nargs="+",
        type=str,
        metavar="BOOK",
        help=f"{text}; several, or patterns such as 'runs/*.xlsx', are run side by side",
    )


def expand(names: list[str]) -> list[Path]:
    """The workbooks the names and patterns give, in order, each once. A name that is a file
    (or no pattern) is kept as it is, even if missing (then that workbook fails); a pattern
    that matches nothing is refused."""
    out: dict[str, Path] = {}
    for name in names:
        if os.path.exists(name) or not glob.has_magic(name):
            found = [name]
        else:
            found = sorted(glob.glob(os.path.expanduser(name), recursive=True))
            if not found:
                raise ExcelnetError(f"{name}: no file matches")
        for f in found:
            out.setdefault(os.path.abspath(f), Path(f))
    return list(out.values())


def prepare(args: argparse.Namespace, single_only: dict[str, object]) -> list[Path]:
    """The command's workbooks; refuses, before any work, options that name one output when
    there are several, and a bad -j."""
    books = expand(args.books)
    check_workers(args.jobs)
    if len(books) > 1:
        given = [flag for flag, value in single_only.items() if value]
        if given:
            raise ExcelnetError(
                f"{given[0]} names one output: with {len(books)} workbooks, leave it out"
            )
    return books


def run(
    args: argparse.Namespace,
    books: list[Path],
    fn: Callable,
    job: Callable[[Path], tuple],
    command: str,
) -> list[Outcome]:
    """fn(*job(book)) for every workbook, side by side; a line on stderr as each ends (unless
    -q; a failure always); the warnings each raised."""
    total = len(books)
    finished = [0]

    def done(i: int, outcome: Outcome) -> None:
        finished[0] += 1
        for w in outcome.warnings:
            print(f"excelnet: warning: {w}", file=sys.stderr, flush=True)
        if not outcome.ok:
            print(
                f"excelnet: error: {_named(books[i], outcome.error)}", file=sys.stderr, flush=True
            )
        elif not args.quiet:
            print(
                f"excelnet: {command} {books[i]}: done in {outcome.seconds:.2f} s "
                f"({finished[0]}/{total})",
                file=sys.stderr,
                flush=True,
            )

    jobs = [job(b.absolute()) for b in books]
    return run_jobs(fn, jobs, args.jobs, args.cluster, done)


def _named(book: Path, error: str | None) -> str:
    """The error, naming the workbook if it does not already."""
    error = error or "failed"
    return error if str(book) in error or book.name in error else f"{book}: {error}"


def report(
    args: argparse.Namespace,
    books: list[Path],
    outcomes: list[Outcome],
    key: str,
    columns: list[str],
    rows: Callable[[object], list[list[str]]],
    title: str,
) -> int:
    """One table (or one JSON document) for all the workbooks; exit code 1 if any failed."""
    failed = sum(not o.ok for o in outcomes)
    if args.json:
        entries = []
        for book, o in zip(books, outcomes, strict=True):
            if o.ok:
                entries.append({"book": str(book), key: [r.summary() for r in o.value]})
            else:
                entries.append({"book": str(book), "error": _named(book, o.error)})
        print(json.dumps({"books": entries, "failed": failed}, indent=2, default=str))
        return 1 if failed else 0
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title)
    for i, col in enumerate(["book", *columns]):
        left = i == 0 or col == "sheet"
        table.add_column(col, justify="left" if left else "right", no_wrap=i == 0)
    for book, o in zip(books, outcomes, strict=True):
        if o.ok:
            for row in rows(o.value):
                table.add_row(str(book), *row)
        else:
            table.add_row(str(book), "failed", *[""] * (len(columns) - 1))
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    ok = len(books) - failed
    console.print(
        f"{ok} of {len(books)} workbooks done" + (f", {failed} failed (above)" if failed else ""),
        highlight=False,
    )
    return 1 if failed else 0


def single(books: list[Path], args: argparse.Namespace) -> bool:
    """One workbook, run here as it always was."""
    return len(books) == 1 and args.cluster is None


def one(outcome: Outcome):
    """A single workbook's job (on a cluster): its value, or its error as the command's."""
    for w in outcome.warnings:
        print(f"excelnet: warning: {w}", file=sys.stderr)
    if not outcome.ok:
        raise ExcelnetError(outcome.error)
    return outcome.value


# -- the jobs: one workbook each, run by the function a single workbook runs --------------------


def fit_book(path: Path, sheet, options, force: bool, seeds: int):
    from excelnet.fitting.pipeline import fit

    return fit(path, sheet=sheet, force=force, options=options, seeds=seeds, workers=1)


def eval_book(path: Path, sheet, device: str, force: bool):
    from excelnet.fitting.pipeline import evaluate

    return evaluate(path, sheet=sheet, device=device, force=force)


def calc_book(path: Path, force: bool):
    from excelnet.xlsx.recalc import calc

    return calc(path, None, None, force)


def check_book(path: Path):
    from excelnet.xlsx.recalc import check

    return check(path)
