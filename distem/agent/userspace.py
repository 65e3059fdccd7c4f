"""The agent's side of the userspace delay line (``delayline.py``): the process, the rules, the settings.

One delay-line process per platform on this pnode, started at the first
direction that needs it and journalled under ``platform``; the platform's
iptables chain too. Each shaped viface direction adds one rule, journalled
under its vnode's owner, so removing the vnode (or ``distem clean``) removes
the rule. A live change only sends new settings to the process: the rule and
the packets in flight stay, so connections survive it.
"""

from __future__ import annotations

import inspect
import json
import linecache
import logging
import os
import select
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from . import delayline, iptables
from .journal import Entry, Journal
from .system import process_start_time

log = logging.getLogger(__name__)
Record = Callable[..., Entry]  # record(kind, ident, **data): journal an entry of the current batch
READY_TIMEOUT = 10.0


def chain_name(platform_id: str) -> str:
    return f"distem-{platform_id}"


def comment(platform_id: str) -> str:
    return f"distem:{platform_id}"


def control_address(platform_id: str) -> str:
    """An abstract Unix socket: nothing to remove, and per network namespace (the root one here)."""
    return f"@distem-{platform_id}-delayline"


def first_queue(platform_id: str) -> int:
    """Where this platform's search for a free NFQUEUE number starts (spread by platform id)."""
    return 1024 + int(platform_id, 16) % 60_000


def available() -> str:
    """Why the delay line cannot run on this pnode ("" when it can)."""
    try:
        import netfilterqueue  # noqa: F401
    except ImportError as exc:
        return f"the Python package NetfilterQueue is missing ({exc})"
    try:
        with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
            if f.read().strip() != "1":
                return "bridged packets skip iptables (sysctl net.bridge.bridge-nf-call-iptables is 0)"
    except OSError:
        return "no br_netfilter (/proc/sys/net/bridge/bridge-nf-call-iptables is missing)"
    if subprocess.run(["iptables", "-w", "10", "-S", "FORWARD"], capture_output=True).returncode:
        return "iptables cannot list the FORWARD chain"
    return ""


def _source(module: Any) -> str:
    """A module's source, also when the bootstrap imported it from memory (then linecache holds it)."""
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        lines = linecache.getlines(f"<{module.__name__.replace('.', '/')}.py>")
        if not lines:
            raise
        return "".join(lines)


