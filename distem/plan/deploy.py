"""Model -> operations for vnetworks, vnode filesystems and containers (pure).

The order within a plan is the order of dependencies: images before the
filesystems made from them, filesystems before the containers that boot from
them. Shared work (one image extraction, one shared copy, one btrfs base per
image) appears once, at its first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from posixpath import join

from ..model.entities import PNode, SSHKeys, VIface, VNetwork, VNode
from ..wire import vnetwork_owner, vnode_owner
from ..model.names import (bridge_name, bridge_part, cgroup_root, ifb_name, link_alias, trunk_name, veth_name,
                           vnode_cgroup, vxlan_name, vxlan_vni)
from ..model.units import parse_size
from .cgroups import lxc_lines
from .ops import (BridgeCreate, BridgeExtend, BtrfsBase, BtrfsLoop, BtrfsSnapshot, ContainerDefine, FileWrite, ImageExtract,
                  LinkRemove, MakeDir, Op, OverlayMount, Plan, TreeCopy, Uplink, VethAttach, VxlanCreate)
from .shaping import delay_line_ops
from .paths import PnodePaths

PLATFORM_OWNER = "platform"
_CAPS_DROPPED = "mac_admin mac_override sys_module sys_rawio sys_time"
# Bound read-only over the vnode's own files; "optional": an image where the target is a symlink boots anyway.
_BOUND = "none bind,ro,create=file,optional 0 0"


VXLAN_PORT = 4789  # IANA's
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8


@dataclass(frozen=True, slots=True)
class Underlay:
    """Where a vnetwork meets a pnode's physical network: the interface, its address and MTU."""

    interface: str
    address: str
    mtu: int


def choose_underlay(pnode: str, interfaces: Mapping[str, Mapping[str, object]], root: str | None,
                    network_type: str = "vxlan") -> Underlay:
    """The physical interface a vnetwork uses on ``pnode`` (from the agent's facts): ``root`` if
    given, else the one holding the default route, else the only one with an IPv4 address.

    Raises:
        ValidationError: no such interface there, no way to choose one, or (classical) a bridge:
        an interface joins one bridge only.
    """
    from ..errors import ValidationError

    have = ", ".join(f"{n} ({', '.join(i['addresses'])})" for n, i in interfaces.items()) or "none"  # type: ignore[arg-type]
    if root is None:
        default = [n for n, i in interfaces.items() if i["default"]]
        candidates = default or list(interfaces)
        if len(candidates) != 1:
            raise ValidationError("root_interface", None, f"pnode {pnode} has no single default interface; name one "
                                  f"of its interfaces with an IPv4 address: {have}")
        root = candidates[0]
    if root not in interfaces:
        raise ValidationError("root_interface", root, f"pnode {pnode} has no such interface with an IPv4 address "
                              f"(it has: {have})")
    found = interfaces[root]
    if network_type == "classical" and found.get("kind") == "bridge":
        raise ValidationError("root_interface", root, f"on pnode {pnode} it is a bridge (another platform's classical "
                              "vnetwork may hold the physical interface): a classical vnetwork bridges a physical "
                              "interface; use network_type 'vxlan' or another root_interface")
    address = str(found["addresses"][0]).split("/")[0]  # type: ignore[index]
    return Underlay(root, address, int(found["mtu"]))  # type: ignore[call-overload]


def vnetwork_plan(platform_id: str, vnet: VNetwork, pnode: str, underlays: Mapping[str, Underlay]) -> Plan:
    """The vnetwork on ``pnode``; ``underlays`` holds every pnode's (more than one: the vnetwork spans them)."""
    owner, bridge, alias = vnetwork_owner(vnet.name), bridge_name(platform_id, vnet.index), link_alias(platform_id)
    if len(underlays) < 2:
        return (BridgeCreate(owner=owner, name=bridge, alias=alias),)
    here = underlays[pnode]
    if vnet.network_type == "classical":
        if vnet.shares_bridge_of is not None:
            return ()
        return (BridgeCreate(owner=owner, name=bridge, alias=alias, mtu=here.mtu),
                Uplink(owner=owner, bridge=bridge, root=here.interface))
    assert vnet.mtu is not None, "a vxlan vnetwork across pnodes has its MTU from the platform"
    remotes = tuple(sorted(u.address for p, u in underlays.items() if p != pnode))
    return (BridgeCreate(owner=owner, name=bridge, alias=alias, mtu=vnet.mtu),
            VxlanCreate(owner=owner, name=vxlan_name(platform_id, vnet.index), alias=alias,
                        vni=vxlan_vni(platform_id, vnet.index), root=here.interface, local=here.address,
                        port=VXLAN_PORT, mtu=vnet.mtu, bridge=bridge, remotes=remotes))


