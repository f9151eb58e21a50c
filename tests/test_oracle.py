"""One test per workbook saved by Microsoft Excel (../shared/oracle/, as IronCalc tests its
engine): its formula cells' stored values stripped, recalculated by `excelnet calc`, compared
with Excel's values — numbers within 1e-9 relative, text, booleans and error values exactly.
Formulas outside what excelnet reads (dynamic arrays, the LAMBDA family) are counted apart
(tests/oracle.py). The table in docs/functions.md is this run's."""

from __future__ import annotations

import pytest

from excelnet.formula.functions import markdown
from scripts.readme import FUNCTIONS, section
from tests.oracle import category, corpus_files, run, table

FILES = corpus_files()


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("oracle")
    return {path: run(path, tmp) for path in FILES}


def _ids(path) -> str:
    return f"{category(path)}/{path.stem}"


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_recalculated_like_excel(path, results):
    result = results[path]
    assert result.error is None, result.error  # no file crashes excelnet calc
    shown = "\n".join(
        f"{c} {f}: Excel {w!r}, excelnet {g!r}" for c, f, w, g in result.different[:15]
    )
    assert not result.different, f"{len(result.different)} cells differ:\n{shown}"


def test_docs_show_this_table_and_the_library(results):
    text = FUNCTIONS.read_text(encoding="utf-8")
    assert section(text, "oracle", table(list(results.values()))) == text, (
        "the oracle table in docs/functions.md is out of date: run python scripts/readme.py"
    )
    assert section(text, "functions", markdown()) == text, (
        "the list of functions in docs/functions.md is out of date: run python scripts/readme.py"
    )
