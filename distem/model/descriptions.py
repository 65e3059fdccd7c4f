"""Distem's description dicts in, validated requests out.

``vnode_create(name, {'vfilesystem': {...}, 'vifaces': [...]})`` and the
builders both arrive here, so both get the same checks and the same errors.
A request is not yet a vnode: addresses, MACs and the pnode are chosen by
``PlatformModel.add_vnode``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from ..errors import ValidationError, check_keys
from .entities import FilesystemMode, NetworkType, SSHKey, VFilesystem
from .links import LinkLimits, parse_limits
from .resources import CpuSpec, VIo, VMem, parse_cpu_spec, parse_vio, parse_vmem
from .names import check_iface_name, check_name

_VNODE_KEYS = {"host", "vfilesystem", "vifaces", "mode", "status", "ssh_key", "vcpu", "vmem"}
_FS_KEYS = {"image", "shared", "cow", "disk_throttling"}
_IFACE_KEYS = {"name", "vnetwork", "address", "macaddress", "default", "input", "output"}
_VNET_OPTS = {"network_type", "root_interface"}
_MAC_CHARS = set("0123456789abcdef:")


@dataclass(frozen=True, slots=True, kw_only=True)
class IfaceRequest:
    name: str
    vnetwork: str | None
    address: IPv4Interface | None
    mac: str | None
    default: bool = False
    output: LinkLimits | None = None
    input: LinkLimits | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VNodeRequest:
    name: str
    host: str | None
    filesystem: VFilesystem
    ifaces: tuple[IfaceRequest, ...]
    ssh_key: SSHKey
    gateway: bool = False
    # Resource limits, parsed; what depends on the pnode is settled when it is chosen (``on``): MHz
    # needs its cpufreq, each limit goes through the hierarchy it has the controller on (0 until then),
    # throttled devices must exist there.
    vcpu: CpuSpec | None = None
    vmem: VMem | None = None
    vio: VIo | None = None


def _mapping(field: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(field, value, "expected a dict")
    return value


def _known_keys(field: str, value: Mapping[str, Any], allowed: set[str]) -> None:
    check_keys(field, value, sorted(allowed))


def _bool(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValidationError(field, value, "expected true or false")


def image_path(field: str, image: object) -> str:
    """A tarball path: a plain path or a file:// URL (Distem's spelling)."""
    if hasattr(image, "__fspath__"):
        image = str(image)
    if not isinstance(image, str) or not image or "\0" in image:
        raise ValidationError(field, image, "expected a tarball path or a file:// URL")
    if image.startswith("file://"):
        image = image[len("file://"):]
    elif "://" in image:
        raise ValidationError(field, image, "only local tarballs (a path or a file:// URL) are supported")
    return image


def parse_filesystem(field: str, desc: object) -> VFilesystem:
    """Distem's vfilesystem dict. Neither 'shared' nor 'cow' given: overlay (copy-on-write)."""
    desc = _mapping(field, desc)
    _known_keys(field, desc, _FS_KEYS)
    if "image" not in desc:
        raise ValidationError(f"{field}.image", None, "every vnode needs an image (a tarball path)")
    image = image_path(f"{field}.image", desc["image"])
    shared = _bool(f"{field}.shared", desc["shared"]) if "shared" in desc else None
    cow = desc.get("cow")
    mode: FilesystemMode
    if cow in (None, False):
        mode = "distinct" if shared is False else ("shared" if shared else "overlay")
    elif shared:
        raise ValidationError(f"{field}.cow", cow, "a copy-on-write filesystem cannot also be shared")
    elif cow is True or cow == "overlay":
        mode = "overlay"
    elif cow == "btrfs":
        mode = "btrfs"
    else:
        raise ValidationError(f"{field}.cow", cow, "expected true, false, 'overlay' or 'btrfs'")
    return VFilesystem(image=image, mode=mode)


def parse_iface(field: str, desc: object) -> IfaceRequest:
    desc = _mapping(field, desc)
    _known_keys(field, desc, _IFACE_KEYS)
    name = check_iface_name(f"{field}.name", desc.get("name"))
    vnetwork = desc.get("vnetwork")
    if vnetwork is not None:
        check_name(f"{field}.vnetwork", vnetwork)
    address = None
    if desc.get("address") not in (None, ""):
        try:
            if not isinstance(desc["address"], str):  # IPv4Interface takes ints (and True: 0.0.0.1)
                raise ValueError
            address = IPv4Interface(desc["address"])
        except ValueError:
            raise ValidationError(f"{field}.address", desc["address"], "expected an IPv4 address like '10.0.0.5/24'") from None
    if vnetwork is None and address is None:
        raise ValidationError(field, dict(desc), "give the interface a 'vnetwork' or an 'address'")
    mac = desc.get("macaddress")
    if mac is not None:
        mac = parse_mac(f"{field}.macaddress", mac)
    default = _bool(f"{field}.default", desc["default"]) if "default" in desc else False
    return IfaceRequest(name=name, vnetwork=vnetwork, address=address, mac=mac, default=default,
                        output=parse_limits(f"{field}.output", desc.get("output")),
                        input=parse_limits(f"{field}.input", desc.get("input")))


