"""Run one of LibreOffice's own solvers on a sheet, through UNO. Debian's python3-uno is
importable only from /usr/bin/python3, so the bench runs this file with that interpreter:

    /usr/bin/python3 bench/lo_solver.py BOOK SHEET OBJECTIVE VARIABLES SERVICE BOUND

prints one JSON line: the solver's wall time, its final objective, and whether it succeeded.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import uno


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    profile = tempfile.mkdtemp(prefix="excelnet-uno-")
    port = _free_port()
    office = subprocess.Popen(
        [
            "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--norestore",
            "--nologo",
            f"--accept=socket,host=127.0.0.1,port={port};urp;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local
        )
        for _ in range(120):
            try:
                ctx = resolver.resolve(
                    f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext"
                )
                break
            except Exception:
                time.sleep(0.5)
        else:
            raise SystemExit("soffice did not start")
        smgr = ctx.ServiceManager
        desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        hidden = uno.createUnoStruct("com.sun.star.beans.PropertyValue")
        hidden.Name, hidden.Value = "Hidden", True
        doc = desktop.loadComponentFromURL(
            uno.systemPathToFileUrl(os.path.abspath(book)), "_blank", 0, (hidden,)
        )
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
    finally:
        office.terminate()
        try:
            office.wait(timeout=20)
        except subprocess.TimeoutExpired:
            office.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    b, s, o, v, svc, bnd = sys.argv[1:7]
    main(b, s, o, v, svc, float(bnd))