def btrfs_root(paths: PnodePaths, btrfs: str | None) -> str | None:
    """Where the platform's btrfs subvolumes go on this pnode, or None if it has no btrfs."""
    if btrfs is None:
        return None
    if btrfs.startswith("loop:"):
        return paths.btrfs_dir(paths.loop_btrfs)
    return paths.btrfs_dir(btrfs)


def writable_root(paths: PnodePaths, vnode: VNode, sha: str, btrfs: str | None) -> str:
    """The directory the vnode's own writes land in (for files installed before boot)."""
    mode = vnode.filesystem.mode
    if mode == "shared":
        return paths.shared_rootfs(sha)
    if mode == "distinct":
        return join(paths.vnode_dir(vnode.name), "rootfs")
    if mode == "overlay":
        return join(paths.vnode_dir(vnode.name), "delta0")
    root = btrfs_root(paths, btrfs)
    assert root is not None, "btrfs mode without a btrfs location is rejected by validation"
    return join(root, f"vnode-{vnode.name}")


def rootfs_spec(paths: PnodePaths, vnode: VNode, sha: str, btrfs: str | None) -> str:
    """The value of lxc.rootfs.path. Overlay is mounted by LXC inside the container's mount namespace."""
    if vnode.filesystem.mode == "overlay":
        return f"overlay:{paths.image(sha)}:{writable_root(paths, vnode, sha, btrfs)}"
    return f"dir:{writable_root(paths, vnode, sha, btrfs)}"


def ssh_files(root: str, vnode: VNode, keys: SSHKeys | None, trusted: Iterable[str]) -> list[FileWrite]:
    """ssh between vnodes by name, no prompt: root's key pair (the vnode's own ``ssh_key`` if it has one,
    under its type's name, else the platform's), the public keys of ``trusted`` in authorized_keys, and
    one host key for all vnodes, trusted by all in known_hosts."""
    owner, ssh = vnode_owner(vnode.name), join(root, "root/.ssh")
    key = vnode.ssh_key if vnode.ssh_key else keys.user if keys else None
    files = []
    if key is not None and key.private:
        files.append(FileWrite(owner=owner, path=join(ssh, f"id_{key.kind}"), content=key.private.strip() + "\n",
                               mode=0o600))
    if key is not None and key.public:
        files.append(FileWrite(owner=owner, path=join(ssh, f"id_{key.kind}.pub"), content=key.public.strip() + "\n",
                               mode=0o644))
    allowed = sorted({k.strip() for k in [*trusted, key.public if key else None] if k})
    if allowed:
        files.append(FileWrite(owner=owner, path=join(ssh, "authorized_keys"), content="\n".join(allowed) + "\n",
                               mode=0o600))
    if keys is not None and keys.host.public and keys.host.private:
        files += [FileWrite(owner=owner, path=join(ssh, "known_hosts"), content=f"* {keys.host.public.strip()}\n",
                            mode=0o644),
                  FileWrite(owner=owner, path=join(root, "etc/ssh/ssh_host_ed25519_key"),
                            content=keys.host.private.strip() + "\n", mode=0o600),
                  FileWrite(owner=owner, path=join(root, "etc/ssh/ssh_host_ed25519_key.pub"),
                            content=keys.host.public.strip() + "\n", mode=0o644)]
    return files


