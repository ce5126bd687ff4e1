"""A limit on heavy work running at once in one process, first come first served.

On a 2-core server two analyses at once already share the cores; more only make everyone
slower together. The gate lets `limit` run and queues the rest, telling each waiter how many
others are ahead of it (running or queued earlier) while it waits.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Gate:
    """Admits at most `limit` holders at once; the others wait in arrival order. Thread-safe."""

    def __init__(self, limit: int, poll_seconds: float = 0.5) -> None:
        if limit < 1:
            raise ValueError(f"a gate admits at least 1 at a time, not {limit}")
        self.limit = limit
        self.poll_seconds = poll_seconds
        self._running = 0
        self._queue: deque[int] = deque()
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    @property
    def running(self) -> int:
        with self._changed:
            return self._running

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._queue)

    def _ahead(self, ticket: int) -> int:
        return self._running + self._queue.index(ticket)

    @contextmanager
    def admit(self, on_wait: Callable[[int], None] | None = None) -> Iterator[None]:
        """Hold one place while the block runs; until then call on_wait(others ahead) on each change.

        on_wait runs without the gate's lock held; if it raises (a page run stopped by its
        visitor), the place in the queue is given up and the error passes on.
        """
        with self._changed:
            ticket = next(self._tickets)
            self._queue.append(ticket)
        try:
            told = None
            while True:
                with self._changed:
                    if self._running < self.limit and self._queue[0] == ticket:
                        self._queue.popleft()
                        self._running += 1
                        self._changed.notify_all()
                        break
                    ahead = self._ahead(ticket)
                    if ahead == told or on_wait is None:
                        self._changed.wait(self.poll_seconds)
                        continue
                told = ahead
                on_wait(ahead)
        except BaseException:
            with self._changed:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._changed.notify_all()
            raise
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()
