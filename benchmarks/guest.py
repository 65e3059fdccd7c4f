"""What every fidelity benchmark shares: measure on this kernel, again inside the user-mode Linux
guest kernel (netem, cgroup v2), and write one table to benchmarks/results/NAME.md and .csv."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"

Measure = Callable[[str], list[dict]]  # part ("host" or "guest") -> rows


def host_and_guest(script: str, name: str, title: str, measure: Measure, host: bool = True) -> None:
    """The benchmark's main: the host part here (unless not ``host``: it needs what this kernel
    lacks), the guest part by running ``script`` in the guest."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--part", choices=["host", "guest"], help=argparse.SUPPRESS)  # the guest runs one part
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        pd.DataFrame(measure(args.part)).to_csv(args.out, index=False)
        return
    from distem.testing import guest

    RESULTS.mkdir(exist_ok=True)
    guest_csv = RESULTS / f"{name}-guest.csv.tmp"
    rows = measure("host") if host else []
    rc = guest.run([sys.executable, script, "--part", "guest", "--out", str(guest_csv)], cwd=Path.cwd())
    if rc != 0:
        raise SystemExit(f"the guest part failed with exit code {rc}")
    table = pd.concat([pd.DataFrame(rows), pd.read_csv(guest_csv)], ignore_index=True)
    guest_csv.unlink()
    table.to_csv(RESULTS / f"{name}.csv", index=False)
    (RESULTS / f"{name}.md").write_text(f"# {title} ({os.uname().nodename})\n\n" + table.to_markdown(index=False) + "\n")
    print(table.to_string(index=False))
