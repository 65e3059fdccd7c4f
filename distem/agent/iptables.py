"""The iptables rules of the userspace delay line: argv lists only, never a shell.

A platform's rules live in its own chain of the filter table, jumped to from
FORWARD (which sees bridged IPv4 packets through br_netfilter); each rule and
the jump carry the comment ``distem:<platform id>``. One rule per shaped
viface direction sends the packets to the platform's NFQUEUE:

    -A distem-1a2b3c -m physdev --physdev-in  <host veth> -m comment --comment distem:1a2b3c
       -j NFQUEUE --queue-num N --queue-bypass          (the vnode's output)
    -A distem-1a2b3c -m physdev --physdev-out <host veth> ...                  (its input)

``--queue-bypass``: while no delay line listens (it crashed, or clean stopped
it first), packets pass undelayed instead of being dropped.
"""

from __future__ import annotations

import subprocess

TABLE = "filter"
PARENT = "FORWARD"
MATCH = {"output": "--physdev-in", "input": "--physdev-out"}
ABSENT = "Bad rule"  # what -D says of a rule, or a chain, that is not there


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["iptables", "-w", "10", *args], capture_output=True, text=True)
    if check and proc.returncode:
        raise OSError(f"iptables {' '.join(args[:4])} exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return proc


def rule_spec(direction: str, device: str, queue: int, comment: str) -> list[str]:
    """The match and target of one viface direction's rule (without the chain)."""
    return ["-m", "physdev", MATCH[direction], device, "-m", "comment", "--comment", comment,
            "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]


def jump_spec(chain: str, comment: str) -> list[str]:
    return ["-m", "comment", "--comment", comment, "-j", chain]


def exists(chain: str, spec: list[str], table: str = TABLE) -> bool:
    return _iptables("-t", table, "-C", chain, *spec, check=False).returncode == 0


def rule_add(chain: str, spec: list[str], table: str = TABLE) -> None:
    """Append the rule. The journal, written first, says it is not there: one iptables run, not a check
    and an append (a timeline's event waits for each run)."""
    _iptables("-t", table, "-A", chain, *spec)


def rule_delete(chain: str, spec: list[str], table: str = TABLE) -> None:
    """Delete the rule (added once, by its journal entry); an absent rule or chain is fine."""
    proc = _iptables("-t", table, "-D", chain, *spec, check=False)
    if proc.returncode and not (proc.returncode == 1 and ABSENT in proc.stderr):
        raise OSError(f"iptables -D {chain} exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")


def chain_exists(chain: str, table: str = TABLE) -> bool:
    return _iptables("-t", table, "-S", chain, check=False).returncode == 0


def chain_create(chain: str, comment: str, table: str = TABLE, parent: str = PARENT) -> None:
    """The platform's chain, and the jump to it first in ``parent`` (idempotent)."""
    if not chain_exists(chain, table):
        _iptables("-t", table, "-N", chain)
    jump = jump_spec(chain, comment)
    if not exists(parent, jump, table):
        _iptables("-t", table, "-I", parent, "1", *jump)


def chain_delete(chain: str, comment: str, table: str = TABLE, parent: str = PARENT) -> None:
    """Remove the jump (ours: it carries our comment), then the chain and whatever is left in it."""
    rule_delete(parent, jump_spec(chain, comment), table)
    if chain_exists(chain, table):
        _iptables("-t", table, "-F", chain)
        _iptables("-t", table, "-X", chain)
