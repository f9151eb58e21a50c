"""What excelnet says: each refusal in one line that names the way out, help for every option,
--version, errors of the Python API in Python's words, progress for every phase, and output
into a closed pipe."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

import excelnet
from excelnet import progress as progress_module
from excelnet.cli import _parser, main
from excelnet.errors import ExcelnetError
from excelnet.fitting.options import FitOptions
from excelnet.fitting.pipeline import fit, lr_sweep
from excelnet.progress import Progress, Silent
from tests.conftest import cli, one_line
from tests.handmade import line_fit, solver_names

ROOT = Path(__file__).resolve().parents[1]


def test_learning_rates_that_are_not_finite_are_refused(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    before = book.read_bytes()
    for lr in ("inf", "nan", "-1", "0"):
        code, _, err = cli(capsys, "fit", book, "--lr", lr)
        assert code == 2
        one_line(err, "learning rate must be a positive finite number")
    code, _, err = cli(capsys, "lr-sweep", book, "--sheet", "Model", "--lrs", "0.1,inf")
    assert code == 2
    one_line(err, "learning rates must be positive finite numbers, not inf")
    assert book.read_bytes() == before


def test_builder_numbers_out_of_range(tmp_path, capsys):
    code, _, err = cli(capsys, "build", "quadratic", "--seed", "-1", "-o", tmp_path / "q.xlsx")
    assert code == 2
    one_line(err, "the seed must be a whole number, 0 or more, not -1")
    code, _, err = cli(
        capsys, "build", "titanic", "--passengers", "1000000000", "-o", tmp_path / "t.xlsx"
    )
    assert code == 2
    one_line(err, "passengers must be from 1 to 1,048,571", "1,000,000,000")
    assert list(tmp_path.iterdir()) == []


def test_a_stale_libreoffice_lock_names_its_owner_date_and_the_way_out(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    lock = tmp_path / ".~lock.book.xlsx#"
    lock.write_text(",Jane Doe,jane-laptop,27.11.2026 10:15,file:///home/jane/.config/lo/4;")
    code, _, err = cli(capsys, "fit", book)
    assert code == 2
    one_line(
        err,
        "book.xlsx: open in LibreOffice by Jane Doe on jane-laptop since 27.11.2026 10:15",
        "close it there",
        f"delete {lock}",
    )
    lock.unlink()
    owner = tmp_path / "~$book.xlsx"
    owner.write_bytes(bytes([5]) + b"Ahmed" + b" " * 48)  # Excel's owner file
    code, _, err = cli(capsys, "fit", book, "--out", tmp_path / "copy.xlsx")
    assert code == 2
    one_line(err, "open in Excel by Ahmed since", f"delete {owner}")


def test_an_unknown_sheet_lists_the_sheets_there_are(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    for command in ("fit", "eval"):
        code, _, err = cli(capsys, command, book, "--sheet", "NN")
        assert code == 2
        one_line(err, "no sheet named 'NN' (its sheets: inputs, Model; with a Solver model: Model)")


def test_a_sheet_name_quoted_as_apos_in_the_xml_is_found(tmp_path):
    """LibreOffice stores 'Weekly data'!A2 as &apos;Weekly data&apos;!A2: the search for the
    sheets a model involves must read it as a quote."""
    path = tmp_path / "weekly.xlsx"
    wb = openpyxl.Workbook()
    data = wb.active
    data.title = "Weekly data"
    for i in range(1, 11):
        data.append([i / 10, 2.0 * i / 10 + 1])
    model = wb.create_sheet("model")
    model["A1"], model["A2"] = 0.5, 0.0
    for i in range(1, 11):
        model[f"C{i}"] = f"=$A$1*'Weekly data'!A{i}+$A$2"
    model["D1"] = "=SUMXMY2(C1:C10,'Weekly data'!B1:B10)/10"
    solver_names(wb, "model", "model!$D$1", "model!$A$1:$A$2")
    wb.save(path)
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data_ in items:
            if info.filename == "xl/worksheets/sheet2.xml":
                data_ = data_.replace(b"'Weekly data'!", b"&apos;Weekly data&apos;!")
                assert b"&apos;Weekly data&apos;!" in data_
            z.writestr(info, data_)
    (result,) = fit(path, sheet="model", epochs=500, lr=0.5, history=False)
    assert result.final_loss < 0.01 * result.initial_loss


def test_every_option_of_every_command_has_help(capsys):
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text, (name, option)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"excelnet {excelnet.__version__}"


def test_api_errors_speak_python(tmp_path):
    book = line_fit(tmp_path / "book.xlsx")
    book.chmod(0o444)
    calls = [
        lambda: fit(book, lr=float("inf")),
        lambda: fit(book, epochs=-1),
        lambda: fit(book, sheet="NN"),
        lambda: fit(book),  # read-only
        lambda: lr_sweep(book, "Model", []),
        lambda: lr_sweep(book, "Model", [0.1, -1.0]),
        lambda: excelnet.build_titanic(tmp_path / "t.xlsx", passengers=0),
        lambda: excelnet.build_quadratic(tmp_path / "q.xlsx", seed=-1),
    ]
    for call in calls:
        with pytest.raises(ExcelnetError) as e:
            call()
        assert "--" not in str(e.value), str(e.value)
    with pytest.raises(ExcelnetError, match=r"force=True replaces it"):
        fit(book)


def test_fit_options_are_checked_once_when_made(tmp_path):
    """A fit's knobs in one FitOptions: refused when made (in the command's words where they
    differ), and the API's keywords laid over an options object, one path after that."""
    for knobs, words in [
        ({"lr": 0.0}, "the learning rate must be a positive finite number, not 0"),
        ({"epochs": -1}, "epochs must be a whole number, 0 or more, not -1"),
        ({"method": "sgd"}, "unknown method 'sgd': choose gd, adam, lbfgs, simplex, evolutionary"),
    ]:
        with pytest.raises(ExcelnetError) as e:
            FitOptions(**knobs)
        assert str(e.value) == e.value.command_line == words
    with pytest.raises(ExcelnetError) as e:
        FitOptions(method="lbfgs", lr=0.1)
    assert str(e.value).startswith("lr (a fixed step) is for method gd or adam")
    assert e.value.command_line.startswith("--lr (a fixed step) is for --method gd or adam")
    with pytest.raises(ExcelnetError, match="1 or more, not 0"):
        FitOptions(epochs=0).at_least(1)
    base = FitOptions(epochs=5, method="adam")
    assert FitOptions.of(base, lr=0.1, history=None) == FitOptions(5, 0.1, "adam")
    assert FitOptions.of() == FitOptions() and FitOptions.of(base) is base
    assert FitOptions().chosen_method == "lbfgs" and FitOptions(lr=0.1).chosen_method == "gd"
    book = line_fit(tmp_path / "book.xlsx")
    with pytest.raises(ExcelnetError, match="lbfgs finds its steps itself"):
        fit(book, lr=0.1, options=FitOptions(method="lbfgs"))
    (r,) = fit(book, options=FitOptions(epochs=5, lr=0.5), history=False)
    assert (r.method, r.epochs, r.lr) == ("gd", 5, 0.5)
    assert "history" not in openpyxl.load_workbook(book, read_only=True).sheetnames


