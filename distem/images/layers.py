"""Images made from another: files added to any image, Debian packages installed with apt in a chroot.

Files are added by copying the base tarball member by member, never extracting it: no root needed, no
path of the image can lead outside it, and a files-only layer takes seconds even on a Debian image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..errors import ValidationError
from .builds import APT_STEPS, check_packages, keep_failure, run_build
from .store import ImageError, atomic_output, cache_path, failed_log, pack, resolve, tar_entry

log = logging.getLogger(__name__)

FileSource = str | bytes | os.PathLike[str]
_LAYER_RECIPE = "1"  # bump when what layer() does changes, so caches rebuild
# Run by sh in the build's own mount and PID namespace: the mounts go when it ends, however it ends.
_APT_SCRIPT = r"""
root=$1; shift
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C
mkdir -p "$root/proc" "$root/dev"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755,size=1m tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    [ -e "/dev/$node" ] || continue
    touch "$root/dev/$node" && mount --bind "/dev/$node" "$root/dev/$node"
done
ln -s /proc/self/fd "$root/dev/fd"
chroot "$root" apt-get -o Acquire::Languages=none update  # no translations: 30 MB
chroot "$root" apt-get install -y --no-install-recommends "$@"
chroot "$root" apt-get clean
"""
_NO_SERVICES = b"#!/bin/sh\n# distem: no service starts while a layer installs packages\nexit 101\n"


def layer(base: str | os.PathLike[str], *, packages: Sequence[str] = (),
          files: Mapping[str, FileSource] | None = None, cache_dir: str | os.PathLike[str] | None = None,
          progress: bool | None = None) -> Path:
    """A new image: ``base`` with Debian packages installed and files added, without a new debootstrap.

    Example::

        image = distem.images.layer(distem.images.debian(), packages=["iperf3"],
                                    files={"/etc/motd": "an iperf3 vnode\\n", "/usr/local/bin/run": Path("run.sh")})

    Args:
        base: an image tarball (path or file:// URL), e.g. from ``busybox()``, ``debian()`` or ``layer()``.
        packages: installed with ``apt-get install --no-install-recommends`` in a chroot of the extracted
            base (needs a Debian-based image with apt, root and the mirror). No service starts meanwhile.
        files: absolute paths in the image, each with its content: text (``str``, written as UTF-8),
            ``bytes``, or a ``pathlib.Path`` to a local file (its mode kept); others get mode 0644. They replace
            what the image had at that path (a symbolic link included). Any image, no root or network needed.
        progress: a progress bar from apt's output; None shows it on a terminal or in a notebook only.

    Returns:
        The cached tarball's path, named by a hash of the base's content, the packages and the files' contents
        and modes: a second call returns at once. With neither packages nor files, ``base`` itself.

    Raises:
        ValidationError: a bad argument; packages for an image without apt.
        ImageError: apt failed: the message shows the lines that say why and names the packages apt blames;
            ``.log`` is the whole log, kept in the cache until this layer is tried again.
    """
    base_path = resolve(base)
    wanted_packages = check_packages("packages", packages)
    wanted_files = read_files(files or {})
    if not wanted_packages and not wanted_files:
        return base_path
    with open(base_path, "rb") as f:
        base_sha = hashlib.file_digest(f, "sha256").hexdigest()
    target = cache_path(cache_dir) / f"{_stem(base_path)}+{layer_key(base_sha, wanted_packages, wanted_files)}.tar.gz"
    if target.exists():
        return target
    failed_log(target).unlink(missing_ok=True)  # a new try: the last one's log no longer says what happens
    if wanted_packages:
        _install(base_path, wanted_packages, wanted_files, target, progress)
    else:
        add_files(base_path, wanted_files, target)
    log.info("built %s (%d bytes)", target, target.stat().st_size)
    return target


def read_files(files: Mapping[str, FileSource]) -> dict[str, tuple[bytes, int]]:
    """Each file's path in the image (relative: ``etc/motd``), content and mode, checked.

    Raises:
        ValidationError: a path not absolute or leaving the image, two paths for one file, a content of
            another type, a local path that is not a file.
    """
    if not isinstance(files, Mapping):
        raise ValidationError("files", files, "a dict of absolute paths in the image to contents, "
                                              "e.g. {'/etc/motd': 'hello\\n'}")
    read: dict[str, tuple[bytes, int]] = {}
    for dest, content in files.items():
        path = PurePosixPath(dest) if isinstance(dest, str) else None
        if path is None or not path.is_absolute() or ".." in path.parts or path == PurePosixPath("/"):
            raise ValidationError("files", dest, "an absolute path of a file inside the image, e.g. '/etc/motd'")
        name = str(path.relative_to("/"))
        if name in read:
            raise ValidationError("files", dest, f"names the same file as another path ({name!r})")
        read[name] = _content(dest, content)
    return read


def _content(dest: str, content: FileSource) -> tuple[bytes, int]:
    if isinstance(content, str):
        return content.encode(), 0o644
    if isinstance(content, bytes):
        return content, 0o644
    if isinstance(content, os.PathLike) and os.path.isfile(content):
        return Path(content).read_bytes(), os.stat(content).st_mode & 0o7777
    raise ValidationError(f"files[{dest!r}]", content, "text (str), bytes, or a pathlib.Path to an existing "
                                                       "local file (a str is taken as the text itself)")


def layer_key(base_sha: str, packages: Sequence[str], files: Mapping[str, tuple[bytes, int]]) -> str:
    """A layer's cache key: its base's content, its packages (in any order), its files' contents and modes."""
    written = sorted((name, hashlib.sha256(data).hexdigest(), mode) for name, (data, mode) in files.items())
    return hashlib.sha256(repr((_LAYER_RECIPE, base_sha, sorted(packages), written)).encode()).hexdigest()[:16]


def _stem(base: Path) -> str:
    """The base's name without its suffix or its own layers' keys: layers of layers keep short names."""
    name = base.name
    for suffix in (".tar.gz", ".tgz", ".tar.xz", ".tar"):
        name = name.removesuffix(suffix)
    return name.split("+")[0]


def add_files(base: Path, files: Mapping[str, tuple[bytes, int]], target: Path) -> None:
    """Write ``target``: the tarball ``base`` with ``files`` (see ``read_files``) in place of what it had there,
    and the directories they need; reproducible (same inputs, same bytes).

    Raises:
        ValidationError: a file's path is a directory in the image.
    """
    with tarfile.open(base, "r|*") as source, atomic_output(target) as out, \
            gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as sink:
        present, dotted = _copy_all_but(source, sink, files)
        prefix = "./" if dotted else ""  # as the base names its members: GNU tar -C root . writes ./etc/...
        for directory in sorted({str(p) for name in files for p in PurePosixPath(name).parents} - present - {"."}):
            sink.addfile(tar_entry(prefix + directory, tarfile.DIRTYPE, 0o755))
        for name, (data, mode) in sorted(files.items()):
            sink.addfile(tar_entry(prefix + name, tarfile.REGTYPE, mode, size=len(data)), io.BytesIO(data))


def _copy_all_but(source: tarfile.TarFile, sink: tarfile.TarFile, files: Mapping[str, object]) -> tuple[set[str], bool]:
    """Copy the members of ``source`` but those at the paths of ``files``; the names copied, and whether
    they start with ``./``. A hard link to a replaced file gets its old content (it is another path)."""
    present: set[str] = set()
    dotted = False
    replaced: dict[str, bytes] = {}  # the old content of replaced files, for hard links to them
    moved: dict[str, str] = {}  # replaced file -> the first link to it, which now holds that content
    for member in source:
        name = member.name.removeprefix("./").rstrip("/")
        dotted = dotted or member.name.startswith("./")
        if name in files:
            if member.isdir():
                raise ValidationError("files", f"/{name}", "a directory in the image; give a file's path")
            if member.isreg():
                replaced[name] = source.extractfile(member).read()  # type: ignore[union-attr]
            continue
        present.add(name)
        data = source.extractfile(member) if member.isreg() else None
        if member.islnk():
            linked = member.linkname.removeprefix("./")
            if linked in moved:
                member.linkname = member.linkname.replace(linked, moved[linked])
            elif linked in replaced:
                member.type, member.linkname, member.size = tarfile.REGTYPE, "", len(replaced[linked])
                data, moved[linked] = io.BytesIO(replaced[linked]), name
        elif member.issparse():
            member.type = tarfile.REGTYPE  # written whole: extractfile() gives the data expanded
        sink.addfile(member, data)
    return present, dotted


def _install(base: Path, packages: Sequence[str], files: Mapping[str, tuple[bytes, int]], target: Path,
             progress: bool | None) -> None:
    """Extract ``base``, install ``packages`` with apt in a chroot of it, add ``files``, pack it as ``target``."""
    with tempfile.TemporaryDirectory(prefix="distem-layer-", dir=target.parent) as work:
        root, output = Path(work) / "rootfs", Path(work) / "output.log"
        root.mkdir()
        _run(["tar", "--numeric-owner", "-xpf", str(base), "-C", str(root)], f"extracting {base}")
        if not (root / "usr" / "bin" / "apt-get").exists() or not (root / "etc" / "debian_version").exists():
            raise ValidationError("packages", list(packages), f"installing packages needs a Debian-based image "
                                  f"with apt-get; {base.name} has none (files= works on any image)")
        what = f"apt-get install {' '.join(packages)} in {base.name}"
        host_dns = Path("/etc/resolv.conf").read_bytes() if Path("/etc/resolv.conf").exists() else b""
        with _replaced(root / "usr" / "sbin" / "policy-rc.d", _NO_SERVICES, 0o755), \
                _replaced(root / "etc" / "resolv.conf", host_dns, 0o644):
            status = run_build(["sh", "-euc", _APT_SCRIPT, "sh", str(root), *packages], APT_STEPS,
                               f"layer on {_stem(base)}", output, progress)
        if status:
            raise keep_failure(what, status, output, None, failed_log(target))
        if not files:
            pack(root, target)
            return
        packed = Path(work) / "packed.tar"  # uncompressed: the files are added as it is compressed, once
        _run(["tar", "--numeric-owner", "-cf", str(packed), "-C", str(root), "."], f"packing {root}")
        add_files(packed, files, target)


@contextmanager
def _replaced(path: Path, data: bytes, mode: int) -> Iterator[None]:
    """``path`` holds ``data`` meanwhile, then again what it held (a file, a link, or nothing)."""
    saved = path.with_name(f".{path.name}.distem-saved")
    existed = path.is_symlink() or path.exists()
    if existed:
        os.rename(path, saved)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        if existed:
            os.rename(saved, path)


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise ImageError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()}")
