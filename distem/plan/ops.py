"""Typed operations: what an agent does on a pnode, in order.

A plan is a tuple of these. Each one is an operation of the wire (distem/wire.py:
its name and fields), crosses the execnet channel as a plain dict (``to_wire``), names the model object that owns what it creates
(``owner``: removing that object undoes exactly those creations), and prints
itself as the equivalent shell commands (``describe``) for debugging.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from .. import wire
from ..model.links import LinkLimits


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    kind: ClassVar[str]
    owner: str

    def __init_subclass__(cls) -> None:  # no super(): slots=True makes a new class, which zero-arg super() misses
        if cls.kind not in wire.OPS:
            raise TypeError(f"{cls.__name__}: {cls.kind!r} is not an operation of distem/wire.py")

    def to_wire(self) -> dict[str, object]:
        return {"op": self.kind, **asdict(self)}

    def describe(self) -> str:
        raise NotImplementedError


def _sh(*argv: str) -> str:
    return shlex.join(argv)


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeCreate(Op):
    kind: ClassVar[str] = "bridge_create"
    name: str
    alias: str
    mtu: int = 1500

    def describe(self) -> str:
        return (f"{_sh('ip', 'link', 'add', self.name, 'mtu', str(self.mtu), 'type', 'bridge')} && "
                f"{_sh('ip', 'link', 'set', self.name, 'alias', self.alias, 'up')}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeExtend(Op):
    """One more bridge for a vnetwork (``part``), joined to its first (``bridge``) by a veth (``trunk``, its
    two ends 'a' and 'b'): one L2 segment past a bridge's 1,024 ports. Made once; later batches find it."""

    kind: ClassVar[str] = "bridge_extend"
    bridge: str
    part: str
    trunk: tuple[str, str]
    alias: str
    mtu: int = 1500

    def describe(self) -> str:
        a, b = self.trunk
        return "\n".join([f"ip link show {self.part} >/dev/null 2>&1 || {{",
                          f"  {_sh('ip', 'link', 'add', self.part, 'mtu', str(self.mtu), 'type', 'bridge')}",
                          f"  {_sh('ip', 'link', 'add', a, 'mtu', str(self.mtu), 'type', 'veth', 'peer', 'name', b)}",
                          f"  {_sh('ip', 'link', 'set', a, 'master', self.bridge, 'up')} && "
                          f"{_sh('ip', 'link', 'set', b, 'master', self.part, 'up')}",
                          f"  {_sh('ip', 'link', 'set', self.part, 'alias', self.alias, 'up')}; }}"])


@dataclass(frozen=True, slots=True, kw_only=True)
class VxlanCreate(Op):
    """A vnetwork's tunnel to the other pnodes: a port of its bridge, flooding to each remote VTEP."""

    kind: ClassVar[str] = "vxlan_create"
    name: str
    alias: str
    vni: int
    root: str  # the physical interface it runs over
    local: str  # this pnode's address on it
    port: int
    mtu: int
    bridge: str
    remotes: tuple[str, ...]

    def describe(self) -> str:
        add = _sh("ip", "link", "add", self.name, "mtu", str(self.mtu), "type", "vxlan", "id", str(self.vni),
                  "dev", self.root, "local", self.local, "dstport", str(self.port))
        up = _sh("ip", "link", "set", self.name, "alias", self.alias, "master", self.bridge, "up")
        fdb = [_sh("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", self.name, "dst", r) for r in self.remotes]
        return " && ".join([add, up, *fdb])


