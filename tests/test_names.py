"""What vnodes know of each other (busybox vnodes on this host): names in /etc/hosts, kept current; a
resolver that points nowhere; their own hostname; /shared; ARP tables filled ahead; ssh keys in place.
Debian vnodes running sshd and a service that binds localhost: tests/test_debian_names.py (slow)."""

from __future__ import annotations

import pytest

from distem.errors import ValidationError

pytestmark = pytest.mark.root


@pytest.fixture
def three(platform, busybox):
    platform.vnetwork("lan", "10.160.0.0/24")
    platform.vnetwork("wan", "10.161.0.0/24")
    for name in ("a", "b"):
        platform.vnode(name).image(busybox).iface("if0", "lan")
    platform.vnode("c").image(busybox, shared=True).iface("if0", "lan").iface("if1", "wan")
    platform.deploy()
    return platform


def hosts_of(p, vnode: str) -> dict[str, list[str]]:
    lines = p.vnode_execute(vnode, "cat /etc/hosts").splitlines()
    return {line.split()[0]: line.split()[1:] for line in lines if line and not line.startswith("#")}


def test_every_vnode_knows_every_name_and_nothing_points_outside(three):
    p = three
    want = {"127.0.0.1": ["localhost"], "::1": ["localhost", "ip6-localhost", "ip6-loopback"],
            "10.160.0.1": ["a", "a-if0"], "10.160.0.2": ["b", "b-if0"], "10.160.0.3": ["c", "c-if0"],
            "10.161.0.1": ["c-if1"]}
    for vnode in ("a", "b", "c"):
        assert hosts_of(p, vnode) == want
        assert p.vnode_execute(vnode, "cat /etc/hostname").strip() == vnode
        assert "nameserver" not in p.vnode_execute(vnode, "cat /etc/resolv.conf")
    assert p.vnode_execute("a", "ping -c 1 -W 2 c-if0 >/dev/null && echo reached").strip() == "reached"


def test_hosts_follow_vnodes_coming_and_going(three, busybox):
    p = three
    p.vnode("d").image(busybox).iface("if0", "lan")
    p.deploy()
    assert hosts_of(p, "a")["10.160.0.4"] == ["d", "d-if0"]  # a ran before d existed: it sees d now
    p.vnode_remove("d")
    assert "10.160.0.4" not in hosts_of(p, "a")
    p.set_global_etchosts([["db", "10.160.0.2"]])
    assert hosts_of(p, "c") == {"127.0.0.1": ["localhost"], "::1": ["localhost", "ip6-localhost", "ip6-loopback"],
                                "10.160.0.2": ["db"]}
    with pytest.raises(ValidationError, match="expected an IPv4 address"):
        p.set_global_etchosts([["db", "not an address"]])
    p.set_global_etchosts()
    assert hosts_of(p, "c")["10.160.0.1"] == ["a", "a-if0"]


def test_shared_directory(three):
    p = three
    p.vnode_execute("a", "echo written by a > /shared/note")
    assert p.vnode_execute("c", "cat /shared/note") == "written by a\n"


def test_arp_tables_filled_ahead(three):
    p = three
    assert p.set_global_arptable() == 3 * 2 + 0  # on lan: each of three sees two; c alone on wan
    table = p.host_execute("a", ["ip", "-4", "neigh", "show"])
    for peer in ("b", "c"):
        address = p.viface_info(peer, "if0")["address"].split("/")[0]
        mac = p.viface_info(peer, "if0")["macaddress"]
        assert f"{address} dev if0 lladdr {mac} PERMANENT" in table, table
    assert p.set_global_arptable([["10.161.0.9", "02:00:00:00:00:09"]]) == 1  # only c is on wan
    assert "10.161.0.9 dev if1 lladdr 02:00:00:00:00:09 PERMANENT" in p.host_execute("c", ["ip", "neigh", "show"])
    with pytest.raises(ValidationError, match="unicast MAC"):
        p.set_global_arptable([["10.160.0.9", "zz"]])


def test_ssh_keys_are_in_place(three):
    p = three
    files = p.vnode_execute("a", "ls /root/.ssh /etc/ssh").split()
    assert {"id_ed25519", "id_ed25519.pub", "authorized_keys", "known_hosts", "ssh_host_ed25519_key"} <= set(files)
    assert p.vnode_execute("a", "cat /root/.ssh/known_hosts").startswith("* ssh-ed25519 ")
    assert p.vnode_execute("a", "cat /root/.ssh/id_ed25519.pub") in p.vnode_execute("b", "cat /root/.ssh/authorized_keys")


def test_a_given_key_is_stored_under_its_own_type(platform, busybox, tmp_path):
    """Distem's ssh_key: an ed25519 key was written as id_rsa."""
    import subprocess

    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    platform.vnetwork("lan", "10.160.0.0/24")
    platform.vnode_create("k", {"vfilesystem": {"image": busybox}, "vifaces": [{"name": "if0", "vnetwork": "lan"}]},
                          {"public": key.with_suffix(".pub").read_text(), "private": key.read_text()})
    platform.vnode_start("k")
    assert platform.vnode_execute("k", "cat /root/.ssh/id_ed25519") == key.read_text()
    assert "id_rsa" not in platform.vnode_execute("k", "ls /root/.ssh")
    assert key.with_suffix(".pub").read_text().strip() in platform.vnode_execute("k", "cat /root/.ssh/authorized_keys")


def read_sysctl(name: str) -> int:
    with open(f"/proc/sys/net/ipv4/neigh/default/{name}") as f:
        return int(f.read())


def read_backlog() -> int:
    with open("/proc/sys/net/core/netdev_max_backlog") as f:
        return int(f.read())


def test_the_arp_table_has_room_for_every_peer_and_is_put_back(platform, busybox):
    """All namespaces share one ARP table (1,024 entries by default): at 513 vnodes on one vnetwork a vnode
    reached no more than 512 others. Past 512 entries the pnode's thresholds are raised, and put back."""
    before = read_sysctl("gc_thresh2"), read_sysctl("gc_thresh3"), read_backlog()
    platform.vnetwork("lan", "10.160.0.0/24")
    for i in range(23):  # 23 x 23 = 529 entries; a broadcast's 23 copies on the backlog
        platform.vnode(f"v{i}").image(busybox, shared=True).iface("if0", "lan")
    platform.deploy()
    assert (read_sysctl("gc_thresh2"), read_sysctl("gc_thresh3"), read_backlog()) == (
        max(529, before[0]), max(529 + 1024, before[1]), max(23 + 1000, before[2]))
    platform.close()
    assert (read_sysctl("gc_thresh2"), read_sysctl("gc_thresh3"), read_backlog()) == before