class Recorded(Silent):
    """The phases and epochs a command reports."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def phase(self, text: str):
        self.seen.append(text.split()[0])
        return super().phase(text)

    def epochs(self, sheet: str, total: int):
        self.seen.append(f"fitting {sheet}")

        def tick(epoch: int, loss: float) -> None:
            if self.seen[-1] != "tick":
                self.seen.append("tick")

        return tick


def test_every_phase_reports_progress(tmp_path):
    book = line_fit(tmp_path / "book.xlsx")
    recorded = Recorded()
    fit(book, epochs=20, progress=recorded)
    assert recorded.seen == ["reading", "compiling", "choosing", "fitting Model", "tick", "writing"]


def test_plain_progress_lines_when_not_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_module, "PLAIN_DELAY", 0.0)
    monkeypatch.setattr(progress_module, "PLAIN_EVERY", 0.0)
    stream = io.StringIO()
    shown = Progress(stream, live=False)
    with shown.phase("reading book.xlsx"):
        time.sleep(0.2)  # longer than the delay: the line is printed
    tick = shown.epochs("nn", 100)
    tick(50, 0.25)
    tick(100, 0.125)  # the last epoch: the summary follows, not a line
    lines = stream.getvalue().splitlines()
    assert lines[0] == "excelnet: reading book.xlsx …"
    assert lines[1].startswith("excelnet: reading book.xlsx: done in 0.")
    assert lines[2].startswith("excelnet: fitting nn: epoch 50 of 100, loss 0.25")
    assert len(lines) == 3


def test_terminal_progress_draws_and_clears(tmp_path):
    book = line_fit(tmp_path / "book.xlsx")
    stream = io.StringIO()
    fit(book, epochs=50, progress=Progress(stream, live=True))
    assert "Traceback" not in stream.getvalue()


def test_json_into_a_closed_pipe(tmp_path):
    """`excelnet fit --json | head -c 0`: the fit is written; nothing more is said."""
    book = line_fit(tmp_path / "book.xlsx")
    r, w = os.pipe()
    os.close(r)  # the reader has gone before the output comes
    run = subprocess.run(
        [sys.executable, "-m", "excelnet", "fit", book, "--epochs", "5", "--json"],
        stdout=w,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    os.close(w)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "history" in openpyxl.load_workbook(book, read_only=True).sheetnames


def test_running_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    """Past the estimate made before the work: one line, and the workbook as it was."""
    import excelnet.xlsx.read

    book = line_fit(tmp_path / "book.xlsx")
    before = book.read_bytes()

    def scan(*args):
        raise MemoryError

    monkeypatch.setattr(excelnet.xlsx.read, "scan", scan)
    code, _, err = cli(capsys, "fit", book)
    assert code == 2
    one_line(err, "book.xlsx: out of memory; nothing was written")
    assert book.read_bytes() == before


def test_calc_and_predict_refuse_read_only_outputs_unless_forced(tmp_path, capsys):
    from excelnet.data import bundled

    book = line_fit(tmp_path / "book.xlsx")
    book.chmod(0o444)
    before = book.read_bytes()
    code, _, err = cli(capsys, "calc", book)
    assert code == 2
    one_line(err, "book.xlsx: the file is read-only", "(--force replaces it)")
    assert book.read_bytes() == before
    assert cli(capsys, "calc", book, "--force", "-q")[0] == 0
    assert book.read_bytes() != before and book.stat().st_mode & 0o777 == 0o444  # mode kept

    csv = tmp_path / "predictions.csv"
    csv.write_text("old\n")
    csv.chmod(0o444)
    titanic = ROOT / "workbooks" / "titanic.xlsx"
    args = ["predict", titanic, "--sheet", "nn", "--csv", bundled("test.csv"), "-o", csv]
    code, _, err = cli(capsys, *args)
    assert code == 2
    one_line(err, "predictions.csv: the file is read-only", "(--force replaces it)")
    assert csv.read_text() == "old\n"
    assert cli(capsys, *args, "--force", "-q")[0] == 0
    assert csv.read_text().startswith("PassengerId,")


def test_calc_check_and_predict_report_their_phases(tmp_path):
    from excelnet.data import bundled
    from excelnet.predictions import predict
    from excelnet.xlsx.recalc import calc, check

    book = line_fit(tmp_path / "book.xlsx")
    for run, phases in (
        (lambda p: calc(book, progress=p), ["reading", "computing", "writing"]),
        (lambda p: check(book, progress=p), ["reading", "computing"]),
        (
            lambda p: predict(
                ROOT / "workbooks" / "titanic.xlsx",
                "nn",
                bundled("test.csv"),
                tmp_path / "p.csv",
                progress=p,
            ),
            ["reading", "computing", "writing"],
        ),
    ):
        recorded = Recorded()
        run(recorded)
        assert recorded.seen == phases
