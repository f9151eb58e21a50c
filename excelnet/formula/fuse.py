"""What several formulas compute as a whole, computed as one.

A layer of the lesson's net is a few columns copied down, each the SUMPRODUCT of the row of
features that moves with it and one fixed row of weights:

    D6: =MAX(0,SUMPRODUCT(features!A2:J2,$B$2:$K$2))
    E6: =MAX(0,SUMPRODUCT(features!A2:J2,$B$3:$K$3))

Over all rows those SUMPRODUCTs are the columns of one matrix product, Z = W @ Xᵀ (a row of Z
per column of the sheet). One product per step replaces a multiply and a sum per column, and
its gradient is one product more: the step becomes what a hand-written `X @ W.T` is. The
result is Excel's SUMPRODUCT still: non-numbers count as 0, an error anywhere is left to the
plain evaluation (the group is not formed), and a result that is not finite is #NUM! when
evaluating strictly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch

from excelnet.formula.functions.kit import done
from excelnet.formula.parse import Call, Ref, walk
from excelnet.formula.values import ERR, NUM, V


class Product:
    """The SUMPRODUCTs of one moving row range (the same cells for every member: same block
    rows, same columns) with fixed ranges of its shape, as one matrix product per step."""

    def __init__(self, moving: Ref, fixed: list[Ref]):
        self.moving, self.fixed = moving, fixed
        self.parts: tuple | None = None  # (x, ws): values or Live thunks, set by `prepare`
        self.w: Callable[[], torch.Tensor] | None = None  # the fixed rows as one view, if so
        self.usable = True
        self.z: tuple[torch.Tensor, ...] | None = None
        self.generation = -1

    def prepare(
        self, value: Callable[[Ref], object], run: Callable[[object], V], rows: Callable
    ) -> bool:
        """Evaluate both sides once (`value` gives a reference's V or Live, `run` a Live's
        current V, `rows` the fixed ranges as one (members, width) view of the parameters
        where they are consecutive rows of them, else None); whether the product can stand
        for the members' SUMPRODUCTs."""
        if self.parts is not None or not self.usable:
            return self.usable
        self.w = rows(self.fixed)
        x = value(self.moving)
        ws = [value(f) for f in self.fixed]
        for side in (x, *ws):
            v = run(side)
            if not v.numeric() and (v.kinds() == ERR).any():
                self.usable = False  # errors in the rows: the plain path reports them per row
                return False
            if not v.numeric() and not isinstance(side, V):
                self.usable = False  # a live side that is not all numbers: rare, plain path
                return False
        x = _numbers(x)
        if isinstance(x, V):  # constant rows: laid out for the product once
            x = V(x.x.reshape(x.shape[0], -1).T)
        self.parts = (x, [_numbers(w) for w in ws])
        return True

    def row(self, j: int, generation: int, run: Callable[[object], V]) -> torch.Tensor:
        """Member j's SUMPRODUCTs, one per block row (n, 1, 1), computed once per
        generation."""
        if self.generation != generation or self.z is None:
            x, ws = self.parts
            if isinstance(x, V):
                xt = x.x  # (width, rows)
            else:
                xs = run(x).x
                xt = xs.reshape(xs.shape[0], -1).T
            w = self.w() if self.w is not None else torch.stack([run(w).x.reshape(-1) for w in ws])
            z = w @ xt  # (members, rows): each member's results contiguous
            self.z = z.view(z.shape[0], z.shape[1], 1, 1).unbind(0)  # one view for all
            self.generation = generation
        return self.z[j]


def _numbers(side):
    """A constant side with text, booleans or blanks as 0 (SUMPRODUCT's rule), once; a live
    side as it is (prepare checked it is all numbers)."""
    if not isinstance(side, V) or side.numeric():
        return side
    zero = torch.zeros((), dtype=side.x.dtype, device=side.x.device)
    mask = torch.as_tensor(side.kinds() == NUM, device=side.x.device)
    return V(torch.where(mask, side.x, zero))


def member(product: Product, j: int, ctx, generation: int, run) -> V:
    """Member j's value as its SUMPRODUCT call gives it: (n, 1, 1)."""
    return done(ctx, product.row(j, generation, run), [])


def find_products(blocks: list, moves: Callable[[Ref, object], bool]) -> dict[int, tuple]:
    """The SUMPRODUCT calls of column blocks worth computing as matrix products: id(call) →
    (Product, member index). `moves(ref, block)` says whether a reference reads cells that
    depend on the parameters (only those calls are re-run every step)."""
    groups: dict[tuple, list[tuple[Call, Ref]]] = defaultdict(list)
    for b in blocks:
        if b.kind != "column" or b.rows < 2 or b.node is None:
            continue
        for call in walk(b.node):
            pair = _pair(call) if isinstance(call, Call) else None
            if pair is None:
                continue
            moving, fixed = pair
            if not (moves(moving, b) or moves(fixed, b)):
                continue
            key = (moving, b.r0, b.rows)  # the same cells of X for every member
            groups[key].append((call, fixed))
    out: dict[int, tuple] = {}
    for (moving, _, _), members in groups.items():
        product = Product(moving, [f for _, f in members])
        for j, (call, _) in enumerate(members):
            out[id(call)] = (product, j)
    return out


def _pair(call: Call) -> tuple[Ref, Ref] | None:
    """(moving row, fixed row) of SUMPRODUCT(row, row), either order: one a one-row range
    whose rows move down the column, the other a fixed one-row range of the same width."""
    if call.name != "SUMPRODUCT" or len(call.args) != 2:
        return None
    a, b = call.args
    if not (isinstance(a, Ref) and isinstance(b, Ref)):
        return None
    for moving, fixed in ((a, b), (b, a)):
        if (
            moving.rel_r0
            and moving.rel_r1
            and not fixed.rel_r0
            and not fixed.rel_r1
            and moving.r0 == moving.r1
            and fixed.r0 == fixed.r1
            and moving.c1 - moving.c0 == fixed.c1 - fixed.c0
        ):
            return moving, fixed
    return None
