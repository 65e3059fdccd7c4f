"""The desired platform, as frozen values: pnodes, vnetworks, vnodes, vifaces, filesystems.

No I/O and no runtime handles here: a gateway, a socket or a file descriptor
never enters the model. Values are validated before they are built (see
``descriptions``), so an object that exists is valid.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network
from typing import Literal

from .links import LinkLimits
from .resources import VCpu, VIo, VMem

FilesystemMode = Literal["shared", "distinct", "overlay", "btrfs"]
NetworkType = Literal["classical", "vxlan"]

# Distem's vnode statuses.
INIT, READY, RUNNING, DOWN, FROZEN = "INIT", "READY", "RUNNING", "DOWN", "FROZEN"


@dataclass(frozen=True, slots=True, kw_only=True)
class PNode:
    """A physical machine that hosts vnodes, reached through an execnet gateway spec."""

    name: str
    spec: str = "popen"
    state_dir: str = "/var/lib/distem"
    btrfs: str | None = None  # a directory on btrfs, or "loop:SIZE" for a loop-backed one
    cores: int = 1  # learnt from the pnode's agent when the platform connects
    max_mhz: int | None = None  # cpufreq's maximum, if the pnode exposes it
    cgroups: Mapping[str, int] = field(default_factory=dict)  # controller (cpu, cpuset, memory, io) -> 1 or 2
    memory: int | None = None  # bytes, learnt from the pnode's agent like ``cores``
    # Where this pnode's cgroups live in every hierarchy (relative): "" on a real machine. Pnodes that
    # share one kernel (``distem.testing.local_cluster``) each get their own, so that one pnode's
    # clean never removes another's vnode cgroups.
    cgroup_parent: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VNetwork:
    name: str
    index: int
    cidr: IPv4Network
    network_type: NetworkType = "classical"
    root_interface: str | None = None
    # Across pnodes: the vnodes' MTU (a VXLAN header takes 50 bytes of the physical one), and the
    # vnetwork whose bridge this one uses (classical vnetworks on one physical interface share it).
    mtu: int | None = None
    shares_bridge_of: int | None = None

    @property
    def bridge_index(self) -> int:
        return self.index if self.shares_bridge_of is None else self.shares_bridge_of

    @property
    def link_mtu(self) -> int:
        """The MTU its bridges and veths are made with: the one given, else Linux's default."""
        return self.mtu or 1500

    @property
    def reserved(self) -> IPv4Interface:
        """The last usable address, kept for the pnodes' own routing aliases (as Distem does)."""
        return IPv4Interface(f"{self.cidr.broadcast_address - 1}/{self.cidr.prefixlen}")


@dataclass(frozen=True, slots=True, kw_only=True)
class VFilesystem:
    image: str  # a local tarball path
    mode: FilesystemMode = "overlay"


@dataclass(frozen=True, slots=True, kw_only=True)
class VIface:
    name: str
    vnetwork: str
    address: IPv4Interface
    mac: str
    default: bool = False
    output: LinkLimits | None = None  # traffic leaving the vnode
    input: LinkLimits | None = None  # traffic entering the vnode
    # Its number in the vnode, given when it is made and never reused: the host-side names (veth, ifb)
    # and the matrix's tables follow it, so they stay when another interface is removed.
    slot: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SSHKey:
    public: str | None = None
    private: str | None = None

    def __bool__(self) -> bool:
        return bool(self.public or self.private)

    @property
    def kind(self) -> str:
        """rsa, ecdsa, ed25519 (what ssh names its files after: id_ed25519), from the public key's type,
        else from the private key's text; "rsa" when neither says."""
        words = (self.public or "").split()
        if words:
            for kind in ("ed25519", "ecdsa", "rsa", "dsa"):
                if kind in words[0]:
                    return kind
        private = self.private or ""
        for header, kind in (("BEGIN RSA", "rsa"), ("BEGIN EC ", "ecdsa"), ("BEGIN DSA", "dsa")):
            if header in private:
                return kind
        body = "".join(line for line in private.splitlines() if line and not line.startswith("-----"))
        try:
            decoded = base64.b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            return "rsa"
        for name, kind in ((b"ssh-ed25519", "ed25519"), (b"ecdsa-sha2", "ecdsa"), (b"ssh-rsa", "rsa")):
            if name in decoded:  # an OpenSSH private key names its type inside
                return kind
        return "rsa"


@dataclass(frozen=True, slots=True, kw_only=True)
class SSHKeys:
    """What every vnode gets so that ssh works between vnodes by name: root's key pair (a vnode's own
    ``ssh_key`` first), and one host key that every vnode presents and every vnode trusts."""

    user: SSHKey
    host: SSHKey


@dataclass(frozen=True, slots=True, kw_only=True)
class VNode:
    name: str
    index: int
    host: str
    filesystem: VFilesystem
    ifaces: tuple[VIface, ...] = ()
    ssh_key: SSHKey = field(default_factory=SSHKey)
    gateway: bool = False
    vcpu: VCpu | None = None
    cpuset: tuple[int, ...] = ()  # the pnode cores the vnode is pinned to (with a vcpu)
    vmem: VMem | None = None
    vio: VIo | None = None  # Distem's vfilesystem disk_throttling

    def iface(self, name: str) -> VIface:
        for iface in self.ifaces:
            if iface.name == name:
                return iface
        from ..errors import NotFoundError

        raise NotFoundError("viface", f"{self.name}/{name}", [i.name for i in self.ifaces])
