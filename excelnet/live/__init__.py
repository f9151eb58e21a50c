"""The live workbook: one open in Excel or LibreOffice, read through xlwings into the engine's
Book (source.py) and trained in place (xl.py: the Train button, `excelnet live`); LibreOffice
as an xlwings engine over UNO (uno_engine.py, with its helper process uno_bridge.py)."""