def parse_mac(field: str, value: object) -> str:
    """A unicast MAC address, lower case."""
    parts = str(value).lower().split(":")
    if len(parts) != 6 or not set(str(value).lower()) <= _MAC_CHARS or any(len(p) != 2 for p in parts) \
            or int(parts[0], 16) & 1:
        raise ValidationError(field, value, "expected a unicast MAC like '02:00:00:00:00:01'")
    return str(value).lower()


def parse_address(field: str, value: object) -> IPv4Address:
    try:
        if not isinstance(value, str):  # IPv4Address takes ints (and True: 0.0.0.1)
            raise ValueError
        return IPv4Address(value)
    except ValueError:
        raise ValidationError(field, value, "expected an IPv4 address like '10.144.0.5'") from None


def parse_pairs(field: str, value: object, what: str) -> list[tuple[str, str]]:
    """``[[a, b], ...]`` of strings (``what``: how to say one, e.g. "[ip, mac]")."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValidationError(field, value, f"expected a list of {what}")
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not all(isinstance(x, str) for x in entry):
            raise ValidationError(field, entry, f"expected {what}")
    return [(a, b) for a, b in value]


def parse_vnode(name: object, desc: object, ssh_key: object = None) -> VNodeRequest:
    """Validate ``vnode_create(name, desc, ssh_key)``'s arguments."""
    name = check_name("vnode name", name)
    desc = _mapping(f"vnode {name!r}", desc)
    _known_keys(f"vnode {name!r}", desc, _VNODE_KEYS)
    filesystem = parse_filesystem(f"{name}.vfilesystem", desc.get("vfilesystem"))
    raw_ifaces = desc.get("vifaces")
    raw_ifaces = [] if raw_ifaces is None else raw_ifaces  # 0 or '' is a mistake, not "no interfaces"
    if not isinstance(raw_ifaces, (list, tuple)):
        raise ValidationError(f"{name}.vifaces", raw_ifaces, "expected a list of interface dicts")
    ifaces = tuple(parse_iface(f"{name}.vifaces[{i}]", d) for i, d in enumerate(raw_ifaces))
    seen: set[str] = set()
    for iface in ifaces:
        if iface.name in seen:
            raise ValidationError(f"{name}.vifaces", iface.name, "interface names must be unique in a vnode")
        seen.add(iface.name)
    host = desc.get("host")
    if host is not None and not isinstance(host, str):
        raise ValidationError(f"{name}.host", host, "expected a pnode name")
    mode = desc.get("mode")
    if mode not in (None, "gateway", "normal"):
        raise ValidationError(f"{name}.mode", mode, "expected 'gateway' or 'normal'")
    vio = _mapping(f"{name}.vfilesystem", desc.get("vfilesystem")).get("disk_throttling")
    key = _mapping("ssh_key", ssh_key if ssh_key is not None else desc.get("ssh_key"))
    _known_keys("ssh_key", key, {"public", "private"})
    return VNodeRequest(
        name=name,
        host=host,
        filesystem=filesystem,
        ifaces=ifaces,
        ssh_key=SSHKey(public=key.get("public"), private=key.get("private")),
        gateway=mode == "gateway",
        vcpu=parse_cpu_spec(f"{name}.vcpu", desc.get("vcpu")),
        vmem=parse_vmem(f"{name}.vmem", desc.get("vmem")),
        vio=parse_vio(f"{name}.vfilesystem.disk_throttling", vio),
    )


def parse_vnetwork_opts(name: str, opts: object) -> tuple[NetworkType, str | None]:
    opts = _mapping(f"vnetwork {name!r} options", opts)
    _known_keys(f"vnetwork {name!r} options", opts, _VNET_OPTS)
    kind = opts.get("network_type", "classical")
    if kind not in ("classical", "vxlan"):
        raise ValidationError(f"{name}.network_type", kind, "expected 'classical' or 'vxlan'")
    root = opts.get("root_interface")
    if root is not None:
        check_iface_name(f"{name}.root_interface", root)
    return kind, root


def parse_cidr(name: str, cidr: object) -> IPv4Network | None:
    """The vnetwork's address range; '' or None asks for a free /24 to be chosen."""
    if cidr in (None, ""):
        return None
    try:
        net = IPv4Network(str(cidr), strict=True)
    except ValueError as exc:
        raise ValidationError(f"vnetwork {name!r} cidr", cidr, f"expected a network like '10.144.0.0/24' ({exc})") from None
    if net.prefixlen > 30:
        raise ValidationError(f"vnetwork {name!r} cidr", cidr, "use a prefix of /30 or shorter (room for vnodes and the pnode alias)")
    return net
