"""``local_cluster(n)``: n pnodes on this one machine, each a network namespace with its own sshd.

    root namespace                      pnode i (network + mount + UTS namespaces)
    dlc<id>br  10.213.k.1/24  <-veth->  eth0 10.213.k.(10+i)/24, hostname dlc<id>p<i>,
                                        sshd, /run (tmpfs), sysfs of its own, the host's cgroup mounts

The controller reaches each pnode through a real ``ssh=root@ADDR`` execnet gateway; the pnodes share
this machine's filesystem, so they run this interpreter. Every object carries the cluster id; the
teardown removes all of it, even when the body raised.

Why a mount namespace: LXC asks ``/sys/class/net/<bridge>/bridge`` whether a bridge is a Linux bridge,
so a pnode needs the sysfs of its own network namespace; ``ip netns exec`` mounts one but loses the
``/sys/fs/cgroup`` mounts LXC needs. The pnode's holder process mounts a fresh sysfs and moves the
cgroup mounts onto it, in a namespace that receives the host's unmounts (slave propagation).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import random
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..agent.system import process_parent
from ..errors import DistemError, ValidationError
from ..model import PNode

log = logging.getLogger(__name__)
POOL = ipaddress.IPv4Network("10.213.0.0/16")  # one /24 of it per cluster
SSHD = "/usr/sbin/sshd"

# Run by the holder, inside the pnode's new namespaces; then it sleeps, keeping them alive.
_HOLDER = r"""
set -e
hostname "$1"
keep=$(mktemp -d -p "$2")
mount --rbind /sys/fs/cgroup "$keep"
mount -t sysfs sysfs /sys
mount --move "$keep" /sys/fs/cgroup
rmdir "$keep"
# Copies of other namespaces and filesystems would keep them alive after their owners remove them.
awk '$3 == "nsfs" || $3 == "overlay" || $3 == "btrfs" {print $2}' /proc/self/mounts | sort -r |
    while read -r point; do umount -l "$point" || true; done
if mountpoint -q /run/netns; then umount -l /run/netns; fi
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -m 755 /run/sshd
echo ready
exec sleep infinity
"""


class ClusterError(DistemError):
    """The local cluster could not be set up."""


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} exited with {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of POOL that no route or address of the root namespace touches (random: concurrent clusters)."""
    used = []
    for kind in ("route", "addr"):
        argv = ["ip", "-4", "-j", kind, "show"] + (["table", "all"] if kind == "route" else [])
        for item in json.loads(_run(argv).stdout or "[]"):
            for dst in [item.get("dst")] + [a.get("local") for a in item.get("addr_info", [])]:
                if dst and dst != "default":
                    used.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    candidates = [net for net in POOL.subnets(new_prefix=24) if not any(net.overlaps(u) for u in used)]
    if not candidates:
        raise ClusterError(f"no /24 of {POOL} is free of routes on this machine")
    return random.choice(candidates)


