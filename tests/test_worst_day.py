"""A user's worst day: input that would corrupt or lose a file, hang, eat the memory, or end in
a traceback. Each case ends in a file that Excel, LibreOffice, openpyxl and excelnet read back,
or in one line, exit code 2 and the file as it was."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import cli, one_line


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def well_formed(book: Path) -> None:
    """Every XML part of the zip parses."""
    from xml.parsers import expat

    with zipfile.ZipFile(book) as z:
        for name in z.namelist():
            if name.endswith((".xml", ".rels")):
                expat.ParserCreate().Parse(z.read(name), True)


def table_csv(path: Path, rows: int = 40, category=("x\x01y", "z", "w")) -> Path:
    lines = ["a,b,cat,y"]
    for i in range(rows):
        lines.append(f"{i},{(i * 37 % 11) / 10},{category[i % len(category)]},{i % 2}")
    path.write_text("\n".join(lines) + "\n")
    return path


# -- never a file excelnet cannot read back ---------------------------------------------------


def test_a_control_character_in_a_category_is_escaped_as_excel_does(tmp_path, capsys, recalc):
    """U+0001 in a category value: the features sheet was not well-formed XML (LibreOffice
    opened it empty). Now every part parses, LibreOffice computes the dummy column as excelnet
    does, and openpyxl reads the value back as written."""
    from excelnet.xlsx.recalc import check

    book = tmp_path / "ctl.xlsx"
    code, _, err = cli(
        capsys, "build", "table", "--csv", table_csv(tmp_path / "ctl.csv"), "--target", "y",
        "-o", book,
    )  # fmt: skip
    assert code == 0, err
    well_formed(book)
    data = openpyxl.load_workbook(book)["data"]
    assert "x_x0001_y" in {data.cell(r, 3).value for r in range(2, 5)}  # openpyxl: as stored
    reports = check(book)
    assert {r.sheet for r in reports} >= {"features", "linear"}
    assert all(r.computed == r.equal == r.formula_cells for r in reports), reports
    (lo,) = recalc([book])
    features = openpyxl.load_workbook(lo, data_only=True)["features"]
    header = [c.value for c in features[1]]
    dummy = next(i for i, h in enumerate(header) if h and h.startswith("cat_x"))
    got = [features.cell(r, dummy + 1).value for r in range(2, 8)]
    assert got == [1, 0, 0, 1, 0, 0], got  # rows 0 and 3 hold "x\x01y"


def test_a_table_wider_than_a_sheet_is_refused_before_anything_is_written(tmp_path, capsys):
    """17,000 columns: references past XFD, data dropped, every model cell #NAME?; now one
    line, at once."""
    import time

    csv = tmp_path / "wide.csv"
    header = ",".join(f"c{i}" for i in range(17_000))
    csv.write_text(header + ",y\n" + ",".join(["1"] * 17_001) + "\n" + ",".join(["2"] * 17_001))
    start = time.monotonic()
    code, out, err = cli(
        capsys, "build", "table", "--csv", csv, "--target", "y", "-o", tmp_path / "w.xlsx", "-q"
    )
    assert code == 2 and out == ""
    one_line(err, "wide.csv", "17,001 columns", "16,384")
    assert time.monotonic() - start < 20
    assert not (tmp_path / "w.xlsx").exists()


def test_features_wider_than_a_sheet_are_refused(tmp_path, capsys):
    """Fewer than 16,384 CSV columns, but more features than a model sheet holds."""
    csv = tmp_path / "wide.csv"
    n = 8_200
    rows = [",".join(f"c{i}" for i in range(n)) + ",y"]
    for r in range(4):
        rows.append(",".join(["a", "b", "c"][(r + i) % 3] for i in range(n)) + f",{r % 2}")
    csv.write_text("\n".join(rows) + "\n")
    code, out, err = cli(
        capsys, "build", "table", "--csv", csv, "--target", "y", "-o", tmp_path / "w.xlsx", "-q"
    )
    assert code == 2 and out == ""
    one_line(err, "wide.csv", "columns", "16,384 (A to XFD)", "features")
    assert not (tmp_path / "w.xlsx").exists()


def test_a_text_longer_than_a_cell_holds_is_refused(tmp_path, capsys):
    csv = tmp_path / "long.csv"
    csv.write_text("a,b,y\n1,short,0\n2," + "x" * 40_000 + ",1\n3,s,0\n")
    code, out, err = cli(
        capsys, "build", "table", "--csv", csv, "--target", "y", "-o", tmp_path / "l.xlsx", "-q"
    )
    assert code == 2 and out == ""
    one_line(err, "long.csv", "40,000 characters", "32,767")
    assert not (tmp_path / "l.xlsx").exists()


def test_building_over_a_fitted_workbook_is_refused_without_force(tmp_path, capsys):
    book = tmp_path / "titanic.xlsx"
    assert cli(capsys, "build", "titanic", "-o", book)[0] == 0
    assert cli(capsys, "fit", book, "--sheet", "linear", "--epochs", 3)[0] == 0
    fitted = md5(book)
    code, out, err = cli(capsys, "build", "titanic", "-o", book)
    assert code == 2 and out == ""
    one_line(err, "titanic.xlsx: already exists", "--force")
    assert md5(book) == fitted
    code, _, err = cli(capsys, "build", "titanic", "-o", book, "--force")
    assert code == 0, err
    assert md5(book) != fitted
    assert "history" not in openpyxl.load_workbook(book, read_only=True).sheetnames


def test_the_api_refuses_to_build_over_a_workbook_in_its_words(tmp_path):
    import excelnet
    from excelnet.errors import ExcelnetError

    book = excelnet.build_quadratic(tmp_path / "q.xlsx")
    with pytest.raises(ExcelnetError, match="already exists.*force=True"):
        excelnet.build_quadratic(book)
    excelnet.build_quadratic(book, force=True)


# -- bounded: no waits on itself, no unbounded memory -----------------------------------------


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_an_output_that_is_the_workbook_under_another_name_does_not_wait_on_itself(tmp_path, link):
    """fit o.xlsx --out link.xlsx, and calc -o link.xlsx, where the link is o.xlsx: one file,
    one lock (it waited forever on its own)."""
    import os
    import subprocess
    import sys

    from tests.handmade import line_fit

    book = line_fit(tmp_path / "o.xlsx")
    other = tmp_path / "link.xlsx"
    (os.symlink if link == "symbolic" else os.link)(book, other)
    for args in (["fit", book, "--out", other, "--epochs", 2], ["calc", book, "-o", other]):
        run = subprocess.run(
            [sys.executable, "-m", "excelnet", *map(str, args), "-q"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert run.returncode == 0, run.stderr
    openpyxl.load_workbook(other)


# -- a full disk: one line, exit 2, the file as it was ----------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(kilobytes) -> a folder on a file system of that size (a tmpfs: root only)."""
    import subprocess

    mounted = []

    def mount(kb: int) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        run = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kb}k", "tmpfs", str(folder)],
            capture_output=True,
        )
        if run.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {run.stderr.decode().strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_full_disk_is_one_line_and_the_file_stays(tmp_path, small_disk, capsys, titanic_book):
    """No space left on device while fit, calc, predict --workbook and build write: one line,
    exit 2, the workbook as it was and no temporary file left."""
    import shutil

    size = titanic_book.stat().st_size
    disk = small_disk(size // 1024 + 48)  # the workbook fits; a second copy does not
    book = disk / "t.xlsx"
    shutil.copy(titanic_book, book)
    before = md5(book)
    csv = Path(__file__).resolve().parents[1] / "excelnet" / "data" / "test.csv"
    for args in (
        ["fit", book, "--sheet", "linear", "--epochs", 2],
        ["calc", book],
        [
            "predict",
            book,
            "--sheet",
            "nn",
            "--csv",
            csv,
            "-o",
            tmp_path / "p.csv",
            "--workbook",
            disk / "p.xlsx",
        ],
        ["build", "titanic", "-o", disk / "new.xlsx"],
    ):
        code, _, err = cli(capsys, *args, "-q")
        assert code == 2, (args, err)
        one_line(err, "no space left on device")
        assert md5(book) == before
        assert sorted(p.name for p in disk.iterdir()) == ["t.xlsx"], list(disk.iterdir())


def test_a_failing_write_anywhere_is_one_line(tmp_path, capsys, monkeypatch):
    """The same without a small disk: the flush to disk fails (as it does on a full disk)."""
    import errno
    import os

    from tests.handmade import line_fit

    book = line_fit(tmp_path / "book.xlsx")
    before = md5(book)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    for args in (
        ["fit", book, "--epochs", 2],
        ["calc", book],
        ["build", "quadratic", "-o", tmp_path / "q.xlsx"],
    ):
        code, _, err = cli(capsys, *args, "-q")
        assert code == 2, (args, err)
        one_line(err, "cannot write it: no space left on device")
        assert md5(book) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"]


# -- text no encoding holds: escaped where excelnet writes a workbook, else one line ------------


def test_a_lone_surrogate_is_written_as_excel_escapes_it(tmp_path, capsys, recalc):
    """=LEFT("😀",1) gives half of a character: calc and fit wrote it as UTF-8, which cannot
    hold it (a traceback, and the fit's training lost). Now it is stored as _xD83D_, and read
    back as the same half."""
    from excelnet.xlsx.read import read_book
    from tests.handmade import line_fit

    book = line_fit(tmp_path / "sur.xlsx")
    wb = openpyxl.load_workbook(book)
    wb["Model"]["G1"] = '=LEFT("😀",1)'
    wb["Model"]["G2"] = '=IF(C3>0,LEFT("😀",1),"no")&CHAR(1)'  # on the fit's path
    wb.save(book)
    for args in (["calc", book], ["fit", book, "--epochs", 3]):
        code, _, err = cli(capsys, *args, "-q")
        assert code == 0, err
        well_formed(book)
        cached = read_book(book, cached=True).sheets["Model"].cached
        assert cached[(0, 6)] == "\ud83d" and cached[(1, 6)] == "\ud83d\x01"
    code, out, _ = cli(capsys, "check", book)
    assert code == 0 and "0 different" in out
    (lo,) = recalc([book])
    assert openpyxl.load_workbook(lo, data_only=True)["Model"]["C7"].value is not None


def test_text_a_csv_cannot_hold_is_one_line(tmp_path, capsys, monkeypatch, titanic_book):
    """Where no escape exists (a CSV is UTF-8), one line and nothing written."""
    import excelnet.predictions as predictions

    monkeypatch.setattr(predictions, "_csv_text", lambda frame, header=True: "x\ud83d\n")
    csv = Path(__file__).resolve().parents[1] / "excelnet" / "data" / "test.csv"
    out = tmp_path / "p.csv"
    code, _, err = cli(capsys, "predict", titanic_book, "--sheet", "nn", "--csv", csv, "-o", out)
    assert code == 2
    one_line(err, "'\\ud83d'", "utf-8 cannot hold", "nothing was written")
    assert list(tmp_path.iterdir()) == []


def _with_shared_strings(book: Path, out: Path, strings: int) -> Path:
    """A copy of `book` whose shared-string table holds `strings` more empty strings."""
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/sharedStrings.xml":
                data = data.replace(b"</sst>", b"<si><t/></si>" * strings + b"</sst>")
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return out


def test_millions_of_empty_shared_strings_are_refused_at_once(tmp_path, capsys):
    """10M near-empty shared strings in a file of a few hundred KB took 89 s and 1.2 GB."""
    import time

    from excelnet.writer.lessons import build_quadratic

    book = build_quadratic(tmp_path / "book.xlsx")
    bomb = _with_shared_strings(book, tmp_path / "bomb.xlsx", 10_000_000)
    assert bomb.stat().st_size < 1_000_000
    before = md5(bomb)
    for command in ("fit", "calc", "check"):
        start = time.monotonic()
        code, _, err = cli(capsys, command, bomb, "-q")
        assert code == 2
        one_line(err, "bomb.xlsx", "10,000,0", "shared-string", "damaged or crafted")
        assert time.monotonic() - start < 15
    assert md5(bomb) == before


def test_shared_strings_are_read_and_unescaped(tmp_path):
    """A few more strings than cells is fine (Excel keeps none unused, others may); and
    _xHHHH_ is the character, _x005F_xHHHH_ the text itself."""
    from excelnet.xlsx.strings import parse

    assert parse(
        b'<sst xmlns="x"><si><t>a_x0001_b</t></si><si><t/></si><si/>'
        b'<si><r><t xml:space="preserve">R&amp;</t></r><r><rPr><b/></rPr><t>D</t></r>'
        b"<rPh><t>ignored</t></rPh></si><si><t>_x005F_x0041_</t></si></sst>"
    ) == ["a\x01b", "", "", "R&D", "_x0041_"]
    from excelnet.writer.lessons import build_quadratic

    book = build_quadratic(tmp_path / "book.xlsx")
    few = _with_shared_strings(book, tmp_path / "few.xlsx", 1000)
    from excelnet.xlsx.read import read_book

    read_book(few)


def limited(args: list, gigabytes: float, cwd: Path | None = None, **kwargs):
    """excelnet in a subprocess whose address space is capped (RLIMIT_AS)."""
    import os
    import resource
    import subprocess
    import sys

    cap = int(gigabytes * (1 << 30))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "excelnet", *map(str, args)],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        **kwargs,
    )


