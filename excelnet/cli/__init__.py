"""The `excelnet` command. Bad input: one line on stderr, exit code 2, no traceback.

One module per group of commands, each with its parsers and what runs them: build.py (build),
fit.py (fit, eval, lr-sweep, compare), calc.py (calc, check), predict.py (predict), live.py
(live); common.py holds the options they share. A command imports torch, openpyxl and the
rest only when it runs, after its input passed the quick checks: `excelnet --help` starts fast.
"""

from __future__ import annotations

import os
import sys

from excelnet import __version__
from excelnet.cli import build, calc, fit, live, predict
from excelnet.cli.common import Parser, warning
from excelnet.errors import ExcelnetError


def _parser() -> Parser:
    p = Parser(
        prog="excelnet",
        description="Neural nets as live spreadsheet formulas (the fast.ai lesson, in Excel).",
        epilog="Run `excelnet COMMAND --help` for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"excelnet {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # in the order `excelnet --help` lists them; each sets `run`, the function that runs it
    build.add(sub)
    fit.add_fit(sub)
    fit.add_sweep(sub)
    fit.add_compare(sub)
    live.add(sub)
    calc.add_calc(sub)
    calc.add_check(sub)
    predict.add(sub)
    fit.add_eval(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.showwarning = warning  # one line each, no source location
    args = _parser().parse_args(argv)
    try:
        code = args.run(args)
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
        books = getattr(args, "books", None) or [None]
        what = (
            getattr(args, "book", None)
            or getattr(args, "output", None)
            or getattr(args, "workbook", None)
            or books[0]
        )
        print(f"excelnet: error: {what}: out of memory; nothing was written", file=sys.stderr)
        return 2
    except UnicodeEncodeError as e:
        # a text no encoding of the file can hold (a lone surrogate: =LEFT("😀",1) gives one);
        # excelnet's workbooks escape it (_xD83D_), so this is a CSV or the terminal
        bad = e.object[e.start : e.end] if isinstance(e.object, str) else "?"
        what = getattr(args, "book", None) or getattr(args, "output", None) or "the output"
        print(
            f"excelnet: error: {what}: a text holds {ascii(bad)}, which {e.encoding} cannot "
            f"hold (half of a character); nothing was written",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:
        # the reader of our output left (`excelnet fit --json | head`): the work is done and
        # written; say nothing more, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        from excelnet.xlsx.atomic import write_failure

        full = write_failure(e)
        if full is None:
            raise
        # a write outside the workbook's own (its temporary copy is handled where it is made)
        print(f"excelnet: error: {e.filename or 'a write'}: {full}", file=sys.stderr)
        return 2
    return code or 0
