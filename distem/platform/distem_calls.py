"""Distem's client calls, with its names and dict shapes, so a Distem script translates line by line.

    Distem.client do |cl|                     with distem.Platform() as cl:
      cl.vnetwork_create('vnet', '10.144.0.0/24')   cl.vnetwork_create('vnet', '10.144.0.0/24')
      cl.vnode_create('n1', {...})                  cl.vnode_create('n1', {...})
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import CommandError, ValidationError
from ..model import FROZEN, RUNNING, VNode, parse_vnode
from ..model.names import bridge_name, veth_name

if TYPE_CHECKING:
    from .platform import Platform

    _Base = Platform
else:
    _Base = object


def _names(names: str | Sequence[str] | None, default: list[str]) -> list[str]:
    if names is None:
        return default
    if isinstance(names, str):
        return [names]
    return list(names)


class DistemCalls(_Base):
    # -- vnetworks -------------------------------------------------------------------
    def vnetwork_create(self, name: str, cidr: str | None = "", opts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a vnetwork; an empty ``cidr`` picks a free /24 in 10.144.0.0/16."""
        self._create_vnetwork(name, cidr, opts)
        return self.vnetwork_info(name)

    def vnetwork_remove(self, name: str) -> None:
        self._remove_vnetwork(name)

    def vnetworks_remove(self, names: Sequence[str] | None = None) -> None:
        for name in _names(names, list(self.model.vnetworks)):
            self._remove_vnetwork(name)

    def vnetwork_info(self, name: str) -> dict[str, Any]:
        vnet = self.model.vnetwork(name)
        users = self.model.vroute_users()
        return {"name": vnet.name, "address": str(vnet.cidr), "network_type": vnet.network_type,
                "root_interface": vnet.root_interface, "bridge": bridge_name(self.id, vnet.bridge_index),
                "vnodes": sorted(n.name for n in self.model.vnodes.values()
                                 if any(i.vnetwork == name for i in n.ifaces)),
                "vroutes": [self._vroute_info(r, users) for r in self.model.vroutes.values() if r.srcnet == name]}

    def vnetworks_info(self) -> list[dict[str, Any]]:
        return [self.vnetwork_info(n) for n in self.model.vnetworks]

    # -- vnodes ----------------------------------------------------------------------
    def vnode_create(self, name: str, desc: dict[str, Any] | None = None,
                     ssh_key: dict[str, str] | None = None) -> dict[str, Any]:
        """Create a vnode (its filesystem and container; status READY). ``desc`` as in Distem."""
        self._create_vnodes([parse_vnode(name, desc or {}, ssh_key)])
        return self.vnode_info(name)

    def vnodes_create(self, names: Sequence[str], desc: dict[str, Any] | None = None,
                      ssh_key: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Create several vnodes from one description, in one batch per pnode."""
        self._create_vnodes([parse_vnode(n, desc or {}, ssh_key) for n in names])
        return [self.vnode_info(n) for n in names]

    def vnode_start(self, name: str) -> dict[str, Any]:
        self._lifecycle("start", [name])
        return self.vnode_info(name)

    def vnodes_start(self, names: Sequence[str] | None = None) -> None:
        """Start vnodes (default: all that are not running), in parallel over pnodes."""
        self._lifecycle("start", _names(names, [n for n, s in self.model.status.items() if s != RUNNING]))

    def vnode_stop(self, name: str) -> dict[str, Any]:
        self._lifecycle("stop", [name])
        return self.vnode_info(name)

    def vnodes_stop(self, names: Sequence[str] | None = None) -> None:
        self._lifecycle("stop", _names(names, [n for n, s in self.model.status.items() if s == RUNNING]))

    def vnode_freeze(self, name: str) -> dict[str, Any]:
        self._lifecycle("freeze", [name])
        return self.vnode_info(name)

    def vnodes_freeze(self, names: Sequence[str] | None = None) -> None:
        self._lifecycle("freeze", _names(names, [n for n, s in self.model.status.items() if s == RUNNING]))

    def vnode_unfreeze(self, name: str) -> dict[str, Any]:
        self._lifecycle("unfreeze", [name])
        return self.vnode_info(name)

    def vnodes_unfreeze(self, names: Sequence[str] | None = None) -> None:
        self._lifecycle("unfreeze", _names(names, [n for n, s in self.model.status.items() if s == FROZEN]))

    def vnode_remove(self, name: str) -> None:
        self._remove_vnodes([name])

    def vnodes_remove(self, names: Sequence[str] | None = None) -> None:
        self._remove_vnodes(_names(names, list(self.model.vnodes)))

    def vnode_info(self, name: str) -> dict[str, Any]:
        vnode = self.model.vnode(name)
        return {
            "name": vnode.name, "id": vnode.index, "host": vnode.host, "status": self.model.status[name],
            "mode": "gateway" if vnode.gateway else "normal",
            "vfilesystem": self.vfilesystem_info(name),
            "vifaces": [self.viface_info(name, i.name) for i in vnode.ifaces],
            "vcpu": self.vcpu_info(name),
            "vmem": self.vmem_info(name),
        }

    def vnodes_info(self) -> list[dict[str, Any]]:
        return [self.vnode_info(n) for n in self.model.vnodes]

    def viface_info(self, vnode: str, iface: str) -> dict[str, Any]:
        node: VNode = self.model.vnode(vnode)
        viface = node.iface(iface)
        return {"name": viface.name, "vnode": vnode, "vnetwork": viface.vnetwork,
                "address": str(viface.address), "macaddress": viface.mac, "default": viface.default,
                "host_ifname": veth_name(self.id, node.index, node.ifaces.index(viface))}

    # -- commands --------------------------------------------------------------------
    def vnode_execute(self, name: str, command: str | Sequence[str], timeout: float | None = None) -> str:
        """Run ``command`` in the vnode (through LXC: no sshd needed); its output.

        Raises:
            CommandError: the command exited non-zero (status, stdout and stderr attached).
        """
        return self.check(name, command, timeout)

    def vnodes_execute(self, names: Sequence[str], command: str | Sequence[str],
                       timeout: float | None = None) -> dict[str, str]:
        """Run ``command`` in every vnode of ``names`` at once; output per vnode (CommandError on the first failure)."""
        results = self._execute(list(names), command, timeout)
        for name, (status, out, err) in results.items():
            if status != 0:
                raise CommandError(name, command if isinstance(command, str) else " ".join(command), status, out, err)
        return {name: out for name, (_, out, _) in results.items()}

    def wait_vnodes(self, opts: dict[str, Any] | None = None) -> bool:
        """Wait until every vnode runs and (with ``port``) has a process listening on that TCP port.

        ``opts`` as in Distem: ``{'vnodes': [...], 'timeout': 600, 'port': 22}``; ``'port': None``
        waits for the vnodes to run only (images without sshd). True when all are ready in time.
        """
        opts = dict(opts or {})
        unknown = set(opts) - {"vnodes", "timeout", "port"}
        if unknown:
            raise ValidationError("wait_vnodes", sorted(unknown)[0], "allowed keys are vnodes, timeout, port")
        names = _names(opts.get("vnodes"), list(self.model.vnodes))
        port = opts.get("port", 22)
        deadline = time.monotonic() + float(opts.get("timeout", 600))
        waiting = list(names)
        while waiting:
            running = [n for n in waiting if self.model.status.get(n) == RUNNING]
            if port is not None and running:
                ready = {}
                for pnode, group in self._by_host(running).items():
                    ready.update(self.sessions[pnode].call("wait_listening", names=group, port=int(port)))
                running = [n for n in running if ready.get(n)]
            waiting = [n for n in waiting if n not in running]
            if not waiting:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True
