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
