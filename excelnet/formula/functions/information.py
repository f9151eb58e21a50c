"""INFORMATION: what a value is (ISBLANK, …)."""

from __future__ import annotations

import numpy as np
import torch

from excelnet.formula.functions.kit import arity
from excelnet.formula.functions.registry import registrar
from excelnet.formula.values import BLANK, BOOL, V

excel = registrar("INFORMATION")


@excel("ISBLANK", gradient=False)
def f_isblank(ctx, args):
    arity("ISBLANK", args, 1)
    v = args[0]
    blank = v.kinds() == BLANK if v.ref else np.zeros(v.shape, bool)
    return V(torch.as_tensor(blank, dtype=ctx.dtype, device=ctx.device), BOOL)
