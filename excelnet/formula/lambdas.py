"""LET, LAMBDA and the functions that call a LAMBDA (MAP, REDUCE, SCAN, BYROW, BYCOL,
MAKEARRAY, ISOMITTED), evaluated with lexical environments.

The resolver (graph.py) leaves the names LET and LAMBDA bind as Name nodes (keyed without case
or _xlpm.), and writes every call of a function value — LAMBDA(x,x+1)(3), a name defined as a
LAMBDA, a LET-bound function — as Op("invoke", (function, arguments…)). The evaluator carries
an environment, name → value, while it builds a formula's computation: LET binds its values
(computed once, possibly `Live`), a LAMBDA evaluates to a `Closure` (its parameters, body and
the environment it was made in), and invoking one evaluates its body with the parameters
bound. MAP and its kin call their LAMBDA once per element, row or column; where their arrays
depend on the parameters the loop runs at every step, inside one Live, and gradients flow
through the elements' tensors to the results.
"""

from __future__ import annotations

import numpy as np
import torch

from excelnet.formula.graph import local_name
from excelnet.formula.parse import Call, Error, FormulaError, Name, Node, Op
from excelnet.formula.site import Live, current
from excelnet.formula.values import ERR, Omitted, V, array_shape, make, omitted, scalar, spread

OPTIONAL = "_xlop."  # a LAMBDA's optional parameter, as files write it
CALLERS = ("MAP", "REDUCE", "SCAN", "BYROW", "BYCOL", "MAKEARRAY")
SPECIAL = ("LET", "LAMBDA", "ISOMITTED", *CALLERS)


class Closure(V):
    """A LAMBDA as a value: where a cell or a function reads it as a value it is #CALC!, as in
    Excel; invoked, its body is evaluated with its parameters bound."""

    __slots__ = ("params", "body", "env", "block", "required")

    def __init__(self, params: list[str], body: Node, env: dict, block, ctx):
        x = torch.zeros((1, 1, 1), dtype=ctx.dtype, device=ctx.device)
        super().__init__(x, np.full((1, 1, 1), ERR, np.int8), np.full((1, 1, 1), "#CALC!", object))
        self.params, self.body, self.env, self.block = params, body, env, block
        self.required = len(params)  # the parameters a call must give (_xlop.: optional)


def evaluate(ev, node: Node, b):
    """A LET, LAMBDA, call of a function value, or MAP and its kin: V, Live or Closure."""
    if isinstance(node, Name):
        if node.name in ev.env:
            return ev.env[node.name]
        return scalar(Error("#NAME?"), ev.ctx)
    if isinstance(node, Op):  # invoke
        f = ev._node(node.args[0], b)
        if not isinstance(f, Closure):
            return scalar(Error("#VALUE!"), ev.ctx)
        return invoke(ev, f, [ev._node(a, b) for a in node.args[1:]])
    name, args = node.name, node.args
    if name == "LET":
        if len(args) < 3 or len(args) % 2 == 0:
            raise FormulaError("LET takes names and values in pairs, then a calculation")
        outer = ev.env
        try:
            ev.env = dict(outer)
            for i in range(0, len(args) - 1, 2):
                ev.env[local_name(args[i].name)] = ev._node(args[i + 1], b)
            return ev._node(args[-1], b)
        finally:
            ev.env = outer
    if name == "LAMBDA":
        if not args:
            raise FormulaError("LAMBDA takes a calculation")
        params = [local_name(a.name) for a in args[:-1]]
        closure = Closure(params, args[-1], dict(ev.env), b, ev.ctx)
        closure.required = sum(not a.name.startswith(OPTIONAL) for a in args[:-1])
        return closure
    if name == "ISOMITTED":
        if len(args) != 1:
            raise FormulaError("ISOMITTED takes 1 argument")
        return scalar(isinstance(ev._node(args[0], b), _Missing), ev.ctx)
    values = [ev._node(a, b) for a in args]
    f = values[-1] if values else None
    if not isinstance(f, Closure):
        return scalar(Error("#VALUE!"), ev.ctx)
    data = values[:-1]
    run = _CALLERS[name]
    if not any(isinstance(a, Live) for a in data):
        # its arrays are constant: its LAMBDA's results may still depend on the parameters
        outer, ev.live_seen = ev.live_seen, False
        try:
            out = run(ev, data, f)
            if not ev.live_seen:
                return out
        finally:
            ev.live_seen = outer
    return Live(lambda: run(ev, [current(a) for a in data], f))


class _Missing(V):
    """A LAMBDA's parameter left out of its call: ISOMITTED is TRUE, as a value it is 0."""

    __slots__ = ()


def invoke(ev, f: Closure, args: list) -> V:
    """f called with `args` (V or Live)."""
    if not f.required <= len(args) <= len(f.params):
        return scalar(Error("#VALUE!"), ev.ctx)
    outer = ev.env
    try:
        ev.env = dict(f.env)
        for i, p in enumerate(f.params):
            a = args[i] if i < len(args) else None
            if a is None or isinstance(a, Omitted):
                a = _Missing(omitted(ev.ctx).x)
            ev.env[p] = a
        return ev._node(f.body, f.block)
    finally:
        ev.env = outer


