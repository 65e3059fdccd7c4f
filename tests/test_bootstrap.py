"""``distem bootstrap`` on local_cluster pnodes, over real ssh: twice in a row, the second changing nothing."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace

import pytest

import distem
from distem.frontends import cli
from distem.platform.bootstrap import bootstrap

pytestmark = pytest.mark.root




def test_the_command_succeeds_twice_on_every_pnode(cluster, capsys):
    for _ in range(2):
        for pnode in cluster:
            assert cli.main(["bootstrap", "--pnode", pnode.spec, "--state-dir", pnode.state_dir]) == 0
            out = capsys.readouterr().out
            address = pnode.spec.split("@", 1)[1].split("//")[0]
            assert address in out and out.count("present") == 2  # this machine has the packages and the venv


def test_images_and_btrfs_are_prepared_once(cluster, busybox, tmp_path):
    backing = tmp_path / "btrfs.img"
    backing.write_bytes(b"")
    os.truncate(backing, 256 * 2**20)
    device = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True,
                            check=True).stdout.strip()
    first = cluster[0]
    try:
        done = [bootstrap([first], images=[busybox], btrfs_format=device, progress=False) for _ in range(2)]
        assert done[0].loc[first.name, "btrfs"].startswith("formatted")
        assert done[1].loc[first.name, "btrfs"].startswith("present")
        assert list(done[1].loc[first.name, ["packages", "python", "images"]]) == ["present"] * 3
        mountpoint = f"{first.state_dir}/btrfs"
        assert cluster.run(first, ["findmnt", "-n", "-o", "FSTYPE", mountpoint]).stdout.strip() == "btrfs"
        # A platform uses it for copy-on-write vnodes.
        with distem.Platform([replace(first, btrfs=mountpoint)], progress=False) as p:
            p.vnetwork("vnet", "10.144.0.0/24")
            p.vnode("snap").image(busybox, cow="btrfs").iface("if0", "vnet")
            p.deploy()
            assert p.check("snap", "echo ok").strip() == "ok"
    finally:
        cluster.run(first, ["umount", f"{first.state_dir}/btrfs"])
        subprocess.run(["losetup", "-d", device], check=True)


def test_an_unknown_device_is_named(cluster):
    with pytest.raises(distem.AgentError, match="btrfs: no device /dev/nothing-here"):
        bootstrap([cluster[1]], btrfs_format="/dev/nothing-here", progress=False)
