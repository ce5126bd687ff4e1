"""The process's shared serving state: the gate, the result cache and the live-stream places.

Plain module-level singletons, not Streamlit cached resources: clearing Streamlit's caches (a
visitor's "Clear cache", or st.cache_resource.clear()) cannot replace them, so a new gate with
no queue, or fresh stream places, never appear behind the back of work already running.
Each accessor applies the current limits (core.serving.public) to the one object it returns.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from core.serving.bounded_cache import BoundedCache
from core.serving.gate import Gate
from core.serving.public import limits

SWEEP_SECONDS = 60.0
RESULT_TTL_S = 3600.0

_lock = threading.Lock()
_gate: Gate | None = None
_results: BoundedCache | None = None
_streams: tuple[int, threading.BoundedSemaphore] | None = None


def gate() -> Gate:
    """The one gate on heavy work (FER_STUDIO_MAX_ANALYSES places), shared by every session."""
    global _gate
    with _lock:
        if _gate is None:
            _gate = Gate(limits().max_analyses)
        else:
            _gate.limit = limits().max_analyses
        return _gate


def results(on_sweep: Callable[[], object] | None = None) -> BoundedCache:
    """The one byte-bounded result cache (FER_STUDIO_CACHE_MB, an hour per entry).

    A daemon thread drops expired entries every minute (then calls on_sweep, e.g. to give
    freed memory back), so an hour holds even when nobody visits.
    """
    global _results
    with _lock:
        if _results is None:
            _results = BoundedCache(limits().cache_bytes, ttl=RESULT_TTL_S)
            _start_sweeper(_results, on_sweep)
        else:
            _results.max_bytes = limits().cache_bytes
        return _results


def _start_sweeper(cache: BoundedCache, on_sweep: Callable[[], object] | None) -> None:
    ref = weakref.ref(cache)
    stop = threading.Event()

    def sweep() -> None:
        while not stop.wait(SWEEP_SECONDS):
            alive = ref()
            if alive is None:
                return
            alive.expire()
            del alive
            if on_sweep is not None:
                on_sweep()

    threading.Thread(target=sweep, name="result-cache-sweeper", daemon=True).start()


def stream_slots() -> threading.BoundedSemaphore:
    """The places for live camera streams (FER_STUDIO_MAX_STREAMS), shared by every session.

    A changed setting makes a new set of places only when no stream holds one of the old.
    """
    global _streams
    count = limits().max_streams
    with _lock:
        if _streams is None or (_streams[0] != count and _all_free(_streams)):
            _streams = (count, threading.BoundedSemaphore(count))
        return _streams[1]


def _all_free(streams: tuple[int, threading.BoundedSemaphore]) -> bool:
    count, slots = streams
    taken = 0
    while taken < count and slots.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        slots.release()
    return taken == count


def reset() -> None:
    """Forget every shared object (tests only: a running server never calls this)."""
    global _gate, _results, _streams
    with _lock:
        if _results is not None:
            _results.clear()
        _gate, _results, _streams = None, None, None
