"""The reference functions on the parameters' path: OFFSET, INDIRECT, INDEX and CHOOSE with
arguments that do not depend on the parameters pass gradients through the cells they pick;
ROW, COLUMNS and friends read positions. Values and gradients against LibreOffice."""

from __future__ import annotations

import numpy as np

from tests.libreoffice_check import check_formulas

FORMULAS = [
    "OFFSET({P},0,1)*{P}",  # Q, picked by position
    "SUM(OFFSET({P},0,0,1,2))*{Q}",  # P+Q as a range OFFSET made
    "INDIRECT(ADDRESS(ROW(),2))*{P}",  # Q again, by its address as text
    "SUM({P}:OFFSET({P},0,1))^2",  # a range between a cell and a reference a function made
    "INDEX({PQ},1,2)^2+{P}",
    "CHOOSE(2,{P},{Q})*{P}",
    "COLUMN({Q})*{P}+COLUMNS({PQ})*{Q}",
]


def test_reference_functions_pass_gradients_like_libreoffice(tmp_path, recalc):
    params = np.array(
        [[1.3, -0.7], [0.4, 2.1], [-1.1, 0.6], [0.9, 0.8], [1.7, -0.2], [-0.5, 1.5], [0.3, 0.35]]
    )
    checked = check_formulas(FORMULAS, params, {"A": [1.0]}, tmp_path, recalc)
    assert checked == 2 * len(FORMULAS)  # every formula, in P and in Q
