"""What the formulas compute as a whole, computed as one (excelnet/formula/fuse.py), gives what
the blocks give one by one: the same loss at every epoch (1e-9) and the same cells written back,
on every committed workbook and on workbooks laid out otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pytest
import torch

from excelnet.errors import ExcelnetError
from excelnet.fitting.optimisers import runner
from excelnet.fitting.pipeline import compile_book
from excelnet.fitting.problem import Problem
from excelnet.xlsx.read import read_book
from tests.handmade import solver_names

ROOT = Path(__file__).resolve().parents[1]
BOOKS = sorted((ROOT / "workbooks").glob("*.xlsx"))


def losses(path: Path, sheet: str, fuse: bool, epochs: int, method: str, lr: float | None):
    """Losses per epoch, then every value the write-back would store, of one compiled model."""
    (model,) = compile_book(read_book(path, sheet), sheet, torch.device("cpu"), fuse=fuse)
    run, _ = runner(Problem(model), method, lr, "eager", epochs)
    rows = run.run(epochs)[:, 0].tolist()
    Problem(model).restore(run.here())
    model.evaluate()
    return model, rows, model.values()


def same(path: Path, sheet: str, epochs: int = 200, method: str = "gd", lr=0.01) -> int:
    """Fused and plain agree; returns how many SUMPRODUCT calls were fused."""
    fused, a, values_a = losses(path, sheet, True, epochs, method, lr)
    plain, b, values_b = losses(path, sheet, False, epochs, method, lr)
    assert not plain.fused
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert values_a.keys() == values_b.keys()
    for key, v in values_a.items():
        w = values_b[key]
        if isinstance(v, float) and isinstance(w, float):
            assert v == pytest.approx(w, rel=1e-9, abs=1e-9), key  # sums that cancel
        else:
            assert v == w, key
    return len(fused.fused)


def sheets_with_models(path: Path) -> list[str]:
    return [m.sheet for m in read_book(path).solver_models()]


@pytest.mark.parametrize("path", BOOKS, ids=[p.stem for p in BOOKS])
def test_committed_workbooks_fused_equal_plain(path: Path):
    fused = {sheet: same(path, sheet) for sheet in sheets_with_models(path)}
    if path.stem == "titanic":  # the lesson's layer: two units over one feature row
        assert fused["nn"] == 2 and fused["linear"] == 1


def test_lbfgs_steps_fused_equal_plain():
    assert same(ROOT / "workbooks" / "titanic.xlsx", "nn", 50, "lbfgs", None) == 2


def _net(path: Path, weight_rows: list[int], errors: bool = False) -> Path:
    """Another layout: features on their own sheet with blanks, text and booleans in them
    (SUMPRODUCT counts those as 0), weights on a third sheet written in the other argument
    order, three hidden units, and an output unit whose moving row is the hidden units
    themselves (a live row times a fixed one)."""
    rng = np.random.default_rng(5)
    rows = 40
    wb = openpyxl.Workbook()
    x = wb.active
    x.title = "X"
    for r in range(2, rows + 2):
        for c in range(1, 6):
            x.cell(r, c, float(rng.normal()))
    x["B5"], x["C9"], x["D12"] = None, "n/a", True
    if errors:
        x["E7"] = "=NA()"
    w = wb.create_sheet("W")
    for r in range(2, 9):
        for c in range(2, 7):
            w.cell(r, c, float(rng.normal(0, 0.5)))
    net = wb.create_sheet("net")
    net["A1"], net["E1"], net["F1"], net["G1"] = "target", "h1", "h2", "h3"
    out = 8  # the output unit's weights: W!B8:D8
    for i, r in enumerate(range(2, rows + 2)):
        net[f"A{r}"] = float(i % 2)
        for col, wr in zip("EFG", weight_rows, strict=True):
            net[f"{col}{r}"] = f"=MAX(0,SUMPRODUCT(W!$B${wr}:$F${wr},X!A{r}:E{r}))"
        net[f"H{r}"] = f"=SUMPRODUCT(E{r}:G{r},W!$B${out}:$D${out})"
        net[f"I{r}"] = f"=(H{r}-A{r})^2"
    net["K1"] = f"=SUM(I2:I{rows + 1})/{rows}"
    solver_names(wb, "net", "net!$K$1", "W!$B$2:$F$8")
    wb.save(path)
    return path


@pytest.mark.parametrize(
    "weight_rows",
    [[2, 3, 4], [2, 4, 7], [5, 3, 2]],
    ids=["consecutive rows: a view", "rows apart: stacked", "rows reversed: stacked"],
)
def test_another_layout_fused_equal_plain(tmp_path: Path, weight_rows: list[int]):
    path = _net(tmp_path / "net.xlsx", weight_rows)
    assert same(path, "net", 150, "gd", 0.02) == 4  # three hidden units and the output's


def test_an_error_in_the_rows_is_left_to_the_plain_path(tmp_path: Path):
    """An error among the features: fused or not, the objective is #N/A, with the same words."""
    path = _net(tmp_path / "net.xlsx", [2, 3, 4], errors=True)
    said = []
    for fuse in (True, False):
        with pytest.raises(ExcelnetError) as e:
            compile_book(read_book(path, "net"), "net", torch.device("cpu"), fuse=fuse)
        said.append(str(e.value))
    assert said[0] == said[1] and "#N/A" in said[0]
