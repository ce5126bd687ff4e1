"""Hand freed memory back to the operating system after work on a large photo.

glibc keeps freed blocks below its (self-raising) mmap threshold in per-thread arenas, so a
server that decoded a few 49-megapixel photos in several threads stays gigabytes larger
than it needs long after the photos are gone. malloc_trim(0) returns those free pages.
Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
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


def freeze_long_lived() -> None:
    """Put every object alive now (imported libraries, loaded models) out of the cyclic garbage
    collector's sight, so later full collections only walk what is new.

    Streamlit runs gc.collect(2) after every script run; in a process holding torch and its kin
    each such collection walked millions of objects while holding the GIL, and the Live page's
    once-a-second refresh made that starve its analysis thread (py-spy: a quarter of the server's
    samples). Called after the detector and each model load; garbage made later is still collected.
    """
    gc.collect()
    gc.freeze()
