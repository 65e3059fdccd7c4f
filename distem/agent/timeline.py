"""A platform's events on this pnode: requests prepared by the controller, each run at its instant.

The controller sends the whole timeline ahead (``load``), then one start instant on this pnode's
clock (``start``). A thread sleeps to each entry's instant and runs its requests through the
agent's own handlers, holding the agent's lock (the channel's changes take it too), so a busy
notebook or a slow gateway shifts nothing. Each entry's outcome is recorded; a failure is that
entry's, and the rest go on. ``stop`` (and the agent's close) ends the thread: nothing fires after.
Just before its instant an entry is rehearsed (see WARM_S), so that it runs on warm code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Run = Callable[[str, dict[str, Any]], Any]  # (operation, kwargs) -> result, or raises
# An entry is rehearsed (its requests gone through, nothing changed) from WARM_S before its instant, the last
# pass ending PAUSE_S before it: on a VM, the agent's code idle for a second ran 10-60x slower than warm, and
# a latency change took 55-140 ms instead of 5-15.
WARM_S = 0.1
PAUSE_S = 0.005
# An entry less than IDLE_S after the previous one is not rehearsed: still warm enough, and on a slow pnode a
# dense schedule paid three passes an entry (QEMU TCG, 973 random events: skew p99 169 ms -> 288 ms).
IDLE_S = 0.5
# What changes the pnode: what a timeline runs, and what the agent runs one at a time.
CHANGES = frozenset({"apply", "undo_owner", "start", "stop", "freeze", "unfreeze", "netns_spawn", "image_receive"})


def check(entries: list[dict[str, Any]], problem: Callable[[dict[str, Any]], str]) -> None:
    """Every request a change of the pnode, each op right by the wire (``problem``): checked before any runs."""
    for entry in entries:
        for operation, kwargs in entry["requests"]:
            if operation not in CHANGES:
                raise ValueError(f"event {entry['id']}: {operation!r} is not an operation a timeline runs")
            for op in kwargs.get("ops", ()):
                wrong = problem(op)
                if wrong:
                    raise ValueError(f"event {entry['id']}: {wrong}")


class Timeline:
    def __init__(self, run: Run, lock: threading.Lock, rehearse: Run | None = None) -> None:
        self.run, self.lock, self.rehearse = run, lock, rehearse
        self.entries: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.epoch = 0.0

    def load(self, entries: list[dict[str, Any]]) -> int:
        """``entries``: ``{"id", "at" (s from the start), "requests": [(operation, kwargs), ...]}``."""
        self.stop()
        self.entries = sorted(entries, key=lambda e: (e["at"], e["id"]))
        self.records = []
        return len(self.entries)

    def start(self, epoch: float) -> float:
        """Run the loaded entries from ``epoch`` (this pnode's ``time.time()``); the time now."""
        if self.thread is not None:
            raise RuntimeError("a timeline is already running here; stop it first")
        self.stopping.clear()
        self.epoch = epoch
        origin = time.monotonic() + (epoch - time.time())  # sleeps follow the monotonic clock
        self.thread = threading.Thread(target=self._serve, args=(origin,), name="distem-timeline", daemon=True)
        self.thread.start()
        return time.time()

    def _serve(self, origin: float) -> None:
        for entry in self.entries:
            if not self._warm(entry, origin + entry["at"]):
                return
            wait = origin + entry["at"] - time.monotonic()
            if wait > 0 and self.stopping.wait(wait):
                return
            if self.stopping.is_set():
                return
            with self.lock:
                began = time.time()
                try:
                    for operation, kwargs in entry["requests"]:
                        _raise_failures(operation, self.run(operation, kwargs))
                    outcome, message = "ok", ""
                except Exception as exc:
                    outcome, message = "error", f"{type(exc).__name__}: {exc}"
                done = time.time()
            self.records.append({"id": entry["id"], "began": began - self.epoch, "applied": done - self.epoch,
                                 "outcome": outcome, "message": message})

    def _warm(self, entry: dict[str, Any], due: float) -> bool:
        """Rehearse ``entry`` WARM_S before ``due`` (monotonic), at once again (now warm: how long one
        takes), and once more to end just before ``due``: three passes, not a loop, since on a small pnode
        a loop took the CPU from the vnodes (QEMU: an RTT 10 ms high during it). An entry within IDLE_S of
        the previous one is not rehearsed. False when stopped meanwhile."""
        if self.rehearse is None or due - time.monotonic() <= IDLE_S:
            return True
        if self.stopping.wait(due - WARM_S - time.monotonic()):
            return False
        took = 0.0
        for last in (False, False, True):
            if last and self.stopping.wait(max(0.0, due - time.monotonic() - 2 * took - PAUSE_S)):
                return False
            if due - time.monotonic() < took:  # no room left for a pass
                break
            began = time.monotonic()
            with self.lock:
                try:
                    for operation, kwargs in entry["requests"]:
                        self.rehearse(operation, kwargs)
                except Exception as exc:  # a rehearsal only warms: the entry itself says what fails
                    log.debug("event %s: rehearsal failed: %s", entry["id"], exc)
                    break
            took = time.monotonic() - began
        return not self.stopping.is_set()

    def status(self) -> dict[str, Any]:
        return {"records": list(self.records), "pending": len(self.entries) - len(self.records),
                "running": self.thread is not None and self.thread.is_alive()}

    def stop(self) -> dict[str, Any]:
        """End the thread (an entry being applied finishes first); what was applied."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        status = self.status()
        self.entries = self.entries[:len(self.records)]
        return status


def _raise_failures(operation: str, result: Any) -> None:
    """Start, stop, freeze... answer per vnode: a vnode's failure fails the entry."""
    if isinstance(result, dict):
        failed = [f"{name}: {r['failure']['message']}" for name, r in result.items()
                  if isinstance(r, dict) and r.get("ok") is False]
        if failed:
            raise RuntimeError(f"{operation}: {'; '.join(failed)}")
