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
