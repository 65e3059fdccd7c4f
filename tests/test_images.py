"""Images: the busybox rootfs is reproducible and boots; paths and file:// URLs resolve."""

from __future__ import annotations

import tarfile

import pytest

import distem
from distem.errors import ValidationError
from distem.images import busybox, resolve


def test_busybox_image_has_init_and_applets(tmp_path):
    with tarfile.open(busybox(cache_dir=tmp_path)) as tar:
        names = set(tar.getnames())
        assert {"bin/busybox", "sbin/init", "etc/inittab", "etc/init.d/rcS", "bin/sh", "bin/ping"} <= names
        assert tar.getmember("sbin/init").linkname == "../bin/busybox"
        rcs = tar.extractfile("etc/init.d/rcS").read().decode()
        assert "udhcpc" not in rcs and "ip addr" not in rcs  # the static address LXC sets must survive


def test_busybox_image_is_reproducible_and_cached(tmp_path):
    first = busybox(cache_dir=tmp_path / "a")
    second = busybox(cache_dir=tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    inode = first.stat().st_ino
    assert busybox(cache_dir=tmp_path / "a") == first and first.stat().st_ino == inode


def test_resolve_accepts_paths_and_file_urls(tmp_path):
    image = busybox(cache_dir=tmp_path)
    assert resolve(str(image)) == image and resolve(f"file://{image}") == image
    for bad in (tmp_path / "missing.tgz", "http://example.org/x.tgz", tmp_path):
        with pytest.raises(ValidationError, match="image"):
            resolve(bad)


@pytest.mark.root
def test_the_busybox_image_keeps_the_static_address(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("b").image(busybox).iface("if0", "vnet")
    platform.deploy()
    assert "inet 10.144.0.1/24" in platform.vnode_execute("b", "sleep 0.5; ip -4 addr show if0")
    assert "tmpfs /tmp" in platform.vnode_execute("b", "cat /proc/mounts")


@pytest.mark.slow
@pytest.mark.root
def test_debian_image_boots_with_sshd(platform, tmp_path_factory):
    image = distem.images.debian("bookworm", cache_dir=tmp_path_factory.mktemp("debian"))
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("deb").image(str(image)).iface("if0", "vnet")
    platform.deploy()
    assert platform.wait_vnodes({"vnodes": ["deb"], "port": 22, "timeout": 60})
    assert "inet 10.144.0.1/24" in platform.vnode_execute("deb", "ip -4 addr show if0")
    assert "bookworm" in platform.vnode_execute("deb", "cat /etc/os-release")
