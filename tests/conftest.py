"""Shared fixtures: a state directory per session, a busybox image, platforms that must leave nothing."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEAKCHECK = ROOT.parent / "shared" / "tools" / "leakcheck"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "root: needs root (real containers, netlink, cgroups)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root: real containers, netlink and cgroups")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)
    no_guest = os.environ.get("DISTEM_GUEST_SKIP")  # set by `guest run --or-skip` where no guest kernel runs
    if no_guest:
        for item in items:
            if "guest" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=no_guest))


@pytest.fixture(scope="session", autouse=True)
def machine_left_clean(tmp_path_factory: pytest.TempPathFactory):
    """After the whole session, the workplace's leak check must print nothing.

    In a guest kernel the machine differs from a clean host from the start
    (its own mounts), so there the check compares with the state at session start.
    """
    if not LEAKCHECK.exists() or os.geteuid() != 0:
        yield
        return
    env = dict(os.environ)
    if os.environ.get("DISTEM_IN_GUEST"):
        env["LEAKCHECK_BASELINE"] = str(tmp_path_factory.mktemp("leakcheck") / "baseline.json")
        subprocess.run([str(LEAKCHECK), "--save"], env=env, capture_output=True, check=True)
    yield
    left = subprocess.run([str(LEAKCHECK)], capture_output=True, text=True, env=env).stdout
    assert left == "", f"the test session left things behind:\n{left}"


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("distem-state"))


@pytest.fixture(scope="session")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> str:
    import distem

    return str(distem.images.busybox(cache_dir=tmp_path_factory.mktemp("images")))


def platform_leftovers(platform_id: str, state_dir: str, cgroup_parent: str = "") -> list[str]:
    """What a closed platform still holds on this machine: links, cgroups, files, iptables rules, processes
    (``cgroup_parent``: its pnode's, see ``PNode.cgroup_parent``)."""
    from distem.agent.containers import lock_dir
    from distem.model.names import cgroup_root

    left = [f"link {n}" for n in os.listdir("/sys/class/net") if n.startswith(f"d{platform_id}")]
    group = cgroup_root(platform_id, cgroup_parent)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        if (hierarchy / group).exists():
            left.append(f"cgroup {hierarchy.name}/{group}")
    for directory in (Path(state_dir) / "platforms" / platform_id, Path(lock_dir(state_dir)) / "platforms" / platform_id):
        if directory.exists():
            left.append(f"directory {directory}")
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout.splitlines()
    left += [f"iptables {r}" for r in rules if f"distem:{platform_id}" in r or f"distem-{platform_id}" in r]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"{state_dir.rstrip('/')}/platforms/{platform_id}" in cmdline:  # this pnode's: others share the kernel
            left.append(f"process {pid} {cmdline[:80]}")
    return left


def pnode_snapshot(state_dir: str, cgroup_parent: str = "") -> dict[str, object]:
    """The pnode's state as far as a platform could change it."""
    pattern = f"{cgroup_parent}/distem-*/**" if cgroup_parent else "distem-*/**"
    cgroups = sorted(str(p.relative_to("/sys/fs/cgroup")) for h in Path("/sys/fs/cgroup").iterdir()
                     for p in h.glob(pattern) if p.is_dir())
    files = sorted((str(p.relative_to(state_dir)), p.stat().st_size) for p in Path(state_dir).glob("platforms/**/*"))
    return {"links": sorted(os.listdir("/sys/class/net")), "cgroups": cgroups, "files": files}


@pytest.fixture
def platform(state_dir: str):
    import distem

    p = distem.Platform(state_dir=state_dir, progress=False)
    try:
        yield p
    finally:
        p.close()
        assert platform_leftovers(p.id, state_dir) == []


def cgroup_file(platform, vnode: str, controller: str, file: str) -> Path:
    """A file of a running vnode's cgroup, in whichever hierarchy its pnode has ``controller`` on."""
    from distem.model.names import vnode_cgroup

    pnode = platform.model.pnodes[platform.model.vnode(vnode).host]
    version = pnode.cgroups[controller]
    if version == 2:
        mount = Path(subprocess.run(["findmnt", "-n", "-o", "TARGET", "-t", "cgroup2"], capture_output=True,
                                    text=True, check=True).stdout.split()[0])
    else:
        mount = Path("/sys/fs/cgroup") / {"io": "blkio"}.get(controller, controller)
    return mount / vnode_cgroup(platform.id, vnode, pnode.cgroup_parent) / file


@pytest.fixture
def loop_disk(tmp_path: Path):
    """A 256 MiB loop device of this machine (a whole disk: throttling works on disks, not partitions),
    holding one partition (``loopNp1``) for the tests that must refuse it."""
    backing = tmp_path / "disk.img"
    with open(backing, "wb") as f:
        f.truncate(256 * 2**20)
        # An MBR with one Linux partition, sectors 2048-10239: entry at byte 446, signature at 510.
        f.seek(446)
        f.write(bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little") + (8192).to_bytes(4, "little"))
        f.seek(510)
        f.write(b"\x55\xaa")
    device = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True,
                            check=True).stdout.strip()
    partition = Path(f"{device}p1")
    made = False
    try:
        # partx reads the table itself: some kernels (this host's) have no partition table parsers.
        subprocess.run(["partx", "-a", device], check=True)
        if not partition.exists():  # no udev here: make the node from what sysfs says
            major, minor = map(int, Path(f"/sys/class/block/{partition.name}/dev").read_text().split(":"))
            os.mknod(partition, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
            made = True
        yield device
    finally:
        if made:
            partition.unlink()
        subprocess.run(["partx", "-d", device], capture_output=True)
        subprocess.run(["losetup", "-d", device], check=True)


@pytest.fixture(scope="session")
def cluster():
    """Three real pnodes on this machine (local_cluster), shared by the multi-pnode tests."""
    from distem.testing import local_cluster

    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and sshd")
    with local_cluster(3) as pnodes:
        yield pnodes
    assert cluster_leftovers(pnodes) == []


def cluster_leftovers(cluster) -> list[str]:
    """What leakcheck would report of this cluster: netns, links, cgroups, processes, files."""
    tag = f"dlc{cluster.id}"
    left = [f"netns {n}" for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else []) if tag in n]
    left += [f"link {n}" for n in os.listdir("/sys/class/net") if n.startswith(tag)]
    left += [f"cgroup {h.name}/{d.name}" for h in Path("/sys/fs/cgroup").iterdir() if h.is_dir()
             for d in h.glob(f"{tag}*")]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(cluster.directory) in cmdline or tag in cmdline:
            left.append(f"process {pid} {cmdline[:80]}")
    if cluster.directory.exists():
        left.append(f"directory {cluster.directory}")
    return left
