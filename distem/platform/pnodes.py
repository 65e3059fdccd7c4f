"""Which pnodes a platform runs on: PNode values from specs, host names and OAR node files.

    PNode(...)                 used as given
    "popen", "popen//..."      this machine (named "local" for plain "popen")
    "ssh=root@host//..."       an execnet spec, named by its host
    "host", "user@host"        a bare host name: ``ssh=root@host`` (or ``ssh=user@host``)

``ssh_config`` (a file) is added to every ssh spec that names none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

import execnet

from ..errors import ValidationError
from ..model import PNode

_HOST = re.compile(r"^([A-Za-z0-9_.-]+@)?[A-Za-z0-9_.:-]+$")


def parse_nodefile(text: str) -> list[str]:
    """An OAR node file's hosts: one per line, repeated once per reserved core; duplicates collapse,
    the first occurrence's order is kept, blank lines are skipped."""
    hosts = [line.strip() for line in text.splitlines()]
    return list(dict.fromkeys(h for h in hosts if h))


def read_nodefile(path: str | None = None) -> list[str]:
    """The hosts of the node file at ``path`` ($OAR_NODEFILE by default).

    Raises:
        ValidationError: no path and no $OAR_NODEFILE, an unreadable file, or no host in it.
    """
    path = path or os.environ.get("OAR_NODEFILE")
    if not path:
        raise ValidationError("nodefile", path, "give a node file, or run inside an OAR job ($OAR_NODEFILE)")
    try:
        with open(path) as f:
            hosts = parse_nodefile(f.read())
    except OSError as exc:
        raise ValidationError("nodefile", path, f"cannot read it: {exc.strerror}") from None
    if not hosts:
        raise ValidationError("nodefile", path, "it lists no host")
    return hosts


def _with_ssh_config(spec: str, ssh_config: str | None) -> str:
    if ssh_config is None or "ssh_config=" in spec:
        return spec
    return f"{spec}//ssh_config={ssh_config}"


def as_pnode(item: PNode | str, state_dir: str, btrfs: str | None, ssh_config: str | None = None) -> PNode:
    """One pnode from a PNode, an execnet spec or a bare host name (see the module's docstring).

    Raises:
        ValidationError: neither a spec nor a host name.
    """
    if isinstance(item, PNode):
        return item
    if not isinstance(item, str) or not item.strip():
        raise ValidationError("pnode", item, "expected a PNode, an execnet spec ('ssh=root@host') or a host name")
    item = item.strip()
    if item == "popen" or item.startswith("popen//"):
        return PNode(name="local" if item == "popen" else item, spec=item, state_dir=state_dir, btrfs=btrfs)
    if "=" in item:
        spec = execnet.XSpec(item)
        if not spec.ssh:
            raise ValidationError("pnode", item, "this execnet spec is neither popen nor ssh")
        return PNode(name=spec.ssh.rpartition("@")[2], spec=_with_ssh_config(item, ssh_config), state_dir=state_dir,
                     btrfs=btrfs)
    if not _HOST.match(item):
        raise ValidationError("pnode", item, "expected a host name such as 'node-1.site' or 'root@10.0.0.2'")
    login = item if "@" in item else f"root@{item}"
    return PNode(name=item.rpartition("@")[2], spec=_with_ssh_config(f"ssh={login}", ssh_config),
                 state_dir=state_dir, btrfs=btrfs)


def as_pnodes(items: Iterable[PNode | str], state_dir: str, btrfs: str | None,
              ssh_config: str | None = None) -> list[PNode]:
    """Raises ValidationError as ``as_pnode`` does, or for an ssh config file that does not exist."""
    if ssh_config is not None and not os.path.isfile(ssh_config):
        raise ValidationError("ssh_config", ssh_config, "no such file")
    return [as_pnode(item, state_dir, btrfs, ssh_config) for item in items]
