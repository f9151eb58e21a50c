"""Atomic file replacement: a file is either the old one or the complete new one, never half.

The new file is written beside the target under excelnet's lock (see excelnet.xlsx.files), with the
target's mode and owner, flushed to disk, and renamed over it. A symlink is written through:
its target is replaced and the link stays. Temporary files that a killed excelnet left beside
the target are removed first (under the lock, no live process is writing them).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from excelnet.errors import ExcelnetError
from excelnet.xlsx.files import check_target, euid, locked, real_target, stale_temps, temp_prefix


@contextlib.contextmanager
def atomic_path(target: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename.
    `force` replaces a read-only file or another user's (see excelnet.xlsx.files.check_target)."""
    target = Path(target)
    check_target(target, force)
    real = real_target(target)
    folder = real.parent if str(real.parent) else Path(".")
    with locked(target):
        for stale in stale_temps(real):
            with contextlib.suppress(OSError):
                os.unlink(stale)
        try:
            fd, tmp = tempfile.mkstemp(prefix=temp_prefix(real), suffix=".tmp", dir=folder)
        except OSError as e:
            raise ExcelnetError(
                f"{target}: cannot write in folder {folder}: {e.strerror.lower()}"
            ) from None
        os.close(fd)
        try:
            try:
                yield Path(tmp)
                _keep_mode_and_owner(Path(tmp), real)
                with open(tmp, "rb+") as f:  # on disk before the rename: old-or-new survives
                    os.fsync(f.fileno())
            except Exception as e:
                full = write_failure(e)
                if full is None:
                    raise
                _let_go(e)
                what = "the file is as it was" if real.exists() else "nothing was written"
                raise ExcelnetError(f"{target}: cannot write it: {full}; {what}") from None
            try:
                os.replace(tmp, real)
            except OSError as e:
                raise ExcelnetError(f"{target}: cannot replace it: {e.strerror.lower()}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _let_go(e: BaseException) -> None:
    """Close what the failed write left open, quietly: a zip file that XlsxWriter was writing
    tries to write its end again when it is collected, and would print a second error."""
    import gc
    import sys
    import traceback

    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        seen: set[int] = set()
        while e is not None and id(e) not in seen:  # the whole chain: the OSError holds it
            seen.add(id(e))
            traceback.clear_frames(e.__traceback__)
            e = e.__context__ or e.__cause__
        gc.collect()
    finally:
        sys.unraisablehook = hook


# errors of a write that the disk, not excelnet, causes: said in one line
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


def write_failure(e: BaseException) -> str | None:
    """The words for a failed write (a full disk, a quota, an I/O error), else None. XlsxWriter
    wraps the OSError in its FileCreateError."""
    for err in (e, *getattr(e, "args", ())[:1], e.__cause__, e.__context__):
        if isinstance(err, OSError) and err.errno in WRITE_ERRORS:
            return (err.strerror or os.strerror(err.errno)).lower()
    return None


def _keep_mode_and_owner(tmp: Path, real: Path) -> None:
    try:
        st = real.stat()
    except FileNotFoundError:  # a new file: the mode a plain open() would give it
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        return
    me = euid()
    if me is not None and (st.st_uid, st.st_gid) != (me, os.getegid()):
        with contextlib.suppress(PermissionError):  # root keeps anyone's; a user keeps the group
            os.chown(tmp, st.st_uid if me == 0 else -1, st.st_gid)
    os.chmod(tmp, st.st_mode & 0o7777)
