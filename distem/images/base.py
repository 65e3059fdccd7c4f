"""The images built from nothing: busybox() from the host's static busybox, debian() with debootstrap."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError
from .builds import DEBOOTSTRAP_STEPS, check_packages, keep_failure, run_build
from .store import ImageError, atomic_output, cache_path, failed_log, pack, tar_entry

log = logging.getLogger(__name__)

BUSYBOX = "/bin/busybox"
_BUSYBOX_RECIPE = "3"  # bump when the files below change, so caches rebuild
_INITTAB = "::sysinit:/etc/init.d/rcS\n::restart:/sbin/init\n::shutdown:/bin/umount -a -r\n"
# LXC configures the interfaces and mounts proc/sys/dev before init; busybox's stock rcS would run
# udhcpc and flush the static address, so ours only gives each vnode a private /tmp and /run.
_RCS = "#!/bin/sh\nmount -t tmpfs -o mode=1777 tmpfs /tmp\nmount -t tmpfs tmpfs /run\nmkdir -p /run/lock\n"
_FILES = {
    "etc/inittab": (_INITTAB, 0o644),
    "etc/init.d/rcS": (_RCS, 0o755),
    "etc/passwd": ("root:x:0:0:root:/root:/bin/sh\n", 0o644),
    "etc/group": ("root:x:0:\n", 0o644),
    "etc/hosts": ("127.0.0.1 localhost\n::1 localhost\n", 0o644),
    "etc/nsswitch.conf": ("hosts: files dns\n", 0o644),
}
_DIRS = {"bin": 0o755, "sbin": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "etc/init.d": 0o755, "proc": 0o555,
         "sys": 0o555, "dev": 0o755, "tmp": 0o1777, "run": 0o755, "var/run": 0o755, "root": 0o700, "home": 0o755,
         "mnt": 0o755}


def _applets(busybox: str) -> list[str]:
    listed = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    return sorted(p for p in listed if p not in ("bin/busybox", "sbin/init"))


def busybox(*, cache_dir: str | os.PathLike[str] | None = None, busybox: str = BUSYBOX) -> Path:
    """A busybox rootfs tarball, built from the host's static busybox (Debian's busybox-static).

    The tarball is byte-for-byte reproducible (sorted entries, zero times and owners).

    Returns:
        The cached tarball's path.

    Raises:
        ImageError: no static busybox on this machine.
    """
    if not os.path.isfile(busybox):
        raise ImageError(f"{busybox} not found: install Debian's busybox-static (apt-get install busybox-static)")
    binary = Path(busybox).read_bytes()
    key = hashlib.sha256(binary + _BUSYBOX_RECIPE.encode()).hexdigest()[:16]
    target = cache_path(cache_dir) / f"busybox-{key}.tar.gz"
    if target.exists():
        return target
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    members += [(tar_entry(d, tarfile.DIRTYPE, mode), None) for d, mode in _DIRS.items()]
    members.append((tar_entry("bin/busybox", tarfile.REGTYPE, 0o755, size=len(binary)), binary))
    members.append((tar_entry("sbin/init", tarfile.SYMTYPE, 0o777, linkname="../bin/busybox"), None))
    for applet in _applets(busybox):
        depth = applet.count("/")
        members.append((tar_entry(applet, tarfile.SYMTYPE, 0o777, linkname="../" * depth + "bin/busybox"), None))
    for name, (text, mode) in _FILES.items():
        data = text.encode()
        members.append((tar_entry(name, tarfile.REGTYPE, mode, size=len(data)), data))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, content in sorted(members, key=lambda m: m[0].name):
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    with atomic_output(target) as f:
        f.write(gzip.compress(raw.getvalue(), mtime=0))
    log.info("built %s (%d bytes)", target, target.stat().st_size)
    return target


DEFAULT_DEBIAN_PACKAGES = ("systemd-sysv", "iproute2", "iputils-ping", "procps", "openssh-server", "python3")
DEBIAN_VARIANTS = ("minbase", "buildd", "fakechroot")  # debootstrap's; None: its default (required and important)
_DEBIAN_RECIPE = "2"  # bump when what debian() does after debootstrap changes, so caches rebuild
_RELEASE = re.compile(r"[a-z][a-z0-9-]*")  # a suite or code name: bookworm, trixie, stable, sid


@dataclass(frozen=True, slots=True, kw_only=True)
class DebianRecipe:
    """All that makes a Debian image what it is: its cache key is made of every field."""

    release: str
    variant: str | None
    packages: tuple[str, ...]  # what debootstrap --include gets: the base packages, then those added
    mirror: str | None
    arch: str  # this machine's: debootstrap builds for it, and a cache may be shared by other machines

    @property
    def key(self) -> str:
        fields = (_DEBIAN_RECIPE, self.release, self.variant, sorted(self.packages), self.mirror, self.arch)
        return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]

    @property
    def tarball_name(self) -> str:
        return f"debian-{self.release}-{self.key}.tar.gz"

    def debootstrap_argv(self, root: Path) -> list[str]:
        return ["debootstrap", *([f"--variant={self.variant}"] if self.variant else []),
                *([f"--include={','.join(self.packages)}"] if self.packages else []), self.release, str(root),
                *([self.mirror] if self.mirror else [])]


def debian_recipe(release: str = "bookworm", *, packages: Sequence[str] = (),
                  base_packages: Sequence[str] = DEFAULT_DEBIAN_PACKAGES, variant: str | None = "minbase",
                  mirror: str | None = None, include: Sequence[str] | None = None) -> DebianRecipe:
    """What ``debian()`` builds from its arguments, checked (see there); building nothing.

    Raises:
        ValidationError: an argument debootstrap would refuse, or ``include`` (no longer accepted).
    """
    if include is not None:
        raise ValidationError("include", include, "no longer accepted: it replaced the default packages (and so "
                              "dropped systemd-sysv and openssh-server); give packages=[...] to add to them, or "
                              "base_packages=[...] to replace them")
    if not isinstance(release, str) or not _RELEASE.fullmatch(release):
        raise ValidationError("release", release, "a Debian release name, e.g. 'bookworm' or 'trixie'")
    if variant is not None and variant not in DEBIAN_VARIANTS:
        raise ValidationError("variant", variant, f"one of debootstrap's: {', '.join(DEBIAN_VARIANTS)}, or None")
    if mirror is not None and (not isinstance(mirror, str) or "://" not in mirror):
        raise ValidationError("mirror", mirror, "a Debian mirror's URL, e.g. 'http://deb.debian.org/debian'")
    wanted = check_packages("base_packages", base_packages) + check_packages("packages", packages)
    return DebianRecipe(release=release, variant=variant, packages=tuple(dict.fromkeys(wanted)), mirror=mirror,
                        arch=platform.machine())


def debian(release: str = "bookworm", *, packages: Sequence[str] = (),
           base_packages: Sequence[str] = DEFAULT_DEBIAN_PACKAGES, variant: str | None = "minbase",
           mirror: str | None = None, cache_dir: str | os.PathLike[str] | None = None, progress: bool | None = None,
           include: Sequence[str] | None = None) -> Path:
    """A Debian rootfs tarball built with ``debootstrap --variant=minbase`` (needs the mirror and root).

    The init is systemd (``systemd-sysv``): LXC starts /sbin/init, and systemd leaves the
    address LXC gives the interface alone (no ifupdown, no networkd enabled). openssh-server
    makes Distem's ``wait_vnodes`` port-22 check meaningful.

    Example::

        image = distem.images.debian("bookworm", packages=["iperf3", "openmpi-bin"])

    Args:
        release: the Debian release (Distem's ``--debian-version``).
        packages: installed on top of ``base_packages`` (their dependencies too).
        base_packages: the packages every image gets; replace them only knowing that systemd-sysv is the
            init and openssh-server what ``wait_vnodes`` waits for.
        variant: debootstrap's ``--variant``; None for its default (the required and important packages).
        mirror: a Debian mirror's URL; None for debootstrap's (deb.debian.org).
        progress: a progress bar from debootstrap's output; None shows it on a terminal or in a notebook only.
        include: no longer accepted (it replaced ``base_packages``); raises, saying what to give instead.

    Returns:
        The cached tarball's path: named by a hash of everything above that changes the image, so a
        second call with the same arguments returns at once.

    Raises:
        ValidationError: a bad argument (before anything runs).
        ImageError: debootstrap is missing or failed. The message shows the lines of its log that say why and
            the packages they blame (also in ``.packages``); ``.log`` is the whole log, kept in the cache until
            this image is tried again.
    """
    recipe = debian_recipe(release, packages=packages, base_packages=base_packages, variant=variant, mirror=mirror,
                           include=include)
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap not found: apt-get install debootstrap")
    target = cache_path(cache_dir) / recipe.tarball_name
    if target.exists():
        return target
    failed_log(target).unlink(missing_ok=True)  # a new try: the last one's log no longer says what happens
    with tempfile.TemporaryDirectory(prefix="distem-debootstrap-", dir=target.parent) as work:
        root, output = Path(work) / "rootfs", Path(work) / "output.log"
        argv = recipe.debootstrap_argv(root)
        log.info("running %s (a minute or more)", " ".join(argv))
        status = run_build(argv, DEBOOTSTRAP_STEPS, f"debootstrap {release}", output, progress)
        if status:
            raise keep_failure(f"debootstrap {release}", status, output, root / "debootstrap" / "debootstrap.log",
                               failed_log(target))
        (root / "etc" / "hostname").unlink(missing_ok=True)  # LXC sets the vnode's name
        for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()  # apt's download cache: apt needs the directory itself later
        pack(root, target)
    log.info("built %s (%d bytes)", target, target.stat().st_size)
    return target
