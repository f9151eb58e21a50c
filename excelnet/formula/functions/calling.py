"""The records of LET, LAMBDA and the functions that call a LAMBDA (Excel's Logical
category): the evaluator computes them itself, with an environment of the names they bind
(excelnet/formula/lambdas.py); here they are known, counted and listed like every function."""

from __future__ import annotations

from excelnet.formula.functions.registry import registrar
from excelnet.formula.parse import FormulaError

excel = registrar("LOGICAL")


def _by_the_evaluator(ctx, args):
    raise FormulaError("LET, LAMBDA and their kin are evaluated with an environment")


for _name, _args in (
    ("LET", (3, 253)),
    ("LAMBDA", (1, 254)),
    ("MAP", (2, 254)),
    ("REDUCE", (3, 3)),
    ("SCAN", (3, 3)),
    ("BYROW", (2, 2)),
    ("BYCOL", (2, 2)),
    ("MAKEARRAY", (3, 3)),
    ("ISOMITTED", (1, 1)),
):
    excel(
        "_xlfn." + _name,
        args=_args,
        gradient=_name != "ISOMITTED",
        array_result=_name not in ("LET", "ISOMITTED"),
    )(_by_the_evaluator)
