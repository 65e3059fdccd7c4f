"""The guest-kernel harness itself: exit codes come back, the guest has what the guest tests need."""

from __future__ import annotations

import subprocess
import sys

import pytest

from distem.testing import uml

pytestmark = [pytest.mark.root, pytest.mark.skipif(uml.find_kernel() is None,
                                                   reason="needs Debian's user-mode-linux package (make setup)")]


def test_the_guest_returns_the_exit_code_and_has_netem_and_cgroup_v2(tmp_path):
    script = ("grep -q sch_netem /proc/modules && grep -qw memory /sys/fs/cgroup/cgroup.subtree_control "
              "&& [ \"$DISTEM_UML_GUEST\" = 1 ] && [ \"$(stat -f -c %T /tmp)\" = tmpfs ] && exit 7; exit 1")
    assert uml.run(["/bin/sh", "-c", script], cwd=tmp_path, mem="256M", timeout=120) == 7
    leftover = subprocess.run(["pgrep", "-f", "linux.uml"], capture_output=True, text=True).stdout
    assert leftover == ""


def test_the_command_line_passes_the_command_after_dashes(tmp_path):
    out = subprocess.run([sys.executable, "-m", "distem.testing.uml", "run", "--mem", "256M", "--",
                          "/bin/sh", "-c", "exit 3"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 3
