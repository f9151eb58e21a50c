"""Which engine runs a fit's steps — eager, torch.compile'd (CPU) or a CUDA graph (GPU) — and
why, predicted from costs of this model that a busy machine does not distort: its operation
counts and sizes, the compile-cache state, and the evaluations the method will run. Nothing is
timed: timing three eager steps against a compile cost measured on an idle machine (what excelnet
did before) flips with the machine's load — on a busy one the steps looked slow, compiling
cheap, and a 0.8 s fit took 20 s.

A fit's cost on an engine is (its one-time cost) + (the evaluations the method will run) × (one
evaluation's cost), in seconds of one core of the reference machine (a 2.8 GHz Xeon; the
constants below were measured there, against the committed workbooks and the bench's shapes:
bench/engines.py). A faster or slower machine scales every term alike, so the choice stands.

  eager      = evaluations × (EAGER: a call + per autograd operation + per element they make)
  compiled   = compile + evaluations × (COMPILED: the same, fused: less per operation and element)
  compile    = by the autograd operations and torch's compile-cache state: nothing cached (cold),
               this structure compiled here before (torch's on-disk FX graph / inductor cache
               holds its kernels: excelnet leaves a marker beside them), torch.compile already
               loaded in this process, or this structure compiled in this process

The evaluations: gd and adam evaluate once a step, every epoch asked. L-BFGS stops when its
steps stop improving, long before the epochs asked on a small model, and its line search
evaluates more than once an iteration: min(epochs, LBFGS_ITERATIONS(parameters)) iterations ×
LBFGS_EVALUATIONS. Compiling is chosen only when predicted clearly faster (by MARGIN).

On a CUDA device the step is captured as a CUDA graph (its capture costs a few evaluations;
eager steps there wait on a kernel launch per operation).
"""

from __future__ import annotations

import getpass
import hashlib
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from excelnet.fitting.optimisers import MU
from excelnet.fitting.problem import Problem

# Seconds of one reference core. Compiling (CPU time, its C++ compiler's included, measured under
# load, so on the high side): seconds + per autograd operation (+ squared: lowering grows faster
# than linearly; issue 13: 4,009 operations took ~225 s). Titanic nn (17 operations) 16-20 s
# cold, 5.4 s cached; 35: 23.5 s, 6.0 s; 149: 31 s, 6.8 s; a new structure after a first
# compile in the same process 8.7 s; the same structure again in the process 0.3 s.
COMPILE_COLD = (18.0, 0.08, 1.3e-5)
COMPILE_CACHED = (5.0, 0.01, 0.0)
COMPILE_LOADED = (6.0, 0.08, 1.3e-5)
COMPILE_AGAIN = (0.5, 0.0, 0.0)
# One evaluation (forward and backward): a call + per autograd operation + per element of their
# results. Eager: 0.28 ms for a 3-parameter lesson sheet, 0.44 ms Titanic nn (891 rows), 1.7 ms a
# 150-parameter collaborative filter (149 operations), 14 ms Titanic nn on 100,000 rows (1.4
# million elements). Compiled: 0.09 ms Titanic nn, 0.45 ms the collaborative filter.
EAGER = (1.0e-4, 1.0e-5, 9.5e-9)
COMPILED = (4.0e-5, 2.7e-6, 3.0e-9)
# L-BFGS: iterations until its steps stop improving, at most (the committed workbooks and the
# bench's shapes: 2-4 parameters 13-20, 10: 36, 20: ~500, 150: ~125-200, a 33-parameter ReLU
# net ~1,000), and evaluations per iteration (its line search backtracks now and then: ~1.3)
LBFGS_ITERATIONS = (50, 30)  # base + per parameter
LBFGS_EVALUATIONS = 1.5
MARGIN = 1.1  # compile only when predicted at least this much faster: ties stay eager
MARKERS = "excelnet-compiled"  # beside torch's cache: the structures compiled here
_here: set[str] = set()  # the structures compiled in this process


@dataclass(frozen=True)
class Choice:
    """The engine a fit runs on, and why: in --json as `engine_choice` and `engine_reason`."""

    engine: str  # "eager" | "compiled" | "cuda graph"
    reason: str
    evaluations: int = 0  # expected
    eager_seconds: float | None = None  # predicted, on this machine unloaded
    compiled_seconds: float | None = None
    key: str | None = None  # the structure's cache marker, written once it compiled


def expected_iterations(method: str, epochs: int, parameters: int) -> int:
    """The iterations the method will run: every epoch for gd and adam; L-BFGS stops early."""
    if method != "lbfgs":
        return epochs
    base, per = LBFGS_ITERATIONS
    return min(epochs, base + per * parameters)


def expected_evaluations(method: str, epochs: int, parameters: int) -> int:
    iterations = expected_iterations(method, epochs, parameters)
    per = LBFGS_EVALUATIONS if method == "lbfgs" else 1.0
    return math.ceil(1 + iterations * per)


@dataclass(frozen=True)
class Size:
    """One evaluation's autograd graph: its operations, the elements of their results, and a
    digest of its structure (the operations in order and the cells they work on)."""

    operations: int
    elements: int
    key: str


