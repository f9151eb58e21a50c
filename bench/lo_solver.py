"""Run one of LibreOffice's own solvers on a sheet, through UNO. Debian's python3-uno is
importable only from /usr/bin/python3, so the bench runs this file with that interpreter:

    /usr/bin/python3 bench/lo_solver.py BOOK SHEET OBJECTIVE VARIABLES SERVICE BOUND

prints one JSON line: the solver's wall time, its final objective, and whether it succeeded.
"""

import json
import sys
import time
from pathlib import Path

import uno

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # python3-uno's interpreter

from excelnet.xlsx.soffice import uno_load, uno_office  # noqa: E402


def _cells(ref: str):
    """'B2:K3' -> [(col, row), ...] (0-based)."""

    def one(a1):
        col = 0
        letters = "".join(ch for ch in a1 if ch.isalpha())
        for ch in letters:
            col = col * 26 + ord(ch.upper()) - 64
        return col - 1, int(a1[len(letters) :]) - 1

    parts = ref.replace("$", "").split(":")
    (c0, r0), (c1, r1) = one(parts[0]), one(parts[-1])
    return [(c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def main(book, sheet_name, objective, variables, service, bound) -> None:
    with uno_office() as ctx:
        smgr = ctx.ServiceManager
        doc = uno_load(ctx, book)
        doc.calculateAll()
        names = doc.Sheets.ElementNames
        index = names.index(sheet_name)
        sheet = doc.Sheets.getByName(sheet_name)

        def address(col, row):
            a = uno.createUnoStruct("com.sun.star.table.CellAddress")
            a.Sheet, a.Column, a.Row = index, col, row
            return a

        solver = smgr.createInstanceWithContext(service, ctx)
        if solver is None:
            print(json.dumps({"service": service, "available": False}))
            doc.close(True)  # closing removes LibreOffice's lock file beside the workbook
            return
        ((oc, orow),) = _cells(objective)
        start = sheet.getCellByPosition(oc, orow).getValue()
        solver.Document = doc
        solver.Objective = address(oc, orow)
        cells = _cells(variables)
        solver.Variables = tuple(address(c, r) for c, r in cells)
        constraints = []
        for c, r in cells:
            for op, value in (("GREATER_EQUAL", -bound), ("LESS_EQUAL", bound)):
                k = uno.createUnoStruct("com.sun.star.sheet.SolverConstraint")
                k.Left = address(c, r)
                k.Operator = uno.Enum("com.sun.star.sheet.SolverConstraintOperator", op)
                k.Right = value
                constraints.append(k)
        solver.Constraints = tuple(constraints)
        solver.Maximize = False
        t = time.perf_counter()
        solver.solve()
        wall = time.perf_counter() - t
        doc.calculateAll()
        final = sheet.getCellByPosition(oc, orow).getValue()
        print(
            json.dumps(
                {
                    "service": service,
                    "available": True,
                    "seconds": wall,
                    "start": start,
                    "final": final,
                    "success": bool(solver.Success),
                    "result_value": solver.ResultValue,
                }
            )
        )
        doc.close(True)


if __name__ == "__main__":
    b, s, o, v, svc, bnd = sys.argv[1:7]
    main(b, s, o, v, svc, float(bnd))
