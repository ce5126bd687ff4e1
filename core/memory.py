"""Hand freed memory back to the operating system after work on a large photo.

glibc keeps freed blocks below its (self-raising) mmap threshold in per-thread arenas, so a
server that decoded a few 49-megapixel photos in several threads stays gigabytes larger
than it needs long after the photos are gone. malloc_trim(0) returns those free pages.
Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False where there is no malloc_trim."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
