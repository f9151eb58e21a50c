"""Excel's functions, one module per Excel category, each function once: its Excel meaning
(argument coercion, blanks, booleans, text, errors, arrays), its torch form over a copied-down
block, and its gradient where Excel's function is continuous. `FUNCTIONS` indexes them all."""

from excelnet.formula.functions import (  # noqa: F401  (each module registers its functions)
    date,
    information,
    logical,
    lookup,
    math,
    reference,
    statistical,
    text,
)
from excelnet.formula.functions.operators import operator
from excelnet.formula.functions.registry import CATEGORIES, FUNCTIONS, Function

__all__ = ["CATEGORIES", "FUNCTIONS", "Function", "operator"]

# STATISTICAL: the probability distributions
from excelnet.formula.functions import distributions  # noqa: E402, F401
