"""Root filesystem images for vnodes: tarballs built locally and cached by content.

    busybox()            a ~1 MB rootfs from the host's static busybox; no network needed
    debian("bookworm")   a Debian minbase rootfs built with debootstrap (Distem's --debian-version)
    resolve(path)        any tarball path or file:// URL, as Distem accepts

Images are cached under ``$DISTEM_CACHE/images`` (default ``~/.cache/distem/images``),
named by a hash of what went into them, and written atomically (temp file + rename).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import DistemError, ValidationError

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

DEFAULT_DEBIAN_PACKAGES = ("systemd-sysv", "iproute2", "iputils-ping", "procps", "openssh-server", "python3")


class ImageError(DistemError):
    """An image could not be built."""


def _cache_path(override: str | os.PathLike[str] | None = None) -> Path:
    if override is not None:
        path = Path(override)
    elif os.environ.get("DISTEM_CACHE"):
        path = Path(os.environ["DISTEM_CACHE"]) / "images"
    else:
        path = Path.home() / ".cache" / "distem" / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.rename(tmp, target)  # two builders at once: the last rename wins, both wrote the same bytes
    except BaseException:
        os.unlink(tmp)
        raise


def _entry(name: str, kind: bytes, mode: int, **extra: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = kind, mode, 0, 0, 0, "root", "root"
    for key, value in extra.items():
        setattr(info, key, value)
    return info


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
    target = _cache_path(cache_dir) / f"busybox-{key}.tar.gz"
    if target.exists():
        return target
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    members += [(_entry(d, tarfile.DIRTYPE, mode), None) for d, mode in _DIRS.items()]
    members.append((_entry("bin/busybox", tarfile.REGTYPE, 0o755, size=len(binary)), binary))
    members.append((_entry("sbin/init", tarfile.SYMTYPE, 0o777, linkname="../bin/busybox"), None))
    for applet in _applets(busybox):
        depth = applet.count("/")
        members.append((_entry(applet, tarfile.SYMTYPE, 0o777, linkname="../" * depth + "bin/busybox"), None))
    for name, (text, mode) in _FILES.items():
        data = text.encode()
        members.append((_entry(name, tarfile.REGTYPE, mode, size=len(data)), data))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in sorted(members, key=lambda m: m[0].name):
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    _write_atomically(target, gzip.compress(raw.getvalue(), mtime=0))
    log.info("built %s (%d bytes)", target, target.stat().st_size)
    return target


def debian(release: str = "bookworm", *, include: Sequence[str] = DEFAULT_DEBIAN_PACKAGES,
           cache_dir: str | os.PathLike[str] | None = None, mirror: str | None = None) -> Path:
    """A Debian rootfs tarball built with ``debootstrap --variant=minbase`` (needs the mirror and root).

    The init is systemd (``systemd-sysv``): LXC starts /sbin/init, and systemd leaves the
    address LXC gives the interface alone (no ifupdown, no networkd enabled). openssh-server
    makes Distem's ``wait_vnodes`` port-22 check meaningful.

    Returns:
        The cached tarball's path.

    Raises:
        ImageError: debootstrap is missing or failed (its last lines are in the message).
    """
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap not found: apt-get install debootstrap")
    key = hashlib.sha256(repr((release, sorted(include), mirror)).encode()).hexdigest()[:16]
    target = _cache_path(cache_dir) / f"debian-{release}-{key}.tar.gz"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(prefix="distem-debootstrap-", dir=target.parent) as work:
        root = Path(work) / "rootfs"
        argv = ["debootstrap", "--variant=minbase", f"--include={','.join(include)}", release, str(root),
                *([mirror] if mirror else [])]
        log.info("running %s (about a minute)", " ".join(argv))
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode:
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise ImageError(f"debootstrap {release} failed ({proc.returncode}): {tail}")
        (root / "etc" / "hostname").unlink(missing_ok=True)  # LXC sets the vnode's name
        shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        tmp = Path(work) / "image.tar.gz"
        subprocess.run(["tar", "--numeric-owner", "-czf", str(tmp), "-C", str(root), "."], check=True)
        os.rename(tmp, target)
    return target


def resolve(image: str | os.PathLike[str]) -> Path:
    """An image given as a tarball path or a file:// URL, as an absolute existing path.

    Raises:
        ValidationError: not a local file.
    """
    text = os.fspath(image)
    path = Path(text[len("file://"):] if text.startswith("file://") else text)
    if "://" in str(path) or not path.is_file():
        raise ValidationError("image", text, "expected an existing tarball path or file:// URL "
                              "(distem.images.busybox() builds one)")
    return path.resolve()
