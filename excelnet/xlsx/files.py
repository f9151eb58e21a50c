"""The workbook as a file: what excelnet checks before any work, the lock that keeps two
excelnet processes from working on one workbook at once, and zip members read within a budget.

Every check raises ExcelnetError (one line, exit code 2) and leaves the file as it was.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import unescape

from excelnet.errors import ExcelnetError
from excelnet.memory import available_memory
from excelnet.progress import Silent

try:  # POSIX; elsewhere (Windows) the lock is not taken and replacing an open file fails anyway
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

# The largest zip member (inflated) excelnet reads: the largest sheet of a full 1,048,576-row
# Titanic workbook is about 0.85 GB of XML. A member declared larger is refused before reading.
MEMBER_BUDGET = 1 << 30

# Peak memory per byte of sheet XML that a fit reads (measured: 8.4 on the 100,000-row Titanic
# workbook, every sheet; 8 with --sheet nn), a little under, so that only a read that cannot
# fit is refused.
MEMORY_PER_XML_BYTE = 6

_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _stat(path: Path, doing: str) -> os.stat_result | None:
    """os.stat through symlinks; None if there is no such file."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ExcelnetError(f"{path}: cannot {doing}: {e.strerror.lower()}") from None


def check_source(path: Path) -> None:
    """The workbook to read: a regular file (a symlink to one is fine), readable, not empty.
    Checked without reading it: a pipe or a device would block or never end."""
    st = _stat(path, "read it")
    if st is None:
        raise ExcelnetError(f"{path}: no such file")
    if stat.S_ISDIR(st.st_mode):
        raise ExcelnetError(f"{path}: a folder, not a workbook file")
    if not stat.S_ISREG(st.st_mode):
        raise ExcelnetError(f"{path}: {_kind(st.st_mode)}; excelnet reads workbook files")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise ExcelnetError(f"{path}: cannot read it: {e.strerror.lower()}") from None
    if st.st_size == 0:
        raise ExcelnetError(f"{path}: the file is empty")


