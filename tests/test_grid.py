"""A sheet's values as the compiler holds them (excelnet/formula/grid.py): filled in bulk, read
back cell for cell as each literal says, dense or sparse alike."""

from __future__ import annotations

import numpy as np

from excelnet.formula.grid import Grid, python_to_cell
from excelnet.formula.parse import Error


def test_bulk_fill_reads_back_every_kind():
    rng = np.random.default_rng(3)
    kinds = [1.5, -0.0, "text", "", True, False, Error("#N/A"), np.float64(2.5), float("nan")]
    values = {}
    for r in range(60):
        for c in range(7):
            if rng.random() < 0.8:
                values[(r, c)] = kinds[int(rng.integers(len(kinds)))]
    dense = Grid(values, 60, 7)
    sparse = Grid(values, 1_048_576, 16_384)
    assert dense.dense and not sparse.dense
    for r in range(61):
        for c in range(8):
            want = python_to_cell(values.get((r, c)))
            for grid in (dense, sparse):
                x, k, t = grid.window(np.array([[[r]]]), np.array([[[c]]]))
                got = (float(x.item()), int(k.item()), t.item())
                assert got[1:] == want[1:] and (got[0] == want[0] or np.isnan(want[0])), (r, c)
