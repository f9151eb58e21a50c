"""LOOKUP_AND_REFERENCE: picking values out of ranges, and reshaping them."""

from __future__ import annotations

import numpy as np

from excelnet.formula.functions.kit import arity
from excelnet.formula.functions.registry import registrar
from excelnet.formula.values import V

excel = registrar("LOOKUP_AND_REFERENCE")


@excel("TRANSPOSE")
def f_transpose(ctx, args):
    arity("TRANSPOSE", args, 1)
    v = args[0]
    kind = v.kind.transpose(0, 2, 1) if isinstance(v.kind, np.ndarray) else v.kind
    text = v.text.transpose(0, 2, 1) if v.text is not None else None
    return V(v.x.transpose(1, 2), kind, text)