class DelayLines:
    """The platform's delay line on this pnode; every method runs in the agent (as root)."""

    def __init__(self, journal: Journal, root: str, platform_id: str, enter_home: Callable[[], None]) -> None:
        self.journal, self.root, self.platform_id = journal, root, platform_id
        self.enter_home = enter_home
        self.chain, self.comment = chain_name(platform_id), comment(platform_id)
        self.control = control_address(platform_id)
        self.proc: subprocess.Popen[bytes] | None = None
        self.entry: Entry | None = None
        self.queue: int | None = None
        self.settings: dict[tuple[str, str], dict[str, int]] = {}  # replayed if the process is restarted

    # -- the process -------------------------------------------------------------------
    def _alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> None:
        """Running (started now if not): a timeline's first delay-line event must not wait ~0.1 s for it."""
        if not self._alive():
            if self.proc is not None:
                self.stop()
            self._start()

    def _start(self) -> None:
        """Start the process (from the agent's own cgroups: LXC may have moved the agent) and the chain."""
        path = os.path.join(self.root, "delayline.py")
        with open(path, "w") as f:
            f.write(_source(delayline))
        self.enter_home()
        with open(os.path.join(self.root, "delayline.log"), "ab") as log:
            proc = subprocess.Popen([sys.executable, path, "--queue", str(self.queue or first_queue(self.platform_id)),
                                     "--control", self.control], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=log, start_new_session=True)

        self.entry = self.journal.add("process", str(proc.pid), "platform", pid=proc.pid,
                                      start=process_start_time(proc.pid), role="delayline")
        self.journal.sync()
        self.proc = proc
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
        line = proc.stdout.readline() if ready else b""
        proc.stdout.close()
        if not line:
            self.stop()
            raise OSError(f"the delay line did not start: {self._log_tail()}")
        queue = int(json.loads(line)["queue"])
        if self.queue is not None and queue != self.queue:
            self._requeue(queue)
        self.queue = queue
        self.journal.add("iptables_chain", f"{iptables.TABLE}/{self.chain}", "platform", table=iptables.TABLE,
                         chain=self.chain, comment=self.comment)
        self.journal.sync()
        iptables.chain_create(self.chain, self.comment)
        for (direction, device), lim in list(self.settings.items()):
            if not self.journal.has("iptables_rule", f"{self.chain}/{direction}/{device}"):
                del self.settings[(direction, device)]  # its vnode was removed meanwhile
                continue
            try:
                self._configure(device, direction, lim)
            except OSError as exc:  # a stopped vnode has no veth: its next start sends the settings again
                log.info("delay line: %s %s not restored: %s", direction, device, exc)

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self.root, "delayline.log"), errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-3:]) or "no output"
        except OSError:
            return "no log"

    def _requeue(self, queue: int) -> None:
        """A restarted process got another queue number: point the rules at it."""
        for entry in self.journal.entries():
            if entry["kind"] == "iptables_rule" and entry["chain"] == self.chain:
                spec = iptables.rule_spec(entry["direction"], entry["device"], queue, self.comment)
                iptables.rule_add(self.chain, spec)
                iptables.rule_delete(self.chain, entry["spec"])
                self.journal.remove(entry)
                data = {k: v for k, v in entry.items() if k not in ("kind", "id", "owner")}
                self.journal.add("iptables_rule", entry["id"], entry["owner"], **{**data, "spec": spec})
        self.journal.sync()

    def stop(self) -> None:
        """Stop and reap the process (the rules stay: with --queue-bypass packets pass undelayed)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        if self.entry is not None:
            self.journal.remove(self.entry)
            self.journal.sync()
        self.proc = self.entry = None

    def stats(self) -> dict[str, Any] | None:
        """The process's counters (received, dropped, accepted, held...), or None when none runs."""
        if not self._alive():
            return None
        try:
            return self._send({"op": "stats"})
        except (OSError, ValueError):
            return None

    def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        answer = delayline.request(self.control, message)
        if not answer.get("ok"):
            raise OSError(f"delay line: {answer.get('error')}")
        return answer

    def _configure(self, device: str, direction: str, lim: dict[str, Any]) -> None:
        for message in delayline.set_messages(device, direction, lim):
            self._send(message)

    # -- what plans ask ---------------------------------------------------------------
    def set(self, owner: str, device: str, direction: str, limits: dict[str, Any], record: Record,
            destinations: dict[str, int] | None = None) -> None:
        """Send ``device``'s ``direction`` through the delay line with ``limits`` (a LinkLimits as a dict)
        and, on output, the latency matrix's delay per destination address (us)."""
        self.ready()  # if it died, another starts with every setting replayed
        lim: dict[str, Any] = {key: int(limits[key]) for key in ("delay_us", "jitter_us", "loss_ppm", "reorder_ppm")}
        if destinations:
            lim["destinations"] = destinations
        self._configure(device, direction, lim)  # before the rule: no packet unset
        self.settings[(direction, device)] = lim
        ident = f"{self.chain}/{direction}/{device}"
        if not self.journal.has("iptables_rule", ident):
            spec = iptables.rule_spec(direction, device, self.queue or 0, self.comment)
            record("iptables_rule", ident, table=iptables.TABLE, chain=self.chain, spec=spec,
                   direction=direction, device=device, control=self.control)
            iptables.rule_add(self.chain, spec)

    def rehearse(self, device: str, direction: str) -> None:
        """What ``set`` or ``clear`` of this direction runs, changing nothing: a request to the process
        (its counters), iptables with the rule's matches (a check)."""
        self.stats()
        iptables.exists(self.chain, iptables.rule_spec(direction, device, self.queue or 0, self.comment))

    def cells(self, device: str, destinations: dict[str, int], drop: list[str]) -> None:
        """Change some of the latency-matrix delays (us) of ``device``'s output, set before, and leave the rest."""
        self.ready()
        lim = self.settings.get(("output", device))
        if lim is None:
            raise OSError(f"the delay line holds no output settings for {device}: its latency cells cannot change")
        for message in delayline.cells_messages(device, sorted(destinations.items()), sorted(drop)):
            self._send(message)
        table = lim.setdefault("destinations", {})  # in place: a copy would cost one entry per destination
        table.update(destinations)
        for address in drop:
            table.pop(address, None)
        if not table:
            del lim["destinations"]

    def clear(self, device: str, direction: str) -> None:
        """No delay line for this direction any more (nothing to do when it had none)."""
        ident = f"{self.chain}/{direction}/{device}"
        self.settings.pop((direction, device), None)
        entry = self.journal.get("iptables_rule", ident)  # not a pass over every entry: a start clears two each
        if entry is not None:
            remove_rule(entry)
            self.journal.remove(entry)
            self.journal.sync()


def remove_rule(entry: Entry) -> None:
    """Undo of an ``iptables_rule`` entry: the rule, then its settings in the delay line if it runs."""
    iptables.rule_delete(entry["chain"], entry["spec"], entry["table"])
    try:
        delayline.request(entry["control"], {"op": "clear", "device": entry["device"],
                                             "direction": entry["direction"]}, timeout=1)
    except (OSError, ValueError):
        pass  # no delay line any more: nothing holds the settings
