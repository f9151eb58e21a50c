"""Excel's functions, one module per Excel category, each function once: its Excel meaning
(argument coercion, blanks, booleans, text, errors, arrays), its torch form over a copied-down
block, and its gradient where Excel's function is continuous. `FUNCTIONS` indexes them all."""

from excelnet.formula.functions import (  # noqa: F401  (each module registers its functions)
    calling,
    database,
    date,
    distributions,
    dynamic,
    engineering,
    financial,
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

__all__ = ["CATEGORIES", "FUNCTIONS", "Function", "markdown", "operator"]


def markdown() -> str:
    """The list of supported functions by Excel category, for docs/functions.md (generated, so
    the docs cannot drift from the library): a gradient-passing function is in bold."""
    lines = []
    for category in CATEGORIES:
        names = sorted(f.name for f in FUNCTIONS.values() if f.category == category)
        if not names:
            continue
        shown = [f"**{n}**" if FUNCTIONS[n].gradient else n for n in names]
        lines.append(f"- {category} ({len(names)}): {', '.join(shown)}")
    return "\n".join(lines)
