"""The formula engine, which imports nothing of the application around it: formulas parsed
(parse.py) over a workbook's cells (book.py, filled by a source), grouped into blocks (graph.py),
evaluated with Excel's semantics (values.py, functions/) as torch computations
(evaluator.py), a Solver model compiled for training (model.py), a whole workbook calculated
(calculation.py)."""
