"""The workbook as a file, at its worst: not a file, unreadable, unwritable, a zip bomb, shared
by two fits at once, killed while it is written. Each: one line on stderr and exit code 2 (or
the documented behaviour), the file untouched or complete, nothing left behind."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import cli, one_line
from tests.handmade import line_fit

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def only(folder: Path, *names: str) -> None:
    """Nothing left behind: the folder holds these files and no other."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


_CASES = """
import contextlib, io, json, sys
from excelnet.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    e, o = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(e), contextlib.redirect_stdout(o):
        code = main(argv)
    out.append((code, o.getvalue(), e.getvalue()))
print(json.dumps(out))
"""


def _without_file_privileges() -> None:
    """For a child run as root: drop the capabilities that let root read and write any file
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so permission bits count as for a user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl")


def cases(cwd: Path, *argvs: list, user: bool = False, limit: int | None = None) -> list:
    """Several excelnet commands in one new interpreter (one torch import for all): a hang
    fails by the timeout. `user`: without root's file privileges; `limit`: address space."""

    def prepare() -> None:
        if user and os.geteuid() == 0:
            _without_file_privileges()
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    run = subprocess.run(
        [sys.executable, "-c", _CASES, json.dumps([[str(a) for a in argv] for argv in argvs])],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=prepare,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


# -- not a workbook file ------------------------------------------------------------------


@pytest.mark.parametrize("command", [["fit"], ["eval"], ["compare"], ["lr-sweep", "--sheet=m"]])
def test_a_folder_as_the_workbook(tmp_path, capsys, command):
    code, _, err = cli(capsys, command[0], tmp_path, *command[1:])
    assert code == 2
    one_line(err, str(tmp_path), "a folder, not a workbook file")


def test_pipes_devices_and_links_to_them_are_refused_unread(tmp_path):
    os.mkfifo(tmp_path / "fifo.xlsx")
    (tmp_path / "zero.xlsx").symlink_to("/dev/zero")
    (tmp_path / "empty.xlsx").write_bytes(b"")
    got = cases(tmp_path, ["fit", "fifo.xlsx"], ["eval", "zero.xlsx"], ["fit", "empty.xlsx"])
    for (code, _, err), words in zip(
        got,
        [("fifo.xlsx", "named pipe"), ("zero.xlsx", "character device"), ("empty.xlsx", "empty")],
        strict=True,
    ):
        assert code == 2
        one_line(err, *words)


def test_output_naming_a_folder(tmp_path, capsys):
    book = line_fit(tmp_path / "a.xlsx")
    (tmp_path / "out.xlsx").mkdir()
    before = book.read_bytes()
    code, _, err = cli(capsys, "fit", book, "--out", tmp_path / "out.xlsx", "--epochs", 2)
    assert code == 2
    one_line(err, "out.xlsx: a folder")
    code, _, err = cli(capsys, "build", "quadratic", "-o", tmp_path / "out.xlsx")
    assert code == 2
    one_line(err, "out.xlsx: a folder")
    assert book.read_bytes() == before
    only(tmp_path, "a.xlsx", "out.xlsx")
    assert list((tmp_path / "out.xlsx").iterdir()) == []


def test_unreadable_files_and_unwritable_folders(tmp_path):
    """Run without root's privileges over files, so that permission bits count."""
    secret = line_fit(tmp_path / "secret.xlsx")
    secret.chmod(0)
    ro = tmp_path / "ro"
    ro.mkdir()
    book = line_fit(ro / "book.xlsx")
    before = book.read_bytes()
    ro.chmod(0o555)
    try:
        got = cases(
            tmp_path,
            ["fit", "secret.xlsx"],
            ["fit", "ro/book.xlsx", "--epochs", 2],
            ["build", "quadratic", "-o", "ro/q.xlsx"],
            user=True,
        )
    finally:
        ro.chmod(0o755)
        secret.chmod(0o644)
    words = [
        ("secret.xlsx", "cannot read it: permission denied"),
        ("ro/book.xlsx", "cannot write in folder ro: permission denied"),
        ("ro/q.xlsx", "cannot write in folder ro: permission denied"),
    ]
    for (code, _, err), expect in zip(got, words, strict=True):
        assert code == 2
        one_line(err, *expect)
    assert book.read_bytes() == before
    only(ro, "book.xlsx")


def test_output_into_an_unwritable_folder(tmp_path):
    line_fit(tmp_path / "book.xlsx")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    try:
        ((code, _, err),) = cases(
            tmp_path, ["fit", "book.xlsx", "--out", "ro/fitted.xlsx", "--epochs", 2], user=True
        )
    finally:
        ro.chmod(0o755)
    assert code == 2
    one_line(err, "ro/fitted.xlsx: cannot write in folder ro: permission denied")
    only(ro)


# -- writing through, keeping what the file was ------------------------------------------------


def test_a_symlinked_workbook_is_written_through(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    book = line_fit(real / "book.xlsx")
    link = tmp_path / "link.xlsx"
    link.symlink_to(book)
    code, _, err = cli(capsys, "fit", link, "--epochs", 5, "--lr", 0.5)
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == book
    assert "history" in openpyxl.load_workbook(book, read_only=True).sheetnames
    only(tmp_path, "link.xlsx", "real")
    only(real, "book.xlsx")


def test_mode_and_owner_are_kept(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    book.chmod(0o640)
    if os.geteuid() == 0:  # fitting another user's file as root keeps it theirs
        os.chown(book, 1234, 5678)
    before = book.stat()
    code, _, err = cli(capsys, "fit", book, "--epochs", 5)
    assert code == 0, err
    after = book.stat()
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # replaced, as a whole, by one rename


def test_a_read_only_workbook_is_refused_unless_forced(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    book.chmod(0o444)
    before = book.read_bytes()
    for command in (["fit"], ["compare"], ["lr-sweep", "--sheet", "Model"]):
        code, _, err = cli(capsys, command[0], book, *command[1:])
        assert code == 2
        one_line(err, "book.xlsx: the file is read-only", "--force")
    code, out, err = cli(capsys, "eval", book)  # it writes nothing here: no gradient cells
    assert code == 0 and "objective" in out, err
    code, _, err = cli(capsys, "build", "quadratic", "-o", book)
    assert code == 2
    one_line(err, "read-only")
    assert book.read_bytes() == before
    code, _, err = cli(capsys, "fit", book, "--epochs", 5, "--force")
    assert code == 0, err
    assert book.read_bytes() != before and stat.S_IMODE(book.stat().st_mode) == 0o444
    only(tmp_path, "book.xlsx")


def test_stale_temp_files_of_a_killed_fit_are_cleaned(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    (tmp_path / ".book.xlsx.x1y2z3_4.tmp").write_bytes(b"half a zip")  # excelnet's pattern
    (tmp_path / ".book.xlsx.notes.txt").write_text("the user's")  # not excelnet's
    code, _, err = cli(capsys, "fit", book, "--epochs", 2)
    assert code == 0, err
    only(tmp_path, "book.xlsx", ".book.xlsx.notes.txt")


# -- damaged and crafted zips ---------------------------------------------------------------


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def write_zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip of (name, raw deflate stream, CRC-32, inflated size) members, written by hand:
    zipfile would not write a stream it did not deflate itself, nor a name twice."""
    central = []
    with open(path, "wb") as f:
        for name, raw, crc, size in members:
            offset, n = f.tell(), name.encode()
            head = (b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(raw), size, len(n), 0)
            f.write(struct.pack("<4s5H3L2H", *head) + n + raw)
            entry = (b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(raw), size, len(n))
            central.append(struct.pack("<4s6H3L5H2L", *entry, 0, 0, 0, 0, 0, offset) + n)
        start, directory = f.tell(), b"".join(central)
        f.write(directory)
        f.write(
            struct.pack(
                "<4s4H2LH",
                b"PK\x05\x06",
                0,
                0,
                len(central),
                len(central),
                len(directory),
                start,
                0,
            )
        )
    return path


def members(book: Path) -> list[tuple[str, bytes, int, int]]:
    with zipfile.ZipFile(book) as z:
        return [(i.filename, _deflate(z.read(i)), i.CRC, i.file_size) for i in z.infolist()]


def inflating_to(size: int, chunk: bytes) -> tuple[bytes, int, int]:
    """A deflate stream that truly inflates to `size` bytes of `chunk` repeated, built in
    milliseconds: each copy is one self-contained block (a full flush resets the
    dictionary), so the same compressed bytes repeat. Its CRC is left 0: excelnet must
    refuse it before inflating any of it (a read would show in the peak memory first)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    copies = size // len(chunk)
    return block * copies + b"\x03\x00", 0, copies * len(chunk)  # \x03\x00: the last block


def peak_rss_mb(argv: list, cwd: Path, limit: int | None = None) -> tuple[int, str, float]:
    """Run excelnet in a new process: exit code, stderr, and its peak resident memory."""

    def prepare() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.Popen(
        [sys.executable, "-m", "excelnet", *map(str, argv)],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=prepare,
    )
    err = proc.stderr.read()
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)  # reaped here, for its resource usage
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss / 1024


def test_a_sheet_that_inflates_to_2_gb_is_refused_before_reading(tmp_path):
    book = line_fit(tmp_path / "book.xlsx")
    parts = members(book)
    raw, crc, size = inflating_to(2 << 30, b'<row r="1"><c r="A1"><v>1</v></c></row>' * 26214)
    parts = [
        (n, raw, crc, size) if n == "xl/worksheets/sheet1.xml" else (n, r, c, s)
        for n, r, c, s in parts
    ]
    bomb = write_zip(tmp_path / "bomb.xlsx", parts)
    assert bomb.stat().st_size < 10 << 20
    before = bomb.read_bytes()
    code, err, peak = peak_rss_mb(["fit", "bomb.xlsx", "--epochs", 2], tmp_path)
    assert code == 2
    one_line(err, "bomb.xlsx: xl/worksheets/sheet1.xml inflates to 2.1 GB, more than")
    assert peak < 600, f"peak resident memory {peak:.0f} MiB"
    assert bomb.read_bytes() == before
    only(tmp_path, "book.xlsx", "bomb.xlsx")


def test_a_read_that_cannot_fit_in_memory_is_refused_before_work(tmp_path):
    """0.9 GB of sheet XML (under the per-member budget), in a process allowed 3 GB."""
    book = line_fit(tmp_path / "book.xlsx")
    raw, crc, size = inflating_to(900 << 20, b'<row r="1"><c r="A1"><v>1</v></c></row>' * 26214)
    parts = [
        (n, raw, crc, size) if n == "xl/worksheets/sheet1.xml" else (n, r, c, s)
        for n, r, c, s in members(book)
    ]
    big = write_zip(tmp_path / "big.xlsx", parts)
    before = big.read_bytes()
    code, err, peak = peak_rss_mb(["fit", "big.xlsx"], tmp_path, limit=3 << 30)
    assert code == 2
    one_line(err, "big.xlsx: its sheets hold 0.94 GB of XML", "GB is available")
    assert peak < 600, f"peak resident memory {peak:.0f} MiB"
    assert big.read_bytes() == before


def test_a_member_that_inflates_past_its_declared_size(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    raw, crc, size = inflating_to(64 << 20, b"<row/>" * 1000)
    parts = [
        (n, raw, crc, 100_000) if n == "xl/worksheets/sheet1.xml" else (n, r, c, s)
        for n, r, c, s in members(book)
    ]
    liar = write_zip(tmp_path / "liar.xlsx", parts)
    code, _, err = cli(capsys, "fit", liar)
    assert code == 2
    one_line(err, "liar.xlsx: corrupt workbook")


def test_duplicate_zip_members_are_refused(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    parts = members(book)
    sheet = next(p for p in parts if p[0] == "xl/worksheets/sheet2.xml")
    dup = write_zip(tmp_path / "dup.xlsx", [*parts, sheet])
    before = dup.read_bytes()
    for command in ("fit", "eval"):
        code, _, err = cli(capsys, command, dup)
        assert code == 2
        one_line(err, "dup.xlsx: the zip holds two members named xl/worksheets/sheet2.xml")
    assert dup.read_bytes() == before


def test_a_sheet_that_is_not_well_formed_xml_is_refused(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    parts = []
    for name, raw, crc, size in members(book):
        if name == "xl/worksheets/sheet2.xml":  # the model sheet: one tag left open
            xml = zlib.decompress(raw, -15).replace(b"</row>", b"", 1)
            raw, crc, size = _deflate(xml), zlib.crc32(xml), len(xml)
        parts.append((name, raw, crc, size))
    bad = write_zip(tmp_path / "bad.xlsx", parts)
    before = bad.read_bytes()
    code, _, err = cli(capsys, "fit", bad)
    assert code == 2
    one_line(err, "bad.xlsx: sheet Model (xl/worksheets/sheet2.xml) is not well-formed XML")
    assert bad.read_bytes() == before
    only(tmp_path, "book.xlsx", "bad.xlsx")


def test_a_missing_sheet_part_is_named(tmp_path, capsys):
    book = line_fit(tmp_path / "book.xlsx")
    parts = [p for p in members(book) if p[0] != "xl/worksheets/sheet1.xml"]
    holed = write_zip(tmp_path / "holed.xlsx", parts)
    code, _, err = cli(capsys, "fit", holed)
    assert code == 2
    one_line(err, "holed.xlsx, sheet inputs: its part xl/worksheets/sheet1.xml is missing")


# -- two fits at once; a kill at any moment ------------------------------------------------------

_PAIRS = """
import os, sys
# torch, openpyxl and XlsxWriter loaded once, before the children are forked
import excelnet.xlsx.read, excelnet.fitting.history, excelnet.xlsx.sheets, excelnet.fitting.train
import excelnet.xlsx.writeback
from excelnet.cli import main
book, pairs = sys.argv[1], int(sys.argv[2])
argv = ["fit", book, "--epochs", "10", "--lr", "0.5", "-q", "--engine", "eager"]
for _ in range(pairs):
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            os._exit(main(argv))
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in children]
    assert codes == [0, 0], codes
"""


def test_simultaneous_fits_keep_every_history_row(tmp_path):
    book = line_fit(tmp_path / "book.xlsx")
    run = subprocess.run(
        [sys.executable, "-c", _PAIRS, str(book), "20"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    ws = openpyxl.load_workbook(book)["history"]
    epochs = [r[0] for r in ws.iter_rows(min_row=2, values_only=True) if r[0] is not None]
    assert epochs == list(range(0, 401)), epochs[-5:]  # 40 fits of 10 epochs, none lost
    only(tmp_path, "book.xlsx")


_KILLS = """
import os, random, signal, sys, time, zipfile
import excelnet.xlsx.writeback
from excelnet.cli import main
from excelnet.xlsx.read import read_book
book, kills, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
argv = ["fit", book, "--epochs", "1", "-q", "--engine", "eager"]
assert main(argv) == 0  # everything imported before the children are forked
copy = excelnet.xlsx.writeback.copy_with

def child(w):
    def signal_then_copy(*a):  # tell the parent the write begins ...
        os.write(w, b"w")
        copy(*a)
    def rename_then_signal(*a, replace=os.replace):  # ... and when the new file is in place
        replace(*a)
        os.write(w, b"r")
    excelnet.xlsx.writeback.copy_with = signal_then_copy
    os.replace = rename_then_signal
    os._exit(main(argv))

def start():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child(w)
    os.close(w)
    assert os.read(r, 1) == b"w"
    return pid, r

pid, r = start()  # how long from the write's start to the rename: the window to kill in
t = time.perf_counter()
assert os.read(r, 1) == b"r"
window = time.perf_counter() - t
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
os.close(r)
for k in range(kills):
    before = open(book, "rb").read()
    pid, r = start()
    time.sleep(rng.uniform(0, 1.2 * window))  # in the write, and a little after
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(r)
    after = open(book, "rb").read()
    if after != before:  # the new file, whole: a sound zip that excelnet reads
        assert zipfile.ZipFile(book).testzip() is None
        read_book(book)
    temps = [n for n in os.listdir(os.path.dirname(book)) if n.endswith(".tmp")]
    print("state:", "old" if after == before else "new", len(temps), flush=True)
"""


def test_a_write_killed_at_any_moment_leaves_old_or_new(tmp_path):
    book = line_fit(tmp_path / "book.xlsx", n=1000)
    run = subprocess.run(
        [sys.executable, "-c", _KILLS, str(book), "30", "13"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    states = [line.split()[1:] for line in run.stdout.splitlines() if line.startswith("state:")]
    seen = [state for state, _ in states]
    assert len(seen) == 30 and set(seen) == {"old", "new"}, seen  # kills before and after
    assert any(int(temps) for _, temps in states)  # a killed write leaves its temporary file
    assert all(int(temps) <= 1 for _, temps in states)  # the next run removes it
    with zipfile.ZipFile(book) as z:
        assert z.testzip() is None
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "book.xlsx"]
    assert all(name.endswith(".tmp") for name in leftovers), leftovers
    assert code_of_next_run(book) == 0
    only(tmp_path, "book.xlsx")


def code_of_next_run(book: Path) -> int:
    return subprocess.run(
        [sys.executable, "-m", "excelnet", "fit", book, "--epochs", "1", "-q"],
        env=ENV,
        capture_output=True,
        timeout=120,
    ).returncode