def lxc_config(paths: PnodePaths, rootfs: str, vnode: VNode, vnetworks: Mapping[str, VNetwork],
               pnode: PNode) -> str:
    platform_id = paths.platform_id
    group = cgroup_root(platform_id, pnode.cgroup_parent)
    lines = [
        f"# distem platform {platform_id}, vnode {vnode.name}",
        f"lxc.uts.name = {vnode.name}",
        f"lxc.rootfs.path = {rootfs}",
        "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed",
        "lxc.autodev = 1",
        "lxc.tty.max = 0",
        "lxc.pty.max = 16",
        "lxc.console.path = none",
        f"lxc.cap.drop = {_CAPS_DROPPED}",
        # Every cgroup of the platform lives under one directory, so cleaning is one subtree.
        f"lxc.cgroup.dir.container = {vnode_cgroup(platform_id, vnode.name, pnode.cgroup_parent)}",
        f"lxc.cgroup.dir.monitor = {group}/monitor-{vnode.name}",
        f"lxc.cgroup.dir.monitor.pivot = {group}/pivot",
        "lxc.init.cmd = /sbin/init",
        f"lxc.log.file = {join(paths.lxcpath, vnode.name, 'lxc.log')}",
        "lxc.log.level = WARN",
        f"lxc.mount.entry = {join(paths.etc, 'hosts')} etc/hosts {_BOUND}",
        f"lxc.mount.entry = {join(paths.etc, 'resolv.conf')} etc/resolv.conf {_BOUND}",
        f"lxc.mount.entry = {join(paths.etc, 'hostname-' + vnode.name)} etc/hostname {_BOUND}",
        f"lxc.mount.entry = {paths.shared_data_dir} shared none bind,create=dir 0 0",
        *lxc_lines(vnode, pnode.cgroups, pnode.cores),
    ]
    for i, iface in enumerate(vnode.ifaces):
        vnet = vnetworks[iface.vnetwork]
        lines += [
            f"lxc.net.{i}.type = veth",
            f"lxc.net.{i}.link = {bridge_name(platform_id, vnet.bridge_index, bridge_part(vnode.index))}",
            f"lxc.net.{i}.veth.pair = {veth_name(platform_id, vnode.index, iface.slot)}",
            f"lxc.net.{i}.name = {iface.name}",
            f"lxc.net.{i}.hwaddr = {iface.mac}",
            f"lxc.net.{i}.flags = up",
            # The broadcast address is written out: LXC would otherwise leave it unset.
            f"lxc.net.{i}.ipv4.address = {iface.address.with_prefixlen} {vnet.cidr.broadcast_address}",
            # Always written: without it LXC reads the bridge's MTU from a dump of every link of the pnode
            # (each veth's peer namespace looked up among all the others), which stops at the bridge:
            # a vnetwork's further bridges, made after a thousand veths, halved the start rate each.
            f"lxc.net.{i}.mtu = {vnet.link_mtu}",
        ]
        # IPv4 only: without this each interface's IPv6 (router solicitations, MLD reports, repeated for
        # seconds) is flooded by the bridge to every other vnode, whose stacks all answer: the start of
        # the 800th vnode cost four times the first's.
        lines.append(f"lxc.sysctl.net.ipv6.conf.{iface.name}.disable_ipv6 = 1")
    return "\n".join(lines) + "\n"


def vnodes_plan(
    paths: PnodePaths,
    vnodes: Iterable[VNode],
    vnetworks: Mapping[str, VNetwork],
    image_sha: Mapping[str, str],
    pnode: PNode,
    keys: SSHKeys | None = None,
    trusted: Iterable[str] = (),
) -> Plan:
    """Create the filesystems and containers of ``vnodes`` (all on ``pnode``); ``keys``: the platform's for
    ssh between vnodes, ``trusted``: the public keys every vnode accepts (see ``ssh_files``)."""
    trusted = tuple(trusted)
    btrfs = pnode.btrfs
    ops: list[Op] = []
    done: set[tuple[str, str]] = set()

    def once(key: tuple[str, str], op: Op) -> None:
        if key not in done:
            done.add(key)
            ops.append(op)

    for vnode in vnodes:
        owner = vnode_owner(vnode.name)
        sha = image_sha[vnode.filesystem.image]
        once(("image", sha), ImageExtract(owner=PLATFORM_OWNER, tarball=vnode.filesystem.image, sha=sha,
                                          target=paths.image(sha)))
        mode = vnode.filesystem.mode
        vdir = paths.vnode_dir(vnode.name)
        if mode == "shared":
            # One writable tree for all of them: an overlay over the cached image costs a mount, not a copy.
            shared = paths.shared_dir(sha)
            once(("shared", sha), OverlayMount(owner=PLATFORM_OWNER, lower=paths.image(sha), upper=join(shared, "delta"),
                                               work=join(shared, "work"), target=paths.shared_rootfs(sha)))
        elif mode == "distinct":
            ops.append(MakeDir(owner=owner, path=vdir))
            ops.append(TreeCopy(owner=owner, source=paths.image(sha), target=join(vdir, "rootfs")))
        elif mode == "overlay":
            ops.append(MakeDir(owner=owner, path=vdir))  # LXC adds its work dir beside the delta
            ops.append(MakeDir(owner=owner, path=join(vdir, "delta0")))
        else:
            assert btrfs is not None
            if btrfs.startswith("loop:"):
                once(("loop", ""), BtrfsLoop(owner=PLATFORM_OWNER, image=join(paths.platform, "btrfs.img"),
                                             size=parse_size(btrfs[5:], "btrfs loop size", bare="MB"),
                                             mountpoint=paths.loop_btrfs))
            root = btrfs_root(paths, btrfs)
            assert root is not None
            base = join(root, f"base-{sha}")
            once(("btrfs", sha), BtrfsBase(owner=PLATFORM_OWNER, source=paths.image(sha), target=base))
            ops.append(BtrfsSnapshot(owner=owner, source=base, target=join(root, f"vnode-{vnode.name}")))
        root = writable_root(paths, vnode, sha, btrfs)
        for write in ssh_files(root, vnode, keys, trusted):
            once(("file", write.path), write)  # a shared tree gets each file once
        ops.append(FileWrite(owner=owner, path=join(paths.etc, f"hostname-{vnode.name}"), content=vnode.name + "\n",
                             mode=0o644))
        for op in bridge_parts(paths.platform_id, vnode, vnetworks):
            once(("part", op.part), op)
        ops.append(container_define(paths, vnode, vnetworks, sha, pnode))
    return tuple(ops)


