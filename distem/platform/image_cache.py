"""Image tarballs: each one's content hash (which names it in the pnodes' caches), sending it where missing."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable

from ..errors import ValidationError
from ..plan import PnodePaths
from .pool import PnodePool


class ImageCache:
    """Owns the content hashes of the tarballs seen, by (path, size, mtime)."""

    def __init__(self, pool: PnodePool, paths: dict[str, PnodePaths]) -> None:
        self.pool, self.paths = pool, paths
        self._shas: dict[tuple[str, int, int], str] = {}  # the whole sha256; names use its first 16 digits

    def sha(self, path: str) -> str:
        """Content hash of an image tarball, as the pnodes' caches name it (16 hex digits).

        Raises:
            ValidationError: no such file, or not a file."""
        return self.digest(path)[:16]

    def digest(self, path: str) -> str:
        """The image tarball's whole sha256 (a run's record keeps it). Raises as ``sha``."""
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise ValidationError("vfilesystem.image", path, f"{'no such file' if st is None else 'not a file'}; give "
                                  "an existing tarball (distem.images.busybox() builds one)")
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
        if key not in self._shas:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            self._shas[key] = digest.hexdigest()
        return self._shas[key]

    def install(self, images: Iterable[str], pnodes: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Put image tarballs (paths on this machine) into the pnodes' image caches, sending each to
        the pnodes that have it neither cached nor at the same path (remote pnodes, the first time).

        Returns:
            For each pnode, the tarballs sent to it.
        """
        shas = {self.sha(path): path for path in images}
        pnodes = list(pnodes if pnodes is not None else self.pool.sessions)
        wanted = {p: {sha: [self.paths[p].image(sha), path] for sha, path in shas.items()} for p in pnodes}
        missing = self.pool.on_all({p: ("images_missing", {"images": wanted[p]}) for p in pnodes})
        for sha in {sha for found in missing.values() for sha in found}:
            with open(shas[sha], "rb") as f:
                data = f.read()
            self.pool.on_all({p: ("image_receive", {"target": wanted[p][sha][0], "data": data})
                              for p, found in missing.items() if sha in found}, f"Sending image {sha}", len(missing))
        return {p: [shas[sha] for sha in found] for p, found in missing.items()}
