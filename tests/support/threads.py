"""Running a reader on another thread while a test writes, for lock-free read paths."""

from __future__ import annotations

import threading
from collections.abc import Callable


def with_reader(read_once: Callable[[], None], write: Callable[[], None]) -> None:
    """Call ``read_once`` in a loop on another thread while ``write()`` runs here, then
    re-raise the first error the reader met (an assertion in it fails the test)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                read_once()
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        write()
    finally:
        stop.set()
        t.join(timeout=10)
    if errors:
        raise errors[0]
