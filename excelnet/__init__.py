"""excelnet: neural nets as live spreadsheet formulas.

    import excelnet
    excelnet.build_titanic("titanic.xlsx", seed=0)      # the lesson's workbook
    excelnet.fit("titanic.xlsx", sheet="nn")            # train its formulas, write back

The API is imported lazily so that `excelnet --help` starts fast (no pandas, no torch).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "build_titanic": "excelnet.writer.titanic",
    "build_table": "excelnet.writer.table",
    "predict": "excelnet.predictions",
    "build_quadratic": "excelnet.writer.lessons",
    "build_relu": "excelnet.writer.lessons",
    "build_double_relu": "excelnet.writer.lessons",
    "fit": "excelnet.fitting.pipeline",
    "evaluate": "excelnet.fitting.pipeline",
    "lr_sweep": "excelnet.fitting.pipeline",
    "compare": "excelnet.fitting.pipeline",
    "FitOptions": "excelnet.fitting.options",
    "load_titanic": "excelnet.data",
    "ExcelnetError": "excelnet.errors",
}
__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'excelnet' has no attribute {name!r}")
