"""Background work of a service instance (chain reconciliation, anchoring): one loop shape."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable

from chain.errors import ChainError
from materials_api.platform.storage import StorageError

if TYPE_CHECKING:
    from materials_api.platform.coordination import LeaderLease

log = logging.getLogger("qiyema.background")


class BackgroundLoop:
    """Calls `step()` every `interval` seconds on its own thread until stopped. A step that
    fails is logged and tried again next time: the loop itself never dies."""

    def __init__(self, name: str, step: Callable[[], object], interval: float, *,
                 lease: "LeaderLease | None" = None):
        self.name = name
        self.lease = lease  # when given, steps run only while this instance holds it
        self.step = step
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"qiyema-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.lease is not None and not self.lease.is_leader:
                self._stop.wait(self.interval)
                continue
            try:
                self.step()
            except (ChainError, StorageError) as exc:
                log.warning("%s deferred: %s", self.name, exc)
            except Exception:  # noqa: BLE001 - the loop must survive to try again
                log.exception("%s failed", self.name)
            self._stop.wait(self.interval)
