"""One pnode (this machine), real LXC containers on a real bridge."""

from __future__ import annotations

import time
from pathlib import Path

import lxc
import pytest

import distem
from distem.errors import AgentError, CommandError, ValidationError

from .conftest import pnode_snapshot

pytestmark = pytest.mark.root


def iface(vnet="vnet", name="if0"):
    return {"name": name, "vnetwork": vnet}


def init_pid(p: distem.Platform, name: str, state_dir: str) -> int:
    return lxc.Container(name, f"{state_dir}/platforms/{p.id}/lxc").init_pid


def test_three_vnodes_ping_each_other_by_address(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    for i in range(3):
        platform.vnode(f"n{i}").image(busybox).iface("if0", "vnet")
    assert platform.deploy() == ["n0", "n1", "n2"]
    addresses = platform.vnodes["addresses"].to_dict()
    for src in addresses:
        for dst, address in addresses.items():
            if src != dst:
                out = platform.vnode_execute(src, f"ping -c 1 -W 2 {address}")
                assert "1 packets received" in out, (src, dst, out)


def test_execute_returns_output_and_raises_with_the_exit_status(platform, busybox):
    platform.vnetwork_create("vnet", "10.144.0.0/24")
    platform.vnodes_create(["a", "b"], {"vfilesystem": {"image": busybox}, "vifaces": [iface()]})
    platform.vnodes_start(["a", "b"])
    assert platform.vnode_execute("a", "echo hello; hostname") == "hello\na\n"
    assert platform.vnodes_execute(["a", "b"], ["cat", "/proc/sys/kernel/hostname"]) == {"a": "a\n", "b": "b\n"}
    with pytest.raises(CommandError) as err:
        platform.vnode_execute("b", "echo partial; echo broken >&2; exit 3")
    assert (err.value.status, err.value.stdout, err.value.stderr) == (3, "partial\n", "broken\n")
    frame = platform.execute("exit 2")
    assert frame["status"].tolist() == [2, 2] and not frame["timed_out"].any()
    with pytest.raises(CommandError, match=r"killed at its timeout, after 0.5 s; it printed: started"):
        platform.vnode_execute("a", "echo started; sleep 5", timeout=0.5)


def test_freeze_stops_a_process_and_unfreeze_resumes_it(platform, busybox, state_dir):
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("f").image(busybox).iface("if0", "vnet")
    platform.deploy()
    platform.vnode_execute("f", "(i=0; while true; do i=$((i+1)); echo $i > /tmp/count; usleep 20000; done)"
                                " </dev/null >/dev/null 2>&1 &")
    counter = Path(f"/proc/{init_pid(platform, 'f', state_dir)}/root/tmp/count")

    def count() -> int:
        return int(counter.read_text() or 0)

    time.sleep(0.3)
    platform.vnode_freeze("f")
    assert platform.vnode_info("f")["status"] == "FROZEN"
    frozen_at = count()
    time.sleep(0.5)
    assert count() == frozen_at
    platform.vnode_unfreeze("f")
    time.sleep(0.3)
    assert count() > frozen_at + 5
    assert platform.vnode_info("f")["status"] == "RUNNING"


@pytest.fixture
def btrfs_platform(state_dir):
    p = distem.Platform(state_dir=state_dir, btrfs="loop:300M", progress=False)
    try:
        yield p
    finally:
        p.close()


def test_filesystem_modes_behave_as_named(btrfs_platform, busybox, state_dir):
    p = btrfs_platform
    p.vnetwork("vnet", "10.144.0.0/24")
    modes = {"shared": {"shared": True}, "distinct": {"shared": False}, "overlay": {"cow": True},
             "btrfs": {"cow": "btrfs"}}
    for mode, fs in modes.items():
        for k in ("a", "b"):
            p.vnode(f"{mode}-{k}").image(busybox, **fs).iface("if0", "vnet")
    p.deploy()
    assert p.vnodes["filesystem"].to_dict() == {f"{m}-{k}": m for m in modes for k in "ab"}
    p.vnodes_execute([f"{m}-a" for m in modes], "echo written-in-a > /root/marker")
    for mode in modes:
        seen = p.vnode_execute(f"{mode}-b", "cat /root/marker 2>/dev/null || echo absent").strip()
        assert seen == ("written-in-a" if mode == "shared" else "absent"), mode
    fs_dir = Path(state_dir) / "platforms" / p.id / "fs"
    (shared,) = fs_dir.glob("shared-*")  # shared: one tree for all its vnodes...
    assert (shared / "delta" / "root" / "marker").exists()  # ...an overlay over the cached image
    assert any(line.split()[1] == str(shared / "root") and line.split()[2] == "overlay"
               for line in Path("/proc/mounts").read_text().splitlines())
    assert (fs_dir / "vnode-distinct-a" / "rootfs" / "root" / "marker").exists()
    assert (fs_dir / "vnode-overlay-a" / "delta0" / "root" / "marker").exists(), "overlay: writes land in the delta"
    mounts = p.vnode_execute("overlay-a", "cat /proc/mounts")
    assert mounts.splitlines()[0].split()[:3] == ["/dev/root", "/", "overlay"] or " / overlay " in mounts
    root = init_pid(p, "btrfs-a", state_dir)
    assert Path(f"/proc/{root}/root/root/marker").exists()
    btrfs_mount = Path(state_dir) / "platforms" / p.id / "btrfs"
    assert any(line.split()[1] == str(btrfs_mount) and line.split()[2] == "btrfs"
               for line in Path("/proc/mounts").read_text().splitlines())


def test_bad_input_raises_before_anything_changes(platform, busybox, state_dir, tmp_path):
    platform.vnetwork_create("vnet", "10.144.0.0/24")
    platform.vnetwork_create("tiny", "10.145.0.0/30")  # one usable address: the last is the pnode's
    platform.vnode_create("taken", {"vfilesystem": {"image": busybox}, "vifaces": [iface()]})
    before = pnode_snapshot(state_dir)
    bad_calls = {
        "unknown vnetwork": lambda: platform.vnode_create("x", {"vfilesystem": {"image": busybox}, "vifaces": [iface("nope")]}),
        "duplicate vnode": lambda: platform.vnode_create("taken", {"vfilesystem": {"image": busybox}}),
        "exhausted cidr": lambda: platform.vnodes_create(["y1", "y2"], {"vfilesystem": {"image": busybox}, "vifaces": [iface("tiny")]}),
        "malformed cidr": lambda: platform.vnetwork_create("bad", "10.1.2.3/40"),
        "missing image": lambda: platform.vnode_create("z", {"vfilesystem": {"image": str(tmp_path / "nope.tgz")}}),
        "remote image": lambda: platform.vnode_create("z", {"vfilesystem": {"image": "http://example.org/i.tgz"}}),
        "invalid vnode name": lambda: platform.vnode_create("bad name!", {"vfilesystem": {"image": busybox}}),
        "invalid iface name": lambda: platform.vnode_create("z", {"vfilesystem": {"image": busybox}, "vifaces": [iface(name="x" * 16)]}),
        "invalid vnetwork name": lambda: platform.vnetwork_create("-x", "10.150.0.0/24"),
        "garbage option": lambda: platform.vnetwork_create("v2", "10.150.0.0/24", {"network_type": "token-ring"}),
        "btrfs without a location": lambda: platform.vnode_create("z", {"vfilesystem": {"image": busybox, "cow": "btrfs"}}),
        "unknown key": lambda: platform.vnode_create("z", {"vfilesystem": {"image": busybox}, "vifacez": []}),
        "too many cores": lambda: platform.vnode_create("z", {"vfilesystem": {"image": busybox},
                                                              "vcpu": {"corenb": 64, "val": 1, "unit": "ratio"}}),
        "mhz without cpufreq": lambda: platform.vnode_create("z", {"vfilesystem": {"image": busybox},
                                                                   "vcpu": {"corenb": 1, "val": 1000, "unit": "mhz"}}),
        "ratio above one": lambda: platform.vnode_create("z", {"vfilesystem": {"image": busybox},
                                                               "vcpu": {"corenb": 1, "val": 1.5, "unit": "ratio"}}),
    }
    for what, call in bad_calls.items():
        with pytest.raises(ValidationError) as err:
            call()
        assert str(err.value), what
        assert pnode_snapshot(state_dir) == before, f"{what} changed the pnode"
    assert list(platform.vnodes.index) == ["taken"]


def test_info_frames_and_display(platform, busybox):
    platform.vnetwork_create("vnet", "10.144.0.0/24")
    info = platform.vnode_create("n1", {"vfilesystem": {"image": f"file://{busybox}", "shared": True},
                                        "vifaces": [iface()]})
    assert info["status"] == "READY" and info["vfilesystem"]["shared"] is True
    platform.vnode_start("n1")
    assert platform.vnode_info("n1")["status"] == "RUNNING"
    assert platform.viface_info("n1", "if0")["address"] == "10.144.0.1/24"
    assert list(platform.vnodes.columns) == ["host", "status", "image", "filesystem", "interfaces", "addresses",
                                             "gateway", "cores", "cpu_ratio", "memory_limit", "io_limit", "cpu_s",
                                             "memory_mib", "memory_peak_mib", "io_read_mib", "io_write_mib"]
    assert platform.vnodes.loc["n1", "cpu_s"] > 0 and platform.vnodes.loc["n1", "memory_mib"] > 0  # its init
    assert platform.vifaces.loc[("n1", "if0"), "address"] == "10.144.0.1/24"
    assert platform.vnetworks.loc["vnet", "vnodes"] == 1
    assert platform.pnodes.loc["local", "cores"] >= 1
    html = platform._repr_html_()
    assert "n1" in html and "10.144.0.1" in html and "<script" not in html
    platform.vnode_stop("n1")
    assert platform.vnode_info("n1")["status"] == "DOWN"


def test_removal_takes_away_exactly_what_was_made(platform, busybox, state_dir):
    platform.vnetwork_create("vnet", "10.144.0.0/24")
    platform.vnodes_create(["r1", "r2"], {"vfilesystem": {"image": busybox}, "vifaces": [iface()]})
    platform.vnodes_start()
    veth = platform.viface_info("r1", "if0")["host_ifname"]
    assert Path(f"/sys/class/net/{veth}").exists()
    platform.vnode_remove("r1")
    assert not Path(f"/sys/class/net/{veth}").exists()
    assert not (Path(state_dir) / "platforms" / platform.id / "lxc" / "r1").exists()
    assert platform.vnode_execute("r2", "echo alive") == "alive\n"
    with pytest.raises(ValidationError, match="still used by vnodes r2"):
        platform.vnetwork_remove("vnet")
    platform.vnodes_remove()
    bridge = platform.vnetwork_info("vnet")["bridge"]
    platform.vnetwork_remove("vnet")
    assert not Path(f"/sys/class/net/{bridge}").exists()


def test_wait_vnodes_waits_for_a_listening_port(platform, busybox):
    platform.vnetwork_create("vnet", "10.144.0.0/24")
    platform.vnodes_create(["w1", "w2"], {"vfilesystem": {"image": busybox}, "vifaces": [iface()]})
    platform.vnodes_start()
    assert platform.wait_vnodes({"port": None, "timeout": 5})
    assert not platform.wait_vnodes({"vnodes": ["w1"], "port": 22, "timeout": 0.5})
    platform.vnode_execute("w1", "nc -l -p 22 </dev/null >/dev/null 2>&1 &")
    assert platform.wait_vnodes({"vnodes": ["w1"], "port": 22, "timeout": 5})


def test_long_names_keep_linux_interface_names_short(platform, busybox):
    long = "a-very-long-vnode-name-that-linux-would-never-accept-as-an-ifname"[:63]
    platform.vnetwork("a-long-vnetwork-name-too", "10.144.0.0/24")
    platform.vnode(long).image(busybox).iface("if0", "a-long-vnetwork-name-too")
    platform.deploy()
    assert len(platform.viface_info(long, "if0")["host_ifname"]) <= 15
    assert platform.vnode_execute(long, "hostname").strip() == long


def test_a_failing_container_start_names_the_pnode_and_vnode(platform, busybox, state_dir):
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("broken").image(busybox).iface("if0", "vnet")
    platform.deploy(start=False)
    config = Path(state_dir) / "platforms" / platform.id / "lxc" / "broken" / "config"
    config.write_text(config.read_text().replace("lxc.init.cmd = /sbin/init", "lxc.init.cmd = /no/such/init"))
    with pytest.raises(AgentError) as err:
        platform.vnode_start("broken")
    assert err.value.pnode == "local" and err.value.target == "broken"
    assert platform.vnode_info("broken")["status"] == "READY"
