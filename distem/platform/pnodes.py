"""Which pnodes a platform runs on: PNode values from specs, host names and OAR node files.

    PNode(...)                 used as given
    "popen", "popen//..."      this machine (named "local" for plain "popen")
    "ssh=root@host//..."       an execnet spec, named by its host
    "host", "user@host"        a bare host name: ``ssh=root@host`` (or ``ssh=user@host``)

``ssh_config`` (a file) is added to every ssh spec that names none, and the Python of
``distem bootstrap``'s virtualenv (``<state_dir>/venv``) to every ssh spec that names no python.
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


def agent_python(state_dir: str) -> str:
    """The interpreter ``distem bootstrap`` prepares on a pnode (a virtualenv seeing the system's packages)."""
    return f"{state_dir}/venv/bin/python3"


def with_python(spec: str, python: str) -> str:
    """``spec`` running ``python`` instead of the python it names (if any)."""
    return "//".join([part for part in spec.split("//") if not part.startswith("python=")] + [f"python={python}"])


def _ssh_spec(spec: str, state_dir: str, ssh_config: str | None) -> str:
    if ssh_config is not None and "ssh_config=" not in spec:
        spec = f"{spec}//ssh_config={ssh_config}"
    return spec if "//python=" in spec else with_python(spec, agent_python(state_dir))


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
        return PNode(name=spec.ssh.rpartition("@")[2], spec=_ssh_spec(item, state_dir, ssh_config),
                     state_dir=state_dir, btrfs=btrfs)
    if not _HOST.match(item):
        raise ValidationError("pnode", item, "expected a host name such as 'node-1.site' or 'root@10.0.0.2'")
    login = item if "@" in item else f"root@{item}"
    return PNode(name=item.rpartition("@")[2], spec=_ssh_spec(f"ssh={login}", state_dir, ssh_config),
                 state_dir=state_dir, btrfs=btrfs)


def as_pnodes(items: Iterable[PNode | str], state_dir: str, btrfs: str | None,
              ssh_config: str | None = None) -> list[PNode]:
    """Raises ValidationError as ``as_pnode`` does, or for an ssh config file that does not exist."""
    if ssh_config is not None and not os.path.isfile(ssh_config):
        raise ValidationError("ssh_config", ssh_config, "no such file")
    return [as_pnode(item, state_dir, btrfs, ssh_config) for item in items]
