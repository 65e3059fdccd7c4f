"""Images: the busybox rootfs is reproducible and boots; paths and file:// URLs resolve; debian() adds packages to
its defaults, shows progress and explains a failure; layers add files to any image and packages to a Debian one."""

from __future__ import annotations

import io
import shutil
import socket
import tarfile
import time
from pathlib import Path

import pytest

import distem
from distem.errors import ValidationError
from distem.images import DEFAULT_DEBIAN_PACKAGES, ImageError, busybox, debian_recipe, layer, resolve
from distem.images.builds import APT_STEPS, DEBOOTSTRAP_STEPS, Steps, build_failure, run_build
from distem.images.store import tar_entry


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


# --- layers ---------------------------------------------------------------------------------------------------------

def test_a_files_layer_on_busybox_replaces_and_adds_files_and_is_cached(tmp_path):
    base = busybox(cache_dir=tmp_path)
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o750)
    files = {"/etc/motd": "a layered vnode\n", "/etc/hosts": b"127.0.0.1 localhost vnode\n",
             "/opt/app/run.sh": script}
    started = time.monotonic()
    image = layer(base, files=files, cache_dir=tmp_path)
    assert time.monotonic() - started < 5
    with tarfile.open(base) as tar:
        before = {m.name: m for m in tar.getmembers()}
    with tarfile.open(image) as tar:
        after = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("etc/motd").read() == b"a layered vnode\n"
        assert tar.extractfile("etc/hosts").read() == b"127.0.0.1 localhost vnode\n"
        assert tar.extractfile("opt/app/run.sh").read() == b"#!/bin/sh\necho run\n"
        assert len(tar.getnames()) == len(after)  # etc/hosts once: replaced, not appended
    assert after["opt/app/run.sh"].mode == 0o750 and after["etc/motd"].mode == 0o644 and after["etc/motd"].uid == 0
    assert after["opt"].isdir() and after["opt/app"].isdir()
    # the directories a new file needs come with it (busybox's tarball has none for etc)
    assert set(after) - set(before) == {"etc", "etc/motd", "opt", "opt/app", "opt/app/run.sh"}
    assert after["sbin/init"].linkname == "../bin/busybox" and after["bin/busybox"].size == before["bin/busybox"].size
    inode = image.stat().st_ino
    assert layer(base, files=files, cache_dir=tmp_path) == image and image.stat().st_ino == inode  # a cache hit
    again = layer(base, files=files, cache_dir=tmp_path / "other")
    assert again.name == image.name and again.read_bytes() == image.read_bytes()  # reproducible
    assert layer(base, files={**files, "/etc/motd": "other\n"}, cache_dir=tmp_path) != image
    on_top = layer(image, files={"/etc/issue": "x\n"}, cache_dir=tmp_path)
    assert on_top.name.startswith(base.name.removesuffix(".tar.gz") + "+") and on_top.name.count("+") == 1
    assert layer(base, cache_dir=tmp_path) == base  # nothing to add


def test_a_files_layer_gives_a_hard_link_the_content_of_the_file_it_replaces(tmp_path):
    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as tar:
        for name in ("./usr", "./usr/bin"):
            tar.addfile(tar_entry(name, tarfile.DIRTYPE, 0o755))
        tar.addfile(tar_entry("./usr/bin/gzip", tarfile.REGTYPE, 0o755, size=4), io.BytesIO(b"gzip"))
        tar.addfile(tar_entry("./usr/bin/gunzip", tarfile.LNKTYPE, 0o755, linkname="./usr/bin/gzip"))
        tar.addfile(tar_entry("./usr/bin/zcat", tarfile.LNKTYPE, 0o755, linkname="./usr/bin/gzip"))
    image = layer(base, files={"/usr/bin/gzip": "new"}, cache_dir=tmp_path)
    with tarfile.open(image) as tar:
        assert tar.extractfile("./usr/bin/gzip").read() == b"new"
        assert tar.getmember("./usr/bin/gunzip").isreg() and tar.extractfile("./usr/bin/gunzip").read() == b"gzip"
        assert tar.getmember("./usr/bin/zcat").linkname == "./usr/bin/gunzip"


def test_a_files_layer_refuses_paths_outside_the_image_and_directories(tmp_path):
    base = busybox(cache_dir=tmp_path)
    for bad in ({"etc/motd": "x"}, {"/../etc/motd": "x"}, {"/": "x"}, {"/etc/motd": 3},
                {"/etc/motd": tmp_path / "missing"}, {"/etc/motd": "x", "/etc//motd": "y"}):
        with pytest.raises(ValidationError, match="files"):
            layer(base, files=bad, cache_dir=tmp_path)
    with pytest.raises(ValidationError, match="directory"):
        layer(base, files={"/etc/init.d": "x"}, cache_dir=tmp_path)
    assert not list(tmp_path.glob(".*"))  # no half-written tarball left


