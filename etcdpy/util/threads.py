"""The OS name of the current thread, so that ``top -H``, ``/proc/PID/task/*/comm`` and the
benchmarks' per-thread CPU tell etcdpy's threads apart (Python before 3.14 names a thread
only for Python itself; the kernel sees every thread as ``python``)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

_LINUX_NAME_MAX = 15  # bytes, without the terminating NUL


def _load_setname() -> Callable[[bytes], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.pthread_setname_np
        self_fn = libc.pthread_self
    except (OSError, AttributeError):  # not glibc/Linux: names stay as they are
        return None
    self_fn.restype = ctypes.c_ulong
    fn.argtypes = [ctypes.c_ulong, ctypes.c_char_p]
    fn.restype = ctypes.c_int

    def setname(name: bytes) -> int:
        return int(fn(self_fn(), name))

    return setname


_SETNAME = _load_setname()


def set_os_thread_name(name: str) -> bool:
    """Name the calling thread for the OS (truncated to Linux's 15 bytes); False when the
    platform offers no way to."""
    if _SETNAME is None:
        return False
    raw = name.encode("utf-8", "replace")[:_LINUX_NAME_MAX]
    return _SETNAME(raw) == 0