def _call(ev, f: Closure, args: list[V]) -> V:
    out = invoke(ev, f, args)
    if isinstance(out, Live):
        ev.live_seen = True  # (a Live inside the loop: the whole loop is run at every step)
    return current(out)


def _element(v: V, i: int, j: int) -> V:
    sl = (slice(None), slice(i, i + 1), slice(j, j + 1))
    return _part(v, sl)


def _part(v: V, sl) -> V:
    kind = v.kind[sl] if isinstance(v.kind, np.ndarray) else v.kind
    text = None if v.text is None else v.texts()[sl]
    if isinstance(kind, np.ndarray):
        return make(v.x[sl], kind, text)
    return V(v.x[sl], kind)


def _one(v: V) -> V:
    """A LAMBDA's result where one value belongs: an array there is #CALC! (nested arrays)."""
    if v.shape[1:] == (1, 1):
        return v
    return V(
        v.x[:, :1, :1] * 0,
        np.full((v.shape[0], 1, 1), ERR, np.int8),
        np.full((v.shape[0], 1, 1), "#CALC!", object),
    )


def _grid(cells: list[list[V]]) -> V:
    """One value of h×w results, each (1 or n, 1, 1)."""
    n = max(c.shape[0] for row in cells for c in row)
    xs = torch.cat([torch.cat([c.x.expand(n, 1, 1) for c in row], 2) for row in cells], 1)
    if all(
        not isinstance(c.kind, np.ndarray) and c.text is None and c.kind is None
        for row in cells
        for c in row
    ):
        return V(xs)
    kind = np.concatenate(
        [np.concatenate([np.broadcast_to(c.kinds(), (n, 1, 1)) for c in row], 2) for row in cells],
        1,
    )
    text = np.concatenate(
        [np.concatenate([np.broadcast_to(c.texts(), (n, 1, 1)) for c in row], 2) for row in cells],
        1,
    )
    return make(xs, kind, text)


def _map(ev, data: list[V], f: Closure) -> V:
    if not data:
        return scalar(Error("#VALUE!"), ev.ctx)
    shape = array_shape(*data)
    data = [spread(v, shape) for v in data]
    _, h, w = shape
    return _grid(
        [
            [_one(_call(ev, f, [_element(v, i, j) for v in data])) for j in range(w)]
            for i in range(h)
        ]
    )


def _reduce(ev, data: list[V], f: Closure, scan: bool = False) -> V:
    if len(data) != 2:
        return scalar(Error("#VALUE!"), ev.ctx)
    acc, array = data
    _, h, w = array.shape
    steps = []
    for i in range(h):
        row = []
        for j in range(w):
            acc = _call(ev, f, [acc, _element(array, i, j)])
            row.append(_one(acc))
        steps.append(row)
    return _grid(steps) if scan else acc


def _by(ev, data: list[V], f: Closure, rows: bool) -> V:
    if len(data) != 1:
        return scalar(Error("#VALUE!"), ev.ctx)
    array = data[0]
    _, h, w = array.shape
    if rows:
        return _grid(
            [
                [_one(_call(ev, f, [_part(array, (slice(None), slice(i, i + 1), slice(None)))]))]
                for i in range(h)
            ]
        )
    return _grid(
        [
            [
                _one(_call(ev, f, [_part(array, (slice(None), slice(None), slice(j, j + 1)))]))
                for j in range(w)
            ]
        ]
    )


def _makearray(ev, data: list[V], f: Closure) -> V:
    if len(data) != 2:
        return scalar(Error("#VALUE!"), ev.ctx)
    size = []
    for v in data:
        k = v.kinds().reshape(-1)[0]
        if k == ERR:
            return scalar(Error(str(v.texts().reshape(-1)[0])), ev.ctx)
        size.append(int(float(v.x.reshape(-1)[0])))
    h, w = size
    if h < 1 or w < 1:
        return scalar(Error("#VALUE!"), ev.ctx)
    return _grid(
        [
            [
                _one(_call(ev, f, [scalar(float(i + 1), ev.ctx), scalar(float(j + 1), ev.ctx)]))
                for j in range(w)
            ]
            for i in range(h)
        ]
    )


_CALLERS = {
    "MAP": _map,
    "REDUCE": _reduce,
    "SCAN": lambda ev, data, f: _reduce(ev, data, f, scan=True),
    "BYROW": lambda ev, data, f: _by(ev, data, f, True),
    "BYCOL": lambda ev, data, f: _by(ev, data, f, False),
    "MAKEARRAY": _makearray,
}


def special(node: Node) -> bool:
    """Whether the evaluator hands `node` to this module."""
    return (
        isinstance(node, Name)
        or (isinstance(node, Op) and node.op == "invoke")
        or (isinstance(node, Call) and node.name in SPECIAL)
    )
