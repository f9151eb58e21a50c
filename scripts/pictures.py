"""Render the docs' pictures of the lesson charts with LibreOffice (no hand drawing):
build each lesson workbook, fit a copy, print the model sheets to PDF, then to PNG.

    python scripts/pictures.py          # writes docs/images/*.png (needs soffice, pdftoppm)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import openpyxl

from excelnet.fitting.pipeline import fit
from excelnet.writer.lessons import TABLE_ROW, build_double_relu, build_quadratic, build_relu
from excelnet.xlsx.soffice import convert

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        books = {"quadratic-start": build_quadratic(t / "quadratic-start.xlsx")}
        for name, build in (
            ("quadratic-fitted", build_quadratic),
            ("relu-fitted", build_relu),
            ("double-relu-fitted", build_double_relu),
        ):
            books[name] = build(t / f"{name}.xlsx")
            fit(books[name], history=False)
        for pdf in convert(list(books.values()), t / "pdf", to="pdf"):
            # the first page, down to the last sample: parameters, loss, chart and the data
            # (printed one page wide, every lesson sheet at the same scale: ~11 px a row)
            samples = openpyxl.load_workbook(books[pdf.stem], read_only=True).worksheets[0].max_row
            height = 140 + 11 * (samples - TABLE_ROW - 1)
            subprocess.run(
                [
                    "pdftoppm",
                    "-png",
                    "-r",
                    "80",
                    "-f",
                    "1",
                    "-l",
                    "1",
                    "-singlefile",
                    "-x",
                    "0",
                    "-y",
                    "50",
                    "-W",
                    "880",
                    "-H",
                    str(height),
                    str(pdf),
                    str(t / pdf.stem),
                ],
                check=True,
            )
            shutil.copy(t / f"{pdf.stem}.png", OUT / f"{pdf.stem}.png")
            print(f"wrote {OUT / (pdf.stem + '.png')}")


if __name__ == "__main__":
    main()
