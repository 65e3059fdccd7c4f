"""A pnode session without a pnode: the platform's own logic (what it sends, rollback after a
half-applied batch, a lost pnode) under test in milliseconds, without root.

    from distem.testing.fake import fake_platform
    p = fake_platform(["a", "b"])
    p.sessions["b"].fail_next("apply", at=2)    # b's next batch fails at its third operation
    p.sessions["a"].lose()                      # a's agent goes away: every later call fails

A ``FakeSession`` answers every call the real agent answers, checks each batch against the wire
(distem/wire.py) as the agent does, keeps what each owner holds (``held``), rolls a failed batch
back, and records every call (``calls``). It runs nothing: no link, container or cgroup is made.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from .. import wire
from ..agent import timeline
from ..errors import AgentError
from ..model import PNode
from ..platform.platform import Platform


def fake_facts(index: int) -> dict[str, Any]:
    """What a 4-core Linux pnode with sch_netem and cgroup v2 says at the handshake."""
    return {"hostname": f"fake{index}", "addresses": [f"10.213.0.{index + 1}"], "kernel": "fake", "cores": 4,
            "memory": 8 << 30, "lxc": "fake", "python": "fake", "cgroup_v1": [],
            "cgroup_v2": ["cpu", "cpuset", "io", "memory", "pids"], "btrfs": False, "overlay": True,
            "qdiscs": ["htb", "ingress", "netem", "pfifo", "tbf"], "delay_line_unavailable": "", "max_mhz": None,
            "cgroups": {"cpu": 2, "cpuset": 2, "memory": 2, "io": 2},
            "interfaces": {"eth0": {"addresses": [f"10.213.0.{index + 1}/24"], "mtu": 1500, "default": True}}}


class FakeSession:
    """Stands for ``PnodeSession``: the same ``call``, ``facts``, ``lost`` and ``close``."""

    count = 0  # sessions made, for distinct facts

    def __init__(self, pnode: PNode, platform_id: str) -> None:
        self.pnode, self.platform_id = pnode, platform_id
        self.facts = fake_facts(FakeSession.count)
        FakeSession.count += 1
        self.lost = False
        self.held: dict[str, list[dict[str, Any]]] = defaultdict(list)  # owner -> the operations applied for it
        self.containers: dict[str, str] = {}  # name -> RUNNING, DOWN, FROZEN
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._failures: dict[str, int | str] = {}
        self.timeline = timeline.Timeline(lambda operation, kwargs: self.call(operation, **kwargs), threading.Lock())

    # -- what a test makes happen ----------------------------------------------------------
    def fail_next(self, operation: str, at: int = 0, vnode: str = "") -> None:
        """The next ``operation`` fails: a batch (``apply``) at operation index ``at``, a
        per-vnode call (``start``, ``stop``, ...) on ``vnode``."""
        self._failures[operation] = vnode or at

    def lose(self) -> None:
        """The agent goes away: every later call fails as with a broken channel."""
        self.lost = True

    # -- the session's interface -----------------------------------------------------------
    def call(self, operation: str, progress: Any = None, reply_timeout: float | None = None, **kwargs: Any) -> Any:
        self.calls.append((operation, kwargs))
        if self.lost:
            raise AgentError(self.pnode.name, operation, "lost the agent: EOFError: the fake agent is gone")
        handler = getattr(self, f"_{operation}", None)
        if handler is None:
            raise AgentError(self.pnode.name, operation, f"KeyError: unknown operation {operation!r}")
        result = handler(**kwargs)
        counted = kwargs.get("ops", kwargs.get("names"))
        if progress and isinstance(counted, list):  # the real agent reports as it goes; the fake, once done
            progress(len(counted), len(counted))
        return result

    def close(self, clean: bool = True) -> dict[str, Any]:
        self.timeline.stop()
        removed = sum(len(ops) for ops in self.held.values())
        self.held.clear()
        self.containers.clear()
        return {"platform": self.platform_id, "removed": removed, "failures": []}

    # -- the agent's calls -------------------------------------------------------------------
    def _apply(self, ops: list[dict[str, Any]]) -> int:
        for index, op in enumerate(ops):
            wrong = wire.check(op)
            if wrong:
                raise AgentError(self.pnode.name, str(op.get("op")), wrong, target=None)
        fail_at = self._failures.pop("apply", None)
        done: list[dict[str, Any]] = []
        for index, op in enumerate(ops):
            if index == fail_at:
                for made in done:  # all or nothing, as the real agent's batch
                    self.held[made["owner"]].remove(made)
                raise AgentError(self.pnode.name, op["op"], "OSError: [Errno 17] File exists (fake)", errno=17,
                                 target=op.get("name") or op.get("device") or op.get("target"))
            self.held[op["owner"]].append(op)
            done.append(op)
            if op["op"] == "container_define":
                self.containers[op["name"]] = "DOWN"
        return len(ops)

    def _undo_owner(self, owners: list[str]) -> list[str]:
        for owner in owners:
            for op in self.held.pop(owner, []):
                if op["op"] == "container_define":
                    self.containers.pop(op["name"], None)
        return []

    def _each(self, action: str, names: Iterable[str], value: Any) -> dict[str, Any]:
        failing = self._failures.pop(action, None)
        out = {}
        for name in names:
            if name == failing:
                out[name] = {"ok": False, "failure": {"operation": action, "target": name, "errno": None,
                                                      "index": None, "message": f"ContainerError: {action} failed (fake)"}}
            else:
                out[name] = {"ok": True, "value": value(name)}
        return out

    def _lifecycle(self, action: str, names: list[str], state: str) -> dict[str, Any]:
        def one(name: str) -> str:
            self.containers[name] = state
            return state
        return self._each(action, names, one)

    def _start(self, names: list[str], shaping: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
        results = self._lifecycle("start", names, "RUNNING")
        for name, ops in (shaping or {}).items():
            if results[name]["ok"] and ops:
                self._apply(ops)
        return results

    def _stop(self, names: list[str]) -> dict[str, Any]:
        return self._lifecycle("stop", names, "DOWN")

    def _freeze(self, names: list[str]) -> dict[str, Any]:
        return self._lifecycle("freeze", names, "FROZEN")

    def _unfreeze(self, names: list[str]) -> dict[str, Any]:
        return self._lifecycle("unfreeze", names, "RUNNING")

    def _execute(self, names: list[str], argv: list[str], timeout: float | None = None) -> dict[str, Any]:
        return self._each("execute", names, lambda name: (0, "", "", False))

    def _usage(self, paths: dict[str, str]) -> dict[str, dict[str, int]]:
        return {name: {} for name in paths}

    def _images_missing(self, images: dict[str, list[str]]) -> list[str]:
        return []

    # the agent's own timeline, running this session's calls at their instants
    def _clock(self) -> float:
        return time.time()

    def _timeline_load(self, entries: list[dict[str, Any]]) -> int:
        timeline.check(entries, wire.check)
        return self.timeline.load(entries)

    def _timeline_start(self, epoch: float) -> float:
        return self.timeline.start(epoch)

    def _timeline_status(self) -> dict[str, Any]:
        return self.timeline.status()

    def _timeline_stop(self) -> dict[str, Any]:
        return self.timeline.stop()


class FakePlatform(Platform):
    """A Platform whose pnodes are FakeSessions."""

    session_class = FakeSession  # type: ignore[assignment]


def fake_platform(pnodes: Iterable[str] = ("a",), **kwargs: Any) -> FakePlatform:
    """A platform on fake pnodes of these names (``kwargs`` go to Platform)."""
    return FakePlatform([PNode(name=name, spec=f"ssh=root@{name}") for name in pnodes],
                        **{"progress": False, **kwargs})
