"""How a fit runs: its knobs in one validated object (FitOptions), and the numbers a fit uses
when it is not told otherwise (the API's and the command's). Light: no torch, no openpyxl —
the command builds its FitOptions before any work starts."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from excelnet.errors import ExcelnetError

EPOCHS = 1000
LR = 0.1  # the lesson's learning rate (gd's own step starts there)
METHODS = ("gd", "adam", "lbfgs")  # see excelnet.fitting.optimisers
METHOD = "lbfgs"  # the default; docs/solver.md, "Methods", says why
SEED = 0  # where RAND, RANDBETWEEN and RANDARRAY cells draw from in a fit: reproducible by default


@dataclass(frozen=True)
class FitOptions:
    """The knobs of a fit, shared by fit, compare, lr_sweep, the Train button and `excelnet
    live`; checked when made, so that a bad one is refused before any work.

    epochs: steps (gd, adam) or iterations (lbfgs). lr: a fixed step for gd (or adam's);
    None: gd finds its own step. method: gd, adam or lbfgs; None: gd when `lr` is given, else
    lbfgs (see `chosen_method`). device: auto, cpu, cuda or cuda:N (checked when the model is
    compiled: whether CUDA is there needs torch). compiled: the CPU engine — torch.compile
    (True), eager (False) or whichever is faster for this many epochs (None). history: record
    the metrics every few epochs (the rows of the workbook's history sheet). seed: where the
    cells that call RAND, RANDBETWEEN or RANDARRAY draw from, afresh at every evaluation as
    Solver recalculates them: the same seed, the same fit."""

    epochs: int = EPOCHS
    lr: float | None = None
    method: str | None = None
    device: str = "auto"
    compiled: bool | None = None
    history: bool = True
    seed: int = SEED

    def __post_init__(self) -> None:
        self.at_least(0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ExcelnetError(f"the seed must be a whole number from 0, not {self.seed!r}")
        lr = self.lr
        if lr is not None and not (lr > 0 and math.isfinite(lr)):
            raise ExcelnetError(f"the learning rate must be a positive finite number, not {lr:g}")
        if self.method is not None and self.method not in METHODS:
            raise ExcelnetError(f"unknown method {self.method!r}: choose {', '.join(METHODS)}")
        if self.method == "lbfgs" and lr is not None:
            raise ExcelnetError(
                "lr (a fixed step) is for method gd or adam; lbfgs finds its steps itself",
                "--lr (a fixed step) is for --method gd or adam; lbfgs finds its steps itself",
            )

    def at_least(self, least: int) -> FitOptions:
        """These options, refused unless epochs is a whole number `least` or more (an lr sweep
        needs 1)."""
        epochs = self.epochs
        if int(epochs) != epochs or epochs < least:
            raise ExcelnetError(f"epochs must be a whole number, {least} or more, not {epochs}")
        return self

    @property
    def chosen_method(self) -> str:
        """The method that runs: `method`, or by default gd when `lr` is given, else METHOD."""
        return self.method or ("gd" if self.lr is not None else METHOD)

    @classmethod
    def of(cls, options: FitOptions | None = None, **knobs) -> FitOptions:
        """`options` (default: FitOptions()) with each knob given as a keyword (not None) in its
        place: how the Python API's keyword arguments (epochs=…, lr=…, method=…) become one
        FitOptions, checked once."""
        given = {k: v for k, v in knobs.items() if v is not None}
        if options is None:
            return cls(**given)
        return replace(options, **given) if given else options
