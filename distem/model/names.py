"""Names: checking the ones users give, deriving the short ones Linux needs.

Linux interface names hold at most 15 characters, so host-side names are
derived from the platform id and the objects' creation indices, never from the
human names (which stay in the model). Everything is deterministic: the same
platform id and indices always give the same names.
"""

from __future__ import annotations

import hashlib
import re

from ..errors import ValidationError

IFNAMSIZ = 15
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_IFACE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
_PLATFORM_ID = re.compile(r"^[0-9a-f]{6}$")
_CGROUP_PARENT = re.compile(r"^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)?$")


def check_name(field: str, name: object) -> str:
    """A vnode or vnetwork name: a hostname-like label of 1-63 characters."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            field, name, "use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return name


def check_iface_name(field: str, name: object) -> str:
    """An interface name as seen inside a vnode (at most 15 characters)."""
    if not isinstance(name, str) or not _IFACE.match(name) or name in ("lo",):
        raise ValidationError(field, name, "use 1-15 letters, digits, '-', '_' or '.', starting with a letter")
    return name


def check_platform_id(value: str) -> str:
    if not _PLATFORM_ID.match(value):
        raise ValidationError("platform id", value, "expected 6 lowercase hex digits")
    return value


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _ifname(name: str) -> str:
    assert len(name) <= IFNAMSIZ, name
    return name


# A Linux bridge holds 1,024 ports (BR_MAX_PORTS): past this many vnodes, a vnetwork gets more bridges on a
# pnode, each joined to its first by a trunk (one L2 segment; see plan/deploy.py).
PORTS_PER_BRIDGE = 1000


def bridge_name(platform_id: str, vnetwork_index: int, part: int = 0) -> str:
    """Host bridge of a vnetwork: 'd' + platform id + 'b' + index, e.g. 'd1a2b3cb0'; its further bridges
    (``part`` 1, 2... for its vnodes past PORTS_PER_BRIDGE) 'd1a2b3cb0p1'..."""
    return _ifname(f"d{platform_id}b{_base36(vnetwork_index)}" + (f"p{_base36(part)}" if part else ""))


def trunk_name(platform_id: str, vnetwork_index: int, part: int, end: str) -> str:
    """The veth joining a vnetwork's further bridge ``part`` to its first: end 'a' on the first, 'b' on the part."""
    return _ifname(f"d{platform_id}t{_base36(vnetwork_index)}p{_base36(part)}{end}")


def bridge_part(vnode_index: int) -> int:
    """Which of a vnetwork's bridges a vnode joins: at most PORTS_PER_BRIDGE vnodes on each."""
    return vnode_index // PORTS_PER_BRIDGE


def vxlan_name(platform_id: str, vnetwork_index: int) -> str:
    """A vnetwork's VXLAN device on each pnode, e.g. 'd1a2b3cx0'."""
    return _ifname(f"d{platform_id}x{_base36(vnetwork_index)}")


def vxlan_vni(platform_id: str, vnetwork_index: int) -> int:
    """A vnetwork's VXLAN network identifier (24 bits), stable for (platform, vnetwork): two
    platforms sharing a physical network get distinct ones but for a 1-in-16-million chance."""
    digest = hashlib.sha256(f"{platform_id}/{vnetwork_index}".encode()).digest()
    return int.from_bytes(digest[:3], "big") or 1


def veth_name(platform_id: str, vnode_index: int, iface_index: int) -> str:
    """Host side of a vnode's interface, e.g. 'd1a2b3cv1fi0'."""
    return _ifname(f"d{platform_id}v{_base36(vnode_index)}i{_base36(iface_index)}")


def ifb_name(platform_id: str, vnode_index: int, iface_index: int) -> str:
    """The ifb device shaping what leaves a vnode's interface, e.g. 'd1a2b3cf1fi0'."""
    return _ifname(f"d{platform_id}f{_base36(vnode_index)}i{_base36(iface_index)}")


def sink_name(platform_id: str) -> str:
    """The ifb that drops whatever is sent to it (a partition's cut traffic), one per pnode, e.g. 'd1a2b3cs'."""
    return _ifname(f"d{platform_id}s")


def link_alias(platform_id: str) -> str:
    """The alias every link the platform creates carries, checked before deleting it."""
    return f"distem:{platform_id}"


def iptables_chain(platform_id: str) -> str:
    """The filter-table chain holding the platform's delay-line rules (jumped to from FORWARD)."""
    return f"distem-{platform_id}"


def check_cgroup_parent(field: str, value: object) -> str:
    """A pnode's cgroup parent: "" or a relative path of plain components (no '.' or '..')."""
    if (not isinstance(value, str) or not _CGROUP_PARENT.match(value)
            or any(part in (".", "..") for part in value.split("/"))):
        raise ValidationError(field, value, "expected '' or a relative cgroup path such as 'machine1/slice'")
    return value


def cgroup_root(platform_id: str, parent: str = "") -> str:
    """The cgroup directory (in every hierarchy) under which all of a platform's cgroups on one pnode
    live: ``distem-<id>``, below the pnode's ``cgroup_parent`` if it has one."""
    return f"{parent}/distem-{platform_id}" if parent else f"distem-{platform_id}"


def vnode_cgroup(platform_id: str, vnode: str, parent: str = "") -> str:
    """A vnode's cgroup directory (in every hierarchy)."""
    return f"{cgroup_root(platform_id, parent)}/vnode-{vnode}"


def mac_address(platform_id: str, vnode: str, iface: str) -> str:
    """A locally administered unicast MAC, stable for (platform, vnode, iface)."""
    digest = hashlib.sha256(f"{platform_id}/{vnode}/{iface}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))
