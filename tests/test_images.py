"""Images: the busybox rootfs is reproducible and boots; paths and file:// URLs resolve; debian() adds packages to
its defaults, shows progress and explains a failure."""

from __future__ import annotations

import shutil
import socket
import tarfile
import time
from pathlib import Path

import pytest

import distem
from distem.errors import ValidationError
from distem.images import DEFAULT_DEBIAN_PACKAGES, ImageError, busybox, debian_recipe, resolve
from distem.images.builds import APT_STEPS, DEBOOTSTRAP_STEPS, Steps, build_failure, run_build


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


# --- debian(): what debootstrap is asked for, and its cache key -----------------------------------------------------

def test_debian_packages_are_added_to_the_defaults():
    argv = debian_recipe("bookworm", packages=["iperf3", "python3"]).debootstrap_argv(Path("/build/rootfs"))
    include = next(a for a in argv if a.startswith("--include=")).removeprefix("--include=").split(",")
    assert include == [*DEFAULT_DEBIAN_PACKAGES, "iperf3"]  # python3 is a default already: given once
    assert {"systemd-sysv", "openssh-server"} <= set(include)
    assert argv[:2] == ["debootstrap", "--variant=minbase"] and argv[-2:] == ["bookworm", "/build/rootfs"]
    replaced = debian_recipe("trixie", base_packages=["systemd-sysv"], variant=None,
                             mirror="http://ftp.fr.debian.org/debian").debootstrap_argv(Path("/r"))
    assert replaced == ["debootstrap", "--include=systemd-sysv", "trixie", "/r", "http://ftp.fr.debian.org/debian"]


def test_the_debian_cache_key_changes_with_everything_that_changes_the_image():
    key = debian_recipe("bookworm", packages=["iperf3", "gdb"]).key
    assert debian_recipe("bookworm", packages=["gdb", "iperf3"]).key == key  # order does not change the image
    others = [debian_recipe("trixie", packages=["iperf3", "gdb"]),
              debian_recipe("bookworm", packages=["iperf3"]),
              debian_recipe("bookworm", packages=["iperf3", "gdb"], variant="buildd"),
              debian_recipe("bookworm", packages=["iperf3", "gdb"], mirror="http://ftp.fr.debian.org/debian"),
              debian_recipe("bookworm", packages=["iperf3", "gdb"], base_packages=["systemd-sysv"])]
    assert len({key} | {other.key for other in others}) == 6


def test_debian_refuses_include_and_bad_package_lists():
    with pytest.raises(ValidationError, match="include.*packages=.*base_packages="):
        distem.images.debian("bookworm", include=["iperf3"])
    for bad in ("iperf3", ["iperf3=3.12-1"], ["Bad Name"], [3]):
        with pytest.raises(ValidationError, match="packages"):
            debian_recipe("bookworm", packages=bad)
    with pytest.raises(ValidationError, match="release"):
        debian_recipe("bookworm; rm -rf /")
    with pytest.raises(ValidationError, match="variant"):
        debian_recipe("bookworm", variant="tiny")


# --- progress and failures, read from the tools' output -------------------------------------------------------------

DEBOOTSTRAP_OUTPUT = """\
I: Retrieving InRelease
I: Checking component main on http://deb.debian.org/debian...
I: Retrieving adduser 3.134
I: Validating adduser 3.134
I: Retrieving libc6 2.36-9+deb12u10
I: Validating libc6 2.36-9+deb12u10
I: Chosen extractor for .deb packages: dpkg-deb
I: Extracting libc6...
I: Installing core packages...
I: Unpacking required packages...
I: Unpacking libc6:amd64...
I: Configuring required packages...
I: Configuring libc6:amd64...
I: Unpacking the base system...
I: Unpacking adduser...
"""