def _net_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _kill_and_wait(pids: list[int], timeout: float = 5) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _wait_port(address: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ClusterError(f"nothing listens on {address}:{port} after {timeout:g} s") from None
            time.sleep(0.05)


@dataclass
class _Member:
    """One pnode's processes and files (the cluster's bookkeeping, not the model's PNode)."""

    name: str
    address: str
    directory: Path
    holder: subprocess.Popen[bytes] | None = None
    sshd: subprocess.Popen[bytes] | None = None
    net_inode: int | None = None
    logs: list[object] = field(default_factory=list)


class LocalCluster(list[PNode]):
    """The pnodes of a ``local_cluster`` (a list of ``PNode``: pass it to ``distem.Platform``), and
    handles to test with: ``stop_sshd``/``start_sshd`` (a pnode going unreachable and coming back),
    ``run`` (a command on a pnode)."""

    def __init__(self, cluster_id: str, directory: Path, subnet: ipaddress.IPv4Network) -> None:
        super().__init__()
        self.id, self.directory, self.subnet = cluster_id, directory, subnet
        self.bridge = f"dlc{cluster_id}br"
        self.ssh_config = str(directory / "ssh_config")
        self.members: list[_Member] = []

    def __repr__(self) -> str:
        return f"<LocalCluster {self.id} on {self.subnet}: {', '.join(p.name for p in self)}>"

    def _member(self, pnode: int | str | PNode) -> _Member:
        if isinstance(pnode, PNode):
            pnode = pnode.name
        if isinstance(pnode, int):
            return self.members[pnode]
        for member in self.members:
            if member.name == pnode:
                return member
        raise KeyError(f"no pnode {pnode!r} in cluster {self.id} (it has {', '.join(p.name for p in self)})")

    def _enter(self, member: _Member) -> list[str]:
        assert member.holder is not None
        return ["nsenter", "-t", str(member.holder.pid), "--net", "--mount", "--uts"]

    def run(self, pnode: int | str | PNode, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on a pnode (in its namespaces); never raises on exit status."""
        return subprocess.run(self._enter(self._member(pnode)) + argv, capture_output=True, text=True,
                              timeout=timeout)

    def start_sshd(self, pnode: int | str | PNode) -> None:
        """Start the pnode's sshd (again), and wait until it accepts connections."""
        member = self._member(pnode)
        if member.sshd is not None and member.sshd.poll() is None:
            return
        log_file = open(member.directory / "sshd.log", "ab")
        member.logs.append(log_file)
        member.sshd = subprocess.Popen(self._enter(member) + [SSHD, "-D", "-e", "-f", str(member.directory / "sshd_config")],
                                       stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                       start_new_session=True)
        _wait_port(member.address, 22)

    def stop_sshd(self, pnode: int | str | PNode) -> None:
        """Stop the pnode's sshd and its open connections: the pnode becomes unreachable (refused);
        its agents lose their channel."""
        member = self._member(pnode)
        if member.sshd is None:
            return
        listener = member.sshd.pid
        sessions = [pid for pid in _pids() if process_parent(pid) == listener]
        _kill_and_wait([listener, *sessions])
        member.sshd.wait()
        member.sshd = None

    # -- setup and teardown ------------------------------------------------------------
    def _add(self, index: int) -> None:
        name = f"dlc{self.id}p{index}"
        member = _Member(name=name, address=str(self.subnet.network_address + 10 + index),
                         directory=self.directory / name)
        member.directory.mkdir()
        self.members.append(member)
        _run(["ip", "netns", "add", name])
        member.net_inode = os.stat(f"/run/netns/{name}").st_ino
        host_side = f"dlc{self.id}v{index}"
        _run(["ip", "link", "add", host_side, "type", "veth", "peer", "name", "eth0", "netns", name])
        _run(["ip", "link", "set", host_side, "master", self.bridge, "up"])
        inside = ["ip", "netns", "exec", name, "ip"]  # the network alone matters here, not /sys
        _run(inside + ["addr", "add", f"{member.address}/{self.subnet.prefixlen}", "dev", "eth0"])
        _run(inside + ["link", "set", "eth0", "up"])
        _run(inside + ["link", "set", "lo", "up"])
        holder_log = open(member.directory / "holder.log", "ab")
        member.logs.append(holder_log)
        member.holder = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{name}", "unshare", "--mount", "--uts", "--propagation", "slave",
             "/bin/sh", "-c", _HOLDER, "holder", name, str(member.directory)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=holder_log, start_new_session=True)
        assert member.holder.stdout is not None
        ready, _, _ = select.select([member.holder.stdout], [], [], 10)
        if not ready or member.holder.stdout.readline().strip() != b"ready":
            raise ClusterError(f"pnode {name}: its namespaces could not be prepared: "
                               f"{(member.directory / 'holder.log').read_text().strip()}")
        (member.directory / "state").mkdir()
        (member.directory / "sshd_config").write_text("\n".join([
            f"ListenAddress {member.address}", "Port 22", f"HostKey {self.directory / 'host_key'}",
            f"AuthorizedKeysFile {self.directory / 'client_key.pub'}", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no",  # the keys live in a temporary directory
            f"PidFile {member.directory / 'sshd.pid'}", "X11Forwarding no", "PrintMotd no", "LogLevel INFO", ""]))
        self.start_sshd(member.name)
        self.append(PNode(name=name, spec=f"ssh=root@{member.address}//ssh_config={self.ssh_config}"
                                          f"//python={sys.executable}",
                          state_dir=str(member.directory / "state"), cgroup_parent=name))

    def _clean_platforms(self, member: _Member) -> None:
        """What platforms left on the pnode (never closed): ``distem clean`` there, as its own agent would."""
        state = member.directory / "state"
        if not (state / "platforms").is_dir() or not os.listdir(state / "platforms"):
            return
        proc = self.run(member.name, [sys.executable, "-m", "distem.frontends.cli", "clean", "--state-dir", str(state)],
                        timeout=120)
        if proc.returncode != 0:
            log.warning("pnode %s: distem clean said: %s", member.name, (proc.stdout + proc.stderr).strip())

    def _remove(self, member: _Member) -> None:
        from ..agent.cgroups import remove_subtree  # stdlib only: the agent's own code, run here

        with contextlib.suppress(Exception):
            self.stop_sshd(member.name)
        if member.holder is not None and member.holder.poll() is None:
            try:
                self._clean_platforms(member)
            except Exception as exc:  # keep going: the rest must still be removed
                log.warning("pnode %s: %s", member.name, exc)
        if member.net_inode is not None:  # everything in the namespace is ours: it was made for us
            _kill_and_wait([pid for pid in _pids() if _net_inode(pid) == member.net_inode and pid != os.getpid()])
        if member.holder is not None:
            member.holder.wait()
        left = remove_subtree(member.name)  # the cgroups its vnodes used (killing what they held)
        if left:
            log.warning("pnode %s: cgroups still busy: %s", member.name, ", ".join(left))
        subprocess.run(["ip", "netns", "del", member.name], capture_output=True)
        subprocess.run(["ip", "link", "del", f"dlc{self.id}v{self.members.index(member)}"], capture_output=True)
        for log_file in member.logs:
            log_file.close()  # type: ignore[attr-defined]

    def _teardown(self) -> None:
        for member in reversed(self.members):
            self._remove(member)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def local_cluster(n: int = 3) -> Iterator[LocalCluster]:
    """``n`` pnodes on this machine, each in its own namespaces with its own sshd and state directory.

    Needs root, ``ip``, ``nsenter``/``unshare`` and OpenSSH's ``sshd``/``ssh-keygen``. Everything it made
    is removed on exit, even if the body raised (what platforms left there too).

    Raises:
        ValidationError: ``n`` outside 1-200 (pnode addresses are .10 to .209 of one /24).
        ClusterError: the cluster could not be set up (what was made is removed first).
    """
    if not 1 <= n <= 200:
        raise ValidationError("local_cluster n", n, "expected 1 to 200 pnodes")
    cluster_id = secrets.token_hex(2)
    directory = Path(tempfile.mkdtemp(prefix=f"distem-lc{cluster_id}-"))
    cluster = LocalCluster(cluster_id, directory, _free_subnet())
    try:
        for key in ("host_key", "client_key"):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"distem-lc{cluster_id}",
                  "-f", str(directory / key)])
        Path(cluster.ssh_config).write_text("\n".join([
            "Host *", "  User root", f"  IdentityFile {directory / 'client_key'}", "  IdentitiesOnly yes",
            "  StrictHostKeyChecking no", "  UserKnownHostsFile /dev/null", "  BatchMode yes", "  LogLevel ERROR",
            "  ConnectTimeout 5", ""]))
        _run(["ip", "link", "add", cluster.bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{cluster.subnet.network_address + 1}/{cluster.subnet.prefixlen}",
              "dev", cluster.bridge])
        _run(["ip", "link", "set", cluster.bridge, "up"])
        for index in range(n):
            cluster._add(index)
        log.info("local cluster %s: %s", cluster_id, ", ".join(f"{m.name} {m.address}" for m in cluster.members))
        yield cluster
    finally:
        cluster._teardown()


