"""Resource limits as values and cgroup settings (pure: no pnode needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from distem.errors import ValidationError
from distem.model import PlatformModel, PNode, parse_cidr, parse_vnode
from distem.model.resources import IoLimit, VIo, parse_vio, parse_vmem
from distem.plan.cgroups import io_settings, live_writes, lxc_lines, memory_settings

V1 = {"cpu": 1, "cpuset": 1, "memory": 1, "io": 1}
V2 = {"cpu": 2, "memory": 2, "io": 2}  # the UML guest: no cpuset controller
MB = 2**20


def test_vmem_keys_of_both_hierarchies_and_max():
    vmem = parse_vmem("n.vmem", {"hierarchy": "v2", "hard_limit": 64, "soft_limit": "32M", "swap": 0}, V2, "g")
    assert (vmem.hierarchy, vmem.hard, vmem.soft, vmem.swap) == (2, 64 * MB, 32 * MB, 0)
    updated = parse_vmem("n.vmem", {"soft_limit": "max"}, V2, "g", base=vmem)
    assert (updated.hard, updated.soft, updated.swap) == (64 * MB, None, 0)
    assert updated.to_distem() == {"hierarchy": "v2", "hard_limit": 64, "soft_limit": "max", "swap": 0}
    assert parse_vmem("n.vmem", {"mem": 100}, V1, "h").to_distem()["mem"] == 100


@pytest.mark.parametrize("desc, words", [
    ({"hierarchy": "v2", "mem": 10}, "cgroup v1 .*v1: cpu, cpuset, io, memory; v2: none"),
    ({"hierarchy": "v3"}, "'v1' or 'v2'"),
    ({"mem": -5}, "not negative"),
    ({"mem": 0}, "above 0"),
    ({"mem": "12 parsecs"}, "size"),
    ({"ram": 10}, "unknown key"),
    ({"swap": 10}, "give 'mem' too"),
])
def test_bad_vmem(desc, words):
    with pytest.raises(ValidationError, match=words):
        parse_vmem("n.vmem", desc, V1, "h")


def test_no_memory_controller_names_what_is_mounted():
    with pytest.raises(ValidationError, match="no cgroup memory controller mounted .*v1: cpu"):
        parse_vmem("n.vmem", {"mem": 10}, {"cpu": 1}, "h")


def test_vio_update_merges_per_device():
    vio = parse_vio("d", {"limits": [{"device": "/dev/loop0", "read_limit": "10MB", "write_limit": 5_000_000}]}, V1)
    assert vio.limits[0].read_bps == 10 * MB and vio.limits[0].write_bps == 5_000_000
    vio = parse_vio("d", {"limits": [{"device": "/dev/loop0", "read_limit": "max", "write_iops": 100},
                                     {"device": "/dev/loop1", "read_limit": 1000}]}, V1, base=vio)
    assert [(lim.device, lim.read_bps, lim.write_bps, lim.write_iops) for lim in vio.limits] == [
        ("/dev/loop0", None, 5_000_000, 100), ("/dev/loop1", 1000, None, None)]


@pytest.mark.parametrize("desc, words", [
    ({"limits": [{"device": "sda"}]}, "block device path"),
    ({"limits": [{"device": "/dev/sda", "read_limit": -1}]}, "not negative"),
    ({"limits": [{"device": "/dev/sda", "read_iops": 1.5}]}, "whole number"),
    ({"limits": [{"device": "/dev/sda", "speed": 1}]}, "unknown key"),
    ({"hierarchy": "v2", "limits": []}, "io controller on cgroup v1"),
])
def test_bad_vio(desc, words):
    with pytest.raises(ValidationError, match=words):
        parse_vio("d", desc, V1, "h")


def test_io_settings_per_hierarchy():
    limit = IoLimit(device="/dev/loop0", devnum="7:0", read_bps=10_000_000, write_iops=50)
    assert io_settings(VIo(hierarchy=2, limits=(limit,))) == [
        (2, "io", "io.max", "7:0 rbps=10000000 wbps=max riops=max wiops=50")]
    assert [(f, v) for _, _, f, v in io_settings(VIo(hierarchy=1, limits=(limit,)))] == [
        ("blkio.throttle.read_bps_device", "7:0 10000000"), ("blkio.throttle.write_bps_device", "7:0 0"),
        ("blkio.throttle.read_iops_device", "7:0 0"), ("blkio.throttle.write_iops_device", "7:0 50")]


def test_v1_live_memory_lifts_memsw_before_lowering_the_limit():
    old = parse_vmem("m", {"mem": 100, "swap": 50}, V1)
    new = parse_vmem("m", {"mem": 40, "swap": 10}, V1)
    files = [(f, v) for _, _, f, v in memory_settings(new, reset_swap=old.swap is not None)]
    assert files == [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", str(40 * MB)),
                     ("memory.soft_limit_in_bytes", "-1"), ("memory.memsw.limit_in_bytes", str(50 * MB))]


def _vnode(cgroups, desc):
    model = PlatformModel("a1b2c3", [PNode(name="local", cores=2, cgroups=cgroups)])
    model.add_vnetwork("vnet", parse_cidr("vnet", "10.144.0.0/24"))
    (vnode,) = model.add_vnodes([parse_vnode("n", {"vfilesystem": {"image": "/i.tgz"}, **desc})])
    return model, vnode


def test_v2_lines_and_live_writes_only_for_what_changed():
    model, vnode = _vnode(V2, {"vmem": {"hard_limit": 64, "soft_limit": 32}, "vcpu": {"corenb": 2, "val": 0.5}})
    assert vnode.cpuset == (0, 1)  # no cpuset controller: every core, as unpinned
    assert lxc_lines(vnode, V2, 2) == ["lxc.cgroup2.cpu.max = 100000 100000", f"lxc.cgroup2.memory.max = {64 * MB}",
                                       f"lxc.cgroup2.memory.high = {32 * MB}"]
    new = replace(vnode, vmem=parse_vmem("m", {"soft_limit": "max"}, V2, base=vnode.vmem))
    writes = live_writes("a1b2c3", vnode, new, V2, 2)
    assert [(w.file, w.value, w.path) for w in writes] == [
        ("memory.max", str(64 * MB), "distem-a1b2c3/vnode-n"), ("memory.high", "max", "distem-a1b2c3/vnode-n")]


def test_pinning_without_a_cpuset_controller_is_refused():
    with pytest.raises(ValidationError, match="no cgroup cpuset controller"):
        _vnode(V2, {"vcpu": {"corenb": 1, "val": 0.5}})
