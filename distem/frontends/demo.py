"""``make demo`` / ``distem demo``: a small platform on this machine, exercised, measured, removed."""

from __future__ import annotations

import time

import pandas as pd

from .. import images
from ..platform import Platform


def run(vnodes: int = 4, state_dir: str = "/var/lib/distem") -> None:
    image = images.busybox()
    started = time.monotonic()
    with Platform(state_dir=state_dir) as p:
        p.vnetwork("vnet", "10.144.0.0/24")
        for i in range(vnodes):
            p.vnode(f"node{i}").image(image).iface("if0", "vnet")
        p.deploy()
        print(f"platform {p.id}: {vnodes} vnodes deployed and started in {time.monotonic() - started:.2f} s\n")
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            print(p.vnodes, end="\n\n")
            print("uname -n, run in every vnode:")
            print(p.execute("uname -n")["stdout"].str.strip().to_frame(), end="\n\n")
            print("median RTT (ms) measured with fping from each vnode's network namespace:")
            print(p.measure_latencies(count=5).round(3), end="\n\n")
    print(f"cleaned up; total {time.monotonic() - started:.2f} s")
