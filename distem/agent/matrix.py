"""Applying a latency-matrix change to one device in one netlink batch (plan/matrix.py has the layout)."""

from __future__ import annotations

import errno
import functools
import time
from typing import Any

from pyroute2 import IPBatch, IPRoute

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
        requests.append(_htb_child(index, shaping.ROOT | minor, rate_bps, burst_bytes))
        requests.append(_netem(index, minor << 16, shaping.ROOT | minor, limit, lim))
    if table:
        requests += [netlink_batch.hash_table(index, shaping.ROOT, PRIO, TABLE),
                     netlink_batch.hash_link(index, shaping.ROOT, PRIO, TABLE, LINK_HANDLE)]
    requests += [netlink_batch.destination_entry(index, shaping.ROOT, PRIO, TABLE, address, node,
                                                 shaping.ROOT | minor) for address, node, minor in entries]
    requests += [netlink_batch.destination_entry(index, shaping.ROOT, PRIO, TABLE, address, node, None)
                 for address, node in drop_entries]
    netlink_batch.send(requests)
    _drop_classes(index, drop_classes)


# pyroute2 encodes an htb class (with its rate tables) in ~0.8 ms and a netem qdisc in ~0.4 ms; a
# matrix of N vnodes needs N(N-1) of each, but few distinct ones: encode each once, then only
# the header's device, handle and parent change.
@functools.lru_cache(maxsize=4096)
def _template(kind: str, params: tuple[tuple[str, Any], ...]) -> bytes:
    compiled = IPBatch()
    try:
        if kind == "htb":
            shaping.child_class(compiled, 1, 0, **dict(params))
        else:
            compiled.tc("replace", "netem", 1, 0, parent=0, **dict(params))
        return bytes(compiled.batch)
    finally:
        compiled.close()


def _htb_child(index: int, classid: int, rate_bps: int, burst_bytes: int) -> bytes:
    return netlink_batch.with_tcmsg(_template("htb", (("rate_bps", rate_bps), ("burst_bytes", burst_bytes))), index, classid,
                    shaping.CLASS)


def _netem(index: int, handle: int, parent: int, limit: int, lim: dict[str, Any]) -> bytes:
    params = tuple(sorted(shaping.netem_params(limit, lim).items()))
    return netlink_batch.with_tcmsg(_template("netem", params), index, handle, parent)


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

