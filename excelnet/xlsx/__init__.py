"""The workbook as a file: read into the engine's Book (read.py, scan.py), checked and locked
(files.py), written atomically (atomic.py), patched in place with changed cells and added
sheets (writeback.py, zipcopy.py, sheets.py, styles.py), recalculated (recalc.py: calc and
check), and opened by headless LibreOffice, the tests' oracle (soffice.py)."""
