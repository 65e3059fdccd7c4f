"""The guest-kernel harness, on each backend forced in turn: exit codes come back, the guest has what the
guest tests need (sch_netem, cgroup v2 with memcg, a writable working directory), nothing is left running."""

from __future__ import annotations

import subprocess
import sys

import pytest

from distem.testing import guest, qemu, uml
from distem.testing.guestboot import GuestError

IN_GUEST = ("grep -q sch_netem /proc/modules && grep -qw memory /sys/fs/cgroup/cgroup.subtree_control "
            "&& [ \"$DISTEM_IN_GUEST\" = {kind} ] && [ \"$(stat -f -c %T /tmp)\" = tmpfs ] "
            "&& echo written > written && exit 7; exit 1")


def _unavailable(kind: str) -> str:
    """Why ``kind`` cannot run here ('' when it can), as the harness's own probe says."""
    if kind == "uml" and uml.find_kernel() is None:
        return "needs Debian's user-mode-linux package (make setup)"
    if kind == "qemu" and qemu.find_kernel() is None:
        return "needs Debian's kernel for QEMU (python -m distem.testing.guest setup)"
    reason = guest.verdicts(every=True).get(kind, "")
    return f"{kind} does not run on this host: {reason}" if reason else ""


@pytest.fixture(params=["uml", "qemu"])
def kind(request) -> str:
    reason = _unavailable(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.mark.root
def test_the_guest_returns_the_exit_code_and_has_netem_cgroup_v2_and_the_working_directory(kind, tmp_path):
    script = IN_GUEST.format(kind=kind)
    assert guest.run(["/bin/sh", "-c", script], kernel=kind, cwd=tmp_path, mem="512M", timeout=300) == 7
    assert (tmp_path / "written").read_text() == "written\n"
    for process in ("linux.uml", "qemu-system"):
        assert subprocess.run(["pgrep", "-f", process], capture_output=True, text=True).stdout == ""


@pytest.mark.root
def test_the_command_line_passes_the_command_after_dashes(kind, tmp_path):
    out = subprocess.run([sys.executable, "-m", "distem.testing.guest", "run", "--kernel", kind, "--mem", "512M",
                          "--", "/bin/sh", "-c", "exit 3"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 3


def test_an_unknown_kernel_is_refused_naming_the_choices():
    with pytest.raises(GuestError, match=r"kernel: 'vmware' is not one of auto, uml, qemu-kvm, qemu"):
        guest.choose("vmware")


def test_a_missing_qemu_says_which_package_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(qemu, "CACHE", tmp_path / "empty")
    monkeypatch.setattr(qemu, "QEMU", "qemu-system-none")
    with pytest.raises(GuestError, match="qemu-system-none is missing; as root: apt-get install qemu-system-x86"):
        qemu.ensure_kernel()


def test_the_initramfs_archive_is_newc_with_aligned_entries():
    import gzip

    raw = gzip.decompress(qemu._newc([("init", 0o100755, b"abc"), ("d", 0o40755, b"")]))
    assert raw.startswith(b"070701") and raw.rstrip(b"\0").endswith(b"TRAILER!!!")
    second = raw.index(b"070701", 6)
    assert second % 4 == 0 and raw[110:115] == b"init\0"


def test_where_no_guest_kernel_runs_the_guest_tests_skip_naming_each_backends_reason(tmp_path):
    import json
    import os

    refused = {"uml": "userspace - ptrace set fp regs failed, errno = 14", "qemu-kvm": "no usable /dev/kvm",
               "qemu": "qemu-system-x86_64 is missing"}
    (tmp_path / "verdict.json").write_text(json.dumps({"key": guest._cache_key(), "verdicts": refused}))
    env = {**os.environ, "DISTEM_GUEST_CACHE": str(tmp_path)}
    env.pop("DISTEM_GUEST", None)
    out = subprocess.run([sys.executable, "-m", "distem.testing.guest", "run", "--or-skip", "--",
                          sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "guest", "-rs",
                          "tests/test_matrix.py"], env=env, capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stdout + out.stderr
    skipped = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped and all(reason in line for line in skipped for reason in refused.values()), out.stdout


def test_python_trees_are_the_import_path_outermost_without_the_working_directory(tmp_path):
    trees = qemu.python_trees(tmp_path)
    assert trees and all(any(str(p).startswith(str(t)) for p in sys.path if p) for t in trees)
    assert not any(a != b and a.is_relative_to(b) for a in trees for b in trees)
    assert trees[0] not in qemu.python_trees(trees[0] / "sub")  # one holding the working directory stays on 9p


def test_a_script_s_folder_in_the_working_directory_stays_writable(tmp_path, monkeypatch):
    """``python benchmarks/x.py``: its folder is first on the path, and its results are written there."""
    script_dir = tmp_path / "benchmarks"
    script_dir.mkdir()
    monkeypatch.setattr(sys, "path", [str(script_dir), *sys.path])
    assert script_dir not in qemu.python_trees(tmp_path)
    assert script_dir in qemu.python_trees(tmp_path / "elsewhere")  # outside it, an import tree like any
