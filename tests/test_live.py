"""excelnet.live.xl on a live spreadsheet: a workbook open in headless LibreOffice (one per module,
with a UNO socket), driven through the xlwings engine over UNO, as the Train button and
`excelnet live` drive it. LibreOffice's own values of the open document are the oracle."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from excelnet.errors import ExcelnetError, WorkbookGone
from excelnet.fitting.history import SUFFIXES
from excelnet.fitting.pipeline import evaluate
from excelnet.live import xl
from excelnet.writer.lessons import build_quadratic
from excelnet.xlsx.read import read_book
from tests.conftest import run_cli

pytest.importorskip("xlwings")
from excelnet.live.source import read_live  # noqa: E402
from excelnet.live.uno_engine import Helper, open_book  # noqa: E402

# a function Excel has and excelnet does not compute (LibreOffice does)
LACKED = "_xlfn.FORECAST.ETS(6,{1;2;3;4;5},{1;2;3;4;5})"


@pytest.fixture
def live(office):
    """open(path) → the document open in the module's LibreOffice, as an xlwings Book; each
    is closed (unsaved) after the test."""
    opened = []

    def open_(path: Path):
        book = open_book(path, connect=office, headless=True)
        opened.append(book)
        return book

    yield open_
    for book in opened:
        try:
            book.close()
        except ExcelnetError:
            pass


@pytest.fixture
def writes(monkeypatch):
    """Every write the adapter sends to LibreOffice: (sheet, [r0, c0, r1, c1])."""
    seen = []
    call = Helper.__call__

    def spy(self, op, **args):
        if op == "write":
            seen.append((args["sheet"], args["area"]))
        return call(self, op, **args)

    monkeypatch.setattr(Helper, "__call__", spy)
    return seen


@pytest.fixture
def quadratic(tmp_path) -> Path:
    return build_quadratic(tmp_path / "quadratic.xlsm", macros=True)


def test_the_live_workbook_reads_as_the_file_does(live, titanic_book):
    book = live(titanic_book)  # names, formulas copied down, an array formula, other sheets
    from_file = read_book(titanic_book)
    from_live = read_live(book)
    assert from_live.names == from_file.names
    assert list(from_live.sheets) == list(from_file.sheets)
    for name, sheet in from_file.sheets.items():
        live_sheet = from_live.sheets[name]
        # formulas, arrays, values, names, extent
        plain = [dataclasses.replace(s, cached={}) for s in (live_sheet, sheet)]
        assert plain[0] == plain[1], name
        # what LibreOffice shows for the formula cells stands for the values the file stores
        stored = from_file.stored(name)
        assert live_sheet.cached.keys() == stored.keys(), name
        assert list(live_sheet.cached.values()) == pytest.approx(
            [stored[k] for k in live_sheet.cached], rel=1e-9, abs=1e-12
        ), name


def test_train_writes_the_parameters_and_libreoffice_does_the_rest(
    live, writes, titanic_book, tmp_path
):
    path = tmp_path / "titanic.xlsx"
    shutil.copy(titanic_book, path)
    saved = path.read_bytes()
    book = live(path)
    ws = book.sheets["nn"]
    start = ws["M2"].value
    outcome = xl.act(book, sheet="nn", epochs=300, compiled=False, every=0.01)

    loss = ws["M2"].value  # LibreOffice's own value of the loss cell, in the open document
    assert loss == pytest.approx(outcome.fit.final_loss, rel=1e-9, abs=1e-12)
    assert outcome.fit.initial_loss == pytest.approx(start, rel=1e-9)
    assert loss < start
    # excelnet wrote the parameters (all of them each time) and the history sheet, nothing
    # else: the predictions and the losses are LibreOffice's recalculation
    assert {s for s, _ in writes} == {"nn", "history"}
    assert {tuple(a) for s, a in writes if s == "nn"} == {(1, 1, 2, 10)}
    assert len([s for s, _ in writes if s == "nn"]) > 1  # while it trained, and at the end
    assert ws["F6"].formula == "=D6+E6"  # a prediction: a formula, as it was
    fitted = [v for row in ws["B2:K3"].value for v in row]
    assert fitted == list(outcome.params.values())
    book.app.calculate()  # a full recalculation of every cell changes nothing
    assert ws["M2"].value == loss
    history = book.sheets["history"]
    assert history.range((1, 1), (1, len(SUFFIXES))).value == [f"nn {s}" for s in SUFFIXES]
    assert len(history.used_range.value) == len(outcome.fit.history) + 1
    assert path.read_bytes() == saved  # the file itself is untouched


def test_train_runs_the_lessons_gd_unless_told_a_method(live, quadratic):
    """The button trains as the about sheet says (gd at lr 0.1); `excelnet live --method`
    picks another method, as `excelnet fit` does."""
    book = live(quadratic)
    ws = book.sheets["quadratic"]
    button = xl.act(book, sheet="quadratic", epochs=50, compiled=False)
    assert (button.fit.method, button.fit.lr) == ("gd", 0.1) and "(gd, lr 0.1," in button.message
    before = ws["B7"].value
    lbfgs = xl.act(book, sheet="quadratic", method="lbfgs", compiled=False)
    assert lbfgs.fit.method == "lbfgs" and lbfgs.fit.lr is None and "(lbfgs, " in lbfgs.message
    assert ws["B7"].value == pytest.approx(lbfgs.fit.final_loss, rel=1e-9)
    assert ws["B7"].value < before
    with pytest.raises(ExcelnetError, match="lbfgs finds its steps itself"):
        xl.act(book, sheet="quadratic", method="lbfgs", lr=0.1)


def test_the_action_cell_picks_train_reset_or_evaluate(live, quadratic):
    book = live(quadratic)
    ws = book.sheets["quadratic"]
    start = ws["B2:B4"].value

    ws["E7"].value = "Evaluate"  # the gradients at the current parameters, nothing else
    outcome = xl.main(book)
    assert outcome.action == "Evaluate" and not outcome.notes
    want = evaluate(quadratic, write=False)[0]
    assert ws["C2:C4"].value == pytest.approx(list(want.gradients.values()), rel=1e-12)
    assert ws["B7"].value == pytest.approx(want.objective, rel=1e-12)
    assert ws["B2:B4"].value == start

    ws["E7"].value = "reset"
    ws["E8"].value = 7
    outcome = xl.main(book)
    assert outcome.action == "Reset"
    drawn = np.random.default_rng(7).uniform(-0.5, 0.5, 3).tolist()
    assert ws["B2:B4"].value == drawn
    assert ws["B7"].value != pytest.approx(want.objective)

    ws["E7"].value = "Train"
    before = ws["B7"].value
    outcome = xl.main(book)
    assert outcome.fit.initial_loss == pytest.approx(before, rel=1e-12)
    assert ws["B7"].value == pytest.approx(outcome.fit.final_loss, rel=1e-9)
    assert ws["B7"].value < before

    for typed, note in ((None, "is empty: trained"), ("Fly", "holds 'Fly', not Train")):
        ws["E7"].value = typed
        outcome = xl.main(book)
        assert outcome.action == "Train"
        assert note in outcome.notes[0] and "quadratic!E7" in outcome.notes[0]
        assert note in book.app.impl.alerts[-1]


def _fit_error(path: Path, sheet: str | None = None) -> str:
    """The one line `excelnet fit` and `eval` print for the file (their reader and compiler)."""
    with pytest.raises(ExcelnetError) as e:
        evaluate(path, sheet=sheet, write=False)
    return str(e.value)


def test_bad_sheets_get_the_message_fit_gives(live, quadratic, tmp_path):
    book = live(quadratic)
    book.sheets["about"].activate()  # the button pressed on a sheet with no Solver model
    assert xl.main(book) is None
    message = book.app.impl.alerts[-1]
    assert message == _fit_error(Path(book.fullname), "about")
    assert "sheet about: no Solver model" in message

    wb = openpyxl.load_workbook(quadratic, keep_vba=True)
    wb["quadratic"]["C11"] = f"={LACKED}/{LACKED}*$B$2*A11^2+$B$3*A11+$B$4"
    odd = tmp_path / "odd.xlsm"
    wb.save(odd)
    book = live(odd)
    assert xl.main(book) is None
    message = book.app.impl.alerts[-1]
    assert message == _fit_error(Path(book.fullname))
    assert "FORECAST.ETS" in message and "\n" not in message


def test_a_cell_excelnet_does_not_compute_keeps_the_value_the_sheet_shows(
    live, quadratic, tmp_path
):
    wb = openpyxl.load_workbook(quadratic, keep_vba=True)
    y = wb["quadratic"]["B11"].value
    wb["quadratic"]["B11"] = f"={LACKED}/{LACKED}*{y!r}"  # through a function excelnet lacks
    odd = tmp_path / "odd.xlsm"
    wb.save(odd)  # no value stored with B11: LibreOffice's is the only one
    book = live(odd)
    book.app.calculate()
    ws = book.sheets["quadratic"]
    before = ws["B7"].value
    outcome = xl.main(book)
    assert outcome.action == "Train"
    assert outcome.fit.initial_loss == pytest.approx(before, rel=1e-12)
    assert ws["B7"].value == pytest.approx(outcome.fit.final_loss, rel=1e-9)
    assert ws["B7"].value < before
    (note,) = outcome.notes  # the warning `fit` prints, in the message box
    assert "quadratic!B11 (FORECAST.ETS)" in note and note in book.app.impl.alerts[-1]


def test_a_workbook_closed_mid_fit_stops_it_with_one_line(live, office, quadratic):
    saved = quadratic.read_bytes()
    book = live(quadratic)

    def close():  # another connection closes the document, as a user would
        open_book(quadratic, connect=office, headless=True).close()

    timer = threading.Timer(1.5, close)
    timer.start()
    try:
        with pytest.raises(WorkbookGone) as e:
            xl.act(book, epochs=10_000_000, every=0.05, compiled=False)
    finally:
        timer.cancel()
    message = str(e.value)
    assert "sheet quadratic: while training" in message and "\n" not in message
    assert "the file is unchanged" in message
    assert quadratic.read_bytes() == saved


def test_libreoffice_gone_mid_fit_stops_it_with_one_line(quadratic):
    book = open_book(quadratic, headless=True)  # a LibreOffice of its own, to be killed
    timer = threading.Timer(1.5, os.killpg, (book.app.pid, signal.SIGKILL))
    timer.start()
    try:
        with pytest.raises(WorkbookGone) as e:
            xl.act(book, epochs=10_000_000, every=0.05, compiled=False)
    finally:
        timer.cancel()
        try:
            book.close()
        except ExcelnetError:
            pass
    assert "while training" in str(e.value) and "\n" not in str(e.value)


def test_excelnet_live_trains_the_open_document(office, live, titanic_book, tmp_path):
    path = tmp_path / "titanic.xlsx"
    shutil.copy(titanic_book, path)
    args = ("--sheet", "nn", "--epochs", "200", "--engine", "eager", "--json")
    args += ("--connect", office, "--headless")
    r = run_cli("live", path, *args)
    assert r.returncode == 0, r.stderr
    (outcome,) = json.loads(r.stdout)["live"]
    fit = outcome["fit"]
    assert fit["final_loss"] < fit["initial_loss"]
    book = live(path)  # still open in LibreOffice, trained, unsaved
    assert book.sheets["nn"]["M2"].value == pytest.approx(fit["final_loss"], rel=1e-9)
    assert book.sheets["nn"]["B2:K3"].value == [
        [outcome["params"][f"nn!{c}{r}"] for c in "BCDEFGHIJK"] for r in (2, 3)
    ]

    r = run_cli("live", tmp_path / "missing.xlsx")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no such file" in r.stderr


def _processes_naming(text: str) -> list[str]:
    """The command lines of running processes that name `text` (a folder)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(f"{pid}: {line}")
    return found


@pytest.mark.parametrize("when", ["starting", "training"])
def test_ctrl_c_on_live_leaves_no_libreoffice_profile_or_lock(quadratic, tmp_path, when):
    """Ctrl-C on `excelnet live` left LibreOffice running, its profile folder and the
    document's lock file behind (the next fit refused), with a traceback from the bridge.
    Now: one line, and nothing left, whether LibreOffice was starting or training."""
    import subprocess
    import sys
    import time

    temp = tmp_path / "temp"  # LibreOffice's profile goes under TMPDIR
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    lock = quadratic.parent / f".~lock.{quadratic.name}#"
    run = subprocess.Popen(
        [sys.executable, "-m", "excelnet", "live", str(quadratic), "--epochs", "100000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    deadline = time.monotonic() + 120
    if when == "starting":
        while not any(temp.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # training
    assert run.poll() is None, run.communicate()
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: to the terminal's foreground process group
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.strip() == "excelnet: interrupted", err
    time.sleep(1)
    assert _processes_naming(str(temp)) == []
    assert list(temp.iterdir()) == []
    assert not lock.exists()
    r = run_cli("fit", quadratic, "--epochs", "2", "-q")
    assert r.returncode == 0, r.stderr
