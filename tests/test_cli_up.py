"""``distem up`` / ``record`` / ``down`` / ``diff`` as a user runs them, then ``Platform.from_record`` on
the record: the same platform again, the two records differing in times and ids only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import distem

from .conftest import platform_leftovers

pytestmark = pytest.mark.root

PLATFORM = """\
vnetworks:
  - {{name: lan, address: 10.152.0.0/24}}
vnodes:
  a: {{vfilesystem: {{image: {image}}}, vifaces: [{{name: if0, vnetwork: lan, output: {{bandwidth: 20mbps}}}}]}}
  b: {{vfilesystem: {{image: {image}}}, vifaces: [{{name: if0, vnetwork: lan}}], vcpu: {{corenb: 1, val: 0.5, unit: ratio}}}}
latencies: {{a: {{b: 15}}}}
"""


def distem_cli(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "distem.frontends.cli", *args], capture_output=True, text=True,
                          env=env, timeout=180, **kwargs)


def shaped(platform_id: str) -> str:
    """Every htb class the platform's links hold here, as tc prints them."""
    links = [n for n in os.listdir("/sys/class/net") if n.startswith(f"d{platform_id}")]
    return "\n".join(subprocess.run(["tc", "class", "show", "dev", n], capture_output=True, text=True).stdout
                     for n in links)


def test_up_record_down_then_from_record(tmp_path, busybox, state_dir):
    env = {**os.environ, "DISTEM_RECORDS": str(tmp_path / "records")}
    path = tmp_path / "platform.yml"
    path.write_text(PLATFORM.format(image=busybox))
    up = subprocess.Popen([sys.executable, "-m", "distem.frontends.cli", "up", str(path), "--state-dir", state_dir],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = up.stdout.readline()
        assert " is up: 2 vnodes (2 running)" in line, line + up.stderr.read()
        platform_id = line.split()[1]
        status = distem_cli("status", "--state-dir", state_dir, env=env).stdout
        assert f"up: platform {platform_id} from {path}" in status and "2 vnodes (a, b)" in status, status
        assert "rate 20Mbit" in shaped(platform_id)
        assert distem_cli("clean", "--state-dir", state_dir, env=env).returncode == 0  # in use: kept
        assert "rate 20Mbit" in shaped(platform_id)

        one = tmp_path / "one"
        assert distem_cli("record", platform_id, str(one), env=env).returncode == 0
        record = json.loads((one / "record.json").read_text())
        assert record["platform"] == platform_id and record["source"].startswith("pytest tests/test_cli_up.py")
        down = distem_cli("down", platform_id, env=env)
        assert down.returncode == 0 and f"platform {platform_id} is down" in down.stdout, down.stdout + down.stderr
        assert up.wait(30) == 0
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(60)
    assert platform_leftovers(platform_id, state_dir) == []

    with distem.Platform.from_record(one, state_dir=state_dir) as p:
        doc = json.loads((one / "platform.json").read_text())
        assert p.vplatform_info()["vnodes"] == doc["vnodes"]  # names, addresses, limits, status
        assert p.vifaces.loc[("a", "if0"), "address"] == "10.152.0.1/24" and p.latencies.loc["a", "b"] == 15
        assert "rate 20Mbit" in shaped(p.id)
        two = p.record(tmp_path / "two")
    compared = distem_cli("diff", str(one), str(two), env=env)
    assert compared.returncode == 0 and compared.stdout.startswith("0 differences"), compared.stdout
