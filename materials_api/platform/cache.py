"""The one in-process cache: values kept `ttl` seconds (None: for ever) and at most
`max_entries` of them, the least recently used going first. Bounded whatever the number of keys:
a city scans millions of companies and records, and a cache that only grows is a leak (the soak
found one: a worker's memory rising for as long as new companies were scanned)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

from chain.clock import SYSTEM, Clock


class TtlCache:
    def __init__(self, ttl: float | None, max_entries: int = 50_000, clock: Clock = SYSTEM):
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, compute: Callable[[], Any], keep: Callable[[Any], bool] | None = None):
        """The cached value, or `compute()`'s — then kept, unless `keep(value)` says no (e.g.
        keep only positive answers, so that what appears shows at once)."""
        hit = self.peek(key)
        if hit is not None and (self.ttl is None or self.clock.monotonic() - hit[0] < self.ttl):
            return hit[1]
        value = compute()
        if keep is None or keep(value):
            self.put(key, value)
        return value

    def peek(self, key) -> tuple[float, Any] | None:
        """(when it was kept, the value), however old, or None."""
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key, value) -> None:
        now = self.clock.monotonic()
        with self._lock:
            self._data[key] = (now, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
            # Least recently used entries that have also expired go now, a few per put: memory
            # then follows the keys in use within `ttl`, not every key seen since the start.
            if self.ttl is not None:
                for _ in range(4):
                    oldest = next(iter(self._data.items()), None)
                    if oldest is None or oldest[0] == key or now - oldest[1][0] < self.ttl:
                        break
                    self._data.popitem(last=False)

    def forget(self, key) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)
