"""Root filesystem images for vnodes: tarballs built locally and cached by content.

    busybox()                         a ~1 MB rootfs from the host's static busybox; no network needed
    debian("bookworm", packages=[..]) a Debian minbase rootfs built with debootstrap (Distem's --debian-version):
                                      systemd, openssh-server, iproute2, python3..., and the packages given
    layer(image, packages=[..], files={..})
                                      an image with packages installed (Debian-based: apt in a chroot) or
                                      files added (any image), without a new debootstrap
    resolve(path)                     any tarball path or file:// URL, as Distem accepts

Images are cached under ``$DISTEM_CACHE/images`` (default ``~/.cache/distem/images``), named by a
hash of everything that went into them, and written atomically (temp file + rename). A failed
build leaves its log there (``<image>.failed.log``) until that image is tried again. Builds show
a progress bar on a terminal or in a notebook (``progress=True/False`` to decide).
"""

from .base import DEFAULT_DEBIAN_PACKAGES, DebianRecipe, busybox, debian, debian_recipe
from .layers import layer
from .store import ImageError, resolve

__all__ = ["busybox", "debian", "layer", "resolve", "ImageError", "DEFAULT_DEBIAN_PACKAGES", "DebianRecipe",
           "debian_recipe"]