@pytest.mark.parametrize("case", ["rows", "bytes", "cells"])
def test_a_csv_too_large_is_refused_within_a_memory_budget(tmp_path, case):
    """build table read a whole 1 GB CSV before refusing it (22.5 GB, then killed). Now, in
    2 GB of address space: too many rows, refused as the stream passes the limit; a file too
    large for the memory, before it is read; a table whose workbook would not fit, before
    anything is written."""
    csv = tmp_path / "big.csv"
    if case == "bytes":
        with open(csv, "wb") as f:
            f.truncate(1 << 30)  # sparse: refused by its size alone
        words = ["big.csv", "1.07 GB", "GB of memory", "is available"]
    else:
        rows = 1_048_600 if case == "rows" else 600_000
        with open(csv, "w") as f:
            f.write("a,b,y\n")
            f.writelines(f"{i % 7},{i % 5 / 4},{i % 2}\n" for i in range(rows))
        words = (
            ["big.csv", "more than 1,048,571 rows", "a workbook holds at most"]
            if case == "rows"
            else ["big.csv", "600,000 rows", "GB of memory to build"]
        )
    out = tmp_path / "big.xlsx"
    run = limited(["build", "table", "--csv", csv, "--target", "y", "-o", out, "-q"], 2)
    assert run.returncode == 2, run.stderr
    one_line(run.stderr, *words)
    assert not out.exists()


