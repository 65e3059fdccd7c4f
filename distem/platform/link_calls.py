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
                self.sessions[node.host].call("apply", ops=self._shaping([vnode])[vnode])
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
                           port: int = IPERF_PORT) -> dict[str, float]:
        """TCP goodput from ``source`` to ``destination`` (``reverse``: the other way), with iperf3.

        Returns:
            ``{'sent_bps', 'received_bps', 'retransmits'}``; received is the goodput.
        """
        for name in (source, destination):
            if self.model.status.get(name) != RUNNING:
                raise ValidationError("vnode", name, "it must be running")
        server_pnode = self.sessions[self.model.vnode(destination).host]
        address = str(self.model.vnode(destination).ifaces[0].address.ip)
        pid = server_pnode.call("netns_spawn", name=destination, argv=["iperf3", "-s", "-1", "-p", str(port)])
        try:
            deadline = time.monotonic() + 5
            while not server_pnode.call("wait_listening", names=[destination], port=port)[destination]:
                if time.monotonic() > deadline:
                    raise AgentError(server_pnode.pnode.name, "iperf3", "the server did not start", target=destination)
                time.sleep(0.05)
            argv = ["iperf3", "-c", address, "-p", str(port), "-t", str(seconds), "-J", *(["-R"] if reverse else [])]
            report = json.loads(self.host_execute(source, argv, timeout=seconds + 30))
        finally:
            server_pnode.call("process_end", pid=pid, timeout=5)
        end = report["end"]
        return {"sent_bps": end["sum_sent"]["bits_per_second"], "received_bps": end["sum_received"]["bits_per_second"],
                "retransmits": end["sum_sent"].get("retransmits", 0)}
