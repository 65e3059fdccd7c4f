"""Measuring the platform from inside vnodes' network namespaces, with the pnodes' own tools:
reachability and RTTs (fping), the latency matrix measured, TCP goodput (iperf3)."""

from __future__ import annotations

import json
import shlex
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from ..errors import AgentError, CommandError, FidelityWarning, ValidationError
from ..model import RUNNING, PlatformModel
from .pool import PnodePool

IPERF_PORT = 5201
BUSY = 0.9  # a pnode's CPU busier than this while measuring makes the measurement suspect


class Measures:
    """No state of its own: calls to the agents of the vnodes' pnodes."""

    def __init__(self, model: PlatformModel, pool: PnodePool) -> None:
        self.model, self.pool = model, pool

    def _running(self, name: str) -> None:
        if self.model.status.get(name) != RUNNING:
            raise ValidationError("vnode", name, "it must be running")

    @contextmanager
    def watching(self, pnodes: Iterable[str]) -> Iterator[dict[str, float]]:
        """Each pnode's CPU busy fraction over the block (filled at its end); a FidelityWarning when
        one was over 90%: delays come late and rates fall short on a saturated pnode."""
        pnodes = sorted(set(pnodes))
        before = self.pool.on_all({p: ("cpu_times", {}) for p in pnodes})
        busy: dict[str, float] = {}
        yield busy
        after = self.pool.on_all({p: ("cpu_times", {}) for p in pnodes})
        for p in pnodes:
            total, idle = after[p][0] - before[p][0], after[p][1] - before[p][1]
            busy[p] = round(1 - idle / total, 3) if total > 0 else 0.0
        over = {p: b for p, b in busy.items() if b > BUSY}
        if over:
            warnings.warn(f"measured while {', '.join(f'{p} was {b:.0%}' for p, b in over.items())} CPU busy: the "
                          "pnode may not have held the platform's delays and rates, the results are suspect",
                          FidelityWarning, stacklevel=4)

    def reachable(self, source: str, vnodes: Sequence[str] | None = None, timeout_ms: int = 500) -> dict[str, bool]:
        """Which vnodes answer one ping from ``source`` (run in ``source``'s network namespace)."""
        names = [n for n in (vnodes if vnodes is not None else self.model.vnodes) if n != source]
        addresses = {str(self.model.vnode(n).ifaces[0].address.ip): n for n in names if self.model.vnode(n).ifaces}
        host = self.model.vnode(source).host
        own = str(self.model.vnode(source).ifaces[0].address.ip)
        result = self.pool.call(host, "fping", names=[source], targets=list(addresses), count=1, interval_ms=1,
                                own={source: own}, timeout_ms=timeout_ms)[source]
        return {addresses[a]: bool(s and s[0] is not None) for a, s in result.items()}

    def ping(self, source: str, destination: str, count: int = 100, interval_ms: int = 10,
             timeout_ms: int = 2000) -> pd.Series:
        """RTTs in ms of ``count`` probes from ``source``'s namespace to ``destination`` (NaN: lost)."""
        host = self.model.vnode(source).host
        address = str(self.model.vnode(destination).ifaces[0].address.ip)
        samples = self.pool.call(host, "fping", names=[source], targets=[address], count=count,
                                 interval_ms=interval_ms, own={}, timeout_ms=timeout_ms)[source][address]
        return pd.Series([float("nan") if s is None else s for s in samples], name=f"{source}->{destination}",
                         dtype=float)

    def measure_latencies(self, vnodes: Sequence[str] | None = None, count: int = 5,
                          interval_ms: int = 20, parallel: int | None = None) -> pd.DataFrame:
        """Median RTT in ms from each vnode (rows) to each other (columns), measured with fping
        run in each source vnode's own network namespace, ``parallel`` sources at once per pnode
        (default: 16 per core of the pnode)."""
        names = list(vnodes) if vnodes is not None else [n for n, s in self.model.status.items() if s == RUNNING]
        targets = {n: str(self.model.vnode(n).ifaces[0].address.ip) for n in names if self.model.vnode(n).ifaces}
        groups = self.pool.by_host(self.model, targets)
        with self.watching(groups) as busy:
            results = self.pool.on_all({p: ("fping", {"names": g, "targets": list(targets.values()), "count": count,
                                                      "interval_ms": interval_ms, "own": {n: targets[n] for n in g},
                                                      "parallel": parallel}) for p, g in groups.items()},
                                       "Measuring latencies", len(targets))
        by_address = {a: n for n, a in targets.items()}
        frame = pd.DataFrame(index=pd.Index(list(targets), name="from"), columns=pd.Index(list(targets), name="to"),
                             dtype=float)
        for per_pnode in results.values():
            for source, rtts in per_pnode.items():
                for address, samples in rtts.items():
                    got = [s for s in samples if s is not None]
                    if by_address[address] != source:
                        frame.loc[source, by_address[address]] = float(pd.Series(got).median()) if got else float("nan")
        frame.attrs["pnode_busy"] = busy  # each pnode's CPU busy fraction while measuring
        return frame

    def host_execute(self, vnode: str, argv: Sequence[str], timeout: float = 60, check: bool = True) -> str:
        """Run a program of the pnode (iperf3, fping, ...) inside ``vnode``'s network namespace.

        The vnode's interfaces, routes and limits carry its traffic, so this measures the
        vnode's own path even when its image lacks the tool. Its standard output. Raises
        CommandError on a non-zero status, unless ``check`` is False (fping exits 1 when a probe is lost).
        """
        self._running(vnode)
        status, out, err = self.pool.call(self.model.vnode(vnode).host, "netns_run", name=vnode, argv=list(argv),
                                          timeout=timeout)
        if status != 0 and check:
            raise CommandError(vnode, shlex.join(argv), status, out, err)
        return str(out)

    def measure_throughput(self, source: str, destination: str, seconds: float = 5, reverse: bool = False,
                           port: int = IPERF_PORT) -> pd.Series:
        """TCP goodput of data flowing from ``source`` to ``destination`` (``reverse``: the other way), iperf3.

        The iperf3 client sends from the sender's namespace; the per-second figures are the
        server's (the receiver's), fetched with --get-server-output. (With -R instead, iperf3's
        own control messages queue behind the data on a slow link and skew the result.) Both
        ends run in the background and are polled, so the platform stays usable meanwhile.

        Returns:
            A Series named "sender → receiver": ``sent_bps``, ``received_bps``, ``retransmits``,
            ``intervals_bps``, ``min_rtt_ms``, ``max_rtt_ms``, ``pnode_busy``: received is the goodput, intervals the receiver's rate each second, all
            on one connection, the RTT range the sender's TCP saw, and each pnode's CPU busy
            fraction meanwhile (over 90%: a FidelityWarning too).
        """
        sender, receiver = (destination, source) if reverse else (source, destination)
        for name in (sender, receiver):
            self._running(name)
        at_sender = self.pool.sessions[self.model.vnode(sender).host]
        at_receiver = self.pool.sessions[self.model.vnode(receiver).host]
        address = str(self.model.vnode(receiver).ifaces[0].address.ip)
        server = at_receiver.call("netns_spawn", name=receiver, argv=["iperf3", "-s", "-1", "-J", "-p", str(port)])
        client = None
        watch = self.watching([at_sender.pnode.name, at_receiver.pnode.name])
        try:
            deadline = time.monotonic() + 5
            while not at_receiver.call("wait_listening", names=[receiver], port=port)[receiver]:
                if time.monotonic() > deadline:
                    raise AgentError(at_receiver.pnode.name, "iperf3", "the server did not start", target=receiver)
                time.sleep(0.05)
            with watch as busy:
                client = at_sender.call("netns_spawn", name=sender, argv=[
                    "iperf3", "-c", address, "-p", str(port), "-t", str(seconds), "-J", "--get-server-output"])
                deadline = time.monotonic() + seconds + 30
                while (done := at_sender.call("process_end", pid=client, timeout=0, kill=False)) is None:
                    if time.monotonic() > deadline:
                        raise AgentError(at_sender.pnode.name, "iperf3", "no result in time", target=sender)
                    time.sleep(0.2)  # outside the session's lock: other calls go through meanwhile
                client = None
        finally:
            if client is not None:
                at_sender.call("process_end", pid=client, timeout=0)
            at_receiver.call("process_end", pid=server, timeout=5)
        status, out, err = done
        report = json.loads(out) if out.strip() else {"error": err.strip() or f"iperf3 exited with {status}"}
        if "error" in report:
            raise AgentError(at_sender.pnode.name, "iperf3", report["error"], target=sender)
        end, received = report["end"], report["server_output_json"]["intervals"]
        tcp = end["streams"][0]["sender"]
        return pd.Series({"sent_bps": end["sum_sent"]["bits_per_second"],
                          "received_bps": end["sum_received"]["bits_per_second"],
                          "retransmits": end["sum_sent"].get("retransmits", 0),
                          "intervals_bps": [i["sum"]["bits_per_second"] for i in received],
                          "min_rtt_ms": tcp.get("min_rtt", 0) / 1000, "max_rtt_ms": tcp.get("max_rtt", 0) / 1000,
                          "pnode_busy": busy}, name=f"{sender} → {receiver}", dtype=object)
