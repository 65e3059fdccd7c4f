"""``distem clean`` after the controlling process was killed with -9, and what it must not touch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lxc
import pytest

from distem.agent.containers import forget_lock, lock_dir

from .conftest import platform_leftovers

pytestmark = pytest.mark.root

DEPLOY_TEN = textwrap.dedent("""
    import sys, distem
    p = distem.Platform(state_dir=sys.argv[1], progress=False)
    print(p.id, flush=True)
    p.vnetwork_create("vnet", "10.144.0.0/24")
    for i in range(10):
        p.vnode_create(f"k{i}", {"vfilesystem": {"image": sys.argv[2], "shared": False},
                                 "vifaces": [{"name": "if0", "vnetwork": "vnet"}]})
        p.vnode_start(f"k{i}")
        print(i, flush=True)
    input()  # never reached in the test: the process is killed first
""")


def _rmdir_when_empty(path: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.rmdir(path)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # LXC's monitor may still be leaving


@pytest.fixture
def foreign(tmp_path, busybox):
    """A running container, a link and a cgroup made outside the library, named like ours."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    subprocess.run(["tar", "-xzf", busybox, "-C", str(rootfs)], check=True)
    lxcpath = tmp_path / "lxc"
    (lxcpath / "foreign").mkdir(parents=True)
    (lxcpath / "foreign" / "config").write_text(
        f"lxc.uts.name = foreign\nlxc.rootfs.path = dir:{rootfs}\nlxc.mount.auto = proc:mixed sys:ro\n"
        "lxc.autodev = 1\nlxc.net.0.type = empty\nlxc.cgroup.dir = distem-foreign\nlxc.init.cmd = /sbin/init\n")
    container = lxc.Container("foreign", str(lxcpath))
    subprocess.run(["ip", "link", "add", "dforeignb0", "type", "bridge"], check=True)
    cgroup = Path("/sys/fs/cgroup/pids/distem-foreign-extra")
    cgroup.mkdir()
    # lxc-start, not the bindings: LXC moves whoever starts a container into its monitor cgroup.
    subprocess.run(["lxc-start", "-n", "foreign", "-P", str(lxcpath)], check=True)
    try:
        yield container, cgroup
    finally:
        subprocess.run(["lxc-stop", "-k", "-n", "foreign", "-P", str(lxcpath)], check=False)
        # Its monitor may still make the lock directory as it exits: three runs here left it (empty).
        deadline = time.monotonic() + 5
        forget_lock("foreign", str(lxcpath))
        while os.path.exists(lock_dir(str(lxcpath))) and time.monotonic() < deadline:
            time.sleep(0.1)
            forget_lock("foreign", str(lxcpath))
        subprocess.run(["ip", "link", "del", "dforeignb0"], check=False)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            for top in hierarchy.glob("distem-foreign*"):
                for leftover in sorted((d for d, _, _ in os.walk(top)), key=lambda p: -p.count("/")):
                    _rmdir_when_empty(leftover)


def test_clean_after_kill_9_mid_deploy_leaves_nothing_and_spares_the_rest(state_dir, busybox, foreign):
    container, cgroup = foreign
    controller = subprocess.Popen([sys.executable, "-c", DEPLOY_TEN, state_dir, busybox],
                                  stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    platform_id = controller.stdout.readline().strip()
    for _ in range(5):  # let five of the ten vnodes come up, then kill in the middle
        controller.stdout.readline()
    os.kill(controller.pid, signal.SIGKILL)
    controller.wait()
    assert platform_leftovers(platform_id, state_dir), "the kill must leave a platform to clean"

    out = subprocess.run([sys.executable, "-m", "distem.frontends.cli", "clean", "--state-dir", state_dir],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"platform {platform_id}: removed" in out.stdout

    deadline = time.monotonic() + 5  # processes reaped asynchronously
    while platform_leftovers(platform_id, state_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert platform_leftovers(platform_id, state_dir) == []
    assert container.running, "a container the library did not create was stopped"
    assert Path("/sys/class/net/dforeignb0").exists()
    assert cgroup.is_dir()


def test_clean_with_nothing_recorded_says_so(tmp_path):
    out = subprocess.run([sys.executable, "-m", "distem.frontends.cli", "clean", "--state-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert "no platform recorded" in out.stdout
