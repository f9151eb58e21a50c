"""Where a model comes from besides a file (excelnet/formula/book.py reads files): a workbook
open in Excel or LibreOffice, through xlwings (live.py), and LibreOffice's xlwings engine over
UNO (libreoffice.py, with its helper process uno_bridge.py)."""
