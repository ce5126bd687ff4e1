"""The fair gate with real threads: photos before long work, long work in turns, one long job per
visitor, Stop and a closed tab free the place. No timings are asserted: every wait is on an event
with a deadline, and orders are read from what the threads recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from core.serving.gate import LONG, SHORT, Gate, GateRefused, Place, Stopped

DEADLINE = 20.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


class LongJob(threading.Thread):
    """Long work in `chunks` chunks; each chunk waits for `step` to be set (then clears it)."""

    def __init__(self, gate: Gate, owner: str, log: list[str], chunks: int = 1000) -> None:
        super().__init__(daemon=True)
        self.gate, self.owner, self.log, self.chunks = gate, owner, log, chunks
        self.step = threading.Event()
        self.running = threading.Event()
        self.error: BaseException | None = None
        self.yields = 0
        self.places: list[Place] = []

    def run(self) -> None:
        try:
            with self.gate.admit(self.places.append, lane=LONG, owner=self.owner, estimate_s=30) as turn:
                self.running.set()
                for _ in range(self.chunks):
                    turn.checkpoint()
                    self.log.append(self.owner)
                    self.step.wait(DEADLINE)
                    self.step.clear()
                self.yields = turn.yields
        except BaseException as error:  # noqa: BLE001 - recorded for the test to read
            self.error = error


def photo(gate: Gate, name: str, log: list[str], places: list[Place] | None = None) -> threading.Thread:
    def run() -> None:
        with gate.admit(places.append if places is not None else None, lane=SHORT, owner=name):
            log.append(name)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_photo_goes_before_a_running_evaluation_at_its_next_chunk() -> None:
    gate = Gate(1, poll_seconds=0.01)
    log: list[str] = []
    job = LongJob(gate, "evaluator", log)
    job.start()
    wait_until(job.running.is_set, "the long job runs")
    places: list[Place] = []
    visitor = photo(gate, "photo", log, places)
    wait_until(lambda: gate.waiting == 1, "the photo waits")
    job.step.set()  # the chunk ends: the job's checkpoint hands its place to the photo
    visitor.join(DEADLINE)
    assert not visitor.is_alive(), "the photo got a turn while the long job was still unfinished"
    assert log.count("evaluator") >= 1 and "photo" in log
    assert job.is_alive() and job.error is None, "the long job is only paused"
    assert places and places[-1].ahead == 1, "the photo was told one runs ahead of it"
    wait_until(lambda: gate.running == 1 and gate.waiting == 0, "the long job runs again")
    gate.stop("evaluator")
    job.step.set()
    job.join(DEADLINE)
    assert isinstance(job.error, Stopped) and gate.running == 0


def test_photos_queued_behind_long_work_all_go_first_then_the_long_work_finishes() -> None:
    gate = Gate(1, poll_seconds=0.01)
    log: list[str] = []
    job = LongJob(gate, "video", log, chunks=2)
    job.start()
    wait_until(job.running.is_set, "the video runs")
    second = LongJob(gate, "second video", log, chunks=1)
    second.start()
    wait_until(lambda: gate.waiting == 1, "the second video waits")
    photos = [photo(gate, f"photo {n}", log) for n in range(5)]
    wait_until(lambda: gate.waiting == 6, "five photos wait behind it")
    job.step.set()
    for thread in photos:
        thread.join(DEADLINE)
    assert all(not thread.is_alive() for thread in photos)
    job.step.set()
    second.step.set()
    job.join(DEADLINE)
    second.join(DEADLINE)
    assert job.error is None and second.error is None
    photo_places = [log.index(f"photo {n}") for n in range(5)]
    assert max(photo_places) < log.index("second video"), "every photo went before the waiting long job"
    assert job.yields >= 1


def test_long_jobs_take_turns_after_a_slice() -> None:
    gate = Gate(1, poll_seconds=0.01, slice_s=0.0)  # every checkpoint is past the slice
    log: list[str] = []
    first = LongJob(gate, "a", log, chunks=3)
    first.start()
    wait_until(first.running.is_set, "a runs")
    second = LongJob(gate, "b", log, chunks=3)
    second.start()
    wait_until(lambda: gate.waiting == 1, "b waits")
    while first.is_alive() or second.is_alive():
        first.step.set()
        second.step.set()
        time.sleep(0.01)
        assert len(log) <= 6
    assert first.error is None and second.error is None
    assert sorted(log) == ["a"] * 3 + ["b"] * 3
    assert log != ["a"] * 3 + ["b"] * 3, "b ran before a had finished: they took turns"


def test_one_long_job_per_visitor() -> None:
    gate = Gate(2, poll_seconds=0.01)
    log: list[str] = []
    job = LongJob(gate, "visitor", log)
    job.start()
    wait_until(job.running.is_set, "the first job runs")
    with pytest.raises(GateRefused, match="already have a long job"), gate.admit(lane=LONG, owner="visitor"):
        pass
    with gate.admit(lane=SHORT, owner="visitor"):
        assert gate.running == 2, "a photo of the same visitor is fine"
    with gate.admit(lane=LONG, owner="someone else"):
        assert gate.running == 2
    gate.stop("visitor")
    job.step.set()
    job.join(DEADLINE)
    assert isinstance(job.error, Stopped) and gate.running == 0


def test_a_visitor_who_leaves_frees_the_queued_place_and_stops_the_running_work() -> None:
    gate = Gate(1, poll_seconds=0.01)
    log: list[str] = []
    left = threading.Event()
    running = LongJob(gate, "leaver", log)
    running.start()
    wait_until(running.running.is_set, "the leaver's job runs")
    queued_error: list[BaseException] = []

    def queued() -> None:
        try:
            with gate.admit(lane=SHORT, owner="leaver", should_stop=left.is_set):
                log.append("never")
        except Stopped as error:
            queued_error.append(error)

    waiter = threading.Thread(target=queued, daemon=True)
    waiter.start()
    wait_until(lambda: gate.waiting == 1, "the leaver's photo waits")
    left.set()  # the tab closes: its queued photo leaves the line without a turn
    waiter.join(DEADLINE)
    assert queued_error and gate.waiting == 0 and "never" not in log
    gate.stop("leaver")  # what a page does on Stop, and what should_stop does for running work
    running.step.set()
    running.join(DEADLINE)
    assert isinstance(running.error, Stopped) and gate.running == 0
    with gate.admit():
        assert gate.running == 1, "the place is free for the next visitor"


def test_a_waiter_hears_its_place_and_an_estimated_wait() -> None:
    gate = Gate(1, poll_seconds=0.01, slice_s=4.0)
    log: list[str] = []
    job = LongJob(gate, "evaluator", log)
    job.start()
    wait_until(job.running.is_set, "the long job runs")
    long_places: list[Place] = []

    def other_long_job() -> None:
        try:
            with gate.admit(long_places.append, lane=LONG, owner="other", estimate_s=10):
                log.append("other")
        except Stopped:
            log.append("other stopped")

    waiting_long = threading.Thread(target=other_long_job, daemon=True)
    waiting_long.start()
    short_places: list[Place] = []
    visitor = photo(gate, "photo", log, short_places)
    wait_until(lambda: bool(short_places) and bool(long_places), "both waiters are told their place")
    assert short_places[0].ahead == 1, "a photo has only the running job ahead"
    assert 0 < short_places[0].wait_s <= 4.0, "at most a slice: the long job gives way at its next chunk"
    assert long_places[-1].ahead >= 1 and long_places[-1].wait_s > short_places[0].wait_s
    gate.stop("other")
    waiting_long.join(DEADLINE)
    gate.stop("evaluator")
    job.step.set()
    job.join(DEADLINE)
    visitor.join(DEADLINE)
    assert "photo" in log and "other stopped" in log


def test_a_photos_next_step_goes_before_the_long_work_resumes() -> None:
    """A photo's faces, then its Grad-CAM right after: no chunk of long work runs between them."""
    gate = Gate(1, poll_seconds=0.01, quiet_s=3600.0)  # quiet until the test says otherwise
    log: list[str] = []
    job = LongJob(gate, "evaluator", log)
    job.start()
    wait_until(job.running.is_set, "the long job runs")
    steps_done = threading.Event()

    def photo_visitor() -> None:
        for step in ("faces", "grad-cam"):
            with gate.admit(lane=SHORT, owner="photo"):
                log.append(step)
        steps_done.set()

    visitor = threading.Thread(target=photo_visitor, daemon=True)
    visitor.start()
    wait_until(lambda: gate.waiting == 1, "the photo waits")
    job.step.set()
    wait_until(steps_done.is_set, "both steps ran")
    assert log[-2:] == ["faces", "grad-cam"], log
    assert gate.running == 0 and gate.waiting == 1, "the long job waits for a quiet moment"
    gate.quiet_s = 0.0
    wait_until(lambda: gate.running == 1, "the long job resumes")
    gate.stop("evaluator")
    job.step.set()
    job.join(DEADLINE)
    assert isinstance(job.error, Stopped)
