"""The platform's pnodes: one agent session each, opened in parallel, called one, some or all at once."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import AgentError
from ..model import PlatformModel, PNode
from ..plan.shaping import Backend
from .progress import Progress
from .session import PnodeSession

log = logging.getLogger(__name__)
Calls = dict[str, tuple[str, dict[str, Any]]]  # pnode -> (agent operation, its arguments)
Request = tuple[str, dict[str, Any]]  # an agent operation and its arguments
# What changes a pnode. In a rehearsal these are recorded, not sent, and answered as if done.
CHANGES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "apply": lambda kw: len(kw["ops"]), "undo_owner": lambda kw: [],
    **{action: lambda kw: {n: {"ok": True, "value": None} for n in kw["names"]}
       for action in ("start", "stop", "freeze", "unfreeze")},
}


class Rehearsal:
    """The requests that would have changed pnodes, in order, by pnode (``PnodePool.rehearsal``)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Request]] = []

    def take(self) -> dict[str, list[Request]]:
        """What was recorded since the last take, by pnode."""
        out: dict[str, list[Request]] = defaultdict(list)
        for pnode, request in self.sent:
            out[pnode].append(request)
        self.sent = []
        return dict(out)


class PnodePool:
    """Sessions by pnode name. Opening fails whole: the sessions already open are closed again.

    Raises:
        AgentError: a pnode could not be reached (the first, naming the others).
    """

    def __init__(self, nodes: list[PNode], platform_id: str, session_class: Callable[[PNode, str], Any],
                 progress: bool | None) -> None:
        self.progress = progress
        self.sessions: dict[str, Any] = {}  # PnodeSession, or what ``session_class`` makes
        self.closed = False
        self._rehearsal: Rehearsal | None = None
        # Every change sent to a pnode, in order: {"t": when sent, "s": seconds it took, "pnode",
        # "operation", "args"} (a run's record keeps it).
        self.sent: list[dict[str, Any]] = []
        with ThreadPoolExecutor(len(nodes)) as pool:
            futures = {p.name: pool.submit(session_class, p, platform_id) for p in nodes}
        errors = []
        for name, future in futures.items():
            try:
                self.sessions[name] = future.result()
            except AgentError as exc:
                errors.append(exc)
        if errors:
            self._fail_to_open(errors)

    def _fail_to_open(self, errors: list[AgentError]) -> None:
        try:
            self.close()
        except AgentError as exc:
            log.warning("closing after a failed start: %s", exc)
        first = errors[0]
        if len(errors) == 1:
            raise first
        others = "; ".join(str(e) for e in errors[1:])
        raise AgentError(first.pnode, first.operation, f"{first.message} (also: {others})",
                         errno=first.errno, target=first.target) from first

    def learn_facts(self, model: PlatformModel) -> None:
        """What placement and limits need to know of each pnode, from its agent's handshake."""
        for name, session in self.sessions.items():
            model.learn_pnode(name, session.facts)

    # -- calling -----------------------------------------------------------------------------
    @contextmanager
    def rehearsal(self) -> Iterator[Rehearsal]:
        """Within it, what would change a pnode is recorded instead of sent (reads still go): the
        parts' own calls tell the event engine what each event sends, and check it."""
        self._rehearsal, shown = Rehearsal(), self.progress
        self.progress = False  # nothing is sent: a bar would stay at 0 %
        try:
            yield self._rehearsal
        finally:
            self._rehearsal, self.progress = None, shown

    def call(self, pnode: str, operation: str, progress: Any = None, **kwargs: Any) -> Any:
        if self._rehearsal is not None and operation in CHANGES:
            self._rehearsal.sent.append((pnode, (operation, kwargs)))
            return CHANGES[operation](kwargs)
        if operation not in CHANGES:
            return self.sessions[pnode].call(operation, progress=progress, **kwargs)
        entry = {"t": time.time(), "s": None, "pnode": pnode, "operation": operation, "args": kwargs}
        self.sent.append(entry)
        try:
            return self.sessions[pnode].call(operation, progress=progress, **kwargs)
        finally:
            entry["s"] = round(time.time() - entry["t"], 6)

    def clock_offset(self, pnode: str, probes: int = 5) -> float:
        """The pnode's clock minus ours (s), from the probe with the shortest round trip."""
        best = (float("inf"), 0.0)
        for _ in range(probes):
            sent = time.time()
            theirs = self.call(pnode, "clock")
            back = time.time()
            best = min(best, (back - sent, theirs - (sent + back) / 2))
        return best[1]

    def on_each(self, calls: Calls, label: str | None = None,
                total: int = 0) -> tuple[dict[str, Any], list[AgentError]]:
        """One operation per pnode, in parallel: the results of those that answered, the failures of the others."""
        if not calls:
            return {}, []
        with Progress(label or "", total, self.progress if label else False) as bar:
            def run(pnode: str) -> Any:
                operation, kwargs = calls[pnode]
                return self.call(pnode, operation, progress=bar.for_pnode(pnode), **kwargs)

            with ThreadPoolExecutor(len(calls)) as pool:
                futures = {p: pool.submit(run, p) for p in calls}
        results, errors = {}, []
        for pnode, future in futures.items():
            try:
                results[pnode] = future.result()
            except AgentError as exc:
                errors.append(exc)
        return results, errors

    def on_all(self, calls: Calls, label: str | None = None, total: int = 0) -> dict[str, Any]:
        """One operation per pnode, in parallel; the first failure raised once all have finished."""
        results, errors = self.on_each(calls, label, total)
        if errors:
            raise errors[0]
        return results

    def apply(self, plans: dict[str, list[dict[str, Any]]], label: str | None = None) -> dict[str, Any]:
        """Each pnode's batch of wire operations (all or nothing on each pnode)."""
        return self.on_all({p: ("apply", {"ops": ops}) for p, ops in plans.items() if ops}, label,
                           sum(len(ops) for ops in plans.values()))

    def undo(self, owners: list[str], pnodes: Iterable[str] | None = None) -> None:
        """Remove what ``owners`` own on ``pnodes`` (default: all).

        Raises:
            AgentError: what a pnode could not remove."""
        results = self.on_all({p: ("undo_owner", {"owners": owners}) for p in (pnodes or self.sessions)})
        for pnode, failures in results.items():
            if failures:
                raise AgentError(pnode, "remove", "; ".join(failures))

    # -- what the pnodes are -------------------------------------------------------------------
    def facts(self, pnode: str) -> dict[str, Any]:
        facts: dict[str, Any] = self.sessions[pnode].facts
        return facts

    def backend(self, pnode: str) -> Backend:
        """How this pnode delays packets: its kernel's netem, or the userspace delay line."""
        return "netem" if "netem" in self.facts(pnode).get("qdiscs", ()) else "userspace"

    def states(self) -> dict[str, str]:
        return {p: "closed" if self.closed else "lost" if s.lost else "connected" for p, s in self.sessions.items()}

    def by_host(self, model: PlatformModel, names: Iterable[str]) -> dict[str, list[str]]:
        """Vnode names grouped by the pnode they are on."""
        groups: dict[str, list[str]] = defaultdict(list)
        for name in names:
            groups[model.vnode(name).host].append(name)
        return dict(groups)

    def close(self) -> None:
        """Clean and disconnect every pnode, in parallel. Safe twice.

        Raises:
            AgentError: the first pnode whose clean failed, once all are closed."""
        if self.closed:
            return
        self.closed = True
        errors = []
        with ThreadPoolExecutor(max(1, len(self.sessions))) as pool:
            futures = {p: pool.submit(s.close) for p, s in self.sessions.items()}
        for pnode, future in futures.items():
            try:
                summary = future.result()
                if summary and summary["failures"]:
                    errors.append(AgentError(pnode, "clean", "; ".join(summary["failures"])))
            except AgentError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


__all__ = ["Calls", "PnodePool", "PnodeSession"]