FAKE_APT = """#!/bin/sh
# apt-get as a layer runs it, without network: 'nope' is not found; each package leaves a file
case "$1" in
update) echo "Reading package lists...";;
install) shift 3
    for p in "$@"; do [ "$p" = nope ] && { echo "E: Unable to locate package nope"; exit 100; }; done
    echo "0 upgraded, $# newly installed, 0 to remove and 0 not upgraded."
    for p in "$@"; do echo "Get:1 http://deb.debian.org/debian bookworm/main amd64 $p amd64 1.0 [1 kB]"; done
    for p in "$@"; do echo "Unpacking $p (1.0) ..."; mkdir -p /usr/share/doc/$p; echo ok > /usr/share/doc/$p/ok; done
    for p in "$@"; do echo "Setting up $p (1.0) ..."; done
    [ -e /proc/self/status ] && [ -c /dev/null ] && [ -x /usr/sbin/policy-rc.d ] && echo yes > /usr/share/doc/chroot
    ;;
esac
"""


@pytest.fixture
def fake_debian(tmp_path):
    """A busybox image that says it is Debian, with an apt-get that needs no network."""
    apt = tmp_path / "apt-get"
    apt.write_text(FAKE_APT)
    apt.chmod(0o755)
    return layer(busybox(cache_dir=tmp_path), files={"/etc/debian_version": "12.0\n", "/usr/bin/apt-get": apt},
                 cache_dir=tmp_path)


@pytest.mark.root
def test_a_packages_layer_runs_apt_in_a_chroot_and_leaves_nothing(tmp_path, fake_debian):
    image = layer(fake_debian, packages=["iperf3", "gdb"], files={"/etc/motd": "with tools\n"}, cache_dir=tmp_path)
    with tarfile.open(image) as tar:
        names = set(tar.getnames())
        assert {"./usr/share/doc/iperf3/ok", "./usr/share/doc/gdb/ok", "./etc/motd"} <= names
        assert tar.extractfile("./usr/share/doc/chroot").read() == b"yes\n"  # /proc, /dev, no services, meanwhile
        assert "./usr/sbin/policy-rc.d" not in names and "./dev/null" not in names  # both only meanwhile
        assert tar.extractfile("./etc/hosts").read() == busybox_hosts()
    assert layer(fake_debian, packages=["gdb", "iperf3"], files={"/etc/motd": "with tools\n"},
                 cache_dir=tmp_path) == image
    assert not [line for line in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in line]
    assert not list(tmp_path.glob("distem-layer-*"))


@pytest.mark.root
def test_a_failed_packages_layer_names_the_package_and_keeps_its_log_until_the_next_try(tmp_path, fake_debian):
    with pytest.raises(ImageError) as failure:
        layer(fake_debian, packages=["iperf3", "nope"], cache_dir=tmp_path)
    error = failure.value
    assert error.packages == ("nope",) and "| E: Unable to locate package nope" in str(error)
    assert "E: Unable to locate package nope" in error.log.read_text()
    error.log.write_text("stale")
    with pytest.raises(ImageError):
        layer(fake_debian, packages=["iperf3", "nope"], cache_dir=tmp_path)
    assert "stale" not in error.log.read_text()
    assert not [line for line in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in line]
    assert not list(tmp_path.glob("distem-layer-*"))


def test_packages_need_a_debian_image(tmp_path):
    with pytest.raises(ValidationError, match="Debian-based image"):
        layer(busybox(cache_dir=tmp_path), packages=["iperf3"], cache_dir=tmp_path)


def busybox_hosts() -> bytes:
    return b"127.0.0.1 localhost\n::1 localhost\n"


@pytest.mark.slow
@pytest.mark.root
def test_debian_with_packages_keeps_sshd_and_systemd_and_takes_a_real_packages_layer(tmp_path):
    image = distem.images.debian("bookworm", packages=["iperf3"], cache_dir=tmp_path)  # about a minute
    with tarfile.open(image) as tar:
        names = set(tar.getnames())
    assert {"./usr/bin/iperf3", "./usr/sbin/sshd", "./usr/lib/systemd/systemd", "./usr/bin/python3"} <= names
    layered = layer(image, packages=["netcat-openbsd"], files={"/etc/motd": "iperf3 and nc\n"}, cache_dir=tmp_path)
    with tarfile.open(layered) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("./etc/motd").read() == b"iperf3 and nc\n"
    assert {"./usr/bin/nc.openbsd", "./usr/bin/iperf3"} <= names and "./usr/sbin/policy-rc.d" not in names
    assert not [line for line in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in line]
