"""Keep the server's C heap small: hand freed memory back, and few heap arenas.

glibc keeps freed blocks below its (self-raising) mmap threshold in per-thread arenas, so a
server that decoded a few 49-megapixel photos in several threads stays gigabytes larger
than it needs long after the photos are gone. malloc_trim(0) returns those free pages, and
limiting the arenas keeps each new Streamlit script thread from growing a heap of its own.
Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter for the most heap arenas (malloc.h)
SERVER_ARENAS = 2


@lru_cache(maxsize=1)
def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False where there is no malloc_trim."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


def limit_heap_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Let glibc create at most `arenas` heap arenas from now on; False where it cannot be set.

    glibc gives threads their own arenas (up to 8 per core), and each keeps the high-water mark
    of what its threads once held. Streamlit runs every script run in a new thread, so with many
    visitors each photo's detection grew another arena: the 20-session load test peaked at 2.2 GB,
    and 1.5 GB with two arenas at the same speed (`python -m tests.harness.loadtest --sessions 20`).
    Call it early: arenas made before stay.
    """
    mallopt = getattr(_libc(), "mallopt", None)
    return bool(mallopt is not None and mallopt(M_ARENA_MAX, arenas) == 1)


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
