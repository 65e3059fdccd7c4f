"""CPU limits (cgroup v1 on this host): a fixed amount of work, timed, at several speeds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from distem.errors import ValidationError

pytestmark = pytest.mark.root

WORK = "i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"


def timed(platform, vnode: str, n: int, workers: int = 1) -> float:
    job = " & ".join([f"({WORK.format(n=n)})"] * workers) + " & wait"
    started = time.perf_counter()
    platform.vnode_execute(vnode, job)
    return time.perf_counter() - started


def calibrate(platform, vnode: str) -> int:
    """A loop size taking about a second at full speed: the fixed cost of a command stays small."""
    n = 100_000
    while (took := timed(platform, vnode, n)) < 0.8:
        n = int(n * 1.0 / max(took, 0.05))
    return n


@pytest.fixture
def calibrated(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("c").image(busybox).iface("if0", "vnet").cpu(cores=1, ratio=1.0)
    platform.deploy()
    return platform, calibrate(platform, "c")


def test_a_slower_cpu_takes_one_over_ratio_as_long(calibrated, state_dir):
    platform, n = calibrated
    full = min(timed(platform, "c", n) for _ in range(2))
    for ratio in (0.5, 0.25):
        platform.vcpu_update("c", ratio, "ratio")  # live, on the running vnode
        quota = Path(f"/sys/fs/cgroup/cpu/distem-{platform.id}/vnode-c/cpu.cfs_quota_us").read_text()
        assert int(quota) == round(ratio * 100_000)
        assert timed(platform, "c", n) / full == pytest.approx(1 / ratio, rel=0.05)
    platform.vcpu_remove("c")
    assert Path(f"/sys/fs/cgroup/cpu/distem-{platform.id}/vnode-c/cpu.cfs_quota_us").read_text().strip() == "-1"


def test_two_pinned_cores_run_two_workers_twice_as_fast(platform, busybox):
    if platform.model.pnodes["local"].cores < 2:
        pytest.skip("needs a pnode with 2 cores")
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("one").image(busybox).iface("if0", "vnet").cpu(cores=1)
    platform.vnode("two").image(busybox).iface("if0", "vnet").cpu(cores=2)
    platform.deploy()
    assert platform.vcpu_info("two")["cores"] == [0, 1]
    n = calibrate(platform, "one")
    one, two = timed(platform, "one", n, workers=2), timed(platform, "two", n, workers=2)
    assert one / two == pytest.approx(2, rel=0.1)


def test_bad_cpu_values_change_nothing(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("v").image(busybox).iface("if0", "vnet")
    platform.deploy()
    for args, words in [((0, "ratio"), "positive"), ((2.0, "ratio"), "ratio <= 1"), ((900, "mhz"), "cpufreq"),
                        ((0.5, "ghz"), "'mhz' or 'ratio'"), ((0.5, "ratio", 99), "core")]:
        with pytest.raises(ValidationError, match=words):
            platform.vcpu_create("v", *args)
    assert platform.vcpu_info("v") == {} and platform.vnodes.loc["v", "cores"] == ""
