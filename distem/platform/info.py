"""Distem's description dicts out (vnode_info, vnetwork_info, ...): pure functions of the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import PlatformModel
from ..model.names import bridge_name, veth_name
from ..model.routes import VRoute, iface_on


def vnetwork_info(model: PlatformModel, name: str) -> dict[str, Any]:
    vnet = model.vnetwork(name)
    users = model.vroute_users()
    return {"name": vnet.name, "address": str(vnet.cidr), "network_type": vnet.network_type,
            "root_interface": vnet.root_interface, "bridge": bridge_name(model.platform_id, vnet.bridge_index),
            "vnodes": sorted(n.name for n in model.vnodes.values() if any(i.vnetwork == name for i in n.ifaces)),
            "vroutes": [vroute_info(model, r, users) for r in model.vroutes.values() if r.srcnet == name]}


def vroute_info(model: PlatformModel, route: VRoute,
                users: Mapping[tuple[str, str], list[str]] | None = None) -> dict[str, Any]:
    """Distem's description of a vroute; ``users``: ``model.vroute_users()``, when describing many."""
    via = iface_on(model.vnode(route.gateway), route.srcnet)
    users = model.vroute_users() if users is None else users
    return {"networksrc": route.srcnet, "networkdst": route.dstnet, "gateway": str(via.address.ip) if via else None,
            "gatewaynode": route.gateway, "auto": route.auto, "vnodes": users.get((route.srcnet, route.dstnet), [])}


def vnode_info(model: PlatformModel, name: str) -> dict[str, Any]:
    vnode = model.vnode(name)
    return {
        "name": vnode.name, "id": vnode.index, "host": vnode.host, "status": model.status[name],
        "mode": "gateway" if vnode.gateway else "normal",
        "vfilesystem": vfilesystem_info(model, name),
        "vifaces": [viface_info(model, name, i.name) for i in vnode.ifaces],
        "vcpu": vcpu_info(model, name),
        "vmem": vmem_info(model, name),
    }


def viface_info(model: PlatformModel, vnode: str, iface: str) -> dict[str, Any]:
    node = model.vnode(vnode)
    viface = node.iface(iface)
    return {"name": viface.name, "vnode": vnode, "vnetwork": viface.vnetwork,
            "address": str(viface.address), "macaddress": viface.mac, "default": viface.default,
            "host_ifname": veth_name(model.platform_id, node.index, viface.slot)}


def vinput_info(model: PlatformModel, vnode: str, iface: str) -> dict[str, Any]:
    limits = model.vnode(vnode).iface(iface).input
    return limits.to_distem() if limits else {}


def voutput_info(model: PlatformModel, vnode: str, iface: str) -> dict[str, Any]:
    limits = model.vnode(vnode).iface(iface).output
    return limits.to_distem() if limits else {}


def vcpu_info(model: PlatformModel, vnode: str) -> dict[str, Any]:
    node = model.vnode(vnode)
    if node.vcpu is None:
        return {}
    return {"corenb": node.vcpu.cores, "val": node.vcpu.ratio, "unit": "ratio", "cores": list(node.cpuset),
            "exclusive": node.vcpu.exclusive}


def vmem_info(model: PlatformModel, vnode: str) -> dict[str, Any]:
    vmem = model.vnode(vnode).vmem
    return vmem.to_distem() if vmem else {}


def vfilesystem_info(model: PlatformModel, vnode: str) -> dict[str, Any]:
    node = model.vnode(vnode)
    fs = node.filesystem
    info: dict[str, Any] = {"image": fs.image, "mode": fs.mode, "shared": fs.mode == "shared",
                            "cow": fs.mode in ("overlay", "btrfs")}
    if node.vio:
        info["disk_throttling"] = node.vio.to_distem()
    return info
