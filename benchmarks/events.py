"""Events over time: how close to its instant each event lands, and what one matrix cell costs.

    .venv/bin/python benchmarks/events.py  -> benchmarks/results/events.md (and .csv)

Random rows: 1,000-odd seeded random events over 60 s on 50 started busybox vnodes (a latency
source on 25 vnodes' output, a bandwidth source on 15, a loss source on 10; each draws a date every
2-4 s), run by the pnode's timeline while nothing else runs. The skew is ``applied - planned``
(``p.events.skew_ms``): how late the timeline began the event (``late_ms``) plus how long the
pnode took to apply it (``took_ms``). The same seed is drawn twice: the planned schedules must be
equal, and equal to what ran.

Isolated rows: ten latency changes 2 s apart on one vnode, the pnode idle between them: on a VM the
agent's code then runs cold (55-140 ms for a change that takes 5-15 warm) unless rehearsed just before.

One-cell rows, at N = 10, 100, 300 vnodes with a full random matrix: one cell changed by the live
call (``set_peers_latencies``, the controller's planning and the pnode's apply) and as events
(``p.at(t).latencies({cell})``: what the pnode's timeline took to apply each).

This host (no sch_netem) runs latency and loss through the userspace delay line and the matrix
through its tables; the user-mode guest runs them with netem. The guest skips N = 300: deploying
it and applying a full matrix there takes many minutes (N = 200: 153 s, see matrix.md).
"""

from __future__ import annotations

import os
import random
import statistics
import sys

import pandas as pd

import distem
from guest import host_and_guest
from matrix import platform, timed

SEED, VNODES, DURATION = 2026, 50, 60.0
SOURCES = (("latency", 25, {"distribution": "uniform", "min": 1, "max": 20}),
           ("bandwidth", 15, {"distribution": "uniform", "min": 10, "max": 100}),
           ("loss", 10, {"distribution": "uniform", "min": 0, "max": 5}))
DATES = {"distribution": "uniform", "min": 2, "max": 4}
ONE_CELL = {"host": (10, 100, 300), "guest": (10, 100)}
CELL_TAKES = 20
ISOLATED, ISOLATED_GAP_S = 10, 2.0


def ms(values: pd.Series | list[float], q: float | None = None) -> str:
    values = pd.Series(values, dtype=float)
    return f"{values.median():.2f} ms" if q is None else f"{values.quantile(q):.2f} ms"


def add_random_sources(p: distem.Platform, names: list[str]) -> None:
    at = 0
    for kind, count, values in SOURCES:
        for name in names[at:at + count]:
            p.event_random_add({"type": "viface", "vnodename": name, "vifacename": "if0", "viface_direction": "output"},
                               kind, {"date": DATES, "value": values}, seed=SEED + at, until=DURATION)
            at += 1


def random_rows(kernel: str) -> list[dict]:
    names = [f"n{i}" for i in range(VNODES)]
    with platform(names) as p:
        add_random_sources(p, names)
        planned = p.events
        p.event_manager_stop()
        add_random_sources(p, names)
        again = p.events
        load_before = os.getloadavg()[0]
        started = timed(p.event_manager_start)[0]
        events = p.events_wait(timeout=DURATION + 60)
        load_after = os.getloadavg()[0]
        p.event_manager_stop()
    columns = ["planned_s", "resource", "type", "value"]
    same = planned[columns].equals(again[columns]) and planned[columns].equals(events[columns])
    outcomes = events.outcome.value_counts().to_dict()
    what = f"{len(events)} random events over {DURATION:.0f} s on {VNODES} vnodes"
    by_type = "; ".join(f"{t} {ms(g.took_ms)}" for t, g in events.groupby("type"))
    return [
        {"kernel": kernel, "measure": what, "what": "skew (applied - planned)",
         "median": ms(events.skew_ms), "p99": ms(events.skew_ms, 0.99), "max": ms(events.skew_ms, 1.0),
         "note": f"outcomes {outcomes}; load average {load_before:.2f} before, {load_after:.2f} after"},
        {"kernel": kernel, "measure": what, "what": "late (began - planned)",
         "median": ms(events.late_ms), "p99": ms(events.late_ms, 0.99), "max": ms(events.late_ms, 1.0),
         "note": f"the clock offset measured: {events.attrs['clock_offsets_ms']}"},
        {"kernel": kernel, "measure": what, "what": "took (applied - began)",
         "median": ms(events.took_ms), "p99": ms(events.took_ms, 0.99), "max": ms(events.took_ms, 1.0),
         "note": f"median by type: {by_type}; event_manager_start took {started:.2f} s (rehearse, prepare, load)"},
        {"kernel": kernel, "measure": what, "what": "same seed, same schedule",
         "median": "", "p99": "", "max": "", "note": f"drawn twice and run: {'equal' if same else 'DIFFERENT'}"},
    ]


