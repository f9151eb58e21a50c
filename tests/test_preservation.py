"""Write-back keeps everything else: charts, images, comments, other sheets, conditional
formats, data validation, VBA and form buttons — byte for byte."""

from __future__ import annotations

import difflib
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
import xlsxwriter

from excelnet.fitting.pipeline import compile_models, fit
from excelnet.xlsx.read import read_book

_CELL = re.compile(rb"<c\b[^>]*?\br=\"([A-Z]+\d+)\"[^>]*?(?:/>|>.*?</c>)", re.S)


def tiny_png(path: Path) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\0" + bytes([200, 30, 30]) * 4 for _ in range(4))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def vba_project(tmp: Path) -> Path:
    """The VBA project of xlwings' own standalone quickstart workbook (contains RunPython)."""
    import xlwings

    src = Path(xlwings.__file__).parent / "quickstart_standalone.xlsm"
    with zipfile.ZipFile(src) as z:
        (tmp / "vbaProject.bin").write_bytes(z.read("xl/vbaProject.bin"))
    return tmp / "vbaProject.bin"


def rich_workbook(path: Path, tmp: Path, macros: bool) -> Path:
    """A small model plus one of everything a user might have put in a workbook."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("model")
    notes = wb.add_worksheet("notes")
    ws.write_row(0, 0, ["x", "y", "prediction"])
    for i in range(10):
        x = i / 9
        ws.write_number(i + 1, 0, x)
        ws.write_number(i + 1, 1, 2 * x + 1)
        ws.write_formula(i + 1, 2, f"=$F$2*A{i + 2}+$F$3")
    ws.write_string(1, 4, "a")
    ws.write_number(1, 5, 0.1)
    ws.write_string(2, 4, "b")
    ws.write_number(2, 5, 0.2)
    ws.write_formula(4, 5, "=SUMXMY2(C2:C11,B2:B11)/10")
    ws.write_formula(5, 5, '=IF(F5<0.01,"good","keep going")')
    wb.define_name("model!solver_opt", "=model!$F$5")
    wb.define_name("model!solver_adj", "=model!$F$2:$F$3")
    wb.define_name("model!solver_typ", "=2")
    chart = wb.add_chart({"type": "scatter"})
    chart.add_series({"categories": "=model!$A$2:$A$11", "values": "=model!$C$2:$C$11"})
    ws.insert_chart("H2", chart)
    ws.insert_image("H20", str(tiny_png(tmp / "dot.png")))
    ws.write_comment("F2", "the slope: change me")
    ws.conditional_format("C2:C11", {"type": "3_color_scale"})
    ws.data_validation(
        "F2:F3", {"validate": "decimal", "criteria": "between", "minimum": -100, "maximum": 100}
    )
    notes.write_string(0, 0, "=not a formula, just notes")
    notes.write_formula(1, 0, "=model!F5*2")  # depends on the parameters, on another sheet
    if macros:
        wb.add_vba_project(str(vba_project(tmp)))
        ws.insert_button("K30", {"macro": "SampleCall", "caption": "Train"})
    wb.close()
    return path


def _cells(xml: bytes) -> tuple[dict[bytes, bytes], bytes]:
    cells = {m.group(1): m.group(0) for m in _CELL.finditer(xml)}
    return cells, _CELL.sub(b"", xml)


@pytest.mark.parametrize("suffix", ["xlsx", "xlsm"])
def test_fit_changes_only_parameters_and_their_dependents(tmp_path, suffix, recalc):
    book = rich_workbook(tmp_path / f"rich.{suffix}", tmp_path, macros=suffix == "xlsm")
    original = book.read_bytes()
    (model,) = compile_models(read_book(book))
    model.evaluate()
    allowed = {(s, r, c) for (s, r, c) in model.values()}
    (result,) = fit(book, epochs=200, lr=0.5, history=False)
    assert result.final_loss < result.initial_loss

    import io

    before = zipfile.ZipFile(io.BytesIO(original))
    after = zipfile.ZipFile(book)
    assert before.namelist() == after.namelist()
    patched = {"xl/worksheets/sheet1.xml": "model", "xl/worksheets/sheet2.xml": "notes"}
    for name in before.namelist():
        a, b = before.read(name), after.read(name)
        if name not in patched:
            assert a == b, f"{name} changed"
            continue
        (cells_a, frame_a), (cells_b, frame_b) = _cells(a), _cells(b)
        assert frame_a == frame_b, f"{name}: XML outside the cells changed"
        from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

        for ref in set(cells_a) | set(cells_b):
            if cells_a.get(ref) != cells_b.get(ref):
                col, row = coordinate_from_string(ref.decode())
                key = (patched[name], row - 1, column_index_from_string(col) - 1)
                assert key in allowed, f"{name}: {ref.decode()} changed"
    if suffix == "xlsm":
        assert b"vbaProject" in after.read("[Content_Types].xml")
        assert any("vmlDrawing" in n for n in after.namelist())  # the form button
    (lo,) = recalc([book])
    import openpyxl

    got = openpyxl.load_workbook(lo, data_only=True)
    assert got["model"]["F5"].value == pytest.approx(result.final_loss, rel=1e-9)
    assert got["notes"]["A2"].value == pytest.approx(2 * result.final_loss, rel=1e-9)
    mine = openpyxl.load_workbook(book, data_only=True)
    assert mine["notes"]["A2"].value == pytest.approx(2 * result.final_loss, rel=1e-12)
    assert mine["model"]["F6"].value == got["model"]["F6"].value  # text results too


def test_history_adds_a_sheet_and_only_bookkeeping(tmp_path):
    book = rich_workbook(tmp_path / "rich.xlsm", tmp_path, macros=True)
    import io

    before = zipfile.ZipFile(io.BytesIO(book.read_bytes()))
    fit(book, epochs=20, lr=0.5)
    after = zipfile.ZipFile(book)
    added = set(after.namelist()) - set(before.namelist())
    assert len(added) == 5  # sheet, drawing, chart and their two .rels
    bookkeeping = {
        "[Content_Types].xml",
        "xl/workbook.xml",  # the sheet, and its print titles
        "xl/_rels/workbook.xml.rels",
        "xl/styles.xml",  # the new sheet's header and number formats
    }
    for name in before.namelist():
        a, b = before.read(name), after.read(name)
        if name in bookkeeping:  # only insertions (and the counts of lists that grew)
            a, b = (re.sub(rb'count="\d+"', b'count=""', x) for x in (a, b))
            steps = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
            assert {op for op, *_ in steps} <= {"equal", "insert"}, name
        elif name not in ("xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"):
            assert a == b, name
    # a second fit finds the styles it added: styles.xml does not grow fit after fit
    styles = after.read("xl/styles.xml")
    fit(book, epochs=20, lr=0.5)
    assert zipfile.ZipFile(book).read("xl/styles.xml") == styles


def test_unchanged_parts_keep_their_stored_bytes(tmp_path):
    """The copy does not inflate and deflate again what it does not change: each untouched
    member's compressed bytes are the original's, and the archive tests sound."""
    from excelnet.xlsx.zipcopy import _raw

    book = rich_workbook(tmp_path / "rich.xlsm", tmp_path, macros=True)
    original = tmp_path / "original.xlsm"
    original.write_bytes(book.read_bytes())
    fit(book, epochs=20, history=True)
    with zipfile.ZipFile(original) as a, zipfile.ZipFile(book) as b:
        assert b.testzip() is None
        changed = {
            "xl/worksheets/sheet1.xml",
            "xl/worksheets/sheet2.xml",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "[Content_Types].xml",
            "xl/styles.xml",
            "docProps/app.xml",
        }
        kept = [n for n in a.namelist() if n not in changed]
        assert "xl/vbaProject.bin" in kept and len(kept) >= 8
        with open(original, "rb") as fa, open(book, "rb") as fb:
            for name in kept:
                assert _raw(fa, a.getinfo(name)) == _raw(fb, b.getinfo(name)), name


def test_zipfiles_own_path_writes_the_same_contents(tmp_path, monkeypatch):
    """Archives the raw copy does not handle (encrypted members, ZIP64) go through zipfile:
    the same contents, member by member."""
    import excelnet.xlsx.writeback

    book = rich_workbook(tmp_path / "rich.xlsx", tmp_path, macros=False)
    slow = tmp_path / "slow.xlsx"
    slow.write_bytes(book.read_bytes())
    fit(book, epochs=20, history=True)
    monkeypatch.setattr(excelnet.xlsx.writeback, "can_copy", lambda z: False)
    fit(slow, epochs=20, history=True)
    with zipfile.ZipFile(book) as a, zipfile.ZipFile(slow) as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())


def test_a_corrupt_member_stops_the_write_with_one_line(tmp_path):
    """A part only the write-back copies (the image), with a broken local header: one line,
    exit code 2, the workbook untouched, no temporary file left."""
    from tests.conftest import run_cli

    book = rich_workbook(tmp_path / "rich.xlsx", tmp_path, macros=False)
    with zipfile.ZipFile(book) as z:
        image = next(i for i in z.infolist() if i.filename.startswith("xl/media/"))
    data = bytearray(book.read_bytes())
    data[image.header_offset : image.header_offset + 4] = b"XXXX"
    book.write_bytes(bytes(data))
    run = run_cli("fit", book, "--epochs", "5", "--no-history")
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().count("\n") == 0 and "corrupt workbook" in run.stderr
    assert book.read_bytes() == bytes(data)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