def test_predict_takes_any_number_of_rows_in_bounded_memory(tmp_path):
    """predict took ~9 KB a row (2M rows: past 13 GB). Now a chunk at a time: 300,000 rows in
    1.3 GB of address space (the interpreter, torch and the workbook take about 0.9 GB, and
    every row at once 3.5 KB a row more: 2 GB)."""
    small = tmp_path / "small.csv"
    small.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 5 / 4},{i % 2}\n" for i in range(200)))
    book = tmp_path / "small.xlsx"
    assert (
        limited(["build", "table", "--csv", small, "--target", "y", "-o", book, "-q"], 4).returncode
        == 0
    )
    rows = 300_000
    new = tmp_path / "new.csv"
    new.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 5 / 4},{i % 2}\n" for i in range(rows)))
    out = tmp_path / "p.csv"
    run = limited(["predict", book, "--sheet", "nn", "--csv", new, "-o", out, "-q"], 1.3)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"wrote {out} ({rows:,} rows)\n"
    import pandas as pd

    got = pd.read_csv(out)
    assert len(got) == rows and got["Prediction"].notna().all()
    assert got["Prediction"][70] == pytest.approx(got["Prediction"][0], abs=1e-12)  # same row


def test_predictions_in_chunks_equal_predictions_at_once(monkeypatch, titanic_book, tmp_path):
    import excelnet.predictions as predictions

    csv = Path(__file__).resolve().parents[1] / "excelnet" / "data" / "test.csv"
    whole = predictions.predict(titanic_book, "nn", csv, out=tmp_path / "a.csv")
    monkeypatch.setattr(predictions, "CHUNK_ROWS", (7, 7))
    parts = predictions.predict(titanic_book, "nn", csv, out=tmp_path / "b.csv", kaggle=False)
    assert whole.equals(parts)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    kaggle = predictions.predict(titanic_book, "nn", csv, kaggle=True)
    assert len(kaggle) == 418 and set(kaggle["Survived"]) <= {0, 1}


