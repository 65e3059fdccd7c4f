"""Measuring the platform from inside vnodes' network namespaces, with the pnodes' own tools:
reachability and RTTs (fping), the latency matrix measured, TCP goodput (iperf3)."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..errors import AgentError, CommandError, ValidationError
from ..model import RUNNING, PlatformModel
from .pool import PnodePool

IPERF_PORT = 5201


class Measures:
    """No state of its own: calls to the agents of the vnodes' pnodes."""

    def __init__(self, model: PlatformModel, pool: PnodePool) -> None:
        self.model, self.pool = model, pool

    def _running(self, name: str) -> None:
        if self.model.status.get(name) != RUNNING:
            raise ValidationError("vnode", name, "it must be running")

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
                           port: int = IPERF_PORT) -> dict[str, Any]:
        """TCP goodput of data flowing from ``source`` to ``destination`` (``reverse``: the other way), iperf3.

        The iperf3 client sends from the sender's namespace; the per-second figures are the
        server's (the receiver's), fetched with --get-server-output. (With -R instead, iperf3's
        own control messages queue behind the data on a slow link and skew the result.) Both
        ends run in the background and are polled, so the platform stays usable meanwhile.

        Returns:
            ``{'sent_bps', 'received_bps', 'retransmits', 'intervals_bps', 'min_rtt_ms', 'max_rtt_ms'}``:
            received is the goodput, intervals the receiver's rate each second, all on one
            connection, and the RTT range the sender's TCP saw.
        """
        sender, receiver = (destination, source) if reverse else (source, destination)
        for name in (sender, receiver):
            self._running(name)
        at_sender = self.pool.sessions[self.model.vnode(sender).host]
        at_receiver = self.pool.sessions[self.model.vnode(receiver).host]
        address = str(self.model.vnode(receiver).ifaces[0].address.ip)
        server = at_receiver.call("netns_spawn", name=receiver, argv=["iperf3", "-s", "-1", "-J", "-p", str(port)])
        client = None
        try:
            deadline = time.monotonic() + 5
            while not at_receiver.call("wait_listening", names=[receiver], port=port)[receiver]:
                if time.monotonic() > deadline:
                    raise AgentError(at_receiver.pnode.name, "iperf3", "the server did not start", target=receiver)
                time.sleep(0.05)
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
        return {"sent_bps": end["sum_sent"]["bits_per_second"], "received_bps": end["sum_received"]["bits_per_second"],
                "retransmits": end["sum_sent"].get("retransmits", 0),
                "intervals_bps": [i["sum"]["bits_per_second"] for i in received],
                "min_rtt_ms": tcp.get("min_rtt", 0) / 1000, "max_rtt_ms": tcp.get("max_rtt", 0) / 1000}
