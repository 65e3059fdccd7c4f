"""Removing what a platform created: one function per journalled kind, and ``clean``.

Rollback of a failed batch, removal of a vnode or vnetwork, ``Platform.close``
and ``distem clean`` all go through ``undo``: nothing is removed that the
journal does not name, and each removal checks the thing is still ours
(link alias, loop backing file, process start time, the platform's comment
on iptables rules).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from collections.abc import Callable

from pyroute2 import IPRoute

from . import cgroups, containers, iptables, links, underlay, userspace
from .journal import Entry, Journal
from .system import mounted, process_start_time, run

log = logging.getLogger(__name__)
JOURNAL = "journal.jsonl"


def _process(entry: Entry) -> None:
    pid = entry["pid"]
    if pid == os.getpid() or process_start_time(pid) != entry["start"]:
        return  # gone, or the pid was reused by someone else
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process_start_time(pid) == entry["start"] and time.monotonic() < deadline:
        time.sleep(0.02)


def _container(entry: Entry) -> None:
    containers.stop(entry["id"], entry["lxcpath"])
    shutil.rmtree(os.path.join(entry["lxcpath"], entry["id"]), ignore_errors=True)
    containers.forget_lock(entry["id"], entry["lxcpath"])


def _link(entry: Entry) -> None:
    with IPRoute() as ipr:
        links.link_delete(ipr, entry["id"], entry["alias"])


def _uplink(entry: Entry) -> None:
    with IPRoute() as ipr:
        if ipr.link_lookup(ifname=entry["id"]):
            underlay.downlink(ipr, entry["bridge"], entry["moved"])


def _cgroup(entry: Entry) -> None:
    left = cgroups.remove_subtree(entry["id"])
    if left:
        raise OSError(f"cgroups still busy: {', '.join(left[:3])}")


def _dir(entry: Entry) -> None:
    if os.path.lexists(entry["id"]):
        shutil.rmtree(entry["id"])


def _mount(entry: Entry) -> None:
    if mounted(entry["id"]):
        run(["umount", "-l", entry["id"]])


def _loop(entry: Entry) -> None:
    backing = f"/sys/block/{os.path.basename(entry['id'])}/loop/backing_file"
    try:
        with open(backing) as f:
            ours = f.read().strip() == entry["file"]
    except OSError:
        return
    if ours:
        run(["losetup", "-d", entry["id"]])


def _subvolume(entry: Entry) -> None:
    if os.path.isdir(entry["id"]):
        run(["btrfs", "subvolume", "delete", entry["id"]])


def _sysctl(entry: Entry) -> None:
    """Put a pnode setting back, unless someone changed it since (then it is theirs)."""
    with open(entry["id"]) as f:
        if int(f.read()) != entry["value"]:
            return
    with open(entry["id"], "w") as f:
        f.write(str(entry["old"]))


def _iptables_chain(entry: Entry) -> None:
    iptables.chain_delete(entry["chain"], entry["comment"], entry["table"])


UNDO: dict[str, Callable[[Entry], None]] = {
    "process": _process, "container": _container, "link": _link, "uplink": _uplink, "cgroup": _cgroup, "dir": _dir,
    "mount": _mount, "loop": _loop, "subvolume": _subvolume, "iptables_rule": userspace.remove_rule,
    "iptables_chain": _iptables_chain, "sysctl": _sysctl,
}


def _stop_containers(entries: list[Entry]) -> None:
    """Every container of ``entries`` stopped together first (containers.stop_many: their namespaces go in
    one batch); their removal follows in order, and stops any that did not."""
    by_path: dict[str, list[str]] = {}
    for entry in entries:
        if entry["kind"] == "container":
            by_path.setdefault(entry["lxcpath"], []).append(entry["id"])
    for lxcpath, names in by_path.items():
        if len(names) > 1:
            try:
                containers.stop_many(names, lxcpath)
            except Exception as exc:  # the removal in order tries again, and reports
                log.debug("stopping together failed: %s", exc)


def undo(journal: Journal, entries: list[Entry]) -> list[str]:
    """Remove ``entries`` newest first; returns the failures (the rest is still removed)."""
    failures = []
    _stop_containers(entries)
    for entry in reversed(entries):
        try:
            UNDO[entry["kind"]](entry)
            journal.remove(entry)
        except Exception as exc:  # keep going: one stuck resource must not keep the rest alive
            log.warning("could not remove %s %s: %s", entry["kind"], entry["id"], exc)
            failures.append(f"{entry['kind']} {entry['id']}: {exc}")
    journal.sync()
    return failures


def clean(state_dir: str, platform_id: str) -> dict[str, object]:
    """Remove everything the journal of ``platform_id`` names; the platform's own agent goes first."""
    root = os.path.join(state_dir, "platforms", platform_id)
    if not os.path.isdir(root):
        return {"platform": platform_id, "removed": 0, "failures": []}
    journal = Journal(os.path.join(root, JOURNAL))
    entries = journal.entries()
    # An orphaned agent (its controller killed) may still be creating things: stop it first.
    agents = [e for e in entries if e["kind"] == "process"]
    failures = undo(journal, agents)
    rest = [e for e in entries if e["kind"] != "process"]
    # The platform's chain goes whole (flushed, then deleted): its rules need not go one iptables run each,
    # each rewriting the table (1,000 vnodes with a matrix: 27 s of the clean's 30).
    chains = {e["chain"] for e in rest if e["kind"] == "iptables_chain"}
    flushed = [e for e in rest if e["kind"] == "iptables_rule" and e["chain"] in chains]
    for entry in flushed:
        journal.remove(entry)
    failures += undo(journal, [e for e in rest if e not in flushed])
    journal.close()
    if not failures and os.path.isdir(root):
        shutil.rmtree(root)
    return {"platform": platform_id, "removed": len(entries), "failures": failures}


def platforms(state_dir: str) -> list[str]:
    path = os.path.join(state_dir, "platforms")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def clean_all(state_dir: str) -> list[dict[str, object]]:
    """Distem's ``distem -q``: clean every platform recorded under ``state_dir``, nothing else."""
    return [clean(state_dir, pid) for pid in platforms(state_dir)]
