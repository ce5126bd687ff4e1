"""A fair limit on heavy work running at once in one process: short work first, long work in turns.

On a 2-core server two analyses at once already share the cores; more only make everyone
slower together. The gate lets `limit` run and queues the rest, in two lanes:

- short work (one photo, one Grad-CAM, one region study) takes the next free place before any
  long work, so a photo never waits behind an evaluation or a video;
- long work (an evaluation, a video) calls `Turn.checkpoint()` between chunks: there it gives
  its place to any waiting short work, and to waiting long work once it has run `slice_s`
  seconds, then queues again at the front of its lane (short waiters) or the back (long ones);
  it resumes only after `quiet_s` without short work, so a photo's next step (its Grad-CAM,
  asked for right after its faces) does not wait behind another chunk.

Each owner (a visitor's session) holds at most one long job; `stop(owner)`, or a `should_stop`
that answers True, ends that owner's queued and running work at its next wait or checkpoint
(raising Stopped). Waiters hear their place and an estimated wait (`Place`) about every second.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

SHORT = "short"
LONG = "long"
LANES = (SHORT, LONG)
TELL_EVERY_S = 1.0  # a waiter hears its place at least this often (a page redraws: a Stop is noticed)
SLICE_S = 5.0  # long work gives way to waiting long work after this long
QUIET_S = 1.0  # long work resumes only once no short work has finished for this long


class Stopped(Exception):
    """The work's owner stopped it (pressed Stop, or left): its place is given up."""


class GateRefused(Exception):
    """The gate will not queue this work; the message says why and what to do instead."""


@dataclass(frozen=True)
class Place:
    """A waiter's place in line: how many run or wait ahead of it, and about how long it waits."""

    ahead: int
    wait_s: float


@dataclass
class _Ticket:
    number: int
    lane: str
    owner: str | None
    estimate_s: float
    should_stop: Callable[[], bool] | None
    stopped: bool = False
    running_since: float | None = None
    worked_s: float = 0.0  # seconds run in earlier turns
    order: float = field(default=0.0)  # place in its lane's queue (lower first)

    def remaining_s(self, now: float) -> float:
        running = now - self.running_since if self.running_since is not None else 0.0
        return max(self.estimate_s - self.worked_s - running, 0.0)


class Turn:
    """The running work's hold on the gate: call checkpoint() between chunks of long work."""

    def __init__(self, gate: Gate, ticket: _Ticket, on_wait: Callable[[Place], None] | None) -> None:
        self._gate = gate
        self._ticket = ticket
        self._on_wait = on_wait
        self.yields = 0  # how often this work gave its place to others

    def checkpoint(self) -> None:
        """Raise Stopped if the owner stopped; give the place to waiting work that should go first."""
        self._gate._checkpoint(self, self._ticket, self._on_wait)


