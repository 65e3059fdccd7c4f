"""``distem bootstrap``: make pnodes ready for platforms, over SSH, all at once (Distem's distem-bootstrap).

Each pnode, in parallel: the Debian packages the agent and its tools need, the agent's Python
modules (a virtualenv under the state directory unless the pnode's python has them), optionally a
btrfs filesystem for copy-on-write vnodes (``btrfs_format``), then the images asked for, sent into
its image cache. Every step checks first: a second run changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import execnet
import pandas as pd
from tqdm.auto import tqdm

from ..agent import prepare
from ..errors import AgentError
from ..model import PNode
from .pnodes import agent_python, as_pnodes, with_python
from .session import gateway_spec, open_gateway

log = logging.getLogger(__name__)
PACKAGES = ("lxc", "lxc-dev", "iproute2", "iptables", "busybox-static", "fping", "iperf3", "btrfs-progs",
            "debootstrap", "libnetfilter-queue-dev", "python3-venv", "python3-dev", "gcc", "pkg-config")
MODULES = {"pyroute2": "pyroute2>=0.9", "lxc": "lxc>=3.0.4", "netfilterqueue": "NetfilterQueue>=1.1"}
STEPS = ("packages", "python", "btrfs")


def _prepare(pnode: PNode, btrfs_format: str | None, bar: Any, timeout: float) -> dict[str, str]:
    """Run ``agent/prepare.py`` with the pnode's system python3 (the agent's may not exist yet)."""
    python = execnet.XSpec(gateway_spec(pnode)).python or "python3"
    gateway = open_gateway(replace(pnode, spec=with_python(pnode.spec, "python3")))
    try:
        channel = gateway.remote_exec(prepare)
        channel.send({"python": python, "packages": list(PACKAGES), "modules": MODULES,
                      "venv": agent_python(pnode.state_dir).rsplit("/bin/", 1)[0], "btrfs_device": btrfs_format,
                      "btrfs_mount": f"{pnode.state_dir}/btrfs"})
        while True:
            message = channel.receive(timeout)
            if message[0] == "step":
                bar.set_postfix_str(f"{message[1]}: {message[2]}"[:60])
                bar.update()
            elif message[0] == "error":
                raise AgentError(pnode.name, "bootstrap", message[1])
            else:
                return message[1]
    finally:
        gateway.exit()


def bootstrap(pnodes: Iterable[PNode | str], *, state_dir: str = "/var/lib/distem", ssh_config: str | None = None,
              debian_version: str | None = None, images: Iterable[str] = (), btrfs_format: str | None = None,
              progress: bool | None = None, timeout: float = 1800) -> pd.DataFrame:
    """Prepare every pnode (host names, execnet specs or PNode values, as ``Platform`` takes them).

    Args:
        debian_version: also build a Debian image of this version (debootstrap, here) and send it.
        images: image tarballs (paths here) to put into every pnode's image cache.
        btrfs_format: a whole device on each pnode to hold a btrfs filesystem (formatted only if it
            holds none), mounted at ``<state_dir>/btrfs``: give that to ``Platform(btrfs=...)``.

    Returns:
        One row per pnode: what each step found or did, and the seconds it took.

    Raises:
        ValidationError: bad pnode specs, before anything is done. AgentError: naming the pnode and step.
    """
    nodes = as_pnodes(pnodes, state_dir, None, ssh_config)
    started = time.perf_counter()
    bars = {p.name: tqdm(total=len(STEPS), desc=p.name, position=i, unit="step", leave=False,
                         disable=None if progress is None else not progress) for i, p in enumerate(nodes)}
    try:
        with ThreadPoolExecutor(len(nodes)) as pool:
            futures = {p.name: pool.submit(_prepare, p, btrfs_format, bars[p.name], timeout) for p in nodes}
        rows = {}
        for name, future in futures.items():
            rows[name] = future.result()  # the first failure, named, once every pnode has finished
    finally:
        for bar in bars.values():
            bar.close()
    wanted = list(images)
    if debian_version:
        from .. import images as image_builders

        wanted.append(image_builders.debian(debian_version))
    sent: dict[str, list[str]] = {}
    if wanted:
        from .platform import Platform

        with Platform(nodes, progress=progress) as platform:  # the image cache outlives the platform
            sent = platform.install_images(wanted)
    seconds = round(time.perf_counter() - started, 1)
    for name, row in rows.items():
        row["images"] = (f"sent {len(sent[name])} of {len(wanted)}" if sent.get(name) else "present") if wanted \
            else "not asked"
    return pd.DataFrame([{"pnode": n, **r, "seconds": seconds} for n, r in rows.items()]).set_index("pnode")
