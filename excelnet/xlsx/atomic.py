"""Atomic file replacement: a file is either the old one or the complete new one, never half.

The new file is written beside the target under excelnet's lock (see excelnet.xlsx.files), with the
target's mode and owner, flushed to disk, and renamed over it. A symlink is written through:
its target is replaced and the link stays. Temporary files that a killed excelnet left beside
the target are removed first (under the lock, no live process is writing them).
"""

from __future__ import annotations

import contextlib
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
            yield Path(tmp)
            _keep_mode_and_owner(Path(tmp), real)
            with open(tmp, "rb+") as f:  # on disk before the rename: old-or-new survives a crash
                os.fsync(f.fileno())
            try:
                os.replace(tmp, real)
            except OSError as e:
                raise ExcelnetError(f"{target}: cannot replace it: {e.strerror.lower()}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


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
