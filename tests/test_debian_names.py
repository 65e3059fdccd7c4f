"""A real distributed program's setting, in Debian vnodes (systemd, sshd, and etcd: a service that binds
localhost by default and whose daemon failed to boot without an /etc/hosts): the service starts at boot,
every vnode finds every other by name and reaches it by ssh with no prompt, ARP tables come filled.

The image is the default Debian one with etcd layered on (``images.debian()`` then ``images.layer``):
built once per machine (about 70 s) and cached; this module runs in ``make test``."""

from __future__ import annotations

import shutil
import time

import pytest

import distem

pytestmark = pytest.mark.root
NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def image():
    if shutil.which("debootstrap") is None:
        pytest.skip("needs debootstrap (scripts/install-system-packages)")
    return distem.images.layer(distem.images.debian("bookworm"), packages=["etcd-server", "etcd-client"])


@pytest.fixture(scope="module")
def debian(image, state_dir):
    with distem.Platform(state_dir=state_dir, progress=False) as p:
        p.vnetwork("lan", "10.170.0.0/24")
        for name in NAMES:
            p.vnode(name).image(image).iface("if0", "lan")
        p.deploy()
        assert p.wait_vnodes({"port": 22, "timeout": 180}), "sshd did not listen in every vnode within 180 s"
        yield p


def until(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.5)


def test_a_service_that_binds_localhost_starts_at_boot(debian):
    for name in NAMES:
        until(lambda: debian.execute("systemctl is-active etcd", [name]).loc[name, "stdout"].strip() == "active")
        health = debian.execute("ETCDCTL_API=3 etcdctl --endpoints=http://localhost:2379 endpoint health", [name])
        assert "is healthy" in health.loc[name, "stdout"] + health.loc[name, "stderr"]
        assert debian.vnode_execute(name, "hostname").strip() == name


def test_every_vnode_finds_and_reaches_every_other_by_name(debian):
    for source in NAMES:
        for peer in NAMES:
            if peer == source:
                continue
            address = debian.viface_info(peer, "if0")["address"].split("/")[0]
            assert debian.vnode_execute(source, f"getent hosts {peer}").split()[0] == address
            assert debian.vnode_execute(source, f"ssh -o BatchMode=yes {peer} hostname", timeout=30).strip() == peer


def test_arp_tables_list_every_peer(debian):
    debian.set_global_arptable()
    table = debian.vnode_execute("a", "ip -4 neigh show dev if0")
    for peer in ("b", "c"):
        assert f"{debian.viface_info(peer, 'if0')['address'].split('/')[0]} lladdr" in table
    assert table.count("PERMANENT") >= 2
