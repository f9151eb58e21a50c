"""The engines that run a method's steps: a pure function of tensors run eagerly, traced into a
flat program and fused by torch.compile (CPU), or captured as a CUDA graph and replayed (which
one: excelnet.fitting.choice); the threads a step of its size uses."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import torch

from excelnet.formula.model import Model

RECORD = 4  # per step: objective cell, max violation, minimised quantity, step size
State = list[torch.Tensor]


# -- engines: a pure function of tensors, run eagerly, compiled, or as a CUDA graph --------------


def _let_go(model: Model) -> None:
    """Recompute every block that depends on the parameters without autograd, so that no
    graph made earlier (by the compile, or a step on another stream) stays alive."""
    with torch.no_grad():
        model.run(model.report_blocks)


def _compiled(fn: Callable, example: State) -> Callable:
    """fn traced once with fake tensors into a flat graph of tensor operations (a computation
    whose course depends on the numbers, such as an IF choosing text or a number, cannot be
    traced that way, and refuses), fused by torch.compile. Its result from `example` must
    equal fn's own, or it is not used."""
    from torch.fx.experimental.proxy_tensor import make_fx

    traced = make_fx(fn, tracing_mode="fake", _allow_non_fake_inputs=True)(*example)
    program = torch.compile(traced, dynamic=False)
    with torch.no_grad():
        got = program(*example)
    want = fn(*example)
    same = (
        torch.allclose(g, w, rtol=1e-9, atol=1e-12, equal_nan=True)
        for g, w in zip(got, want, strict=True)
    )
    if not all(same):
        raise RuntimeError("the compiled step differs from the eager step")

    def run(*xs: torch.Tensor):
        with torch.no_grad():
            return program(*xs)

    return run


class CudaGraph:
    """fn captured once as a CUDA graph over static input tensors. `feed_back`: the first
    outputs are copied over the inputs inside the graph (the next step's state), and the
    last output (a record) lands in a buffer row per replay."""

    def __init__(self, fn: Callable, example: State, model: Model, feed_back: bool, most: int):
        dev = example[0].device
        self.static = [e.detach().clone() for e in example]
        self.feed_back = feed_back
        self.buffer = torch.zeros(max(most, 1), RECORD, dtype=example[0].dtype, device=dev)
        self.index = torch.zeros(1, dtype=torch.long, device=dev)
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        # Warm-up and capture on one stream, each after every autograd graph made earlier is
        # let go: a graph the compile left on the default stream broke the first capture on an
        # H100. The warm-up runs every operation of the captured step once, bookkeeping too.
        _let_go(model)
        with torch.cuda.stream(side):
            for _ in range(3):
                out = fn(*self.static)
                if feed_back:
                    self._record(out[-1])
                    self.index.zero_()  # the buffer may hold a single row
            del out
            _let_go(model)
        torch.cuda.current_stream(dev).wait_stream(side)
        self.g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.g, stream=side):
            self.out = fn(*self.static)
            if feed_back:
                with torch.no_grad():
                    for s, o in zip(self.static, self.out[:-1], strict=True):
                        s.copy_(o)
                self._record(self.out[-1])

    def _record(self, row: torch.Tensor) -> None:
        self.buffer.index_copy_(0, self.index, row.reshape(1, -1))
        self.index += 1

    def load(self, xs: State) -> None:
        with torch.no_grad():
            for s, x in zip(self.static, xs, strict=True):
                if s is not x:
                    s.copy_(x)

    def __call__(self, *xs: torch.Tensor):
        self.load(list(xs))
        self.g.replay()
        return tuple(o.clone() for o in self.out)

    def loop(self, n: int) -> torch.Tensor:
        self.index.zero_()
        for _ in range(n):
            self.g.replay()
        return self.buffer[:n]


def engine(fn: Callable, example: State, model: Model, kind: str, loop: bool, most: int):
    """(runner, engine name, why the engine `kind` was not used). The runner is fn itself
    ("eager"), its compiled twin ("compiled") or a CudaGraph ("cuda graph")."""
    if kind == "cuda graph":
        try:
            return CudaGraph(fn, example, model, loop, most), "cuda graph", None
        except Exception as e:  # a computation that cannot be captured: run it eagerly
            why = f"CUDA graph capture failed ({type(e).__name__}: {e})"
    elif kind == "compiled":
        try:
            return _compiled(fn, example), "compiled", None
        except Exception as e:  # cannot be traced or compiled here: run it eagerly
            why = f"torch.compile could not be used ({type(e).__name__}: {e})"
    else:
        return fn, "eager", None
    return fn, "eager", why.splitlines()[0][:300]


PARALLEL = 50_000  # cells in the step's largest block from which a second thread pays
THREADS = torch.get_num_threads()  # torch's own choice, for the steps of large models


def threads_for(model: Model) -> int:
    """Intra-op threads for a model's steps. A small step's operations are too short to
    share out: waking a second thread costs more than it saves, and on a machine busy with
    other work it cost up to 10x (issue 15). Large ones (100,000 rows) use torch's own."""
    largest = max((b.size for b in model.train_blocks), default=1)
    return 1 if largest < PARALLEL else THREADS


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sized_threads(fit: Callable) -> Callable:
    """fit(model, …) run with the threads chosen by the model's size."""

    @functools.wraps(fit)
    def run(model: Model, *args, **kwargs):
        with threads(threads_for(model)):
            return fit(model, *args, **kwargs)

    return run
