"""The agent's sampler on its own (no platform): the buffer bound it is given holds, rows past it are
counted, and a failure in its thread is reported instead of ending it silently."""

from __future__ import annotations

import time

import numpy as np

from distem.agent import monitor


def test_the_buffer_holds_max_mb_plus_one_chunk_and_counts_what_it_dropped():
    sampler = monitor.Sampler(1.0, time.time(), max_mb=0.05, devices=[], queues=[], system=True)
    row_bytes = 8 * (1 + 3)  # a time and the pnode's three numbers
    for _ in range(3 * monitor.CHUNK_ROWS):
        sampler.sample()
    assert sampler.size <= 0.05e6 + monitor.CHUNK_ROWS * row_bytes
    assert sampler.lost == monitor.CHUNK_ROWS  # the oldest chunk went whole
    answer = sampler.fetch(0)
    rows = sum(len(np.frombuffer(c["times"])) for c in answer["chunks"])
    assert rows + answer["lost"] == 3 * monitor.CHUNK_ROWS
    assert [k[2] for k in map(tuple, answer["keys"])] == ["cpu_busy", "load1", "memory_available_bytes"]
    assert sampler.fetch(len(answer["keys"]))["chunks"] == []  # fetched rows are freed


def test_a_failing_read_ends_the_thread_and_says_why():
    def broken():
        raise OSError("the delay line's socket is gone")

    sampler = monitor.Sampler(0.1, time.time(), max_mb=1, devices=[], queues=[], system=True, delay_line=broken)
    sampler.start()
    deadline = time.monotonic() + 5
    while sampler.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    sampler.stop()
    assert not sampler.running()
    assert sampler.fetch(0)["error"] == "OSError: the delay line's socket is gone"
