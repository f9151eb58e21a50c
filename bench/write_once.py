"""One write-back in a process of its own, so that the benchmark reads its peak memory (the
resident set, as the operating system counts it, with no tracing to slow it down):

    python -m bench.write_once excelnet|openpyxl BOOK UPDATES.pickle

Prints the seconds the write took (imports and unpickling the updates not counted) and the
process's peak resident memory in MiB (VmHWM: unlike getrusage's maxrss, it does not carry
over the peak of the benchmark process this one was forked from).
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path


def main() -> None:
    how, book, pickled = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    updates = pickle.loads(pickled.read_bytes())
    if how == "excelnet":
        from excelnet.xlsx.writeback import write_values

        start = time.perf_counter()
        write_values(book, updates)
    else:  # what a hand-written script does: load, set the parameters, save
        import openpyxl

        start = time.perf_counter()
        wb = openpyxl.load_workbook(book)
        for (r, c), v in updates["nn"].items():
            if r < 3:  # the parameter rows
                wb["nn"].cell(r + 1, c + 1).value = v
        wb.save(book)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    print(seconds, peak_kib / 1024)


if __name__ == "__main__":
    main()
