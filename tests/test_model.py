"""The model alone: validation and allocation, no pnode involved."""

import ipaddress

import pytest

from distem.errors import AlreadyExistsError, NotFoundError, ValidationError
from distem.model import PlatformModel, PNode, parse_cidr, parse_vnode
from distem.model.descriptions import parse_filesystem
from distem.model.names import IFNAMSIZ, bridge_name, veth_name


def desc(*ifaces, **fs):
    return {"vfilesystem": {"image": "/img.tgz", **fs}, "vifaces": list(ifaces)}


@pytest.fixture
def model():
    m = PlatformModel("a1b2c3", [PNode(name="local")])
    m.add_vnetwork("vnet", parse_cidr("vnet", "10.144.0.0/29"))
    return m


def test_addresses_are_allocated_in_order_and_the_last_is_kept_for_the_pnode(model):
    vnodes = model.add_vnodes([parse_vnode(f"n{i}", desc({"name": "if0", "vnetwork": "vnet"})) for i in range(5)])
    assert [str(v.ifaces[0].address) for v in vnodes] == [f"10.144.0.{i}/29" for i in range(1, 6)]
    assert str(model.vnetworks["vnet"].reserved) == "10.144.0.6/29"


def test_exhausted_cidr_names_the_vnetwork_and_leaves_the_model_unchanged(model):
    with pytest.raises(ValidationError, match="no free address left"):
        model.add_vnodes([parse_vnode(f"n{i}", desc({"name": "if0", "vnetwork": "vnet"})) for i in range(6)])
    assert model.vnodes == {} and model.status == {}


def test_explicit_address_is_checked_against_its_vnetwork(model):
    node = model.add_vnodes([parse_vnode("a", desc({"name": "if0", "address": "10.144.0.3/29"}))])[0]
    assert node.ifaces[0].vnetwork == "vnet"
    for bad, words in [("10.144.0.3/29", "already used"), ("10.144.0.6/29", "reserved"), ("10.9.9.9/24", "lies in no vnetwork")]:
        with pytest.raises(ValidationError, match=words):
            model.add_vnodes([parse_vnode("b", desc({"name": "if0", "address": bad}))])


def test_duplicates_and_unknowns(model):
    model.add_vnodes([parse_vnode("a", desc({"name": "if0", "vnetwork": "vnet"}))])
    with pytest.raises(AlreadyExistsError):
        model.add_vnodes([parse_vnode("a", desc())])
    with pytest.raises(ValidationError, match="no such vnetwork"):
        model.add_vnodes([parse_vnode("b", desc({"name": "if0", "vnetwork": "nope"}))])
    with pytest.raises(NotFoundError, match="no vnode named 'zz'"):
        model.vnode("zz")
    with pytest.raises(AlreadyExistsError):
        model.add_vnetwork("vnet", None)
    with pytest.raises(ValidationError, match="overlaps"):
        model.add_vnetwork("other", parse_cidr("other", "10.144.0.0/24"))


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 64, "é", None, 3])
def test_invalid_vnode_names(name):
    with pytest.raises(ValidationError, match="vnode name"):
        parse_vnode(name, desc())


@pytest.mark.parametrize("cidr", ["10.0.0.1/24", "10.0.0.0/33", "not-a-network", "10.0.0.0/31"])
def test_malformed_cidr(cidr):
    with pytest.raises(ValidationError, match="cidr"):
        parse_cidr("vnet", cidr)


def test_empty_cidr_picks_a_free_slash_24(model):
    vnet = model.add_vnetwork("auto", parse_cidr("auto", ""))
    assert str(vnet.cidr) == "10.144.1.0/24"


@pytest.mark.parametrize("fs, mode", [
    ({}, "overlay"), ({"shared": True}, "shared"), ({"shared": False}, "distinct"),
    ({"shared": False, "cow": True}, "overlay"), ({"cow": "btrfs"}, "btrfs"), ({"cow": "overlay"}, "overlay"),
])
def test_filesystem_modes_follow_distem_keys(fs, mode):
    assert parse_filesystem("vfilesystem", {"image": "file:///img.tgz", **fs}).mode == mode


def test_bad_descriptions_name_the_field():
    with pytest.raises(ValidationError, match=r"n1\.vfilesystem\.cow"):
        parse_vnode("n1", desc(shared=True, cow=True))
    with pytest.raises(ValidationError, match="unknown key"):
        parse_vnode("n1", {**desc(), "vcpus": 3})
    with pytest.raises(ValidationError, match=r"vifaces\[0\]\.macaddress"):
        parse_vnode("n1", desc({"name": "if0", "vnetwork": "v", "macaddress": "01:00:00:00:00:01"}))
    with pytest.raises(ValidationError, match="only local tarballs"):
        parse_vnode("n1", {"vfilesystem": {"image": "http://x/img.tgz"}})
    with pytest.raises(ValidationError, match="needs an image"):
        parse_vnode("n1", {"vfilesystem": {}})
    with pytest.raises(ValidationError, match="interface names must be unique"):
        parse_vnode("n1", desc({"name": "if0", "vnetwork": "v"}, {"name": "if0", "vnetwork": "v"}))


def test_host_names_fit_linux_whatever_the_counts():
    assert len(bridge_name("ffffff", 10**6)) <= IFNAMSIZ
    assert len(veth_name("ffffff", 36**4 - 1, 35)) <= IFNAMSIZ
    assert veth_name("a1b2c3", 37, 1) == "da1b2c3v11i1"


def test_addresses_freed_are_given_again_lowest_first(model):
    """Addresses come from where the last was given (not a scan from the first: 10,000 vnodes took minutes);
    a removal moves that back, so the lowest free address is still the next one."""
    from distem.model import parse_vnode

    def add(name):
        (vnode,) = model.add_vnodes([parse_vnode(name, {"vfilesystem": {"image": "/i.tgz"},
                                                        "vifaces": [{"name": "if0", "vnetwork": "vnet"}]})])
        return str(vnode.ifaces[0].address.ip)

    first = [add(f"v{i}") for i in range(4)]
    model.remove_vnode("v1")
    assert add("w") == first[1] and add("x") == str(ipaddress.IPv4Address(first[3]) + 1)
    model.remove_vnode("w")
    model.remove_vnode("v0")
    assert [add("y"), add("z")] == [first[0], first[1]]