def test_debootstrap_output_makes_steps_with_a_total_once_all_is_retrieved():
    steps, seen = Steps(DEBOOTSTRAP_STEPS), []
    for line in DEBOOTSTRAP_OUTPUT.splitlines():
        steps.feed(line)
        seen.append((steps.done, steps.total, steps.stage))
    assert seen[3] == (1, None, "retrieving adduser")  # Validating changes nothing
    assert seen[6] == (2, 6, "Chosen extractor for .deb packages: dpkg-deb")  # 2 packages, 3 steps each
    assert seen[7] == (2, 6, "extracting libc6")  # shown, not counted: only the required ones are extracted
    assert seen[12] == (4, 6, "configuring libc6") and seen[-1] == (5, 6, "unpacking adduser")


def test_apt_output_makes_steps_with_the_total_apt_announces():
    steps = Steps(APT_STEPS)
    for line in ["Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]", "Reading package lists...",
                 "0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.",
                 "Get:1 http://deb.debian.org/debian bookworm/main amd64 libiperf0 amd64 3.12-1+deb12u1 [88.0 kB]",
                 "Unpacking libiperf0:amd64 (3.12-1+deb12u1) ...", "Setting up iperf3 (3.12-1+deb12u1) ..."]:
        steps.feed(line)
    assert (steps.done, steps.total, steps.stage) == (3, 6, "configuring iperf3")


def test_a_failure_shows_the_lines_that_say_why_and_names_the_package(tmp_path):
    output = "I: Configuring required packages...\nI: Configuring libc-bin...\n" \
             "W: Failure trying to run: chroot /build/rootfs dpkg --force-depends --install /var/cache/x.deb\n" \
             "W: See /build/rootfs/debootstrap/debootstrap.log for details (possibly the package base-files " \
             "is at fault)\n"
    inner = "\n".join(f"noise {i}" for i in range(40)) + "\nUnpacking base-files (12.4) ...\n" \
            "dpkg: error processing package base-files (--install):\n installed base-files package post-installation " \
            "script subprocess returned error exit status 1\n" + "\n".join(f"after {i}" for i in range(15))
    error = build_failure("debootstrap bookworm", 1, output, inner, tmp_path / "x.failed.log")
    assert error.packages == ("base-files",) and error.log == tmp_path / "x.failed.log"
    message = str(error)
    assert "debootstrap bookworm failed (exit status 1); it blames the package base-files:" in message
    assert "| W: See /build/rootfs/debootstrap/debootstrap.log" in message
    assert "| dpkg: error processing package base-files (--install):" in message
    assert "| after 14" in message and "| noise 30" not in message  # the log's last 20 lines, not all of it
    assert f"The whole log: {tmp_path / 'x.failed.log'}" in message


@pytest.mark.root
def test_a_build_command_shows_its_progress_and_keeps_its_output(tmp_path, capfd):
    script = "; ".join(f"echo '{line}'" for line in DEBOOTSTRAP_OUTPUT.splitlines()[:9])
    status = run_build(["sh", "-c", script], DEBOOTSTRAP_STEPS, "debootstrap test", tmp_path / "out.log", progress=True)
    kept = (tmp_path / "out.log").read_text()
    assert status == 0 and "I: Installing core packages..." in kept
    assert "debootstrap test: 100%" in capfd.readouterr().err  # the bar, ended full


@pytest.mark.root
def test_a_forced_debootstrap_failure_names_the_package_and_keeps_its_log(tmp_path):
    if shutil.which("debootstrap") is None or not _reachable("deb.debian.org", 80):
        pytest.skip("needs debootstrap and Debian's mirror")
    started = time.monotonic()
    with pytest.raises(ImageError) as failure:
        distem.images.debian("bookworm", packages=["no-such-package-distem"], cache_dir=tmp_path)
    assert time.monotonic() - started < 60  # debootstrap stops once it has resolved the packages
    error = failure.value
    assert error.packages == ("no-such-package-distem",)
    assert "it blames the package no-such-package-distem" in str(error)
    assert "| E: Couldn't find these debs: no-such-package-distem" in str(error)
    assert error.log.exists() and error.log.parent == tmp_path and "--- debootstrap.log ---" in error.log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [error.log.name]  # the build's directory is gone


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError:
        return False
