"""The leaner eager step (excelnet.formula.values.reshaped: no view of a view, no reshape to
the shape a tensor has, MMULT against one fixed range as one product): fewer autograd
operations, and the same losses as the plain reshapes at every epoch, on every committed
workbook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from excelnet.fitting.choice import size
from excelnet.fitting.options import FitOptions
from excelnet.fitting.pipeline import compile_models
from excelnet.fitting.problem import Problem
from excelnet.fitting.train import train
from excelnet.formula import values
from excelnet.xlsx.read import read_book

ROOT = Path(__file__).resolve().parents[1]


def _fits(path: Path, lean: bool, monkeypatch, **how) -> dict:
    monkeypatch.setattr(values, "LEAN", lean)
    out = {}
    for model in compile_models(read_book(path)):
        problem = Problem(model)
        ops = size(problem, problem.start()).operations
        fitted = train(model, FitOptions(compiled=False, history=False, **how), problem=problem)
        out[model.solver.sheet] = (ops, fitted)
    return out


@pytest.mark.parametrize("name", ["quadratic", "relu", "double-relu", "titanic"])
@pytest.mark.parametrize("how", [{"epochs": 150, "lr": 0.01}, {"epochs": 60}])  # gd, lbfgs
def test_the_lean_step_gives_the_plain_losses(name, how, monkeypatch):
    path = ROOT / "workbooks" / f"{name}.xlsx"
    plain = _fits(path, False, monkeypatch, **how)
    lean = _fits(path, True, monkeypatch, **how)
    assert plain.keys() == lean.keys()
    for sheet, (ops, fitted) in lean.items():
        plain_ops, want = plain[sheet]
        assert ops <= plain_ops
        assert fitted.epochs == want.epochs and len(fitted.losses) == len(want.losses)
        np.testing.assert_allclose(fitted.losses, want.losses, rtol=1e-9, atol=0)
        np.testing.assert_allclose(
            list(fitted.params.values()), list(want.params.values()), rtol=1e-9, atol=1e-12
        )
    saved = sum(plain[s][0] - lean[s][0] for s in lean)
    if name in ("quadratic", "titanic"):  # the objective's reshape, MMULT's views
        assert saved > 0
