"""Fit the model a workbook's formulas define, with full-batch gradient descent as in the
lesson: parameters -= lr * gradient. One readable loop; the rest is bookkeeping.

Steps run in chunks, by one of three engines. "eager" runs the compiled blocks op by op, with
autograd. On a CUDA device the whole step (forward, backward, update) is captured once as a
CUDA graph and replayed, so small models are not bound by kernel launches. On the CPU a long
fit traces the whole step once into a flat program of tensor operations and lets torch.compile
fuse it into native code: a few seconds once, then several times faster per epoch. Losses stay
tensors until a chunk ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from excelnet.defaults import EPOCHS, LR
from excelnet.formula.compile import Model, a1

EXPLODE = 1e3  # a loss this many times the starting loss has diverged
HISTORY_POINTS = 50  # rows of the history sheet per fit, at most
LOSS_POINTS = 10_000  # losses kept per fit, at most (then every 2nd, 4th, … epoch's)
CHUNK = 1_000  # epochs run by a fast engine between looks at the losses, at most
# What torch.compile costs, measured: ~3 s for any step, and more than linearly in the number
# of operations of its autograd graph: Titanic nn (22 operations) 3.4 s, a model of 200
# parameter ranges (408) 8 s, of 500 (1,008) 19 s; of 2,000 (4,009) about 225 s (issue 13).
# The compiled step ran 3-5x faster than the eager one.
COMPILE_BASE = 3.0
COMPILE_PER_OP = 0.002
COMPILE_PER_OP_SQUARED = 1.3e-5
COMPILED_SPEEDUP = 3.0


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
    losses: list[float] = field(repr=False, default_factory=list)  # before each step, thinned
    loss_every: int = 1  # losses[i] is the loss before epoch i * loss_every
    params: dict[str, float] = field(repr=False, default_factory=dict)  # cell -> fitted value
    history: list[tuple[int, float | None, float | None, float | None]] = field(
        repr=False, default_factory=list
    )
    valid_loss: float | None = None
    accuracy: float | None = None
    diverged: str | None = None
    engine: str = "eager"  # "eager" | "cuda graph" | "compiled"
    engine_note: str | None = None  # why the engine fell back to eager steps, if it did

    def summary(self) -> dict:
        return {k: getattr(self, k) for k in (
            "sheet", "parameters", "epochs", "device", "lr", "initial_loss", "final_loss",
            "valid_loss", "accuracy", "seconds", "diverged", "engine", "engine_note")}  # fmt: skip

    @property
    def loss_epochs(self) -> list[int]:
        """The epoch of each kept loss."""
        return [i * self.loss_every for i in range(len(self.losses))]


class Losses:
    """The loss of every epoch while there are at most `limit`, then of every 2nd, 4th, …
    epoch: memory stays bounded for any number of epochs, and the curve keeps its shape."""

    def __init__(self, limit: int | None = None):
        self.limit = LOSS_POINTS if limit is None else limit
        self.every, self.count, self.kept = 1, 0, []

    def extend(self, losses: list[float]) -> None:
        for loss in losses:
            if self.count % self.every == 0:
                self.kept.append(loss)
                if len(self.kept) > self.limit:
                    self.kept, self.every = self.kept[::2], self.every * 2
            self.count += 1

    def drop_last(self) -> None:
        if self.count and (self.count - 1) % self.every == 0:
            self.kept.pop()
        self.count -= 1


def step(model: Model, params: list[torch.Tensor], lr: float) -> torch.Tensor:
    """One step of gradient descent; returns the loss at the parameters before it."""
    loss = model.objective_value()
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None
    return loss.detach()


class EagerSteps:
    """Run n steps one by one (the CPU path, and the fallback everywhere)."""

    engine = "eager"

    def __init__(self, model: Model, params: list[torch.Tensor], lr: float):
        self.model, self.params, self.lr = model, params, lr

    def __call__(self, n: int) -> list[float]:
        return torch.stack([step(self.model, self.params, self.lr) for _ in range(n)]).tolist()


class GraphSteps:
    """Run n steps by replaying one captured CUDA graph of a whole step."""

    engine = "cuda graph"

    def __init__(self, model: Model, params: list[torch.Tensor], lr: float, most: int):
        dev = params[0].device
        self.buffer = torch.zeros(most, dtype=params[0].dtype, device=dev)
        self.index = torch.zeros(1, dtype=torch.long, device=dev)
        start = [p.detach().clone() for p in params]
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        # Warm-up and capture on one stream, each after every autograd graph made earlier is
        # let go: a graph the compile left on the default stream broke the first capture on an
        # H100. The warm-up runs every operation of the captured step once, bookkeeping too.
        _let_go(model)
        with torch.cuda.stream(side):
            for _ in range(3):
                self._record(step(model, params, lr))
                self.index.zero_()  # the buffer may hold a single loss
            with torch.no_grad():
                for p, s in zip(params, start, strict=True):
                    p.copy_(s)
            for p in params:
                p.grad = None
            _let_go(model)
        torch.cuda.current_stream(dev).wait_stream(side)
        self.g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.g, stream=side):
            loss = model.objective_value()
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
                self._record(loss.detach())
        for p in params:  # the captured step zeroes nothing: keep .grad from accumulating
            p.grad = None

    def _record(self, loss: torch.Tensor) -> None:
        self.buffer.index_copy_(0, self.index, loss.reshape(1))
        self.index += 1

    def __call__(self, n: int) -> list[float]:
        self.index.zero_()
        for _ in range(n):
            self.g.replay()
        return self.buffer[:n].tolist()


def _let_go(model: Model) -> None:
    """Recompute every block that depends on the parameters without autograd, so that no
    graph made earlier (by the compile, or a step on another stream) stays alive."""
    with torch.no_grad():
        model.run(model.report_blocks)


class CompiledSteps:
    """Run n steps of one compiled program. The step (forward, backward, update) is traced
    once with fake tensors into a flat graph of tensor operations: a computation whose course
    depends on the numbers (an IF choosing text or a number) cannot be traced that way, and
    refuses. torch.compile then fuses the graph into native code. One compiled step must
    equal one eager step from the same parameters, or the engine is not used."""

    engine = "compiled"

    def __init__(self, model: Model, params: list[torch.Tensor], lr: float):
        from torch.fx.experimental.proxy_tensor import make_fx

        from excelnet.formula.values import V

        self.params = params
        blocks = model.params

        def pure_step(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            xs = tuple(x.requires_grad_(True) for x in xs)
            for b, x in zip(blocks, xs, strict=True):
                b.value = V(x)
            loss = model.objective_value()
            grads = torch.autograd.grad(loss, xs)
            return (loss.detach(), *((x - lr * g).detach() for x, g in zip(xs, grads, strict=True)))

        start = [p.detach().clone() for p in params]
        try:
            traced = make_fx(pure_step, tracing_mode="fake", _allow_non_fake_inputs=True)(*start)
        finally:
            for b, p in zip(blocks, params, strict=True):
                b.value = V(p)
        self.program = torch.compile(traced, dynamic=False)
        with torch.no_grad():
            got = self.program(*start)
        want = [step(model, params, lr)] + [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, s in zip(params, start, strict=True):
                p.copy_(s)
        same = (torch.allclose(g, w, rtol=1e-9, atol=1e-12) for g, w in zip(got, want, strict=True))
        if not all(same):
            raise RuntimeError("the compiled step differs from the eager step")

    def __call__(self, n: int) -> list[float]:
        xs = [p.detach() for p in self.params]
        losses = []
        with torch.no_grad():
            for _ in range(n):
                loss, *xs = self.program(*xs)
                losses.append(loss)
            for p, x in zip(self.params, xs, strict=True):
                p.copy_(x)
        return torch.stack(losses).tolist()


def _steps(model: Model, params: list[torch.Tensor], lr: float, chunk: int, compiled: bool):
    """The engine for this fit, and why a faster one was not used (None if it was)."""
    if params[0].device.type == "cuda":
        try:
            return GraphSteps(model, params, lr, chunk), None
        except Exception as e:  # a computation that cannot be captured: run it eagerly
            why = f"CUDA graph capture failed ({type(e).__name__}: {e})"
    elif compiled:
        try:
            return CompiledSteps(model, params, lr), None
        except Exception as e:  # cannot be traced or compiled here: run it eagerly
            why = f"torch.compile could not be used ({type(e).__name__}: {e})"
    else:
        return EagerSteps(model, params, lr), None
    return EagerSteps(model, params, lr), why.splitlines()[0][:300]


def _operations(model: Model) -> int:
    """How many operations the autograd graph of one step's loss holds: what a compile costs."""
    seen, todo = set(), [model.objective_value().grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(n for n, _ in node.next_functions)
    return len(seen)


def compile_pays(model: Model, params: list[torch.Tensor], epochs: int) -> bool:
    """Whether torch.compile's one-time cost (by the size of the step) is less than the time
    it saves over `epochs` eager steps (timed after one warm-up step)."""
    step(model, params, 0.0)
    t = time.perf_counter()
    for _ in range(3):
        step(model, params, 0.0)
    eager = (time.perf_counter() - t) / 3
    saved = epochs * eager * (1 - 1 / COMPILED_SPEEDUP)
    ops = _operations(model)
    return saved > COMPILE_BASE + COMPILE_PER_OP * ops + COMPILE_PER_OP_SQUARED * ops**2


def _metric(model: Model, metrics: dict[str, tuple[str, int, int]], key: str) -> float | None:
    cell = metrics.get(key)
    if cell is None:
        return None
    v = model.value_at(*cell)
    return v if isinstance(v, float) else None


def train(
    model: Model,
    epochs: int = EPOCHS,
    lr: float = LR,
    progress=None,
    metrics: dict[str, tuple[str, int, int]] | None = None,
    record: bool = True,
    compiled: bool | None = None,
) -> SheetFit:
    """Run gradient descent on a compiled model; on divergence keep the last good parameters.
    `record` logs the metrics every few epochs (rows of the history sheet). `compiled` picks
    the CPU engine: torch.compile (True), eager (False), or whichever is faster for this
    many epochs (None)."""
    metrics = metrics or {}
    params = model.parameters()
    start = time.perf_counter()
    every = max(1, epochs // HISTORY_POINTS)  # a history row every `every` epochs
    initial = float(model.objective_value().detach())
    if not math.isfinite(initial):
        raise ValueError("the objective is not finite at the starting parameters")

    def bad(loss: float) -> bool:
        return not math.isfinite(loss) or loss > EXPLODE * max(initial, 1e-12)

    def snapshot() -> list[torch.Tensor]:
        return [p.detach().clone() for p in params]

    def restore(saved: list[torch.Tensor], replay: int) -> None:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        for _ in range(replay):
            step(model, params, lr)

    if compiled is None and params[0].device.type == "cpu":  # worth a few seconds once?
        compiled = compile_pays(model, params, epochs)
    fast = min(every, CHUNK)
    run, engine_note = _steps(model, params, lr, fast, bool(compiled))
    chunk = 1 if run.engine == "eager" else fast  # eager: the progress bar moves every epoch
    losses = Losses()
    history = []
    diverged = None
    before, before_len = snapshot(), 0  # the parameters at the start of the previous chunk
    epoch = 0
    while epoch < epochs:
        if record and epoch % every == 0:
            model.evaluate()
            history.append(
                (
                    epoch,
                    None,
                    _metric(model, metrics, "valid_loss"),
                    _metric(model, metrics, "accuracy"),
                )
            )
        n = min(chunk, epochs - epoch, every - epoch % every)  # history rows fall on `every`
        saved = snapshot()
        chunk_losses = run(n)
        first_bad = next((i for i, loss in enumerate(chunk_losses) if bad(loss)), None)
        if first_bad is not None:
            # keep the parameters of the last good loss: one step before the bad one
            if first_bad == 0:
                restore(before, before_len - 1)
            else:
                restore(saved, first_bad - 1)
            losses.extend(chunk_losses[:first_bad])
            diverged = (
                f"diverged at epoch {epoch + first_bad} (loss "
                f"{chunk_losses[first_bad]:.4g}); kept the parameters of epoch "
                f"{epoch + first_bad - 1}: try a learning rate smaller than {lr:g}"
            )
            break
        losses.extend(chunk_losses)
        if history and history[-1][0] == epoch:
            history[-1] = (epoch, chunk_losses[0], *history[-1][2:])
        before, before_len = saved, n
        epoch += n
        if progress is not None:
            progress(epoch, chunk_losses[-1])
    final = float(model.objective_value().detach())
    if diverged is None and bad(final):  # the very last step diverged
        restore(before, before_len - 1)
        losses.drop_last()
        final = float(model.objective_value().detach())
        diverged = f"diverged at the last step; try a learning rate smaller than {lr:g}"
    model.evaluate()
    history.append(
        (
            losses.count,
            final,
            _metric(model, metrics, "valid_loss"),
            _metric(model, metrics, "accuracy"),
        )
    )
    values = {}
    for b in model.params:
        for i, v in enumerate(b.value.x.detach().cpu().reshape(-1).tolist()):
            values[f"{b.sheet}!{a1(b.r0 + i // b.cols, b.c0 + i % b.cols)}"] = v
    return SheetFit(
        sheet=model.solver.sheet,
        parameters=sum(b.size for b in model.params),
        epochs=losses.count,
        device=str(params[0].device),
        lr=lr,
        initial_loss=initial,
        final_loss=final,
        seconds=time.perf_counter() - start,
        losses=losses.kept,
        loss_every=losses.every,
        params=values,
        history=history,
        valid_loss=_metric(model, metrics, "valid_loss"),
        accuracy=_metric(model, metrics, "accuracy"),
        diverged=diverged,
        engine=run.engine,
        engine_note=engine_note,
    )
