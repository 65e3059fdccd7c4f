"""What the guest kernel's tests share: a platform of busybox vnodes on a pnode with sch_netem."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import distem


@contextmanager
def netem_platform(state_dir: str, busybox: str, names: tuple[str, ...]) -> Iterator[distem.Platform]:
    """``names`` started on one vnetwork (10.144.0.0/24), ARP resolved from the first to the second;
    the test is skipped, naming what the kernel has, where the pnode has no sch_netem."""
    p = distem.Platform(state_dir=state_dir, progress=False)
    try:
        if p.backend("local") != "netem":
            pytest.skip(f"needs sch_netem; kernel {p.pnodes.loc['local', 'kernel']} has the qdiscs "
                        f"{p.sessions['local'].facts['qdiscs']} only (make test runs these in a guest kernel)")
        p.vnetwork("vnet", "10.144.0.0/24")
        for name in names:
            p.vnode(name).image(busybox).iface("if0", "vnet")
        p.deploy()
        assert p.wait_vnodes({"port": None, "timeout": 60})
        p.ping(names[0], names[1], count=50)  # ARP, so the first measured probe pays nothing extra
        yield p
    finally:
        p.close()
