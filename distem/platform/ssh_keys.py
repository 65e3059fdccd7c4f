"""The platform's own ssh keys, made once per platform with ssh-keygen: root's key pair in every vnode
(where the vnode has no ``ssh_key`` of its own) and one host key every vnode presents, trusted by all,
so that ``ssh <peer> cmd`` works between vnodes by name, with no prompt (see ``plan.deploy.ssh_files``)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..model import SSHKey, SSHKeys

log = logging.getLogger(__name__)


def platform_keys(platform_id: str) -> SSHKeys | None:
    """Fresh ed25519 keys; None (and a warning) where ssh-keygen is missing: vnodes then get none."""
    if shutil.which("ssh-keygen") is None:
        log.warning("no ssh-keygen on this machine: vnodes get no ssh keys (apt-get install openssh-client)")
        return None
    keys = {}
    with tempfile.TemporaryDirectory(prefix="distem-keys-") as directory:
        for role in ("user", "host"):
            path = Path(directory) / role
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"distem-{platform_id}-{role}",
                            "-f", str(path)], check=True, capture_output=True)
            keys[role] = SSHKey(public=path.with_suffix(".pub").read_text().strip(), private=path.read_text())
    return SSHKeys(user=keys["user"], host=keys["host"])
