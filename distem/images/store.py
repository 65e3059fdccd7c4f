"""Where images live: the cache directory, tarballs written whole or not at all, a failed build's log."""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import DistemError, ValidationError


class ImageError(DistemError):
    """An image could not be built.

    ``log``: the failed build's whole log, kept in the cache until the next try of that image;
    ``packages``: the packages debootstrap or apt named as the cause (empty when it named none).
    """

    def __init__(self, message: str, *, log: Path | None = None, packages: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.log, self.packages = log, tuple(packages)


def cache_path(override: str | os.PathLike[str] | None = None) -> Path:
    """``override``, else ``$DISTEM_CACHE/images``, else ``~/.cache/distem/images``; made if missing."""
    if override is not None:
        path = Path(override)
    elif os.environ.get("DISTEM_CACHE"):
        path = Path(os.environ["DISTEM_CACHE"]) / "images"
    else:
        path = Path.home() / ".cache" / "distem" / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_output(target: Path) -> Iterator[BinaryIO]:
    """A file to write ``target`` through: it appears under its name only once whole."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o644)
        os.rename(tmp, target)  # two builders at once: the last rename wins, both wrote the same image
    except BaseException:
        os.unlink(tmp)
        raise


def tar_entry(name: str, kind: bytes, mode: int, **extra: object) -> tarfile.TarInfo:
    """A tarball member owned by root, dated 0 (so that the same content makes the same bytes)."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = kind, mode, 0, 0, 0, "root", "root"
    for key, value in extra.items():
        setattr(info, key, value)
    return info


def failed_log(target: Path) -> Path:
    """Where the last failed build of ``target`` left its log (removed when the next try starts)."""
    return target.with_name(target.name.removesuffix(".tar.gz") + ".failed.log")


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


def pack(root: Path, target: Path) -> None:
    """Make ``target`` a gzipped tarball of the tree at ``root``, owners kept as numbers.

    Raises:
        ImageError: tar failed.
    """
    with atomic_output(target) as f:
        proc = subprocess.run(["tar", "--numeric-owner", "-cz", "-C", str(root), "."], stdout=f,
                              stderr=subprocess.PIPE, text=True)
        if proc.returncode:
            raise ImageError(f"tar of {root} failed ({proc.returncode}): {proc.stderr.strip()}")
