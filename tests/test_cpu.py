"""CPU limits: a fixed amount of work, timed, at several speeds.

cgroup v1 (cpu.cfs_quota_us, cpuset) on this host; v2 (cpu.max) in the UML guest of ``make test``.
"""

from __future__ import annotations

import os
import time

import pytest

from distem.errors import ValidationError

from .conftest import cgroup_file

pytestmark = [pytest.mark.root, pytest.mark.uml]

# CFS bandwidth control overruns a quota: runtime is handed to a core in slices (5 ms by default)
# and throttling waits for a tick (100 Hz in the UML guest). Measured: 0.5 gave x1.89-1.94 here,
# 0.25 gave x3.68 in the guest. Open work (issue 5): a smaller slice or a compensated quota.
TOLERANCE = 0.10 if os.environ.get("DISTEM_UML_GUEST") else 0.08
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
    platform.vnode("c").image(busybox).iface("if0", "vnet")
    platform.deploy()
    return platform, calibrate(platform, "c")


def quota(platform) -> str:
    """The CFS quota of vnode c, "max" when unlimited, in either hierarchy's spelling."""
    if platform.model.pnodes["local"].cgroups["cpu"] == 2:
        return cgroup_file(platform, "c", "cpu", "cpu.max").read_text().split()[0]
    value = cgroup_file(platform, "c", "cpu", "cpu.cfs_quota_us").read_text().strip()
    return "max" if value == "-1" else value


def test_a_slower_cpu_takes_one_over_ratio_as_long(calibrated):
    platform, n = calibrated
    pnode = platform.model.pnodes["local"]
    platform.vcpu_create("c", 1.0, "ratio", corenb=1 if "cpuset" in pnode.cgroups else pnode.cores)
    assert quota(platform) == "max"
    for ratio in (0.5, 0.25):
        # Full speed timed again just before each ratio: the guest kernel's clock is the host's,
        # and its speed drifts by several percent over a minute; back to back, it cancels.
        platform.vcpu_update("c", 1.0, "ratio")  # live, on the running vnode
        full = min(timed(platform, "c", n) for _ in range(2))
        platform.vcpu_update("c", ratio, "ratio")
        assert quota(platform) == str(round(ratio * 100_000))
        assert min(timed(platform, "c", n) for _ in range(2)) / full == pytest.approx(1 / ratio, rel=TOLERANCE)
    platform.vcpu_remove("c")
    assert quota(platform) == "max"


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
    assert one / two == pytest.approx(2, rel=0.2)  # ~2x: whatever else runs on the pnode takes from two cores


def test_bad_cpu_values_change_nothing(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("v").image(busybox).iface("if0", "vnet")
    platform.deploy()
    for args, words in [((0, "ratio"), "positive"), ((2.0, "ratio"), "ratio <= 1"), ((900, "mhz"), "cpufreq"),
                        ((0.5, "ghz"), "'mhz' or 'ratio'"), ((0.5, "ratio", 99), "core")]:
        with pytest.raises(ValidationError, match=words):
            platform.vcpu_create("v", *args)
    assert platform.vcpu_info("v") == {} and platform.vnodes.loc["v", "cores"] == ""
