"""The agent's timeline thread (pure): each entry rehearsed just before its instant, then run at it."""

from __future__ import annotations

import threading
import time

from distem.agent.timeline import IDLE_S, PAUSE_S, WARM_S, Timeline


class Calls:
    """What a timeline asked of its agent, with the time from its start and whether the lock was held."""

    def __init__(self, lock: threading.Lock, fail_rehearsals: bool = False) -> None:
        self.lock, self.fail_rehearsals = lock, fail_rehearsals
        self.origin = 0.0
        self.runs: list[tuple[float, str, bool]] = []
        self.rehearsals: list[tuple[float, str, bool]] = []

    def run(self, operation: str, kwargs: dict) -> None:
        self.runs.append((time.time() - self.origin, kwargs["what"], self.lock.locked()))

    def rehearse(self, operation: str, kwargs: dict) -> None:
        self.rehearsals.append((time.time() - self.origin, kwargs["what"], self.lock.locked()))
        if self.fail_rehearsals:
            raise OSError("no such device")


def run_timeline(entries: list[tuple[float, str]], fail_rehearsals: bool = False, stop_after: float | None = None):
    lock = threading.Lock()
    calls = Calls(lock, fail_rehearsals)
    timeline = Timeline(calls.run, lock, calls.rehearse)
    timeline.load([{"id": i, "at": at, "requests": [("apply", {"what": what})]} for i, (at, what) in enumerate(entries)])
    calls.origin = time.time()
    timeline.start(calls.origin)
    if stop_after is not None:
        time.sleep(stop_after)
        return calls, timeline.stop()
    deadline = time.monotonic() + 5
    while timeline.status()["pending"] and time.monotonic() < deadline:
        time.sleep(0.01)
    return calls, timeline.stop()


def test_an_entry_is_rehearsed_three_times_before_its_instant_then_run_at_it():
    at = IDLE_S + 0.1
    calls, status = run_timeline([(at, "a")])
    assert [(what, locked) for _, what, locked in calls.runs] == [("a", True)]
    assert calls.runs[0][0] >= at
    times = [t for t, what, locked in calls.rehearsals if what == "a" and locked]
    assert len(times) == len(calls.rehearsals) == 3, calls.rehearsals  # each pass under the agent's lock
    assert at - WARM_S - 0.02 <= times[0] <= times[1] <= at - WARM_S + 0.02, times  # cold, then warm at once
    assert at - PAUSE_S - 0.02 <= times[2] <= calls.runs[0][0], times  # the last just before the instant
    assert [r["outcome"] for r in status["records"]] == ["ok"]


def test_an_entry_soon_after_another_is_not_rehearsed():
    calls, _ = run_timeline([(IDLE_S + 0.1, "a"), (IDLE_S + 0.1 + IDLE_S / 2, "b")])
    assert [what for _, what, _ in calls.runs] == ["a", "b"]
    assert {what for _, what, _ in calls.rehearsals} == {"a"}


def test_a_failed_rehearsal_leaves_the_entry_to_run_and_say_what_fails():
    calls, status = run_timeline([(IDLE_S + 0.1, "a")], fail_rehearsals=True)
    assert len(calls.rehearsals) == 1 and [what for _, what, _ in calls.runs] == ["a"]
    assert [r["outcome"] for r in status["records"]] == ["ok"]


def test_stopped_while_rehearsing_nothing_runs():
    calls, status = run_timeline([(IDLE_S + 0.1, "a")], stop_after=IDLE_S + 0.1 - WARM_S / 2)
    assert calls.rehearsals and not calls.runs
    assert status["records"] == [] and status["pending"] == 1