# -- words that say what happened ---------------------------------------------------------------

INDEPENDENT = {
    "indirect": ('=INDIRECT("A1")^2+1', None),  # followed: it trains
    "offset": ("=OFFSET(B1,0,-1)^2+1", None),
    "external": ("=[1]Sheet1!A1+A1^2", "[1]Sheet1: another workbook's sheet"),
    "external_typed": ("='[other.xlsx]Sheet1'!$A$1^2", "refers to another workbook"),
    "structured": ("=SUM(Table1[x])^2", "no table named Table1"),
    "long": ("=" + "+".join(["0"] * 5000) + "+A1^2", "10,004 characters long; Excel allows 8,192"),
    "nested": ("=" + "(" * 120 + "A1" + ")" * 120 + "^2", "nests 120 levels deep"),
    "constant": ("=5", "the objective does not depend on the adjustable cells"),
}


@pytest.mark.parametrize("case", list(INDEPENDENT))
def test_an_objective_that_looks_independent_says_why(tmp_path, capsys, case):
    """'The objective does not depend on the adjustable cells' when in Excel it does: the
    reason is named (the formula excelnet cannot read or follow, and its cell); OFFSET and
    INDIRECT are followed."""
    from tests.handmade import solver_names

    formula, why = INDEPENDENT[case]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "m"
    ws["A1"], ws["B1"], ws["C1"] = 1.0, 0.0, formula
    solver_names(wb, "m", "m!$C$1", "m!$A$1")
    book = tmp_path / "b.xlsx"
    wb.save(book)
    code, _, err = cli(capsys, "fit", book, "--epochs", 2, "-q")
    if why is None:
        assert code == 0, err
        return
    assert code == 2
    line = one_line(err, "sheet m, cell C1: ", why)
    if case != "constant":
        assert "the objective (m!C1) depends on this cell" in line, line


