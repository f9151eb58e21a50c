"""Shared fixtures. LibreOffice is the oracle: with CI=true a missing soffice fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from excelnet.libreoffice import convert, soffice


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