def sweep(cluster_id: str) -> None:
    """Remove what a cluster left when its controller was killed (-9: no teardown ran): the platforms
    its pnodes still record, every process of its namespaces, its cgroup parents, namespaces, links
    and files — found by the cluster id in their names."""
    from ..agent import undo
    from ..agent.cgroups import remove_subtree

    tag = f"dlc{cluster_id}"
    names = sorted(n for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else [])
                   if n.startswith(tag + "p"))
    for directory in Path(tempfile.gettempdir()).glob(f"distem-lc{cluster_id}-*"):
        for state in directory.glob(f"{tag}p*/state"):
            for platform_id in undo.platforms(str(state)):  # the agents and delay lines first: pid-checked
                journal = undo.Journal(str(state / "platforms" / platform_id / undo.JOURNAL))
                undo.undo(journal, [e for e in journal.entries() if e["kind"] == "process"])
                journal.close()
    for name in names:
        inode = os.stat(f"/run/netns/{name}").st_ino
        _kill_and_wait([pid for pid in _pids() if _net_inode(pid) == inode and pid != os.getpid()])
        remove_subtree(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    for link in os.listdir("/sys/class/net"):
        if link.startswith(tag):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
    for directory in Path(tempfile.gettempdir()).glob(f"distem-lc{cluster_id}-*"):
        shutil.rmtree(directory, ignore_errors=True)
