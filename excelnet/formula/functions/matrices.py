"""MATH_AND_TRIGONOMETRY: the matrix functions MDETERM, MINVERSE and MUNIT (MMULT is in
math.py).

A matrix argument is a square range or array of numbers, one per block row of a copied-down
block: an empty cell, text or a logical in it is #VALUE!, as a matrix that is not square. The
determinant and inverse are torch.linalg's (LU with partial pivoting, as Excel computes them),
batched over the block, and pass gradients; a singular matrix has no inverse (#NUM!).
"""

from __future__ import annotations

import numpy as np
import torch

from excelnet.formula.functions.kit import row_errors, strict_num
from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import FormulaError
from excelnet.formula.values import V, error_value, first_error, to_number, with_errors

excel = registrar("MATH_AND_TRIGONOMETRY")


def _matrix(ctx, v: V) -> tuple[torch.Tensor | None, np.ndarray | None]:
    """A square matrix per block row, and each row's error (None: no error)."""
    n, h, w = v.shape
    if h != w:
        return None, np.full((n, 1, 1), "#VALUE!", dtype=object)
    errs = row_errors(v)
    if not v.numeric():
        other = np.isin(v.kinds(), (1, 2, 3))  # logical, text, empty
        if other.any():
            bad = other.reshape(n, -1).any(1).reshape(n, 1, 1)
            errs = first_error((n, 1, 1), errs, np.where(bad, "#VALUE!", None))
    x, _ = to_number(v)
    return x, errs


@excel("MDETERM", args="r")
def f_mdeterm(ctx, args):
    """MDETERM(array): the determinant of a square matrix."""
    x, errs = _matrix(ctx, args[0])
    if x is None:
        return error_value("#VALUE!", errs.shape, ctx)
    if errs is not None:  # keep the failing rows' numbers out of the factorisation
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        x = torch.where(torch.as_tensor(errs != None, device=x.device), eye, x)  # noqa: E711
    d = torch.linalg.det(x).reshape(-1, 1, 1)
    return with_errors(d, strict_num(ctx, d, errs))


@excel("MINVERSE", args="r", array_result=True)
def f_minverse(ctx, args):
    """MINVERSE(array): the inverse of a square matrix; a singular one is #NUM!."""
    x, errs = _matrix(ctx, args[0])
    if x is None:
        return error_value("#VALUE!", errs.shape, ctx)
    n, size = x.shape[0], x.shape[1]
    eye = torch.eye(size, dtype=x.dtype, device=x.device)
    if errs is not None:
        x = torch.where(torch.as_tensor(errs != None, device=x.device), eye, x)  # noqa: E711
    with torch.no_grad():
        det = torch.linalg.det(x)
    singular = (det == 0) | ~torch.isfinite(det)
    safe = torch.where(singular.reshape(-1, 1, 1), eye, x)
    inverse = torch.linalg.inv(safe)
    if bool(singular.any()):
        errs = first_error(
            (n, 1, 1), errs, np.where(singular.cpu().numpy().reshape(-1, 1, 1), "#NUM!", None)
        )
    if errs is None:
        return V(inverse)
    full = np.broadcast_to(errs, inverse.shape)
    inverse = torch.where(torch.as_tensor(full != None, device=x.device), 0.0, inverse)  # noqa: E711
    return with_errors(inverse, np.array(full, dtype=object))


@excel("_xlfn.MUNIT", args="n", gradient=False, array_result=True)
def f_munit(ctx, args):
    """MUNIT(dimension): the identity matrix of that size (a whole number, 1 or more)."""
    v = args[0]
    if v.shape[1:] != (1, 1):
        return error_value("#VALUE!", (v.shape[0], 1, 1), ctx)
    x, errs = to_number(v)
    sizes = np.trunc(x.detach().cpu().numpy().reshape(-1))
    if errs is not None or len(set(sizes.tolist())) != 1:
        first = None if errs is None else next(e for e in errs.reshape(-1) if e is not None)
        code = first or "#VALUE!"
        if errs is None:
            raise FormulaError("MUNIT of different sizes down one column is not supported")
        return error_value(code, (v.shape[0], 1, 1), ctx)
    size = int(sizes[0])
    if size < 1:
        return error_value("#VALUE!", (1, 1, 1), ctx)
    eye = torch.eye(size, dtype=ctx.dtype, device=ctx.device)
    return V(eye.reshape(1, size, size))
