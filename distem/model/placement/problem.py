"""A placement instance, its traffic model, and the check every mapping must pass.

Traffic model. The vnodes of a vnetwork talk to each other, all to all: each
vnode sends its output rate on that vnetwork split evenly among its peers (the
other vnodes on it), ``share = ceil(rate / peers)`` bit/s to each. The traffic
between two vnodes on the same pnode stays on its bridge; between two pnodes it
crosses every link of the shortest path (fewest hops; ties broken by node
name) from the sender's pnode to the receiver's. Links are full duplex: each
direction of a link carries up to its capacity. So the load of pnode ``a``'s
vnodes towards pnode ``b`` on vnetwork N is ``R_N(a) * C_N(b)``, where R_N(a)
is the sum of the shares of N's vnodes on ``a`` and C_N(b) the number of N's
vnodes on ``b``: integers, so every check is exact.

A mapping is valid when, on every pnode, the cores and the memory of its vnodes
fit its own, and on every direction of every link the load fits the capacity.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from math import ceil

import networkx as nx

from ...errors import ValidationError
from .demand import Demand
from .topology import topology_hosts

__all__ = ["Problem", "Usage", "Violation", "evaluate", "format_amount", "format_rate", "format_size"]

Arc = tuple[str, str]  # one direction of a link


def format_rate(bits: float) -> str:
    for unit, factor in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= factor:
            return f"{bits / factor:.4g} {unit}"
    return f"{bits:.4g} bit/s"


def format_size(size: float) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size:.4g} B"


def format_amount(kind: str, amount: float) -> str:
    """An amount of "cores", "memory" (bytes) or "bandwidth" (bit/s), for messages."""
    return format_size(amount) if kind == "memory" else format_rate(amount) if kind == "bandwidth" else f"{amount:g}"


def _paths(topology: nx.Graph[str], hosts: list[str]) -> dict[Arc, tuple[Arc, ...]]:
    """Shortest paths between every two pnodes, as arcs: BFS visiting neighbours in name order."""
    paths: dict[Arc, tuple[Arc, ...]] = {}
    for source in hosts:
        parent = {source: source}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for nxt in sorted(topology.adj[node]):
                if nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        for target in hosts:
            if target != source:
                arcs, node = [], target
                while node != source:
                    arcs.append((parent[node], node))
                    node = parent[node]
                paths[source, target] = tuple(reversed(arcs))
    return paths


@dataclass(frozen=True, eq=False)
class Problem:
    """Vnodes to place (``demands``; ``pinned``: those whose pnode is given) on a validated topology."""

    demands: Mapping[str, Demand]
    topology: nx.Graph[str]
    pinned: Mapping[str, str]
    hosts: tuple[str, ...] = field(init=False)
    cores: Mapping[str, int | None] = field(init=False)
    memory: Mapping[str, int | None] = field(init=False)
    capacity: Mapping[Arc, int | None] = field(init=False)  # per direction of each link
    paths: Mapping[Arc, tuple[Arc, ...]] = field(init=False)  # (pnode, pnode) -> arcs
    members: Mapping[str, tuple[str, ...]] = field(init=False)  # vnetwork -> its vnodes
    shares: Mapping[tuple[str, str], int] = field(init=False)  # (vnode, vnetwork) -> bit/s to each peer

    @classmethod
    def build(cls, demands: Iterable[Demand], topology: nx.Graph[str], pinned: Mapping[str, str] | None = None) -> Problem:
        """Check the instance (names unique, pinned vnodes known and on pnodes of the topology).

        Raises:
            ValidationError: a duplicate vnode, or a pin to an unknown vnode or pnode.
        """
        by_name: dict[str, Demand] = {}
        for demand in demands:
            if demand.name in by_name:
                raise ValidationError("vnode name", demand.name, "each vnode appears once")
            by_name[demand.name] = demand
        return cls(by_name, topology, dict(pinned or {}))

    def __post_init__(self) -> None:
        hosts = topology_hosts(self.topology)
        for vnode, host in self.pinned.items():
            if vnode not in self.demands:
                raise ValidationError("pinned vnode", vnode, "no such vnode among those to place")
            if host not in hosts:
                raise ValidationError(f"{vnode}.host", host,
                                      f"not a pnode of the topology (pnodes: {', '.join(hosts)})")
        nodes = self.topology.nodes
        members: dict[str, list[str]] = {}
        for demand in self.demands.values():
            for vnetwork in demand.vnetworks:
                members.setdefault(vnetwork, []).append(demand.name)
        shares = {}
        for demand in self.demands.values():
            for vnetwork, rate in demand.outputs:
                peers = len(members[vnetwork]) - 1
                if peers and rate:
                    shares[demand.name, vnetwork] = ceil(rate / peers)
        capacity: dict[Arc, int | None] = {}
        for u, v, data in self.topology.edges(data=True):
            capacity[u, v] = capacity[v, u] = data.get("capacity_bps")
        set_ = object.__setattr__  # frozen: derived fields are computed once, here
        set_(self, "hosts", tuple(hosts))
        set_(self, "cores", {h: nodes[h]["cores"] for h in hosts})
        set_(self, "memory", {h: nodes[h]["memory_bytes"] for h in hosts})
        set_(self, "capacity", capacity)
        set_(self, "paths", _paths(self.topology, hosts))
        set_(self, "members", {n: tuple(m) for n, m in sorted(members.items())})
        set_(self, "shares", shares)

    @property
    def free(self) -> list[str]:
        """The vnodes the solver chooses a pnode for."""
        return [n for n in self.demands if n not in self.pinned]


@dataclass(frozen=True, slots=True)
class Violation:
    """A capacity exceeded: ``kind`` is "cores", "memory" or "bandwidth"; ``where`` a pnode or "a->b"."""

    kind: str
    where: str
    used: int
    capacity: int

    def __str__(self) -> str:
        place = f"link {self.where}" if self.kind == "bandwidth" else f"pnode {self.where}"
        return (f"{self.kind} on {place}: {format_amount(self.kind, self.used)} needed, "
                f"{format_amount(self.kind, self.capacity)} available")


@dataclass(frozen=True)
class Usage:
    """What a mapping uses: per pnode, per direction of each link, and in all."""

    cores: Mapping[str, int]
    memory: Mapping[str, int]
    loads: Mapping[Arc, int]  # bit/s
    cross_bps: int  # the traffic between vnodes on different pnodes

    def violations(self, problem: Problem) -> list[Violation]:
        out = []
        for kind, used, capacity in (("cores", self.cores, problem.cores), ("memory", self.memory, problem.memory)):
            for host in problem.hosts:
                cap = capacity[host]
                if cap is not None and used[host] > cap:
                    out.append(Violation(kind, host, used[host], cap))
        for arc, load in sorted(self.loads.items()):
            cap = problem.capacity[arc]
            if cap is not None and load > cap:
                out.append(Violation("bandwidth", f"{arc[0]}->{arc[1]}", load, cap))
        return out


def evaluate(problem: Problem, hosts: Mapping[str, str]) -> Usage:
    """The usage of a (possibly partial) mapping ``{vnode: pnode}``."""
    cores = dict.fromkeys(problem.hosts, 0)
    memory = dict.fromkeys(problem.hosts, 0)
    sent: dict[tuple[str, str], int] = {}  # (vnetwork, pnode) -> R
    count: dict[tuple[str, str], int] = {}  # (vnetwork, pnode) -> C
    for vnode, host in hosts.items():
        demand = problem.demands[vnode]
        cores[host] += demand.cores
        memory[host] += demand.memory
        for vnetwork in demand.vnetworks:
            sent[vnetwork, host] = sent.get((vnetwork, host), 0) + problem.shares.get((vnode, vnetwork), 0)
            count[vnetwork, host] = count.get((vnetwork, host), 0) + 1
    loads = dict.fromkeys(problem.capacity, 0)
    cross = 0
    for (vnetwork, a), rate in sent.items():
        if not rate:
            continue
        for b in problem.hosts:
            receivers = count.get((vnetwork, b), 0)
            if b != a and receivers:
                cross += rate * receivers
                for arc in problem.paths[a, b]:
                    loads[arc] += rate * receivers
    return Usage(cores, memory, loads, cross)