def real_target(path: Path) -> Path:
    """The file a write to `path` replaces: a symlink's target (written through, the link
    stays), else `path` itself."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def euid() -> int | None:
    """The user this process acts as (None where there are no such ids: Windows)."""
    return os.geteuid() if hasattr(os, "geteuid") else None


def _read_only(path: Path, st: os.stat_result) -> bool:
    me = euid()
    if me is None:
        return not os.access(path, os.W_OK)
    if me == 0:  # root may write anything; a file nobody may write is read-only
        return not st.st_mode & 0o222
    if st.st_uid == me:
        return not st.st_mode & 0o200
    return not st.st_mode & 0o022


def check_target(path: Path, force: bool = False) -> None:
    """Where a workbook will be written, checked before the work: a file (not a folder) in a
    folder that exists and can be written; an existing file must be a regular file excelnet
    may replace with the same mode and owner (a read-only one or another user's only when
    `force`d)."""
    real = real_target(path)
    folder = real.parent
    st = _stat(real, "write it")
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ExcelnetError(f"{path}: a folder; name the workbook file to write")
    if not folder.is_dir():
        raise ExcelnetError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExcelnetError(f"{path}: cannot write in folder {folder}: permission denied")
    if st is None:
        return
    if not stat.S_ISREG(st.st_mode):
        raise ExcelnetError(f"{path}: {_kind(st.st_mode)}; excelnet writes workbook files")
    if force:
        return
    problem = None
    if _read_only(real, st):
        problem = f"{path}: the file is read-only, so excelnet leaves it as it is"
    elif euid() not in (None, 0, st.st_uid):
        problem = (
            f"{path}: the file belongs to another user (uid {st.st_uid}), and a new copy "
            f"would belong to you"
        )
    if problem is not None:
        raise ExcelnetError(
            f"{problem} (force=True replaces it)", f"{problem} (--force replaces it)"
        )


def refuse_existing(path: Path, force: bool = False) -> None:
    """A build writes a new workbook: one already there (a fitted workbook, its history) is
    replaced only when `force`d."""
    check_target(path, force)  # a folder, a read-only file, another user's: said first
    st = _stat(real_target(path), "write it")
    if force or st is None:
        return
    what = f"{path}: already exists; a build would replace it (fitted parameters and history too)"
    raise ExcelnetError(
        f"{what}: name another file, or force=True replaces it",
        f"{what}: name another file (-o), or --force replaces it",
    )


# -- Excel's and LibreOffice's own lock files ----------------------------------------------


def _office_lock(path: Path) -> tuple[str, str] | None:
    """(lock file name, who and since when) if Excel or LibreOffice has marked `path` open."""
    folder, name = path.parent, path.name
    lo = folder / f".~lock.{name}#"
    if lo.is_file():
        # LibreOffice writes "LockUser,OSUser,Host,Date,Profile;"
        fields = lo.read_bytes()[:4096].decode("utf-8", "replace").split(",")
        user = (fields[0] if fields else "") or (fields[1] if len(fields) > 1 else "")
        host = fields[2] if len(fields) > 2 else ""
        date = fields[3] if len(fields) > 3 else ""
        who = " ".join(
            part
            for part in (
                f"by {user.strip()}" if user.strip() else "",
                f"on {host.strip()}" if host.strip() else "",
                f"since {date.strip()}" if date.strip() else "",
            )
            if part
        )
        return lo.name, f"LibreOffice{' ' + who if who else ''}"
    xl = folder / f"~${name}"
    if xl.is_file():
        # Excel's owner file: a length byte, then the user's name
        data = xl.read_bytes()[:64]
        user = data[1 : 1 + data[0]].decode("latin-1").strip() if data else ""
        since = datetime.fromtimestamp(xl.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        return xl.name, f"Excel{' by ' + user if user else ''} since {since}"
    return None


def refuse_if_open(*paths: Path) -> None:
    """Refuse a workbook that Excel or LibreOffice has open (its lock file beside it)."""
    for path in paths:
        found = _office_lock(Path(path))
        if found is not None:
            lock, who = found
            raise ExcelnetError(
                f"{path}: open in {who} (lock file {lock}); close it there and try again — "
                f"or, if it is open nowhere (a crash leaves the lock file behind), delete "
                f"{path.parent / lock}"
            )


# -- excelnet's own lock ------------------------------------------------------------------

_HELD: dict[tuple[int, int], list] = {}  # locked file's (st_dev, st_ino) -> [fd, depth]


def _lock_key(path: Path) -> tuple[tuple[int, int], str] | None:
    """What to lock for `path`, as the file's identity (st_dev, st_ino) and a path to open:
    the file when it exists (through symlinks: one name or another, or a hard link, is one
    file and one lock), else its folder (locks need a file). None: nothing to lock."""
    real = real_target(path)
    for target in (real, real.parent if str(real.parent) else Path(".")):
        try:
            st = os.stat(target)
        except OSError:
            continue
        return (st.st_dev, st.st_ino), str(target)
    return None


def _acquire(name: str, on_wait: Callable[[], None] | None) -> int | None:
    while True:
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None  # nothing to lock (gone, or not ours to open): go on without
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks
            os.close(fd)
            return None
        # the holder before us may have replaced the file (a rename): lock the new one
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(name))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def locked(*paths: Path, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Hold excelnet's advisory lock on workbooks while reading and writing them: another
    excelnet process that wants one of them waits until this one is done (then reads what
    it wrote). One lock per file, whatever its names (a symlink, a hard link); re-entrant
    within a process; taken in one order, so two processes never wait on each other. Where
    the file system has no locks, nothing is locked."""
    if fcntl is None:
        yield
        return
    found = {}
    for p in paths:
        key = _lock_key(Path(p))
        if key is not None:
            found.setdefault(key[0], (key[1], Path(p)))
    taken = []
    try:
        for key, (name, path) in sorted(found.items()):
            if key not in _HELD:
                fd = _acquire(name, (lambda p=path: on_wait(p)) if on_wait else None)
                if fd is not None:  # the file locked: another than at first if it was replaced
                    st = os.fstat(fd)
                    key = (st.st_dev, st.st_ino)
                if key in _HELD:
                    if fd is not None:
                        os.close(fd)
                else:
                    _HELD[key] = [fd, 0]
            _HELD[key][1] += 1
            taken.append(key)
        yield
    finally:
        for key in reversed(taken):
            held = _HELD[key]
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                if held[0] is not None:
                    os.close(held[0])  # closing releases the lock


# -- temporary files --------------------------------------------------------------------------


def temp_prefix(target: Path) -> str:
    """The start of the name of excelnet's temporary files for `target` (beside it)."""
    return f".{target.name}."


def stale_temps(target: Path) -> list[Path]:
    """excelnet's temporary files for `target` (tempfile's pattern: 8 characters, .tmp).
    Under the lock, any there is left by a process that was killed."""
    pattern = re.compile(re.escape(temp_prefix(target)) + r"[a-z0-9_]{8}\.tmp")
    try:
        names = os.listdir(target.parent if str(target.parent) else ".")
    except OSError:
        return []
    return [target.parent / n for n in names if pattern.fullmatch(n)]


# -- zip members --------------------------------------------------------------------------------

_SHEET = re.compile(
    rb'<sheet\b[^>]*?\bname="([^"]*)"[^>]*?\br:id="([^"]*)"|'
    rb'<sheet\b[^>]*?\br:id="([^"]*)"[^>]*?\bname="([^"]*)"'
)
_REL = re.compile(rb"<Relationship\b[^>]*?>")
_ATTR = re.compile(rb'(\w+(?::\w+)?)="([^"]*)"')
_QUOTES = {"&quot;": '"', "&apos;": "'"}