class Gate:
    """Admits at most `limit` holders at once, short work before long work. Thread-safe.

    `limit` may be changed while the gate is in use (a new setting applies at the next admission).
    """

    def __init__(
        self, limit: int, poll_seconds: float = 0.5, slice_s: float = SLICE_S, quiet_s: float = QUIET_S
    ) -> None:
        if limit < 1:
            raise ValueError(f"a gate admits at least 1 at a time, not {limit}")
        self.limit = limit
        self.poll_seconds = poll_seconds
        self.slice_s = slice_s
        self.quiet_s = quiet_s
        self._short_done_at = float("-inf")
        self._running: list[_Ticket] = []
        self._queued: list[_Ticket] = []
        self._numbers = itertools.count()
        self._changed = threading.Condition()

    # --- What the page reads -------------------------------------------------------------

    @property
    def running(self) -> int:
        with self._changed:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._queued)

    def waiting_in(self, lane: str) -> int:
        with self._changed:
            return sum(t.lane == lane for t in self._queued)

    def stop(self, owner: str) -> int:
        """Stop every queued and running job of `owner`; returns how many were stopped."""
        with self._changed:
            found = [t for t in self._running + self._queued if t.owner == owner and not t.stopped]
            for ticket in found:
                ticket.stopped = True
            self._changed.notify_all()
            return len(found)

    # --- Admission -----------------------------------------------------------------------

    @contextmanager
    def admit(
        self,
        on_wait: Callable[[Place], None] | None = None,
        *,
        lane: str = SHORT,
        owner: str | None = None,
        estimate_s: float = 1.0,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Turn]:
        """Hold one place while the block runs; until then call on_wait(Place) about every second.

        on_wait runs without the gate's lock held; if it raises (a page run stopped by its
        visitor), the place is given up and the error passes on. Raises GateRefused when
        `owner` already holds a long job and this is another, Stopped when stopped meanwhile.
        """
        if lane not in LANES:
            raise ValueError(f"lane must be one of {LANES}, not {lane!r}")
        with self._changed:
            if (
                lane == LONG
                and owner is not None
                and any(t.lane == LONG and t.owner == owner for t in self._running + self._queued)
            ):
                raise GateRefused(
                    "You already have a long job (an evaluation or a video) running or waiting: "
                    "stop it or wait for it to finish first."
                )
            ticket = _Ticket(next(self._numbers), lane, owner, max(estimate_s, 0.0), should_stop)
            ticket.order = ticket.number
            self._queued.append(ticket)
        self._wait_for_turn(ticket, on_wait)
        turn = Turn(self, ticket, on_wait)
        try:
            yield turn
        finally:
            self._leave(ticket)

    def _leave(self, ticket: _Ticket) -> None:
        with self._changed:
            if ticket in self._running:
                self._running.remove(ticket)
                if ticket.lane == SHORT:
                    self._short_done_at = time.monotonic()
            if ticket in self._queued:
                self._queued.remove(ticket)
            self._changed.notify_all()

    def _next_up(self) -> _Ticket | None:
        """The queued ticket that runs next: the first short one, else the first long one once
        short work has been quiet for `quiet_s` (None until then)."""
        shorts = sorted((t for t in self._queued if t.lane == SHORT), key=lambda t: t.order)
        if shorts:
            return shorts[0]
        if time.monotonic() - self._short_done_at < self.quiet_s:
            return None
        longs = sorted((t for t in self._queued if t.lane == LONG), key=lambda t: t.order)
        return longs[0] if longs else None

    def _stopping(self, ticket: _Ticket) -> bool:
        if not ticket.stopped and ticket.should_stop is not None:
            ticket.stopped = bool(ticket.should_stop())
        return ticket.stopped

    def _wait_for_turn(self, ticket: _Ticket, on_wait: Callable[[Place], None] | None) -> None:
        """Block until `ticket` (queued) runs; its place is given up if this raises."""
        told_at, told = 0.0, None
        try:
            while True:
                if self._stopping(ticket):
                    raise Stopped("stopped while waiting for a turn")
                with self._changed:
                    if len(self._running) < self.limit and self._next_up() is ticket:
                        self._queued.remove(ticket)
                        ticket.running_since = time.monotonic()
                        self._running.append(ticket)
                        self._changed.notify_all()
                        return
                    place = self._place(ticket)
                    now = time.monotonic()
                    if on_wait is None or (place == told and now - told_at < TELL_EVERY_S):
                        self._changed.wait(self.poll_seconds)
                        continue
                told, told_at = place, now
                on_wait(place)
        except BaseException:
            self._leave(ticket)
            raise

    def _place(self, ticket: _Ticket) -> Place:
        """Who is ahead of a queued ticket, and a rough wait: work ahead shared over `limit` places."""
        now = time.monotonic()
        if ticket.lane == SHORT:
            queued = [t for t in self._queued if t.lane == SHORT and t.order < ticket.order]
        else:
            queued = [
                t for t in self._queued if t.lane == SHORT or (t.lane == LONG and t.order < ticket.order)
            ]
        busy = 0.0
        for running in self._running:
            remaining = running.remaining_s(now)
            # A long job gives way to short work at its next checkpoint, about a slice away at most.
            busy += (
                min(remaining, self.slice_s) if ticket.lane == SHORT and running.lane == LONG else remaining
            )
        busy += sum(t.remaining_s(now) for t in queued)
        free = self.limit - len(self._running)
        wait = 0.0 if free > 0 and not queued else busy / self.limit
        return Place(len(self._running) + len(queued), round(wait, 1))

    # --- Long work's turns ---------------------------------------------------------------

    def _checkpoint(self, turn: Turn, ticket: _Ticket, on_wait: Callable[[Place], None] | None) -> None:
        if self._stopping(ticket):
            raise Stopped("stopped")
        if ticket.lane == SHORT:
            return
        with self._changed:
            now = time.monotonic()
            held = now - (ticket.running_since or now)
            short_waiting = any(t.lane == SHORT for t in self._queued)
            long_waiting = any(t.lane == LONG for t in self._queued)
            if not (short_waiting or (long_waiting and held >= self.slice_s)):
                return
            # Give the place back and queue again: at the front of the long lane when only short
            # work is waiting (it keeps its turn among long jobs), at the back after a full slice.
            self._running.remove(ticket)
            ticket.worked_s += held
            ticket.running_since = None
            longs = [t.order for t in self._queued if t.lane == LONG]
            if long_waiting and held >= self.slice_s:
                ticket.order = max(longs) + 1
            else:
                ticket.order = min(longs, default=ticket.order + 1) - 1
            self._queued.append(ticket)
            turn.yields += 1
            self._changed.notify_all()
        self._wait_for_turn(ticket, on_wait)