def bridge_parts(platform_id: str, vnode: VNode, vnetworks: Mapping[str, VNetwork]) -> list[BridgeExtend]:
    """The further bridge each of ``vnode``'s vnetworks needs for it (none for the first PORTS_PER_BRIDGE
    vnodes of the platform)."""
    part = bridge_part(vnode.index)
    if not part:
        return []
    ops = []
    for iface in vnode.ifaces:
        vnet = vnetworks[iface.vnetwork]
        ops.append(BridgeExtend(owner=vnetwork_owner(vnet.name), bridge=bridge_name(platform_id, vnet.bridge_index),
                                part=bridge_name(platform_id, vnet.bridge_index, part), alias=link_alias(platform_id),
                                trunk=(trunk_name(platform_id, vnet.bridge_index, part, "a"),
                                       trunk_name(platform_id, vnet.bridge_index, part, "b")),
                                mtu=vnet.link_mtu))
    return ops


def container_define(paths: PnodePaths, vnode: VNode, vnetworks: Mapping[str, VNetwork], sha: str,
                     pnode: PNode) -> ContainerDefine:
    """(Re)write the container's config: at creation, and when its boot-time limits change."""
    return ContainerDefine(owner=vnode_owner(vnode.name), name=vnode.name, lxcpath=paths.lxcpath,
                           config=lxc_config(paths, rootfs_spec(paths, vnode, sha, pnode.btrfs), vnode, vnetworks,
                                             pnode))


def iface_attach(platform_id: str, vnode: VNode, iface: VIface, vnet: VNetwork) -> VethAttach:
    """A new interface in a running vnode, made as LXC makes those of its config at a start."""
    return VethAttach(owner=vnode_owner(vnode.name), vnode=vnode.name,
                      name=veth_name(platform_id, vnode.index, iface.slot), alias=link_alias(platform_id),
                      bridge=bridge_name(platform_id, vnet.bridge_index, bridge_part(vnode.index)), iface=iface.name,
                      mac=iface.mac,
                      address=iface.address.with_prefixlen, broadcast=str(vnet.cidr.broadcast_address),
                      mtu=vnet.link_mtu)


def iface_detach(platform_id: str, vnode: VNode, iface: VIface, userspace: bool) -> list[Op]:
    """An interface gone from a running vnode: its delay-line rules (``userspace``), its veth (its peer goes
    with it) and its ifb."""
    owner, alias = vnode_owner(vnode.name), link_alias(platform_id)
    veth = veth_name(platform_id, vnode.index, iface.slot)
    ops: list[Op] = []
    if userspace:
        ops += [op for way in ("input", "output") for op in delay_line_ops(platform_id, owner, veth, way, None)]
    return ops + [LinkRemove(owner=owner, device=veth, alias=alias),
                  LinkRemove(owner=owner, device=ifb_name(platform_id, vnode.index, iface.slot), alias=alias)]