def test_a_long_category_value_is_named_as_the_reason_it_is_left_out(tmp_path):
    from excelnet.data import read_csv
    from excelnet.writer.recipe import choose_rules, typed

    csv = tmp_path / "t.csv"
    long = "x" * 300
    csv.write_text(
        "a,note,y\n" + "".join(f"{i},{[long, 's', 't'][i % 3]},{i % 2}\n" for i in range(9))
    )
    table = read_csv(csv)
    (note,) = [
        r.note for r in choose_rules(table, typed(table), "y", None, []) if r.column == "note"
    ]
    assert "300 characters long" in note and "255" in note and "3 different values" not in note


def test_a_table_of_two_rows_builds_without_numpys_words(tmp_path):
    """numpy printed 'Mean of empty slice' (no validation rows): now the sheet's #DIV/0! is
    what the file stores, as Excel computes it."""
    from tests.conftest import run_cli

    csv = tmp_path / "two.csv"
    csv.write_text("a,b,y\n1,2,0\n3,5,1\n")
    run = run_cli("build", "table", "--csv", csv, "--target", "y", "-o", tmp_path / "two.xlsx")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    ws = openpyxl.load_workbook(tmp_path / "two.xlsx", data_only=True)["linear"]
    assert ws["N2"].value == "#DIV/0!"  # the validation loss of no rows
    run = run_cli("check", tmp_path / "two.xlsx")
    assert run.returncode == 0 and "0 different" in run.stdout and run.stderr == "", run.stderr


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_semicolon_separated_csv_with_decimal_commas_is_read(tmp_path, capsys, sep):
    """Excel's CSV in much of Europe: 'no column named churned (the columns:
    customer_id;name;…;churned)'. Now the separator is read from the header, and decimal
    commas are numbers."""
    rows = ["customer_id;name;monthly;plan;churned".replace(";", sep)]
    for i in range(30):
        rows.append(
            sep.join(
                [str(i), f"name {i}", f"{10 + i % 7},{i % 10}5", ["a", "b"][i % 2], str(i % 3 == 0)]
            )
        )
    csv = tmp_path / "churn.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")  # as Excel saves it, with a BOM
    book = tmp_path / "churn.xlsx"
    code, _, err = cli(
        capsys,
        "build",
        "table",
        "--csv",
        csv,
        "--target",
        "churned",
        "--id",
        "customer_id",
        "-o",
        book,
    )
    assert code == 0, err
    wb = openpyxl.load_workbook(book)
    assert [c.value for c in wb["data"][1]] == ["customer_id", "name", "monthly", "plan", "churned"]
    assert wb["data"]["C2"].value == 10.05  # a number, from "10,05"
    assert "monthly" in [c.value for c in wb["features"][1]]