def sheet_parts(z: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → zip member of its XML."""
    wb = z.read("xl/workbook.xml")
    rels = z.read("xl/_rels/workbook.xml.rels")
    targets = {}
    for m in _REL.finditer(rels):
        attrs = dict(_ATTR.findall(m.group(0)))
        target = attrs.get(b"Target", b"").decode()
        part = (
            target.lstrip("/")
            if target.startswith("/")
            else posixpath.normpath(posixpath.join("xl", target))
        )
        targets[attrs.get(b"Id", b"").decode()] = part
    out = {}
    for m in _SHEET.finditer(wb):
        name, rid = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(4), m.group(3))
        out[unescape(name.decode(), _QUOTES)] = targets.get(rid.decode())
    return out


_DEFINED = re.compile(rb"<definedName\b([^>]*)>")
_SOLVER = (b"solver_opt", b"solver_adj", b"solver_typ")


def resolve_sheet(path: Path, name: str) -> str:
    """The sheet `name` stands for, as Excel finds it: ignoring case (--sheet NN is sheet nn).
    Read from workbook.xml alone, before any slow work; a name no sheet has is refused with
    the sheets there are. A workbook.xml in another form: `name` as given, for the reader."""
    try:
        with zipfile.ZipFile(path) as z:
            wb = z.read("xl/workbook.xml")
    except (zipfile.BadZipFile, KeyError, OSError):
        return name  # the reader says what is wrong with the file
    titles = [
        unescape(m.decode("utf-8", "replace"), _QUOTES)
        for m in re.findall(rb'<sheet\b[^>]*?\bname="([^"]*)"', wb)
    ]
    if not titles or name in titles:
        return name
    same = [t for t in titles if t.casefold() == name.casefold()]
    if same:
        return same[0]
    models = []
    for m in _DEFINED.finditer(wb):
        attrs = dict(_ATTR.findall(m.group(1)))
        local = attrs.get(b"localSheetId", b"")
        if attrs.get(b"name") in _SOLVER and local.isdigit() and int(local) < len(titles):
            models.append(titles[int(local)])
    models = [t for t in titles if t in models]
    found = f"with a Solver model: {', '.join(models)}" if models else "none has a Solver model"
    raise ExcelnetError(
        f"{path}: no sheet named {name!r} (its sheets: {', '.join(titles)}; {found})"
    )


def check_zip(path: Path, z: zipfile.ZipFile) -> None:
    """Before anything is read from the archive: no member twice (which copy would count?),
    none larger, inflated, than excelnet reads. zipfile never inflates a member past the
    size it declares (and checks its CRC), so the declared sizes bound what a read costs."""
    seen: set[str] = set()
    for info in z.infolist():
        if info.filename in seen:
            raise ExcelnetError(
                f"{path}: the zip holds two members named {info.filename}; a damaged or "
                f"tampered file (which copy is the workbook?)"
            )
        seen.add(info.filename)
        if info.file_size > MEMBER_BUDGET:
            raise ExcelnetError(
                f"{path}: {info.filename} inflates to {info.file_size / 1e9:.1f} GB, more than "
                f"the {MEMBER_BUDGET / 1e9:.1f} GB excelnet reads of one zip member"
            )


def check_memory(path: Path, z: zipfile.ZipFile, parts: list[str]) -> None:
    """Refuse, before any work, to read sheets whose XML needs more memory than there is
    (a read that fails half-way, or a fit whose write-back does, costs minutes for nothing)."""
    xml = sum(z.getinfo(p).file_size for p in parts if p in z.NameToInfo)
    need, have = MEMORY_PER_XML_BYTE * xml, available_memory()
    if have is not None and need > have:
        raise ExcelnetError(
            f"{path}: its sheets hold {xml / 1e9:.2f} GB of XML, which needs about "
            f"{need / 1e9:.1f} GB of memory to read; {max(have, 0) / 1e9:.1f} GB is available"
        )


def read_member(path: Path, z: zipfile.ZipFile, name: str) -> bytes:
    """A zip member's bytes, within the budget (see check_zip)."""
    if z.getinfo(name).file_size > MEMBER_BUDGET:
        check_zip(path, z)  # says which and why
    return z.read(name)


def check_well_formed(path: Path, part: str, xml: bytes, sheet: str | None = None) -> None:
    """Refuse a part that is not well-formed XML: excelnet patches parts as text, and would
    otherwise write a broken one back as it found it."""
    from xml.parsers import expat

    parser = expat.ParserCreate()
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as e:
        what = f"sheet {sheet} ({part})" if sheet is not None else part
        raise ExcelnetError(
            f"{path}: {what} is not well-formed XML (line {e.lineno}, column {e.offset + 1}: "
            f"{expat.ErrorString(e.code)}); the file is damaged"
        ) from None


def lock(progress: Silent, *paths: Path):
    """excelnet's lock on the workbooks (see locked), saying so if it waits."""
    return locked(
        *paths,
        on_wait=lambda p: progress.note(f"waiting: another excelnet process is working on {p}"),
    )
