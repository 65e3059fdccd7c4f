"""Run a command inside Debian's own kernel under QEMU: sch_netem, cgroup v2 and memcg where UML cannot boot.

On hosts whose CPU has AMX, user-mode Linux dies at its first process (the host's
ptrace refuses its xstate writes), and nested KVM does not run guests here; QEMU
without KVM (TCG) boots anywhere. The kernel is Debian's ``linux-image-*-amd64``,
fetched with ``apt-get download`` into ``CACHE`` once. A busybox initramfs loads
the virtio and 9p modules, mounts the host's ``/`` read-only over virtio-9p under
a tmpfs overlay, mounts the working directory read-write at the same path, then
switches to that root and runs the same guest set-up as the UML backend.

The directories the Python running this imports from (its standard library and
site-packages) go in on read-only squashfs images instead, one virtio disk each:
under TCG, reading thousands of modules over 9p cost as much as the emulated CPU.
An image is rebuilt when a file of its directory changed (size or mtime).

    python -m distem.testing.guest run --kernel qemu -- CMD...
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from distem.testing.guestboot import GUEST_MODULES, GuestError, boot, job_script, stage2_script

CACHE = Path(os.environ.get("DISTEM_GUEST_CACHE", "/var/cache/distem/guest"))
QEMU = "qemu-system-x86_64"
# Loaded in this order from the initramfs, before the host's root can be mounted.
BOOT_MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
                "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay", "virtio_blk", "squashfs")
NINEP = "trans=virtio,version=9p2000.L,msize=512000"

_INIT = r"""#!/bin/busybox sh
# PID 1 of the initramfs: the host's / read-only over 9p under a tmpfs overlay, then the shared stage 2.
B=/bin/busybox
$B mkdir -p /proc /sys /dev /mnt/lower /mnt/rw /mnt/root
$B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
for a in $($B cat /proc/cmdline); do case $a in
  guest.work=*) WORK=${a#guest.work=};; guest.state=*) ST=${a#guest.state=};; esac; done
for m in __BOOT_MODULES__; do $B insmod /mods/$m.ko || echo "qemu: insmod $m failed"; done
O="__NINEP__"
$B mount -t 9p -o $O,ro,cache=loose hostroot /mnt/lower || $B poweroff -f
$B mount -t tmpfs tmpfs /mnt/rw && $B mkdir -p /mnt/rw/u /mnt/rw/w
$B mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/u,workdir=/mnt/rw/w /mnt/root || $B poweroff -f
R=/mnt/root
$B mount -t tmpfs -o mode=1777 tmpfs $R/tmp; $B mount -t tmpfs tmpfs $R/run
$B mkdir -p $R$WORK $R$ST $R/lib/modules
$B mount -t 9p -o $O,cache=mmap work $R$WORK; $B mount -t 9p -o $O,cache=mmap state $R$ST
$B mount -t 9p -o $O,ro,cache=loose mods $R/lib/modules
while read id dir; do for d in /sys/block/vd*; do  # the Python's trees, each on the disk of that serial
  [ "$($B cat $d/serial)" = "$id" ] && $B mount -t squashfs -o ro /dev/${d##*/} "$R$dir"; done; done < $R$ST/trees
$B mount --move /dev $R/dev; $B umount /proc /sys
exec $B switch_root $R /bin/sh "$ST/stage2.sh" "$ST"
"""


def kernel_version() -> str:
    """The version of Debian's current kernel package (``linux-image-amd64``'s dependency)."""
    out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split(":", 1)[-1].strip()
        if name.startswith("linux-image-") and name.endswith("-amd64") and name != "linux-image-amd64":
            return name.removeprefix("linux-image-")
    raise GuestError("apt-cache knows no linux-image-amd64 package (run apt-get update)")


def find_kernel() -> Path | None:
    """The cached kernel directory (``vmlinuz``, ``lib/modules/VERSION``), if one was fetched."""
    kernels = sorted(CACHE.glob("kernel-*/vmlinuz"))
    return kernels[-1].parent if kernels else None


def ensure_kernel() -> Path:
    """The cached kernel, fetching and unpacking Debian's kernel package when missing (needs root)."""
    found = find_kernel()
    if found is not None:
        return found
    if shutil.which(QEMU) is None:
        raise GuestError(f"{QEMU} is missing; as root: apt-get install qemu-system-x86")
    version = kernel_version()
    target = CACHE / f"kernel-{version}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:  # on CACHE's filesystem: the unpacked tree is renamed
        subprocess.run(["apt-get", "download", f"linux-image-{version}"], cwd=tmp, check=True,
                       capture_output=True)
        deb = next(Path(tmp).glob("*.deb"))
        tree = Path(tmp) / "tree"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        subprocess.run(["depmod", "-b", str(tree), version], check=True)
        unpacked = Path(tmp) / "kernel"
        unpacked.mkdir()
        (tree / "boot" / f"vmlinuz-{version}").rename(unpacked / "vmlinuz")
        (tree / "lib" / "modules").rename(unpacked / "modules")
        unpacked.rename(target)
    return target


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A gzip'd cpio archive in the kernel's ``newc`` format: (path, mode, data) entries, then the trailer."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        raw = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0)
        out += b"070701" + "".join(f"{f:08x}" for f in fields).encode() + raw
        out += b"\0" * (-len(out) % 4)
        out += data + b"\0" * (-len(data) % 4)
    return gzip.compress(bytes(out), compresslevel=1)


def initramfs(kernel: Path) -> Path:
    """The initramfs for ``kernel`` (busybox, the boot modules, the init), built once and cached."""
    init = _INIT.replace("__BOOT_MODULES__", " ".join(BOOT_MODULES)).replace("__NINEP__", NINEP)
    busybox = Path("/bin/busybox").read_bytes()
    (version,) = [p.name for p in (kernel / "modules").iterdir()]
    modules = {m: next((kernel / "modules" / version / "kernel").rglob(f"{m}.ko")).read_bytes() for m in BOOT_MODULES}
    digest = hashlib.sha256(init.encode() + busybox + b"".join(modules.values())).hexdigest()[:16]
    path = kernel / f"initrd-{digest}.gz"
    if not path.exists():
        entries = [("bin", 0o40755, b""), ("mods", 0o40755, b""), ("bin/busybox", 0o100755, busybox),
                   ("init", 0o100755, init.encode())]
        entries += [(f"mods/{m}.ko", 0o100644, data) for m, data in modules.items()]
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(_newc(entries))
        tmp.rename(path)
    return path


def python_trees(cwd: Path) -> list[Path]:
    """The directories this Python imports from (standard library, site-packages), outermost only,
    and none that holds ``cwd`` (the working directory stays live, over 9p), nor the folder of the script
    run, first on the path, when it lies in ``cwd`` (a benchmark writes its results there)."""
    dirs = {Path(p).resolve() for p in sys.path if p and os.path.isdir(p)}
    dirs = {d for d in dirs if not cwd.is_relative_to(d)}
    script_dir = Path(sys.path[0]).resolve() if sys.path and sys.path[0] else None
    if script_dir is not None and script_dir.is_relative_to(cwd):
        dirs.discard(script_dir)
    return sorted(d for d in dirs if not any(d != o and d.is_relative_to(o) for o in dirs))


def tree_image(tree: Path) -> Path:
    """A read-only squashfs image of ``tree``, cached; rebuilt when a file in it changed (size, mtime).

    Site-packages directories inside it that this Python does not import from are left out
    (a pyenv's own site-packages under a venv's standard library)."""
    on_path = {Path(p).resolve() for p in sys.path if p}
    skipped = []
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(tree):
        here = Path(root)
        skipped += [here / d for d in dirs if d in ("site-packages", "dist-packages") and here / d not in on_path]
        dirs[:] = sorted(d for d in dirs if here / d not in skipped)
        for name in sorted(dirs + files):
            st = os.lstat(here / name)
            digest.update(f"{here / name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    tag = hashlib.sha256(str(tree).encode()).hexdigest()[:8]
    path = CACHE / "trees" / f"{tag}-{digest.hexdigest()[:16]}.sqfs"
    if not path.exists():
        if shutil.which("mksquashfs") is None:
            raise GuestError("mksquashfs is missing; as root: apt-get install squashfs-tools")
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f"{tag}-*.sqfs"):
            stale.unlink()
        tmp = path.with_suffix(".tmp")
        # Uncompressed: under TCG, decompressing costs more than the host's page cache saves.
        subprocess.run(["mksquashfs", str(tree), str(tmp), "-noappend", "-noI", "-noD", "-noF", "-noX",
                        "-no-progress", "-quiet", *(["-e", *(str(d.relative_to(tree)) for d in skipped)] if skipped else [])],
                       check=True, stdout=subprocess.DEVNULL)
        tmp.rename(path)
    return path


def command(kernel: Path, state: Path, cwd: Path, *, mem: str, cpus: int, accel: str = "tcg",
            trees: Sequence[Path] = ()) -> list[str]:
    """The QEMU command line that boots ``kernel`` with the host's root, ``cwd`` and ``state`` shared,
    and each of ``trees`` on a disk of its own (``state/trees`` says where each is mounted)."""
    accel_opts = "tcg,thread=multi,tb-size=512" if accel == "tcg" else accel
    shares = [("hostroot", "/", True), ("work", str(cwd), False), ("state", str(state), False),
              ("mods", str(kernel / "modules"), True)]
    cmd = [QEMU, "-nodefaults", "-no-user-config", "-machine", "q35", "-accel", accel_opts,
           "-cpu", "max" if accel == "tcg" else "host",
           "-smp", str(cpus), "-m", mem, "-kernel", str(kernel / "vmlinuz"), "-initrd", str(initramfs(kernel)),
           "-append", f"console=ttyS0 quiet panic=-1 apparmor=0 guest.work={cwd} guest.state={state}",
           "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"]
    for tag, path, readonly in shares:
        cmd += ["-fsdev", f"local,id={tag},path={path},security_model=passthrough,multidevs=remap"
                + (",readonly=on" if readonly else ""),
                "-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag}"]
    lines = []
    for i, tree in enumerate(trees):
        cmd += ["-drive", f"file={tree_image(tree)},if=none,id=tree{i},format=raw,readonly=on",
                "-device", f"virtio-blk-pci,drive=tree{i},serial=tree{i}"]
        lines.append(f"tree{i} {tree}\n")
    (state / "trees").write_text("".join(lines))
    return cmd


def run(argv: list[str], *, cwd: str | os.PathLike[str] = ".", env: dict[str, str] | None = None,
        mem: str = "2G", cpus: int = 2, timeout: float = 3600, accel: str = "tcg",
        console: int | None = None) -> int:
    """Boot the guest, run ``argv`` as root in ``cwd``; its exit code (125: it never ran).

    The console goes to ``console`` (a file descriptor; stdout by default). No QEMU process is
    left when this returns.
    """
    kernel = ensure_kernel()
    cwd = Path(cwd).resolve()
    state = Path(tempfile.mkdtemp(prefix="distem-qemu-"))
    try:
        (state / "stage2.sh").write_text(stage2_script(GUEST_MODULES))
        (state / "job.sh").write_text(job_script(argv, cwd, dict(os.environ if env is None else env), "qemu"))
        cmd = command(kernel, state, cwd, mem=mem, cpus=cpus, accel=accel, trees=python_trees(cwd))
        return boot(cmd, state, timeout=timeout, console=console)
    finally:
        shutil.rmtree(state, ignore_errors=True)