# -- the first hour: what a newcomer reads ----------------------------------------------------


@pytest.fixture(scope="module")
def fitted_book(tmp_path_factory):
    import excelnet

    return excelnet.build_titanic(tmp_path_factory.mktemp("fit") / "titanic.xlsx")


def test_the_fit_summary_is_readable_at_80_columns(fitted_book, tmp_path):
    """The table was cut at 80 columns (para… meth… epoc…, losses cut): now every line fits
    and every number is whole; and the fit says what it wrote."""
    import os
    import shutil
    import subprocess
    import sys

    book = tmp_path / "t.xlsx"
    shutil.copy(fitted_book, book)
    run = subprocess.run(
        [sys.executable, "-m", "excelnet", "fit", str(book), "--epochs", "3", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), run.stdout
    assert "…" not in run.stdout
    for sheet in ("linear", "nn", "mmult"):
        assert any(
            line.startswith(f"{sheet}: 10 parameters") or line.startswith(f"{sheet}: 20 parameters")
            for line in lines
        ), run.stdout
    assert any("objective 0." in line and "→ 0." in line and "accuracy" in line for line in lines)
    assert f"wrote {book}: the fitted parameters of linear, nn, mmult" in run.stdout.replace(
        "\n", " "
    )


def test_solver_notes_only_for_settings_someone_made(fitted_book, tmp_path, capsys):
    """Every fit printed two lines on Solver settings the learner never made (solver_neg = 2,
    and the names Excel always writes): now only under --verbose."""
    import shutil

    book = tmp_path / "t.xlsx"
    shutil.copy(fitted_book, book)
    code, out, err = cli(capsys, "fit", book, "--sheet", "linear", "--epochs", 2, "-q")
    assert code == 0, err
    assert "solver_neg" not in out and "Solver names read" not in out
    code, out, err = cli(capsys, "fit", book, "--sheet", "linear", "--epochs", 2, "-q", "--verbose")
    assert "solver_neg = 2" in out and "Solver names read, not used" in out
    from openpyxl.workbook.defined_name import DefinedName

    wb = openpyxl.load_workbook(fitted_book)  # a setting someone made: an iteration limit
    wb["linear"].defined_names["solver_itr"] = DefinedName("solver_itr", attr_text="50")
    wb.save(book)
    code, out, err = cli(capsys, "fit", book, "--sheet", "linear", "--epochs", 2, "-q")
    assert "Solver names read, not used (see --json): solver_itr" in out, out


def test_fit_json_has_the_fitted_values(fitted_book, tmp_path, capsys):
    import json
    import shutil

    book = tmp_path / "t.xlsx"
    shutil.copy(fitted_book, book)
    code, out, _ = cli(capsys, "fit", book, "--sheet", "nn", "--epochs", 2, "--json", "-q")
    (fit,) = json.loads(out)["fits"]
    ws = openpyxl.load_workbook(book)["nn"]
    assert len(fit["params"]) == 20
    assert fit["params"]["nn!B2"] == ws["B2"].value and fit["params"]["nn!K3"] == ws["K3"].value


def test_sheet_names_ignore_case_as_excel_does_and_are_checked_first(fitted_book, capsys):
    import time

    code, out, _ = cli(capsys, "eval", fitted_book, "--sheet", "NN", "-q")
    assert code == 0 and out.startswith("nn:")
    start = time.monotonic()
    code, _, err = cli(capsys, "fit", fitted_book, "--sheet", "nope", "-q")
    assert code == 2 and time.monotonic() - start < 2  # before reading or compiling
    one_line(err, "no sheet named 'nope'", "with a Solver model: linear, nn, mmult")


def test_no_time_left_is_guessed_before_the_rate_is_known(monkeypatch):
    """74 minutes were announced while compiling (2 remained): the rate is measured from the
    first step on."""
    import io

    from excelnet import progress as progress_

    now = [0.0]
    monkeypatch.setattr(progress_.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    tick = progress_.Progress(stream, live=False).epochs("nn", 1000)
    now[0] = 70.0  # compiling: the first step ends here
    tick(1, 0.5)
    now[0] = 71.0
    tick(10, 0.4)
    now[0] = 81.0  # ten seconds after: a line
    tick(100, 0.3)
    line = stream.getvalue().strip().splitlines()[-1]
    assert "epoch 100 of 1,000" in line and "about 1 min" not in line
    assert "about 100 s left" in line, line  # 99 steps in 11 s: 900 more in 100 s


def test_printed_pages_headers_wrap_wide_sheets_in_sections_helpers_hidden(tmp_path):
    """Headers wrap in rows tall enough; a sheet too wide for a readable page prints a page
    wide per section with its first column on each; xlwings' settings sheet (printed over 11
    pages) is hidden."""
    from excelnet.writer.table import build_table
    from excelnet.writer.titanic import build_titanic

    book = build_titanic(tmp_path / "t.xlsm", passengers=40, macros=True)
    wb = openpyxl.load_workbook(book)
    assert wb["_xlwings.conf"].sheet_state == "hidden"
    nn = wb["nn"]
    assert nn["A5"].alignment.wrap_text  # the table's headers: "Squared error" in 12
    assert nn.row_dimensions[5].height >= 30
    csv = tmp_path / "wide.csv"
    names = [f"measurement_{i}" for i in range(60)]
    csv.write_text(
        ",".join([*names, "y"])
        + "\n"
        + "".join(
            ",".join([*(str((r * 7 + i) % 11) for i in range(60)), str(r % 2)]) + "\n"
            for r in range(30)
        )
    )
    wide = openpyxl.load_workbook(build_table(tmp_path / "wide.xlsx", csv, "y"))
    for name in ("data", "features"):
        ws = wide[name]
        assert ws.page_setup.fitToWidth > 1 and ws.page_setup.fitToHeight == 0, name
        assert ws.print_title_cols == "$A:$A" and ws.print_title_rows == "$1:$1", name
        assert ws.page_setup.orientation == "landscape"


def test_history_rows_for_every_iteration_of_a_short_lbfgs_fit(tmp_path):
    """An L-BFGS quadratic's history chart had 2 points: a short fit now records a row for
    every iteration."""
    from excelnet.fitting.pipeline import fit
    from excelnet.writer.lessons import build_quadratic

    book = build_quadratic(tmp_path / "q.xlsx")
    (r,) = fit(book)  # 1,000 epochs planned: a row every 20; L-BFGS converges in about 13
    assert r.method == "lbfgs" and r.converged and r.epochs < 20
    ws = openpyxl.load_workbook(book)["history"]
    epochs = [row[0] for row in ws.iter_rows(min_row=2, values_only=True) if row[0] is not None]
    assert epochs == list(range(r.epochs + 1)), epochs


def test_eval_names_each_gradient_by_its_headers_and_rounds_it(capsys):
    """eval labelled 17-digit gradients by cell address only."""
    import json

    root = Path(__file__).resolve().parents[1]
    book = root / "workbooks" / "titanic.xlsx"
    code, out, _ = cli(capsys, "eval", book, "--sheet", "nn", "-q")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("nn: objective Training loss (nn!M2) = 0.")
    assert any(
        line.split() == ["Unit", "1,", "Ones", "(nn!B2)", line.split()[-1]] for line in lines
    )
    numbers = [line.split()[-1] for line in lines[2:-1]]
    assert len(numbers) == 20 and all(len(n) <= 12 for n in numbers), numbers  # 6 digits
    code, out, _ = cli(capsys, "eval", book, "--sheet", "mmult", "--json", "-q")
    (m,) = json.loads(out)["models"]
    assert m["labels"]["mmult!N7"] == "Age, Unit 2" and m["labels"]["mmult!M2"] == "Training loss"
