"""Fit the model a workbook's formulas define, with full-batch gradient descent as in the
lesson: parameters -= lr * gradient. One readable loop; the rest is bookkeeping."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from excelnet.formula.compile import Model, a1

EPOCHS = 1000
LR = 0.1
EXPLODE = 1e3  # a loss this many times the starting loss has diverged
HISTORY_POINTS = 50  # rows of the history sheet per fit, at most


@dataclass
class SheetFit:
    """What one fit did: the numbers the summary table and --json show."""

    sheet: str
    parameters: int
    epochs: int
    device: str
    lr: float
    initial_loss: float
    final_loss: float
    seconds: float
    losses: list[float] = field(repr=False, default_factory=list)  # per epoch, before its step
    params: dict[str, float] = field(repr=False, default_factory=dict)  # cell -> fitted value
    history: list[tuple[int, float, float | None, float | None]] = field(
        repr=False, default_factory=list
    )
    valid_loss: float | None = None
    accuracy: float | None = None
    diverged: str | None = None

    def summary(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "sheet",
                "parameters",
                "epochs",
                "device",
                "lr",
                "initial_loss",
                "final_loss",
                "valid_loss",
                "accuracy",
                "seconds",
                "diverged",
            )
        }


def _step(model: Model, params: list[torch.Tensor], lr: float) -> torch.Tensor:
    loss = model.objective_value()
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None
    return loss.detach()


def _metric(model: Model, names: dict[str, tuple[str, int, int]], key: str) -> float | None:
    cell = names.get(key)
    if cell is None:
        return None
    v = model.values().get(cell)
    return float(v) if isinstance(v, float) and not isinstance(v, bool) else None


def train(
    model: Model,
    epochs: int = EPOCHS,
    lr: float = LR,
    progress=None,
    metrics: dict[str, tuple[str, int, int]] | None = None,
) -> SheetFit:
    """Run gradient descent on a compiled model; on divergence keep the last good parameters."""
    metrics = metrics or {}
    params = model.parameters()
    device = str(params[0].device)
    start = time.perf_counter()
    every = max(1, epochs // HISTORY_POINTS)
    losses: list[float] = []
    history = []
    diverged = None
    initial = float(model.objective_value().detach())
    if not math.isfinite(initial):
        raise ValueError("the objective is not finite at the starting parameters")
    last_good = [p.detach().clone() for p in params]
    for epoch in range(epochs):
        if epoch % every == 0:
            model.evaluate()
            history.append(
                (
                    epoch,
                    None,
                    _metric(model, metrics, "valid_loss"),
                    _metric(model, metrics, "accuracy"),
                )
            )
        loss = float(_step(model, params, lr))  # the loss at the parameters before this step
        if not math.isfinite(loss) or loss > EXPLODE * max(initial, 1e-12):
            with torch.no_grad():
                for p, good in zip(params, last_good, strict=True):
                    p.copy_(good)
            diverged = (
                f"diverged at epoch {epoch} (loss {loss:.4g}); kept the parameters of "
                f"epoch {epoch - 1}: try a smaller --lr than {lr:g}"
            )
            break
        losses.append(loss)
        if history and history[-1][0] == epoch:
            history[-1] = (epoch, loss, *history[-1][2:])
        for p, good in zip(params, last_good, strict=True):
            good.copy_(p.detach())  # about to be the parameters after this step
        if progress is not None:
            progress(epoch + 1, loss)
    final = float(model.objective_value().detach())
    if not math.isfinite(final) or final > EXPLODE * max(initial, 1e-12):
        with torch.no_grad():  # the very last step diverged
            for p, good in zip(params, last_good, strict=True):
                p.copy_(good)
        final = float(model.objective_value().detach())
        diverged = diverged or f"diverged at the last step; try a smaller --lr than {lr:g}"
    model.evaluate()
    done = len(losses)
    history.append(
        (done, final, _metric(model, metrics, "valid_loss"), _metric(model, metrics, "accuracy"))
    )
    values = {}
    for b in model.params:
        x = b.value.x.detach().cpu().reshape(-1).tolist()
        for i, v in enumerate(x):
            values[f"{b.sheet}!{a1(b.r0 + i // b.cols, b.c0 + i % b.cols)}"] = v
    return SheetFit(
        sheet=model.solver.sheet,
        parameters=sum(b.size for b in model.params),
        epochs=done,
        device=device,
        lr=lr,
        initial_loss=initial,
        final_loss=final,
        seconds=time.perf_counter() - start,
        losses=losses,
        params=values,
        history=history,
        valid_loss=_metric(model, metrics, "valid_loss"),
        accuracy=_metric(model, metrics, "accuracy"),
        diverged=diverged,
    )