def size(problem: Problem, x: torch.Tensor) -> Size:
    """The autograd graph of one evaluation at x, walked (one forward, no backward)."""
    lam, mu = x.new_zeros(problem.m), x.new_tensor(MU)
    x = x.detach().requires_grad_(True)
    _, big_f, c = problem.terms(x)
    seen, todo, names, elements = set(), [problem.lagrangian(big_f, c, lam, mu).grad_fn], [], 0
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            names.append(node.name())
            elements += sum(math.prod(m.shape) for m in node._input_metadata)
            todo.extend(n for n, _ in node.next_functions)
    model = problem.model
    cells = [(b.sheet, b.r0, b.c0, b.rows, b.cols) for b in model.train_blocks + model.params]
    text = repr((torch.__version__, str(x.dtype), x.device.type, problem.m, cells, names))
    return Size(len(seen), elements, hashlib.sha256(text.encode()).hexdigest()[:32])


def cache_dir() -> Path:
    """torch's inductor cache, where torch.compile keeps what it compiled (found as torch finds
    it, without importing torch._inductor: seconds)."""
    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if given:
        return Path(given).absolute()
    try:
        user = getpass.getuser()
    except (KeyError, ModuleNotFoundError, OSError):
        user = f"uid_{os.getuid()}" if hasattr(os, "getuid") else "unknown_user"
    return Path(tempfile.gettempdir()) / ("torchinductor_" + re.sub(r'[\\/:*?"<>|]', "_", user))


def cached(key: str) -> bool:
    """Whether this structure was compiled here and torch's cache still holds its entries."""
    return (cache_dir() / "fxgraph").is_dir() and (cache_dir() / MARKERS / key).exists()


def remember(key: str | None) -> None:
    """Mark this structure compiled, after torch.compile wrote its cache entries."""
    if key is None:
        return
    _here.add(key)
    try:
        folder = cache_dir() / MARKERS
        folder.mkdir(parents=True, exist_ok=True)
        (folder / key).touch()
    except OSError:  # a cache we may not write: the next process predicts a cold compile
        pass


def _cost(costs: tuple[float, float, float], ops: int) -> float:
    base, per, squared = costs
    return base + per * ops + squared * ops * ops


def compile_seconds(size: Size, at_least: float = 0.0) -> tuple[float, str]:
    """The compile's expected cost, and the cache state it assumes. Where even the cheapest
    state this process could be in costs `at_least` or more, that, without looking at torch's
    cache (a fit too short for any compile is decided in well under a millisecond)."""
    ops = size.operations
    if size.key in _here:
        return _cost(COMPILE_AGAIN, ops), "compiled before in this process"
    loaded = "torch._inductor.compile_fx" in sys.modules
    cheapest = min(_cost(COMPILE_CACHED, ops), _cost(COMPILE_LOADED, ops) if loaded else math.inf)
    if cheapest >= at_least > 0:
        return cheapest, "at least: even with this structure in torch's compile cache"
    if cached(size.key):
        return _cost(COMPILE_CACHED, ops), "in torch's compile cache"
    if loaded:
        return _cost(COMPILE_LOADED, ops), "torch.compile loaded, this structure not cached"
    return _cost(COMPILE_COLD, ops), "nothing in torch's compile cache"


def evaluation_seconds(size: Size, costs: tuple[float, float, float]) -> float:
    call, per_op, per_element = costs
    return call + per_op * size.operations + per_element * size.elements


def _what(method: str, epochs: int, n: int) -> str:
    if method == "lbfgs":
        its = expected_iterations(method, epochs, n)
        cap = "" if its == epochs else f" (of {epochs} allowed: it stops early)"
        return f"~{its} L-BFGS iterations{cap} × {LBFGS_EVALUATIONS:g} evaluations"
    return f"{epochs} {method} steps"


def choose(
    problem: Problem,
    x0: torch.Tensor,
    method: str,
    epochs: int,
    compiled: bool | None,
    drawn: list[str] = (),
) -> Choice:
    """The engine for a fit of `epochs` with `method` from x0, and the reason. `compiled`:
    True or False when asked for (--engine), None to predict. `drawn`: the volatile functions
    (RAND, …) the model draws afresh at every evaluation: a traced or captured step would
    replay the same draws, so the steps run eagerly."""
    if drawn:
        return Choice("eager", f"{', '.join(drawn)} drawn afresh at every evaluation: eager steps")
    if x0.device.type == "cuda":
        return Choice("cuda graph", "a CUDA device: one step captured as a CUDA graph, replayed")
    if compiled is not None:
        name = "compiled" if compiled else "eager"
        return Choice(name, f"asked for (--engine {name}, or compiled={compiled})")
    if epochs == 0:
        return Choice("eager", "no steps to run", 1)
    n = problem.n
    evaluations = expected_evaluations(method, epochs, n)
    found = size(problem, x0)
    eager_one = evaluation_seconds(found, EAGER)
    compiled_one = min(evaluation_seconds(found, COMPILED), eager_one)
    eager = evaluations * eager_one
    # a compile that costs the eager fit's time, or more, cannot pay: no need to know more
    compile_s, state = compile_seconds(found, at_least=eager)
    fast = compile_s + evaluations * compiled_one
    ms = f"{eager_one * 1e3:.2g} ms" if eager_one >= 1e-4 else f"{eager_one * 1e6:.2g} µs"
    reason = (
        f"{_what(method, epochs, n)} × {ms} ({found.operations} operations, "
        f"{found.elements:,} elements): ~{eager:.2g} s eager; compiled ~{fast:.2g} s, "
        f"compiling ~{compile_s:.2g} s of it ({state})"
    )
    engine = "compiled" if fast * MARGIN < eager else "eager"
    return Choice(engine, reason, evaluations, eager, fast, found.key)