def isolated_rows(kernel: str) -> list[dict]:
    """Latency changes far apart, the pnode idle between them: each finds the agent's code cold (on a VM,
    a shared core's caches and TLB), which the timeline's rehearsal just before each instant warms."""
    with platform(["n0", "n1"]) as p:
        for k in range(ISOLATED):
            p.at(1 + ISOLATED_GAP_S * k).latency("n0", "if0", f"{10 + 10 * (k % 2)}ms", direction="output")
        p.event_manager_start()
        events = p.events_wait(timeout=ISOLATED * ISOLATED_GAP_S + 30)
        p.event_manager_stop()
    assert (events.outcome == "ok").all(), events.message.tolist()
    what = f"{ISOLATED} latency changes {ISOLATED_GAP_S:.0f} s apart"
    return [{"kernel": kernel, "measure": what, "what": f"{label} ({column})", "median": ms(events[column]),
             "p99": "", "max": ms(events[column], 1.0), "note": note}
            for label, column, note in (("skew", "skew_ms", "each rehearsed three times in the 100 ms before it"),
                                        ("took", "took_ms", "the first: an ifb and a delay-line rule made"))]


def one_cell_rows(kernel: str, part: str) -> list[dict]:
    rows = []
    for n in ONE_CELL[part]:
        names = [f"n{i}" for i in range(n)]
        rng = random.Random(n)
        matrix = [[0 if i == j else rng.randint(10, 59) for j in range(n)] for i in range(n)]
        with platform(names) as p:
            whole = timed(lambda: setattr(p, "latencies", pd.DataFrame(matrix, index=names, columns=names)))[0]
            back = matrix[1][0]
            live = [timed(lambda: p.set_peers_latencies(["n0", "n1"], [[0, 60 + take % 2], [back, 0]]))[0]
                    for take in range(CELL_TAKES)]
            for take in range(CELL_TAKES):
                p.at(0.5 + 0.2 * take).latencies({("n0", "n1"): 62 + take % 2})
            started = timed(p.event_manager_start)[0]
            events = p.events_wait(timeout=30)
            p.event_manager_stop()
        assert (events.outcome == "ok").all(), events.message.tolist()
        rows.append({"kernel": kernel, "measure": f"1 cell changed, N={n}", "what": "live: set_peers_latencies",
                     "median": f"{statistics.median(live) * 1000:.2f} ms", "p99": "",
                     "max": f"{max(live) * 1000:.2f} ms",
                     "note": f"{CELL_TAKES} takes, controller and pnode; whole matrix first: {whole:.2f} s"})
        rows.append({"kernel": kernel, "measure": f"1 cell changed, N={n}", "what": "as an event: took on the pnode",
                     "median": ms(events.took_ms), "p99": "", "max": ms(events.took_ms, 1.0),
                     "note": f"{CELL_TAKES} events; skew median {ms(events.skew_ms)}; "
                             f"event_manager_start {started * 1000:.0f} ms for the {CELL_TAKES}"})
        print("row", rows[-1], flush=True)
    return rows


def measure(part: str) -> list[dict]:
    kernel = f"{part} {os.uname().release}"
    return random_rows(kernel) + isolated_rows(kernel) + one_cell_rows(kernel, part)


if __name__ == "__main__":
    host_and_guest(__file__, "events", "Events over time", measure)
