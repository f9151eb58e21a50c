"""Ctrl-C during a fit, as Esc during Excel's Solver: the first stops the fit, which keeps the
best point so far and writes it ("Keep Solver Solution", with a note); a second, before the
write is done, stops everything and leaves the file unchanged (the write is atomic)."""

from __future__ import annotations

import signal
import threading


class Interrupt:
    """A context in which SIGINT asks the fit to stop (call the object: whether it was
    asked) instead of raising KeyboardInterrupt; the second raises it. Outside the main
    thread, or where someone else handles SIGINT, Ctrl-C keeps its usual meaning."""

    def __init__(self) -> None:
        self.count = 0
        self._old = None

    def __call__(self) -> bool:
        return self.count > 0

    def _handler(self, signum, frame) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
