"""Link limits, live: Distem's viface/vinput/voutput calls, and throughput measurement.

A live change replaces the htb class and the leaf qdisc in place (never
delete + add), so connections survive it and unchanged properties stay.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import AgentError, CommandError, ValidationError
from ..model import FROZEN, RUNNING
from ..model.links import parse_limits

if TYPE_CHECKING:
    from .platform import Platform

    _Base = Platform
else:
    _Base = object

IPERF_PORT = 5201


class LinkCalls(_Base):
    def viface_update(self, vnode: str, iface: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Change an interface's ``input``/``output`` limits live; properties not given are kept."""
        unknown = set(desc) - {"input", "output"}
        if unknown:
            raise ValidationError(f"{vnode}.{iface}", sorted(unknown)[0],
                                  "only 'input' and 'output' can change on an existing interface")
        node = self.model.vnode(vnode)
        old = node.iface(iface)
        new = replace(old, **{d: parse_limits(f"{vnode}.{iface}.{d}", desc[d], getattr(old, d))
                              for d in ("input", "output") if d in desc})
        updated = replace(node, ifaces=tuple(new if i.name == iface else i for i in node.ifaces))
        self._check_limits(updated)
        if self.model.status[vnode] in (RUNNING, FROZEN):
            self.model.update_vnode(updated)
            try:
                self.sessions[node.host].call("apply", ops=self._shaping([vnode])[vnode])  # clears too
            except AgentError:
                self.model.update_vnode(node)
                raise
        else:
            self.model.update_vnode(updated)  # applied at the next start
        return self.viface_info(vnode, iface)

    def vinput_update(self, vnode: str, iface: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        return self.viface_update(vnode, iface, {"input": desc})

    def voutput_update(self, vnode: str, iface: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        return self.viface_update(vnode, iface, {"output": desc})

    def vinput_info(self, vnode: str, iface: str) -> dict[str, Any]:
        limits = self.model.vnode(vnode).iface(iface).input
        return limits.to_distem() if limits else {}

    def voutput_info(self, vnode: str, iface: str) -> dict[str, Any]:
        limits = self.model.vnode(vnode).iface(iface).output
        return limits.to_distem() if limits else {}

    # -- measuring with the pnode's own tools, from inside vnodes' network namespaces -----------
    def host_execute(self, vnode: str, argv: Sequence[str], timeout: float = 60) -> str:
        """Run a program of the pnode (iperf3, fping, ...) inside ``vnode``'s network namespace.

        The vnode's interfaces, routes and limits carry its traffic, so this measures the
        vnode's own path even when its image lacks the tool. Raises CommandError on failure.
        """
        if self.model.status.get(vnode) != RUNNING:
            raise ValidationError("vnode", vnode, "it must be running")
        status, out, err = self.sessions[self.model.vnode(vnode).host].call(
            "netns_run", name=vnode, argv=list(argv), timeout=timeout)
        if status != 0:
            raise CommandError(vnode, shlex.join(argv), status, out, err)
        return out

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
            if self.model.status.get(name) != RUNNING:
                raise ValidationError("vnode", name, "it must be running")
        at_sender = self.sessions[self.model.vnode(sender).host]
        at_receiver = self.sessions[self.model.vnode(receiver).host]
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
