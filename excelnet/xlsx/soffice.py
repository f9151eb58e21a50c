"""Real LibreOffice, headless: the oracle that recalculates workbooks (tests, bench, pictures).

Each call gets a fresh user profile (parallel runs never share one) that tells Calc to
recalculate every formula on load instead of trusting the file's cached values.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from excelnet.errors import ExcelnetError

# 0 = always recalculate on load (the default, 1, never does for files Excel "wrote").
_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
 <prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
 <prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert(files: list[Path], outdir: Path, to: str = "xlsx", timeout: float = 300) -> list[Path]:
    """Open each file in LibreOffice (recalculating every formula) and save it as `to` into
    outdir, all in one soffice start. Returns the output paths, in order."""
    exe = soffice()
    if exe is None:
        raise ExcelnetError("LibreOffice (soffice) is not installed")
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="excelnet-lo-") as profile:
        user = Path(profile, "user")
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(_PROFILE)
        cmd = [
            exe,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--norestore",
            "--nologo",
            "--convert-to",
            to,
            "--outdir",
            str(outdir),
            *map(str, files),
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = [outdir / (Path(f).stem + "." + to.split(":")[0]) for f in files]
    missing = [p for p in out if not p.exists()]
    if run.returncode or missing:
        raise ExcelnetError(
            f"LibreOffice failed to convert {missing or files}: "
            f"{run.stderr.strip() or run.stdout.strip()}"
        )
    return out


@contextmanager
def uno_office():
    """A headless LibreOffice with a fresh profile, listening on a free port; yields its UNO
    component context. Needs the `uno` module (Debian's python3-uno, importable from
    /usr/bin/python3 only): the scripts that drive LibreOffice's own dialogs' engines run
    there (bench/lo_solver.py, tests/lo_make.py)."""
    import socket
    import time

    import uno

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="excelnet-uno-") as profile:
        office = subprocess.Popen(
            [
                soffice(),
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--norestore",
                "--nologo",
                f"--accept=socket,host=127.0.0.1,port={port};urp;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            local = uno.getComponentContext()
            resolver = local.ServiceManager.createInstanceWithContext(
                "com.sun.star.bridge.UnoUrlResolver", local
            )
            url = f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext"
            for _ in range(240):
                try:
                    ctx = resolver.resolve(url)
                    break
                except Exception:
                    time.sleep(0.25)
            else:
                raise ExcelnetError("soffice did not start")
            yield ctx
        finally:
            office.terminate()
            try:
                office.wait(timeout=20)
            except subprocess.TimeoutExpired:
                office.kill()


def uno_load(ctx, path: Path | None = None):
    """Open a workbook (hidden), or a new one when path is None; returns the document."""
    import uno

    desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    hidden = uno.createUnoStruct("com.sun.star.beans.PropertyValue")
    hidden.Name, hidden.Value = "Hidden", True
    url = uno.systemPathToFileUrl(str(Path(path).resolve())) if path else "private:factory/scalc"
    return desktop.loadComponentFromURL(url, "_blank", 0, (hidden,))
