"""An in-memory cache bounded in bytes and age: least recently used entries go first.

Streamlit's st.cache_data bounds entries by count, not size, and pickles every value in and
out; a cached photo analysis of a 49-megapixel upload then costs hundreds of megabytes per
entry and per read. Here each entry states its size, the total stays under `max_bytes`, and
values are shared as they are (callers treat them as read-only).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class BoundedCache:
    """A thread-safe LRU cache holding at most `max_bytes` of values, each for at most `ttl` seconds."""

    def __init__(
        self, max_bytes: int, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[Any, int, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held now (as the entries stated them)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: Hashable) -> Any | None:
        """The value under key (now the most recently used), or None when absent or expired."""
        with self._lock:
            self._expire()
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> bool:
        """Keep a value of `nbytes`, dropping the least recently used to make room.

        A value larger than the whole cache is not kept (returns False).
        """
        with self._lock:
            self._drop(key)
            self._expire()
            if nbytes > self.max_bytes:
                return False
            while self._entries and self._bytes + nbytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
            self._entries[key] = (value, nbytes, self._clock())
            self._bytes += nbytes
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def expire(self) -> None:
        """Drop the entries older than ttl (also done on every get and put)."""
        with self._lock:
            self._expire()

    def _expire(self) -> None:
        oldest_kept = self._clock() - self.ttl
        for key in [k for k, (_, _, stored) in self._entries.items() if stored < oldest_kept]:
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]
