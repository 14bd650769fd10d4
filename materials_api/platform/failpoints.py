"""Crash injection for the crash-safety tests: `QIYEMA_FAILPOINT=<name>` makes the process kill
itself with SIGKILL when it reaches that point, exactly as a power cut would. Unset (always, in
production) it costs one dictionary look-up."""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    if os.environ.get("QIYEMA_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
