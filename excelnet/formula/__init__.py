"""Spreadsheet formulas → torch: parse (parse.py), read a workbook (book.py), compile the
cells between the Solver's adjustable cells and its objective (compile.py), evaluate them with
Excel's semantics (values.py, functions.py)."""
