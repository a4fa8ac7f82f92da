"""Polling with a deadline, for tests that wait on another thread or process."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(cond: Callable[[], bool], timeout: float = 5.0, interval: float = 0.005) -> bool:
    """True as soon as ``cond()`` is; its last answer once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()
