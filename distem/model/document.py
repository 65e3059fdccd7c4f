"""A whole platform as one document (pure): Distem's ``vplatform_info`` / ``vplatform_create``,
extended with what Distem's lacks. JSON or YAML; the same document is a platform file.

    distem       1 (the document's version)
    pnodes       [{name, spec, state_dir, cgroup_parent}]: where it ran (a platform file may name them)
    vnetworks    [{name, address, network_type, root_interface}]
    vnodes       [{name, status, host, vfilesystem, vifaces, vcpu, vmem, mode, ssh_key}]: ``vnode_create``'s
                 description, and the status to bring it to (RUNNING, FROZEN, DOWN or READY); no 'host':
                 the platform chooses (placement may still move it)
    latencies    {source: {destination: one-way ms}}, the non-zero cells of the matrix
    vroutes      [{networksrc, networkdst, gatewaynode}] given by hand; ``complete_routes``: true when
                 ``vroute_complete()`` made the others
    partition    [[vnode, ...], ...]; ``links_down``: [[vnode, iface], ...]
    events       {planned: [{at, target, type, value, source}], random: [{target, type, generator,
                 first_value, seed, until}]}: the schedule not started yet

A platform file written by hand may give ``vnodes`` as a mapping {name: description} and leave out
any section. Values keep their exact spelling ("20mbit", "10ms"): a document read back gives the
same document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from ipaddress import IPv4Network
from typing import Any

from ..errors import ValidationError, check_keys
from .descriptions import VNodeRequest, parse_cidr, parse_vnetwork_opts, parse_vnode
from .entities import DOWN, FROZEN, READY, RUNNING, NetworkType, VNode
from .events import Event, Target, parse_resource
from .names import check_name
from .platform_model import PlatformModel
from .units import format_duration, parse_duration

VERSION = 1
SECTIONS = ("distem", "id", "pnodes", "vnetworks", "vnodes", "latencies", "vroutes", "complete_routes",
            "partition", "links_down", "events")
STATUSES = (RUNNING, FROZEN, DOWN, READY)
_FS_MODE: dict[str, dict[str, Any]] = {"shared": {"shared": True}, "distinct": {"shared": False}, "overlay": {"cow": True},
            "btrfs": {"cow": "btrfs"}}
_TARGET_FIELDS = tuple(f.name for f in fields(Target))


@dataclass(frozen=True, slots=True, kw_only=True)
class VNetworkSpec:
    name: str
    cidr: IPv4Network | None
    network_type: NetworkType
    root_interface: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformDocument:
    """A document, checked: what ``vplatform_create`` makes, in the order it makes it."""

    pnodes: tuple[Mapping[str, Any], ...] = ()
    vnetworks: tuple[VNetworkSpec, ...] = ()
    vnodes: tuple[VNodeRequest, ...] = ()
    status: Mapping[str, str] | None = None
    latencies: Mapping[tuple[str, str], int] | None = None  # us
    vroutes: tuple[tuple[str, str, str], ...] = ()
    complete_routes: bool = False
    partition: tuple[tuple[str, ...], ...] = ()
    links_down: tuple[tuple[str, str], ...] = ()
    planned: tuple[Event, ...] = ()
    random: tuple[Mapping[str, Any], ...] = ()


# -- out --------------------------------------------------------------------------------------

def vnode_description(vnode: VNode, provisional: bool = False) -> dict[str, Any]:
    """The ``vnode_create`` description that makes this vnode again (no 'host' when ``provisional``)."""
    fs: dict[str, Any] = {"image": vnode.filesystem.image}
    fs.update(_FS_MODE[vnode.filesystem.mode])
    if vnode.vio:
        fs["disk_throttling"] = vnode.vio.to_distem()
    ifaces = []
    for iface in vnode.ifaces:
        entry: dict[str, Any] = {"name": iface.name, "vnetwork": iface.vnetwork, "address": str(iface.address),
                                 "macaddress": iface.mac, "default": iface.default}
        for direction in ("output", "input"):
            limits = getattr(iface, direction)
            if limits:
                entry[direction] = limits.to_distem()
        ifaces.append(entry)
    desc: dict[str, Any] = {**({} if provisional else {"host": vnode.host}), "vfilesystem": fs, "vifaces": ifaces,
                            "mode": "gateway" if vnode.gateway else "normal"}
    if vnode.vcpu:
        desc["vcpu"] = {"corenb": vnode.vcpu.cores, "val": vnode.vcpu.ratio, "unit": "ratio",
                        "exclusive": vnode.vcpu.exclusive}
    if vnode.vmem:
        desc["vmem"] = vnode.vmem.to_distem()
    if vnode.ssh_key.public or vnode.ssh_key.private:
        desc["ssh_key"] = {k: v for k, v in (("public", vnode.ssh_key.public), ("private", vnode.ssh_key.private)) if v}
    return desc


def document(model: PlatformModel, planned: Iterable[Event] = (), random: Iterable[Mapping[str, Any]] = ()
             ) -> dict[str, Any]:
    """The platform ``model`` holds, and the schedule not started yet, as a document (JSON-able)."""
    doc: dict[str, Any] = {
        "distem": VERSION, "id": model.platform_id,
        "pnodes": [{"name": p.name, "spec": p.spec, "state_dir": p.state_dir,
                    **({"cgroup_parent": p.cgroup_parent} if p.cgroup_parent else {})} for p in model.pnodes.values()],
        "vnetworks": [{"name": v.name, "address": str(v.cidr), "network_type": v.network_type,
                       "root_interface": v.root_interface} for v in model.vnetworks.values()],
        "vnodes": [{"name": v.name, "status": model.status[v.name],
                    **vnode_description(v, v.name in model.provisional)} for v in model.vnodes.values()],
        "latencies": _cells_out(model.latencies),
        "vroutes": [{"networksrc": r.srcnet, "networkdst": r.dstnet, "gatewaynode": r.gateway}
                    for r in model.vroutes.values() if not r.auto],
        "complete_routes": any(r.auto for r in model.vroutes.values()),
        "partition": [list(group) for group in model.partition],
        "links_down": [list(key) for key in sorted(model.unplugged)],
        "events": {"planned": [event_out(e) for e in planned], "random": [dict(r) for r in random]},
    }
    return doc


def event_out(event: Event) -> dict[str, Any]:
    value: Any = event.value
    if event.type == "latencies":
        value = _cells_out({pair: parse_duration(ms, "latency", bare="ms") for pair, ms in event.value.items()})
    elif event.type == "partition":
        value = [list(group) for group in event.value]
    return {"at": event.at, "target": target_out(event.target), "type": event.type, "value": value,
            "source": event.source}


def target_out(target: Target) -> dict[str, Any]:
    return {name: getattr(target, name) for name in _TARGET_FIELDS if getattr(target, name) not in ("", None)}


def _cells_out(cells: Mapping[tuple[str, str], int]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for (src, dst), us in sorted(cells.items()):
        if us:
            out.setdefault(src, {})[dst] = format_duration(us)
    return out


# -- in ---------------------------------------------------------------------------------------

def parse_document(doc: object) -> PlatformDocument:
    """Check a whole document before anything is made.

    Raises:
        ValidationError: naming the section, the entry and what is wrong.
    """
    if not isinstance(doc, Mapping):
        raise ValidationError("platform document", type(doc).__name__, "expected a mapping (JSON object, YAML map)")
    check_keys("platform document", doc, SECTIONS, "section")
    if doc.get("distem", VERSION) != VERSION:
        raise ValidationError("platform document.distem", doc["distem"], f"this distem reads version {VERSION}")
    vnetworks = tuple(_vnetwork(i, v) for i, v in enumerate(_list("vnetworks", doc.get("vnetworks"))))
    entries = _vnode_entries(doc.get("vnodes"))
    vnodes, status = [], {}
    for i, (name, entry) in enumerate(entries):
        where = f"vnodes[{i}]"
        desc = {k: v for k, v in entry.items() if k not in ("name", "status")}
        vnodes.append(parse_vnode(name, desc))
        wanted = entry.get("status", RUNNING)
        if wanted not in STATUSES:
            raise ValidationError(f"{where}.status", wanted, f"expected one of {', '.join(STATUSES)}")
        status[vnodes[-1].name] = wanted
    names = [v.name for v in vnodes]
    return PlatformDocument(
        pnodes=tuple(_pnode(i, p) for i, p in enumerate(_list("pnodes", doc.get("pnodes")))),
        vnetworks=vnetworks, vnodes=tuple(vnodes), status=status,
        latencies=_cells_in(doc.get("latencies"), names),
        vroutes=tuple(_vroute(i, r) for i, r in enumerate(_list("vroutes", doc.get("vroutes")))),
        complete_routes=_flag("complete_routes", doc.get("complete_routes", False)),
        partition=tuple(tuple(_names(f"partition[{i}]", g, names)) for i, g in
                        enumerate(_list("partition", doc.get("partition")))),
        links_down=tuple(_link(i, k, names) for i, k in enumerate(_list("links_down", doc.get("links_down")))),
        **_events(doc.get("events")),
    )


def _list(section: str, value: object) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValidationError(section, value, "expected a list")
    return list(value)


def _mapping(where: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(where, value, "expected a mapping")
    return value


def _flag(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(where, value, "expected true or false")
    return value


def _pnode(i: int, entry: object) -> Mapping[str, Any]:
    entry = _mapping(f"pnodes[{i}]", entry)
    check_keys(f"pnodes[{i}]", entry, ["name", "spec", "state_dir", "cgroup_parent"])
    if not isinstance(entry.get("spec", entry.get("name")), str):
        raise ValidationError(f"pnodes[{i}]", dict(entry), "expected a 'spec' (or a 'name': a host reached by ssh)")
    return dict(entry)


def _vnetwork(i: int, entry: object) -> VNetworkSpec:
    entry = _mapping(f"vnetworks[{i}]", entry)
    check_keys(f"vnetworks[{i}]", entry, ["name", "address", "network_type", "root_interface"])
    name = check_name(f"vnetworks[{i}].name", entry.get("name"))
    opts = {k: entry[k] for k in ("network_type", "root_interface") if entry.get(k) is not None}
    network_type, root = parse_vnetwork_opts(name, opts)
    return VNetworkSpec(name=name, cidr=parse_cidr(name, entry.get("address") or ""), network_type=network_type,
                        root_interface=root)


def _vnode_entries(value: object) -> list[tuple[object, Mapping[str, Any]]]:
    if isinstance(value, Mapping):  # a platform file's {name: description}
        return [(name, _mapping(f"vnodes.{name}", desc or {})) for name, desc in value.items()]
    return [(_mapping(f"vnodes[{i}]", e).get("name"), e) for i, e in enumerate(_list("vnodes", value))]


def _names(where: str, value: object, known: list[str]) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValidationError(where, value, "expected a list of vnode names")
    for name in value:
        if name not in known:
            raise ValidationError(where, name, f"no such vnode in the document (known: {', '.join(known) or 'none'})")
    return list(value)


def _cells_in(value: object, known: list[str]) -> dict[tuple[str, str], int]:
    cells = _cells("latencies", value)
    for src, dst in cells:
        _names(f"latencies.{src}", [src, dst], known)
    return cells


def _cells(where: str, value: object) -> dict[tuple[str, str], int]:
    """{source: {destination: one-way delay}} as {(source, destination): us}."""
    if value is None:
        return {}
    return {(str(src), str(dst)): parse_duration(ms, f"{where}.{src}.{dst}", bare="ms")
            for src, row in _mapping(where, value).items() for dst, ms in _mapping(f"{where}.{src}", row).items()}


def _vroute(i: int, entry: object) -> tuple[str, str, str]:
    entry = _mapping(f"vroutes[{i}]", entry)
    check_keys(f"vroutes[{i}]", entry, ["networksrc", "networkdst", "gatewaynode"])
    values = tuple(entry.get(k) for k in ("networksrc", "networkdst", "gatewaynode"))
    if not all(isinstance(v, str) for v in values):
        raise ValidationError(f"vroutes[{i}]", dict(entry), "expected networksrc, networkdst and gatewaynode names")
    return values  # type: ignore[return-value]  # checked: three strings


def _link(i: int, entry: object, known: list[str]) -> tuple[str, str]:
    if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not all(isinstance(x, str) for x in entry):
        raise ValidationError(f"links_down[{i}]", entry, "expected [vnode, iface]")
    _names(f"links_down[{i}]", [entry[0]], known)
    return entry[0], entry[1]


def _events(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    value = _mapping("events", value)
    check_keys("events", value, ["planned", "random"])
    planned = tuple(_event(i, e) for i, e in enumerate(_list("events.planned", value.get("planned"))))
    random = []
    for i, entry in enumerate(_list("events.random", value.get("random"))):
        entry = _mapping(f"events.random[{i}]", entry)
        check_keys(f"events.random[{i}]", entry, ["target", "type", "generator", "first_value", "seed", "until"])
        random.append({**entry, "target": _target(f"events.random[{i}].target", entry.get("target"),
                                                  entry.get("type"))})
    return {"planned": planned, "random": tuple(random)}


def _event(i: int, entry: object) -> Event:
    where = f"events.planned[{i}]"
    entry = _mapping(where, entry)
    check_keys(where, entry, ["at", "target", "type", "value", "source"])
    at = entry.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or at < 0:
        raise ValidationError(f"{where}.at", at, "expected seconds from the schedule's start (0 or more)")
    event_type, value = entry.get("type"), entry.get("value")
    if event_type == "latencies":
        value = {pair: us / 1000 for pair, us in _cells(f"{where}.value", value).items()}
    elif event_type == "partition":
        value = tuple(tuple(group) for group in _list(f"{where}.value", value))
    return Event(float(at), _target(f"{where}.target", entry.get("target"), event_type), str(event_type), value,
                 str(entry.get("source", "at")))


def _target(where: str, value: object, event_type: object) -> Target:
    value = _mapping(where, value)
    check_keys(where, value, _TARGET_FIELDS)
    if value.get("kind") == "platform":
        return Target("platform")
    as_distem = {"type": value.get("kind"), "vnodename": value.get("vnode"),
                 **({"vifacename": value["iface"]} if value.get("iface") else {}),
                 **({"viface_direction": value["direction"]} if value.get("direction") else {}),
                 **({"device": value["device"]} if value.get("device") else {})}
    if value.get("detail"):
        as_distem["type"] = value["detail"]  # memory and disk events name their limit as the resource type
    return parse_resource(as_distem, str(event_type))
