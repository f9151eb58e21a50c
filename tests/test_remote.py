"""excelnet.live.xl on xlwings' remote engine (`xw.Book(json=…)`, the payload an xlwings
client sends: values and names, no formulas). The remote engine is part of xlwings PRO and
loads only with a licence key: the check runs in a process of its own with
XLWINGS_LICENSE_KEY=noncommercial, set for that process only (the RunPython path of the Train
button needs no key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from excelnet.writer.lessons import build_quadratic

pytest.importorskip("xlwings")

SCRIPT = r"""
import json, sys
import openpyxl
import xlwings as xw
from excelnet.live import xl
from excelnet.formula.parse import parse_ref

path = sys.argv[1]
wb = openpyxl.load_workbook(path, data_only=True)  # the values, as the client would send them
titles = wb.sheetnames

def address(text, scope):
    ref = parse_ref(text, scope or "")
    if ref is None or ref.r1 is None or ref.c1 is None:
        return {"sheet_index": None, "address": None}
    first = f"{openpyxl.utils.get_column_letter(ref.c0 + 1)}{ref.r0 + 1}"
    last = f"{openpyxl.utils.get_column_letter(ref.c1 + 1)}{ref.r1 + 1}"
    return {"sheet_index": titles.index(ref.sheet), "address": f"{first}:{last}"}

def name(n, text, scope):
    index = None if scope is None else titles.index(scope)
    return {"name": n, "refers_to": "=" + text, "book_scope": scope is None,
            "scope_sheet_name": scope, "scope_sheet_index": index, **address(text, scope)}

def values(ws):
    return [["" if v is None else v for v in row] for row in ws.iter_rows(values_only=True)]

names = [name(n, d.attr_text, None) for n, d in wb.defined_names.items()]
for ws in wb.worksheets:
    names += [name(n, d.attr_text, ws.title) for n, d in ws.defined_names.items()]
payload = {
    "client": "Microsoft Office", "version": xw.__version__,
    "book": {"name": "quadratic.xlsm", "active_sheet_index": 0, "selection": "A1"},
    "sheets": [{"name": ws.title, "pictures": [], "tables": [], "values": values(ws)}
               for ws in wb.worksheets],
    "names": names,
}
book = xw.Book(json=payload)
out = {"engine": book.app.engine.name}
try:
    outcome = xl.act(book, path=path, epochs=200)
    out["outcome"] = outcome.summary()
except Exception as e:
    out["error"] = str(e)
xl.main(book)  # the button's path: this engine sends no formulas, so a message box says so
out["actions"] = book.json()["actions"]
try:
    xl.act(book, sheet="about", path=path)
except Exception as e:
    out["about"] = str(e)
print(json.dumps(out))
"""


def _remote(path) -> dict:
    env = {**os.environ, "XLWINGS_LICENSE_KEY": "noncommercial"}  # this process only
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_remote_engine_gets_the_parameters_excelnet_reports(tmp_path):
    path = build_quadratic(tmp_path / "quadratic.xlsm", macros=True)
    out = _remote(path)
    assert out["engine"] == "remote"
    outcome = out["outcome"]
    fit = outcome["fit"]
    assert outcome["action"] == "Train" and fit["final_loss"] < fit["initial_loss"]
    params = [v for k, v in outcome["params"].items()]
    assert list(outcome["params"]) == ["quadratic!B2", "quadratic!B3", "quadratic!B4"]
    sets = [
        a
        for a in out["actions"]
        if a["func"] == "setValues"
        and a["sheet_position"] == 0
        and (a["start_row"], a["start_column"], a["row_count"], a["column_count"]) == (1, 1, 3, 1)
    ]
    assert sets and sets[-1]["values"] == [[v] for v in params]  # the last write: the fit
    assert any(a["func"] == "addSheet" for a in out["actions"])  # the history sheet
    alerts = [a for a in out["actions"] if a["func"] == "alert"]
    assert len(alerts) == 1 and "does not send formulas" in alerts[0]["args"][0]
    assert out["about"].endswith(  # the one line `excelnet fit` gives
        "sheet about: no Solver model (the sheet-scoped names solver_opt, solver_adj and "
        "solver_typ)"
    )