@dataclass(frozen=True, slots=True, kw_only=True)
class Uplink(Op):
    """A classical vnetwork across pnodes: the physical interface joins the bridge, and the pnode's
    addresses and routes move from it onto the bridge (back again when the bridge goes)."""

    kind: ClassVar[str] = "uplink"
    bridge: str
    root: str

    def describe(self) -> str:
        return (f"{_sh('ip', 'link', 'set', self.root, 'master', self.bridge)} && "
                f"# move {self.root}'s IPv4 addresses and routes to {self.bridge}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageExtract(Op):
    """Extract a tarball into the pnode's image cache, unless it is there already."""

    kind: ClassVar[str] = "image_extract"
    tarball: str
    sha: str
    target: str

    def describe(self) -> str:
        return (f"[ -d {shlex.quote(self.target)} ] || {{ {_sh('mkdir', '-p', self.target)} && "
                f"{_sh('tar', '-xpf', self.tarball, '-C', self.target, '--numeric-owner')}; }}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeCopy(Op):
    """A full copy of a tree (reflinks where the filesystem has them); skipped if present."""

    kind: ClassVar[str] = "tree_copy"
    source: str
    target: str

    def describe(self) -> str:
        return f"[ -d {shlex.quote(self.target)} ] || {_sh('cp', '-a', '--reflink=auto', self.source, self.target)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlayMount(Op):
    """One writable tree over a read-only image, mounted on the pnode; skipped if mounted already."""

    kind: ClassVar[str] = "overlay_mount"
    lower: str
    upper: str
    work: str
    target: str

    def describe(self) -> str:
        return (f"{_sh('mkdir', '-p', self.upper, self.work, self.target)} && "
                f"{_sh('mount', '-t', 'overlay', 'overlay', '-o', f'lowerdir={self.lower},upperdir={self.upper},workdir={self.work}', self.target)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MakeDir(Op):
    kind: ClassVar[str] = "make_dir"
    path: str

    def describe(self) -> str:
        return _sh("mkdir", "-p", self.path)


@dataclass(frozen=True, slots=True, kw_only=True)
class BtrfsLoop(Op):
    """A loop-backed btrfs filesystem made for the platform (when no btrfs directory is given)."""

    kind: ClassVar[str] = "btrfs_loop"
    image: str
    size: int
    mountpoint: str

    def describe(self) -> str:
        return (f"{_sh('truncate', '-s', str(self.size), self.image)} && dev=$(losetup -f --show {shlex.quote(self.image)}) "
                f"&& mkfs.btrfs -q $dev && {_sh('mkdir', '-p', self.mountpoint)} && mount $dev {shlex.quote(self.mountpoint)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BtrfsBase(Op):
    """A subvolume holding a copy of an image, the origin of the vnodes' snapshots; skipped if present."""

    kind: ClassVar[str] = "btrfs_base"
    source: str
    target: str

    def describe(self) -> str:
        return (f"[ -d {shlex.quote(self.target)} ] || {{ {_sh('btrfs', 'subvolume', 'create', self.target)} && "
                f"{_sh('cp', '-a', '--reflink=auto', self.source + '/.', self.target)}; }}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BtrfsSnapshot(Op):
    kind: ClassVar[str] = "btrfs_snapshot"
    source: str
    target: str

    def describe(self) -> str:
        return _sh("btrfs", "subvolume", "snapshot", self.source, self.target)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileWrite(Op):
    """Write a file into a vnode's writable filesystem layer before it boots."""

    kind: ClassVar[str] = "file_write"
    path: str
    content: str
    mode: int = 0o644

    def describe(self) -> str:
        return f"install -D -m {self.mode:o} /dev/stdin {shlex.quote(self.path)} <<'EOF'\n{self.content.rstrip()}\nEOF"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerDefine(Op):
    kind: ClassVar[str] = "container_define"
    name: str
    lxcpath: str
    config: str

    def describe(self) -> str:
        path = f"{self.lxcpath}/{self.name}/config"
        return f"install -D -m 644 /dev/stdin {shlex.quote(path)} <<'EOF'\n{self.config}EOF"


Plan = tuple[Op, ...]


# -- traffic shaping (applied once the vnode's host-side veth exists, i.e. after start) --------
@dataclass(frozen=True, slots=True, kw_only=True)
class IfbCreate(Op):
    """The ifb device through which traffic leaving a vnode is shaped (ingress can't be queued)."""

    kind: ClassVar[str] = "ifb_create"
    name: str
    alias: str

    def describe(self) -> str:
        return (f"{_sh('ip', 'link', 'add', self.name, 'type', 'ifb')} && "
                f"{_sh('ip', 'link', 'set', self.name, 'alias', self.alias, 'up')}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RedirectIngress(Op):
    """Everything arriving on ``device`` goes through ``ifb``'s egress queue first."""

    kind: ClassVar[str] = "redirect_ingress"
    device: str
    ifb: str

    def describe(self) -> str:
        return (f"{_sh('tc', 'qdisc', 'replace', 'dev', self.device, 'ingress')} && "
                f"{_sh('tc', 'filter', 'replace', 'dev', self.device, 'parent', 'ffff:', 'prio', '2', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', self.ifb)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HtbReplace(Op):
    """Root htb, class 1:1 carrying the rate (a very high one when no rate is asked) and its default
    child 1:2, which borrows all of it (the latency matrix adds siblings sharing the same rate)."""

    kind: ClassVar[str] = "htb_replace"
    device: str
    rate_bps: int
    burst_bytes: int

    def describe(self) -> str:
        rate, burst = f"{self.rate_bps}bit", str(self.burst_bytes)
        return (f"{_sh('tc', 'qdisc', 'replace', 'dev', self.device, 'root', 'handle', '1:', 'htb', 'default', '2')} && "
                f"{_sh('tc', 'class', 'replace', 'dev', self.device, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', rate, 'ceil', rate, 'burst', burst, 'cburst', burst)} && "
                f"{_sh('tc', 'class', 'replace', 'dev', self.device, 'parent', '1:1', 'classid', '1:2', 'htb', 'rate', '8kbit', 'ceil', rate, 'burst', '1600', 'cburst', burst)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NetemReplace(Op):
    """The leaf under htb class 1:2: delay, jitter, loss, corruption, duplication, reordering."""

    kind: ClassVar[str] = "netem_replace"
    device: str
    limit: int
    limits: LinkLimits  # its rate is htb's business, not netem's

    def describe(self) -> str:
        args = ["tc", "qdisc", "replace", "dev", self.device, "parent", "1:2", "handle", "10:", "netem",
                "limit", str(self.limit)]
        lim = self.limits
        if lim.delay_us:
            args += ["delay", f"{lim.delay_us}us"] + ([f"{lim.jitter_us}us"] if lim.jitter_us else [])
        for word, ppm in (("loss", lim.loss_ppm), ("corrupt", lim.corrupt_ppm), ("duplicate", lim.duplicate_ppm),
                          ("reorder", lim.reorder_ppm)):
            if ppm:
                args += [word, f"{ppm / 10_000:g}%"]
        return _sh(*args)


@dataclass(frozen=True, slots=True, kw_only=True)
class FifoReplace(Op):
    """A plain packet FIFO as the leaf (no netem, or netem's work done elsewhere)."""

    kind: ClassVar[str] = "fifo_replace"
    device: str
    limit: int

    def describe(self) -> str:
        return _sh("tc", "qdisc", "replace", "dev", self.device, "parent", "1:2", "handle", "10:", "pfifo",
                   "limit", str(self.limit))


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixReplace(Op):
    """Latency-matrix changes on one device, sent as one netlink batch (see plan/matrix.py)."""

    kind: ClassVar[str] = "matrix_replace"
    device: str
    rate_bps: int  # the interface's rate, which the matrix classes share
    burst_bytes: int
    table: bool  # create the hash table and the filter into it first
    set_classes: tuple[tuple[int, int, LinkLimits], ...]  # (class minor, queue limit, leaf limits)
    drop_classes: tuple[int, ...] = ()
    entries: tuple[tuple[str, int, int], ...] = ()  # (destination, u32 node, class minor)
    drop_entries: tuple[tuple[str, int], ...] = ()  # (destination, u32 node)

    def describe(self) -> str:
        dev = self.device
        lines = []
        if self.table:
            lines += [_sh("tc", "filter", "add", "dev", dev, "parent", "1:", "prio", "10", "handle", "10:", "protocol",
                          "ip", "u32", "divisor", "256"),
                      _sh("tc", "filter", "add", "dev", dev, "parent", "1:", "prio", "10", "protocol", "ip", "u32",
                          "ht", "800::", "match", "u32", "0", "0", "hashkey", "mask", "0x000000ff", "at", "16",
                          "link", "10:")]
        for minor, limit, lim in self.set_classes:
            lines += [_sh("tc", "class", "replace", "dev", dev, "parent", "1:1", "classid", f"1:{minor:x}", "htb",
                          "rate", "8kbit", "ceil", f"{self.rate_bps}bit", "burst", "1600", "cburst",
                          str(self.burst_bytes)),
                      _sh("tc", "qdisc", "replace", "dev", dev, "parent", f"1:{minor:x}", "handle", f"{minor:x}:",
                          "netem", "limit", str(limit), "delay", f"{lim.delay_us}us")]
        for address, node, minor in self.entries:
            bucket = f"10:{int(address.split('.')[-1]):x}:{node:x}"
            lines.append(_sh("tc", "filter", "replace", "dev", dev, "parent", "1:", "prio", "10", "handle", bucket,
                             "protocol", "ip", "u32", "ht", bucket.rsplit(":", 1)[0] + ":", "match", "ip", "dst",
                             f"{address}/32", "flowid", f"1:{minor:x}"))
        for address, node in self.drop_entries:
            bucket = f"10:{int(address.split('.')[-1]):x}:{node:x}"
            lines.append(_sh("tc", "filter", "del", "dev", dev, "parent", "1:", "prio", "10", "handle", bucket,
                             "protocol", "ip", "u32"))
        lines += [_sh("tc", "class", "del", "dev", dev, "classid", f"1:{minor:x}") for minor in self.drop_classes]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class DelayLineSet(Op):
    """Delay, jitter and loss of one viface direction by the platform's userspace delay line (no netem).

    The agent starts the delay line at the first such operation, sends it the limits (live: the
    rule and the packets in flight stay), and adds the rule queueing ``device``'s packets to it.
    """

    kind: ClassVar[str] = "delayline_set"
    device: str  # the host-side veth: --physdev-in for output, --physdev-out for input
    direction: str  # "output" | "input"
    chain: str
    comment: str
    limits: LinkLimits
    destinations: dict[str, int] = field(default_factory=dict)  # output: the latency matrix, address -> us

    def describe(self) -> str:
        lim = self.limits
        said = [f"delay {lim.delay_us}us"]
        said += [f"jitter {lim.jitter_us}us"] if lim.jitter_us else []
        said += [f"{word} {ppm / 10_000:g}%" for word, ppm in (("loss", lim.loss_ppm), ("reorder", lim.reorder_ppm))
                 if ppm]
        said += [f"+ matrix to {len(self.destinations)} addresses"] if self.destinations else []
        return _delay_line_rule("-A", self, " ".join(said))


@dataclass(frozen=True, slots=True, kw_only=True)
class DelayLineCells(Op):
    """Some latency-matrix delays of a viface's output, already in the delay line, changed or dropped:
    the rest of its table stays, so a one-cell change costs one cell whatever the number of vnodes."""

    kind: ClassVar[str] = "delayline_cells"
    device: str
    destinations: dict[str, int] = field(default_factory=dict)  # address -> us
    drop: tuple[str, ...] = ()

    def describe(self) -> str:
        said = [f"{a} {us}us" for a, us in self.destinations.items()] + [f"{a} none" for a in self.drop]
        return f"# delay line, output of {self.device}: matrix delays {', '.join(said)} (a control message)"


@dataclass(frozen=True, slots=True, kw_only=True)
class DelayLineClear(Op):
    """This viface direction no longer goes through the delay line (a no-op when it did not)."""

    kind: ClassVar[str] = "delayline_clear"
    device: str
    direction: str
    chain: str
    comment: str

    def describe(self) -> str:
        return _delay_line_rule("-D", self, "off (if its rule is there)")


def _delay_line_rule(action: str, op: DelayLineSet | DelayLineClear, said: str) -> str:
    """The iptables rule that sends one viface direction to the delay line, as a shell line."""
    match = "--physdev-in" if op.direction == "output" else "--physdev-out"
    return (f"# delay line, {op.direction} of {op.device}: {said}\n"
            + _sh("iptables", "-w", action, op.chain, "-m", "physdev", match, op.device, "-m", "comment",
                  "--comment", op.comment, "-j", "NFQUEUE") + " --queue-num $QUEUE --queue-bypass")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapingClear(Op):
    """Remove our root qdisc and/or the redirect of ingress from ``device``: back to the default."""

    kind: ClassVar[str] = "shaping_clear"
    device: str
    root: bool = True
    ingress: bool = False

    def describe(self) -> str:
        # ingress: only the redirect goes; a partition's drops (PartitionSet) stay
        return "; ".join(_sh("tc", "qdisc", "del", "dev", self.device, "root") if where == "root" else
                         _sh("tc", "filter", "del", "dev", self.device, "parent", "ffff:", "prio", "2")
                         for where, wanted in (("root", self.root), ("ingress", self.ingress)) if wanted)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkState(Op):
    """A vnode's interface with its cable in or out: the host-side veth up or down (the vnode sees
    its carrier go; nothing passes, in either direction)."""

    kind: ClassVar[str] = "link_state"
    device: str
    up: bool

    def describe(self) -> str:
        return _sh("ip", "link", "set", "dev", self.device, "up" if self.up else "down")


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionSet(Op):
    """What a vnode sends to ``addresses`` is dropped as it leaves, on its host-side veth's ingress,
    before anything else (a partition: silently, as a cut cable would): redirected to ``sink``, an
    ifb whose queue holds nothing (kernels without the gact action have mirred). This list replaces
    the device's; an empty one heals."""

    kind: ClassVar[str] = "partition_set"
    device: str
    sink: str
    alias: str
    addresses: tuple[str, ...] = ()

    def describe(self) -> str:
        lines = [f"{_sh('ip', 'link', 'add', self.sink, 'type', 'ifb')} 2>/dev/null; "
                 f"{_sh('ip', 'link', 'set', self.sink, 'alias', self.alias, 'up')} && "
                 f"{_sh('tc', 'qdisc', 'replace', 'dev', self.sink, 'root', 'pfifo', 'limit', '0')}",
                 f"{_sh('tc', 'qdisc', 'replace', 'dev', self.device, 'ingress')}",
                 f"{_sh('tc', 'filter', 'del', 'dev', self.device, 'parent', 'ffff:', 'prio', '1')} 2>/dev/null"]
        lines += [_sh("tc", "filter", "add", "dev", self.device, "parent", "ffff:", "prio", "1", "protocol", "ip",
                      "u32", "match", "ip", "dst", f"{a}/32", "action", "mirred", "egress", "redirect", "dev",
                      self.sink) for a in self.addresses]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupWrite(Op):
    """Write one file of a running vnode's cgroup (``controller`` picks the v1 hierarchy; v2 has one)."""

    kind: ClassVar[str] = "cgroup_write"
    version: int
    controller: str
    path: str  # relative to the hierarchy's mount point
    file: str
    value: str

    def describe(self) -> str:
        root = "/sys/fs/cgroup" + (f"/{self.controller}" if self.version == 1 else "")
        return f"echo {shlex.quote(self.value)} > {shlex.quote(f'{root}/{self.path}/{self.file}')}"


# -- routing inside a running vnode's network namespace (no journal: it goes with the container) -----
@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardingSet(Op):
    """IPv4 forwarding on or off in ``vnode``'s network namespace (gateway mode)."""

    kind: ClassVar[str] = "forwarding_set"
    vnode: str
    enabled: bool

    def describe(self) -> str:
        return _sh("sysctl", "-w", f"net.ipv4.ip_forward={int(self.enabled)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteReplace(Op):
    """Traffic of ``vnode`` for ``destination`` goes to the gateway address ``via`` out of ``device``."""

    kind: ClassVar[str] = "route_replace"
    vnode: str
    destination: str
    via: str
    device: str  # the interface's name inside the vnode

    def describe(self) -> str:
        return _sh("ip", "route", "replace", self.destination, "via", self.via, "dev", self.device)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDelete(Op):
    """``vnode`` no longer routes ``destination`` (a no-op when it did not)."""

    kind: ClassVar[str] = "route_delete"
    vnode: str
    destination: str

    def describe(self) -> str:
        return _sh("ip", "route", "del", self.destination)


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighboursSet(Op):
    """Permanent ARP entries in ``vnode``'s namespace, on its interface ``device``: (address, MAC) pairs."""

    kind: ClassVar[str] = "neighbours_set"
    vnode: str
    device: str
    entries: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return "\n".join(_sh("ip", "neigh", "replace", ip, "lladdr", mac, "dev", self.device, "nud", "permanent")
                         for ip, mac in self.entries)


@dataclass(frozen=True, slots=True, kw_only=True)
class VethAttach(Op):
    """A new interface in a running vnode: a veth ``name`` on ``bridge``, its peer ``iface`` in the vnode's
    namespace with its MAC, address and MTU, both up (what LXC does at a start)."""

    kind: ClassVar[str] = "veth_attach"
    vnode: str
    name: str
    alias: str
    bridge: str
    iface: str
    mac: str
    address: str  # with its prefix length
    broadcast: str
    mtu: int

    def describe(self) -> str:
        pid = f"$(lxc-info -n {self.vnode} -pH)"
        inside = f"nsenter -t {pid} -n"
        return "\n".join([
            f"ip link add {self.name} mtu {self.mtu} type veth peer name {self.iface} netns {pid}",
            _sh("ip", "link", "set", self.name, "master", self.bridge, "alias", self.alias, "up"),
            f"{inside} ip link set {self.iface} address {self.mac} mtu {self.mtu} up",
            f"{inside} ip addr add {self.address} broadcast {self.broadcast} dev {self.iface}"])


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkRemove(Op):
    """Delete a link of the platform (by its alias, or no alias: a veth LXC made under our name) and forget it."""

    kind: ClassVar[str] = "link_remove"
    device: str
    alias: str

    def describe(self) -> str:
        return f"ip link del {shlex.quote(self.device)} 2>/dev/null || true"


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighbourRoom(Op):
    """Room in the pnode's ARP table, which all network namespaces share (1,024 entries by default: at 513
    vnodes on one vnetwork, a vnode reached no more than 512 of the others): its thresholds raised where
    lower, put back when the platform goes. gc_thresh2: past it, entries unused for 5 s are dropped;
    gc_thresh3: the most, past it "neighbour table overflow". And room for a broadcast's copies: each port
    of a bridge gets one, queued on the CPU's backlog (netdev_max_backlog, 1,000 by default), so at 2,500
    vnodes on one vnetwork a vnode's ARP requests reached only the first ~1,000 (964 answered n0)."""

    kind: ClassVar[str] = "neighbour_room"
    gc_thresh2: int
    gc_thresh3: int
    netdev_max_backlog: int

    def describe(self) -> str:
        return "\n".join([*(_sh("sysctl", "-w", f"net.ipv4.neigh.default.gc_thresh{k}={v} (if lower)")
                            for k, v in ((2, self.gc_thresh2), (3, self.gc_thresh3))),
                          _sh("sysctl", "-w", f"net.core.netdev_max_backlog={self.netdev_max_backlog} (if lower)")])

    @classmethod
    def for_entries(cls, entries: int, flood: int) -> NeighbourRoom:
        return cls(owner="platform", gc_thresh2=entries, gc_thresh3=entries + 1024, netdev_max_backlog=flood + 1000)
