"""What the commands share: the parser that refuses in one line, the options several commands
take (and the FitOptions they make), progress on stderr and the one-line warning."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from excelnet.fitting.options import EPOCHS, LR, METHODS, SEED

if TYPE_CHECKING:  # the options are made when a command runs
    from excelnet.fitting.options import FitOptions

ENGINES = {"auto": None, "eager": False, "compiled": True}  # --engine → fit(compiled=…)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2 (argparse's own prints the usage too)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def count(text: str) -> int:
    """A whole number, also written as 1e6."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        help="where the tensors live: auto (CUDA when present, else the CPU), cpu, cuda "
        "or cuda:N (default: auto)",
    )


def engine_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=list(ENGINES),
        default="auto",
        help="CPU steps: op by op, or traced once and fused by torch.compile (seconds once, "
        "more for larger models, then ~3× faster); auto compiles when that saves time",
    )


def epochs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--epochs",
        type=count,
        default=EPOCHS,
        help=f"steps (gd, adam) or iterations (lbfgs) (default {EPOCHS})",
    )


def method_options(
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


def workbook_options(
    p: argparse.ArgumentParser, device: bool = True, json: bool = True, what: str = "workbook"
) -> None:
    """The options every command that reads and writes a workbook shares."""
    if device:
        device_option(p)
    if json:
        p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument(
        "--force",
        action="store_true",
        help=f"replace the {what} even if it is read-only or belongs to another user",
    )
    quiet_option(p)


def quiet_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="show no progress on stderr (errors are still shown)",
    )


def fit_options(args: argparse.Namespace) -> FitOptions:
    """The FitOptions the command's options say, checked: a bad one is refused here, before
    any work (the options a command lacks keep their defaults)."""
    from excelnet.fitting.options import FitOptions

    return FitOptions(
        epochs=args.epochs,
        lr=getattr(args, "lr", None),
        method=getattr(args, "method", None),
        device=args.device,
        compiled=ENGINES[getattr(args, "engine", "auto")],
        history=not getattr(args, "no_history", False),
        seed=getattr(args, "seed", SEED),
    )


def progress(args: argparse.Namespace):
    from excelnet.progress import Progress, Silent

    return Silent() if args.quiet else Progress()


def warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"excelnet: warning: {message}", file=sys.stderr)
