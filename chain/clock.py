"""One clock for everything that expires: consent grants, dynamic codes and their nonces, the
background lease, the nonce floor, sign-in lock-outs, the scan caches, the mirror's head age
and the chain client's circuit breaker.

The service reads time only through a `Clock` (the runtime's, `SYSTEM` in production), so a
test moves time forward with `MovableClock.advance` instead of sleeping past a boundary. Wall
time (`time`) is what is stored and compared with other machines; `monotonic` measures intervals
inside one process. A moved clock moves both."""

from __future__ import annotations

import threading
import time as _time


class Clock:
    """The system's clock."""

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()


SYSTEM = Clock()


class MovableClock(Clock):
    """The system's clock plus an offset that only grows: time still passes on its own, and
    `advance` makes seconds pass at once (for tests; a production runtime never has one)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._offset += seconds

    def time(self) -> float:
        return _time.time() + self._offset

    def monotonic(self) -> float:
        return _time.monotonic() + self._offset
