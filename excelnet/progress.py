"""What a long command is doing, on stderr: each phase (read, compile, train, write) and the
epochs of a fit. On a terminal, rich's spinner and bar, gone when done; elsewhere (a log, a
pipe, CI), plain lines — only for a phase still running after a second or two, and a line
every ten seconds while a fit trains, so that quick commands print nothing extra.

    progress = Progress()                     # the CLI's; the API's default is Silent()
    with progress.phase("reading book.xlsx"):
        ...
    tick = progress.epochs("nn", 1000)        # tick(epoch, loss) after each step or chunk
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

PLAIN_DELAY = 2.0  # seconds a phase runs before a plain line says so
PLAIN_EVERY = 10.0  # seconds between plain lines while a fit trains

Tick = Callable[[int, float], None]


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:.0f} s"


class Silent:
    """No progress shown (the API's default)."""

    @contextlib.contextmanager
    def phase(self, text: str) -> Iterator[None]:
        yield

    def epochs(self, sheet: str, total: int) -> Tick:
        return lambda epoch, loss: None

    def done(self) -> None:
        """The fit that `epochs` started is over."""

    def note(self, text: str) -> None:
        pass


class Progress(Silent):
    """Progress on `stream` (stderr): rich on a terminal, plain lines elsewhere."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._bar = None

    def _line(self, text: str) -> None:
        print(f"excelnet: {text}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._line(text)

    @contextlib.contextmanager
    def phase(self, text: str) -> Iterator[None]:
        start = time.monotonic()
        if self.live:
            from rich.console import Console

            with Console(file=self.stream).status(text):
                yield
            return
        said = threading.Event()

        def say() -> None:
            said.set()
            self._line(f"{text} …")

        timer = threading.Timer(PLAIN_DELAY, say)
        timer.daemon = True
        timer.start()
        try:
            yield
        except BaseException:
            timer.cancel()  # the error says what happened; not "done"
            raise
        timer.cancel()
        if said.is_set():
            self._line(f"{text}: done in {time.monotonic() - start:.1f} s")

    def epochs(self, sheet: str, total: int) -> Tick:
        start = time.monotonic()
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            bar = Bar(
                TextColumn(f"fitting {sheet}"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,} epochs {task.fields[loss]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            bar.start()
            self._bar = bar
            task = bar.add_task(sheet, total=total, loss="")
            shown = [0.0]
            first = [True]

            def tick(epoch: int, loss: float) -> None:
                now = time.monotonic()
                if first[0]:  # the rate is measured from here: compiling came before
                    first[0] = False
                    bar.reset(task, total=total, completed=epoch, loss=f"loss {loss:.5g}")
                    return
                if now - shown[0] > 0.1 or epoch == total:  # redraws cost; ten a second do
                    shown[0] = now
                    bar.update(task, completed=epoch, loss=f"loss {loss:.5g}")

            return tick
        last = [start + PLAIN_DELAY - PLAIN_EVERY]
        first: list[tuple[float, int]] = []  # the first tick: after compiling, tracing

        def tick(epoch: int, loss: float) -> None:
            now = time.monotonic()
            if not first:
                first.append((now, epoch))
            if now - last[0] >= PLAIN_EVERY and epoch < total:
                last[0] = now
                spent = now - start
                # the rate of the steps since the first tick, not of the compiling before it:
                # no estimate until there is one
                t0, e0 = first[0]
                left = ""
                if epoch > e0 and now > t0:
                    rest = (now - t0) / (epoch - e0) * (total - epoch)
                    left = f", about {_duration(rest)} left"
                self._line(
                    f"fitting {sheet}: epoch {epoch:,} of {total:,}, loss {loss:.5g} "
                    f"({_duration(spent)} so far{left})"
                )

        return tick

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
