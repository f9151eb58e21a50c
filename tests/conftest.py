"""Shared fixtures. LibreOffice is the oracle: with CI=true a missing soffice fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from excelnet.xlsx.soffice import convert, soffice


@pytest.fixture(scope="session")
def recalc(tmp_path_factory):
    """recalc([paths]) -> LibreOffice's recalculated copies (one soffice start for all)."""
    if soffice() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("LibreOffice (soffice) is required when CI=true")
        pytest.skip("LibreOffice (soffice) not installed")
    counter = iter(range(1_000_000))

    def run(paths: list[Path]) -> list[Path]:
        return convert(list(paths), tmp_path_factory.mktemp(f"lo{next(counter)}"))

    return run


@pytest.fixture(scope="session")
def titanic_book(tmp_path_factory) -> Path:
    """A freshly built Titanic workbook (copy it before changing it)."""
    import excelnet

    return excelnet.build_titanic(tmp_path_factory.mktemp("book") / "titanic.xlsx")


def run_cli(*args: str, cwd: Path | None = None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "excelnet", *map(str, args)], cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    """A headless LibreOffice listening on a UNO socket, one per test module: its connection
    string, for excelnet.live.uno_engine.open_book(…, connect=…)."""
    import signal
    import socket
    import subprocess
    import time

    from excelnet.errors import ExcelnetError
    from excelnet.live.uno_engine import uno_python

    try:
        if soffice() is None:
            raise ExcelnetError("LibreOffice (soffice) is not installed")
        uno_python()
    except ExcelnetError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"live LibreOffice tests need it when CI=true: {e}")
        pytest.skip(str(e))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = tmp_path_factory.mktemp("lo-profile")
    process = subprocess.Popen(
        [
            soffice(),
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--nologo",
            f"--accept=socket,host=127.0.0.1,port={port};urp;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # soffice starts children: stop the whole group at the end
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("LibreOffice did not start listening on its UNO socket")
            time.sleep(0.2)
    yield f"socket,host=127.0.0.1,port={port}"
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


# -- plain helpers shared by several test modules (import them: from tests.conftest import …) --


def cli(capsys, *args) -> tuple[int, str, str]:
    """excelnet in this process (the same code as the command, without a new interpreter's
    second of imports): exit code, stdout, stderr."""
    from excelnet.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def same_value(a, b, rel: float = 1e-12, abs: float = 0.0) -> bool:
    """Whether a cell's value `a` is `b`: numbers within `rel` (and `abs`), anything else —
    text, booleans, errors, empty — exactly (pytest.approx with a tolerance refuses text)."""
    import pytest

    if isinstance(b, (int, float)) and not isinstance(b, bool):
        return a == pytest.approx(b, rel=rel, abs=abs)
    return a == b


def one_line(err: str, *words: str) -> str:
    """stderr is one line, no traceback, holding each of the words: that line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def model_params(ws, model: str):
    """The parameters of a Titanic model sheet (linear, nn, mmult), as the builder lays them
    out: the weights' rows from B2, or mmult's 10×2 block at M6:N15."""
    import numpy as np

    if model == "mmult":
        return np.array([[ws.cell(r, c).value for c in (13, 14)] for r in range(6, 16)])
    rows = 1 if model == "linear" else 2
    return np.array([[ws.cell(2 + i, c).value for c in range(2, 12)] for i in range(rows)])


def items(v) -> list:
    """A value's cells as a flat list (n, then row, then column)."""
    return [
        v.item(n, i, j)
        for n in range(v.shape[0])
        for i in range(v.shape[1])
        for j in range(v.shape[2])
    ]


def formula_model(folder: Path, formula: str, p: float, q: float, data: dict):
    """=formula at P, Q (t!A1, t!B1) compiled as a Solver model, sheet d holding data (the
    layout of check_formulas)."""
    import openpyxl
    import torch

    from excelnet.formula.book import SolverModel
    from excelnet.formula.model import Model
    from excelnet.formula.parse import Ref
    from excelnet.formula.values import Ctx
    from excelnet.xlsx.read import read_book

    folder.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    t, d = wb.active, wb.create_sheet("d")
    t.title = "t"
    for col, values in data.items():
        for i, v in enumerate(values, start=1):
            d[f"{col}{i}"] = v
    t["A1"], t["B1"] = p, q
    t["C1"] = "=" + formula.replace("{PQ}", "A1:B1").replace("{P}", "A1").replace("{Q}", "B1")
    wb.save(folder / "book.xlsx")
    solver = SolverModel("t", Ref("t", 0, 2, 0, 2), [Ref("t", 0, 0, 0, 1)], 2)
    model = Model(read_book(folder / "book.xlsx"), solver, Ctx(torch.device("cpu")))
    model.compile()
    return model


def forbid_device_syncs(monkeypatch) -> None:
    """From here on (until monkeypatch undoes it), reading a tensor's value back to Python — a
    device sync while training — fails the test."""
    import torch

    def sync(*args, **kwargs):
        raise AssertionError("a device sync while training")

    for method in ("cpu", "numpy", "item", "tolist", "__bool__", "__int__", "__float__"):
        monkeypatch.setattr(torch.Tensor, method, sync)


def calc_formulas(tmp_path: Path, cells: dict[str, object]) -> dict[str, object]:
    """A one-sheet workbook of the given cells, recalculated by excelnet: each formula cell's
    value, by its reference."""
    import openpyxl

    from excelnet.formula.calculation import Calculation
    from excelnet.xlsx.read import read_book

    wb = openpyxl.Workbook()
    ws = wb.active
    for ref, value in cells.items():
        ws[ref] = value
    path = tmp_path / "rules.xlsx"
    wb.save(path)
    calc = Calculation(read_book(path))
    assert not calc.failures, [(f.where, f.reason) for f in calc.failures]
    name = ws.title
    return {
        ref: calc.values[(name, c.row - 1, c.column - 1)]
        for ref in cells
        if isinstance(cells[ref], str) and cells[ref].startswith("=")
        for c in [ws[ref]]
    }
