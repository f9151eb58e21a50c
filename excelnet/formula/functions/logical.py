"""LOGICAL: IF, IFERROR, AND, OR, NOT."""

from __future__ import annotations

import numpy as np
import torch

from excelnet.formula.functions.kit import arity, is_array, row_errors
from excelnet.formula.functions.registry import registrar
from excelnet.formula.values import (
    BOOL,
    NUM,
    V,
    broadcast,
    errors_of,
    first_error,
    make,
    to_bool,
    with_errors,
)  # fmt: skip

excel = registrar("LOGICAL")


@excel("IF")
def f_if(ctx, args):
    arity("IF", args, 1, 3)
    cond = args[0]
    yes = (
        args[1]
        if len(args) > 1
        else V(torch.ones((1, 1, 1), dtype=ctx.dtype, device=ctx.device), BOOL)
    )
    no = (
        args[2]
        if len(args) > 2
        else V(torch.zeros((1, 1, 1), dtype=ctx.dtype, device=ctx.device), BOOL)
    )
    c, ec = to_bool(cond)
    shape = broadcast(cond, yes, no)
    c = torch.broadcast_to(c, shape)
    x = torch.where(c, yes.x, no.x)
    # IF hands on a reference as a reference: SUM(IF(…, A1, 0)) skips text in A1
    ref = yes.ref and no.ref
    if yes.ref != no.ref and c.numel() == 1:
        ref = yes.ref if bool(c.reshape(())) else no.ref
    uniform = not isinstance(yes.kind, np.ndarray) and not isinstance(no.kind, np.ndarray)
    if uniform and yes.kind == no.kind and yes.text is None and no.text is None:
        v = with_errors(x, ec if ec is None else np.broadcast_to(ec, shape), yes.kind)
    else:
        cn = c.cpu().numpy()
        kind = np.where(cn, np.broadcast_to(yes.kinds(), shape), np.broadcast_to(no.kinds(), shape))
        text = np.where(cn, np.broadcast_to(yes.texts(), shape), np.broadcast_to(no.texts(), shape))
        v = make(x, kind.astype(np.int8), text)
        if ec is not None:
            v = with_errors(v.x, np.broadcast_to(ec, shape), v.kinds(), v.texts())
    v.ref = ref
    return v


@excel("IFERROR")
def f_iferror(ctx, args):
    arity("IFERROR", args, 2)
    v, alt = args
    errs = errors_of(v)
    if errs is None and (ctx.strict or not v.numeric()):
        return v
    shape = broadcast(v, alt)
    is_err = np.broadcast_to(errs != None, shape) if errs is not None else np.zeros(shape, bool)  # noqa: E711
    mask = torch.as_tensor(is_err, device=v.x.device)
    if not ctx.strict:  # training: #NUM! and #DIV/0! are still non-finite numbers here
        mask = mask | ~torch.isfinite(v.x)
        if not (v.numeric() and alt.numeric()):  # which kinds win depends on the numbers
            is_err = np.broadcast_to(mask.cpu().numpy(), shape)
    x = torch.where(mask, alt.x, v.x)
    kind = np.where(is_err, np.broadcast_to(alt.kinds(), shape), np.broadcast_to(v.kinds(), shape))
    text = np.where(is_err, np.broadcast_to(alt.texts(), shape), np.broadcast_to(v.texts(), shape))
    return make(x, kind.astype(np.int8), text)


def _logical(ctx, args, name, combine):
    result, errs, seen = None, [], None
    for v in args:
        if is_array(v):
            k = v.kinds()
            mask = torch.as_tensor((k == NUM) | (k == BOOL), device=v.x.device)
            b = v.x != 0
            part = (
                combine(b | ~mask, (1, 2)) if name == "AND" else combine(b & mask, (1, 2))
            ).reshape(-1, 1, 1)
            has = mask.reshape(mask.shape[0], -1).any(1).reshape(-1, 1, 1)
            errs.append(row_errors(v))
        else:
            b, e = to_bool(v)
            part, has = b, torch.ones_like(b)
            errs.append(e)
        result = part if result is None else (result & part if name == "AND" else result | part)
        seen = has if seen is None else seen | has
    x = result.to(ctx.dtype)
    shape = tuple(x.shape)
    none = (~torch.broadcast_to(seen, shape)).cpu().numpy()
    errs.append(np.where(none, "#VALUE!", None) if none.any() else None)
    return with_errors(x, first_error(shape, *errs), BOOL)


@excel("AND", gradient=False)
def f_and(ctx, args):
    return _logical(ctx, args, "AND", lambda t, d: t.reshape(t.shape[0], -1).all(1))


@excel("OR", gradient=False)
def f_or(ctx, args):
    return _logical(ctx, args, "OR", lambda t, d: t.reshape(t.shape[0], -1).any(1))


@excel("NOT", gradient=False)
def f_not(ctx, args):
    arity("NOT", args, 1)
    b, errs = to_bool(args[0])
    return with_errors((~b).to(ctx.dtype), errs, BOOL)
