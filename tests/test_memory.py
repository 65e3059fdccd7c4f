"""Memory limits, measured: a process allocating past the hard limit is OOM-killed, one under it is not.

Runs on whichever hierarchy the pnode has memory on: v1 on this host, v2 in the guest kernel of
``make test`` (hard_limit, soft_limit and swap there).
"""

from __future__ import annotations

import pytest

from distem.errors import CommandError, ValidationError

from .conftest import cgroup_file

pytestmark = [pytest.mark.root, pytest.mark.guest]

MB = 2**20


def allocate(platform, vnode: str, mib: int) -> None:
    """busybox dd reads into one buffer of ``bs`` bytes: every page of it is touched."""
    platform.vnode_execute(vnode, f"dd if=/dev/zero of=/dev/null bs={mib}M count=1")


@pytest.fixture
def limited(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("m").image(busybox).iface("if0", "vnet").memory(64, soft=48, swap=0)
    platform.deploy()
    return platform


def oom_kills(platform) -> int:
    if platform.model.pnodes["local"].cgroups["memory"] == 2:
        events = dict(line.split() for line in cgroup_file(platform, "m", "memory", "memory.events").read_text()
                      .splitlines())
        return int(events["oom_kill"])
    control = dict(line.split() for line in cgroup_file(platform, "m", "memory", "memory.oom_control").read_text()
                   .splitlines())
    return int(control.get("oom_kill", 0))


def test_past_the_hard_limit_is_killed_under_it_is_not(limited):
    p = limited
    hard = "memory.max" if p.model.pnodes["local"].cgroups["memory"] == 2 else "memory.limit_in_bytes"
    assert int(cgroup_file(p, "m", "memory", hard).read_text()) == 64 * MB
    allocate(p, "m", 32)  # under the limit: runs to the end
    with pytest.raises(CommandError) as killed:
        allocate(p, "m", 96)
    assert killed.value.status in (137, -9), killed.value  # SIGKILL from the OOM killer
    assert oom_kills(p) == 1
    assert 60 <= p.vnodes.loc["m", "memory_peak_mib"] <= 64  # it was stopped at the limit
    assert p.vnodes.loc["m", "memory_limit"].endswith("hard 64M soft 48M swap 0M")


def test_a_live_update_moves_the_limit(limited):
    p = limited
    # Cancel the soft limit first: on v2 it is memory.high, which stalls a process past it
    # while the kernel reclaims, and anonymous pages without swap cannot be reclaimed.
    p.vmem_update("m", {"soft_limit": "max"})
    soft = "memory.high" if p.model.pnodes["local"].cgroups["memory"] == 2 else "memory.soft_limit_in_bytes"
    assert cgroup_file(p, "m", "memory", soft).read_text().strip() in ("max", str(2**63 - 4096))
    assert p.vmem_info("m")["soft_limit"] == "max"
    p.vmem_update("m", {"hard_limit": 128})
    allocate(p, "m", 96)  # fits now


def test_bad_memory_values_change_nothing(limited):
    p = limited
    other = "v1" if p.model.pnodes["local"].cgroups["memory"] == 2 else "v2"
    before = p.vmem_info("m")
    for desc, words in [({"hierarchy": other}, "on cgroup v"), ({"hard_limit": -1}, "not negative"),
                        ({"hard": 10}, "unknown key")]:
        with pytest.raises(ValidationError, match=words):
            p.vmem_update("m", desc)
    assert p.vmem_info("m") == before
    with pytest.raises(ValidationError, match="loss"):  # a good vmem with a bad viface: neither changes
        p.vnode_update("m", {"vmem": {"hard_limit": 96}, "vifaces": [{"name": "if0", "output": {"loss": 150}}]})
    assert p.vmem_info("m") == before


def test_vnode_update_changes_memory_live(limited):
    p = limited
    info = p.vnode_update("m", {"vmem": {"hard_limit": 96, "soft_limit": "max"}})
    assert info["vmem"]["hard_limit" if p.model.pnodes["local"].cgroups["memory"] == 2 else "mem"] == 96
    allocate(p, "m", 80)
