"""Applying a latency-matrix change to one device in one netlink batch (plan/matrix.py has the layout)."""

from __future__ import annotations

import errno
import time
from typing import Any

from pyroute2 import IPRoute

from . import netlink_batch, shaping

PRIO = 10
TABLE = 0x10  # u32 hash table 10:
LINK_HANDLE = 0x80000800  # the filter into it, in u32's root table 800:


def matrix_replace(ipr: IPRoute, device: str, rate_bps: int, burst_bytes: int, table: bool,
                   set_classes: list[Any], drop_classes: list[int], entries: list[Any], drop_entries: list[Any]) -> None:
    """One device's matrix change (a MatrixReplace of distem/plan/ops.py) in one netlink batch."""
    index = shaping.index_of(ipr, device)
    requests = []
    for minor, limit, lim in set_classes:  # classes and leaves first: filters may point at them
        requests.append(shaping.child_class(index, shaping.ROOT | minor, rate_bps, burst_bytes))
        requests.append(shaping.netem_leaf(index, minor << 16, shaping.ROOT | minor, limit, lim))
    if table:
        requests += [netlink_batch.hash_table(index, shaping.ROOT, PRIO, TABLE),
                     netlink_batch.hash_link(index, shaping.ROOT, PRIO, TABLE, LINK_HANDLE)]
    requests += [netlink_batch.destination_entry(index, shaping.ROOT, PRIO, TABLE, address, node,
                                                 shaping.ROOT | minor) for address, node, minor in entries]
    requests += [netlink_batch.destination_entry(index, shaping.ROOT, PRIO, TABLE, address, node, None)
                 for address, node in drop_entries]
    netlink_batch.send(requests)
    _drop_classes(index, drop_classes)


def _drop_classes(index: int, minors: list[int], timeout: float = 2.0) -> None:
    """Classes no filter points at any more. The kernel unbinds a replaced u32 entry from its old
    class in deferred work, so a class may say EBUSY a moment after its last entry moved."""
    deadline = time.monotonic() + timeout
    for minor in minors:
        while True:
            try:
                netlink_batch.send([netlink_batch.delete_class(index, shaping.ROOT | minor)])
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

