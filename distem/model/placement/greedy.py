"""The fast heuristic: place vnodes one by one, each where it keeps most traffic local.

Deterministic (every choice is ordered by values, then names) and incremental:
loads only grow as vnodes are added, so a vnode accepted while every capacity
still holds never breaks one later.

Order: the pinned vnodes first; then community by community (vnodes joined by
shared vnetworks), the biggest community first, each vnode's size being its
largest share of a pnode's cores or memory or of a link; biggest vnodes first
within a community. So a community is placed in one go and stays together.

Choice of pnode, among those where cores, memory and every link on the way to
its peers still fit: the most traffic kept inside the pnode, then the most
vnetwork peers already there; then, for a vnode with peers, the pnode where the
rest of its community fits (cores and memory) with the fewest cores to spare,
or failing that the one with the most free cores; for a vnode without peers, the fullest pnode
where it fits, pnodes already used first; then the name. A vnode that fits
nowhere is set aside with the reason each pnode refused it, and the others are
still placed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .problem import Arc, Problem, format_amount

__all__ = ["Refusal", "greedy"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why ``pnode`` could not take the vnode: the binding constraint ("cores", "memory" or "bandwidth"),
    where (the pnode, or the link "a->b"), what the vnode needed there, and what was left."""

    pnode: str
    kind: str
    where: str
    need: int
    free: int

    def __str__(self) -> str:
        need, left = format_amount(self.kind, self.need), format_amount(self.kind, max(self.free, 0))
        return f"{self.where} (needs {need}, {left} left)"


class _State:
    def __init__(self, problem: Problem) -> None:
        self.p = problem
        self.cores = dict.fromkeys(problem.hosts, 0)
        self.memory = dict.fromkeys(problem.hosts, 0)
        self.loads: dict[Arc, int] = dict.fromkeys(problem.capacity, 0)
        self.sent: dict[str, dict[str, int]] = {n: {} for n in problem.members}  # vnetwork -> pnode -> R
        self.count: dict[str, dict[str, int]] = {n: {} for n in problem.members}  # vnetwork -> pnode -> C
        self.hosts: dict[str, str] = {}
        self.used: set[str] = set()

    def _deltas(self, vnode: str, host: str) -> dict[Arc, int]:
        """The load each arc gains if ``vnode`` goes to ``host``: its shares to its peers elsewhere, theirs to it."""
        deltas: dict[Arc, int] = {}
        for vnetwork in self.p.demands[vnode].vnetworks:
            share = self.p.shares.get((vnode, vnetwork), 0)
            for other, peers in self.count[vnetwork].items():
                if other == host:
                    continue
                out, back = share * peers, self.sent[vnetwork].get(other, 0)
                if out:
                    for arc in self.p.paths[host, other]:
                        deltas[arc] = deltas.get(arc, 0) + out
                if back:
                    for arc in self.p.paths[other, host]:
                        deltas[arc] = deltas.get(arc, 0) + back
        return deltas

    def refusal(self, vnode: str, host: str) -> Refusal | None:
        demand = self.p.demands[vnode]
        for kind, used, capacity, need in (("cores", self.cores, self.p.cores, demand.cores),
                                           ("memory", self.memory, self.p.memory, demand.memory)):
            cap = capacity[host]
            if cap is not None and used[host] + need > cap:
                return Refusal(host, kind, host, need, cap - used[host])
        worst = None
        for arc, delta in self._deltas(vnode, host).items():
            cap = self.p.capacity[arc]
            if cap is not None and self.loads[arc] + delta > cap:
                over = self.loads[arc] + delta - cap
                if worst is None or (over, arc) > worst[0]:
                    left = cap - self.loads[arc]
                    worst = ((over, arc), Refusal(host, "bandwidth", f"{arc[0]}->{arc[1]}", delta, left))
        return worst[1] if worst else None

    def add(self, vnode: str, host: str) -> None:
        demand = self.p.demands[vnode]
        for arc, delta in self._deltas(vnode, host).items():
            self.loads[arc] += delta
        self.cores[host] += demand.cores
        self.memory[host] += demand.memory
        for vnetwork in demand.vnetworks:
            self.sent[vnetwork][host] = self.sent[vnetwork].get(host, 0) + self.p.shares.get((vnode, vnetwork), 0)
            self.count[vnetwork][host] = self.count[vnetwork].get(host, 0) + 1
        self.hosts[vnode] = host
        self.used.add(host)

    def _free(self, host: str) -> tuple[float, float]:
        cores, memory = self.p.cores[host], self.p.memory[host]
        return (float("inf") if cores is None else cores - self.cores[host],
                float("inf") if memory is None else memory - self.memory[host])

    def preference(self, vnode: str, host: str, community: tuple[int, int] | None) -> tuple[float | str, ...]:
        """Smaller is better (see the module doc). ``community``: the cores and memory its community still
        needs (itself included), or None for a vnode without vnetwork peers."""
        kept = peers = 0
        for vnetwork in self.p.demands[vnode].vnetworks:
            here = self.count[vnetwork].get(host, 0)
            kept += self.p.shares.get((vnode, vnetwork), 0) * here + self.sent[vnetwork].get(host, 0)
            peers += here
        cores, memory = self._free(host)
        if community is None:  # best fit: the fullest pnode, used ones first
            return (-kept, -peers, 0 if host in self.used else 1, cores - self.p.demands[vnode].cores, host)
        fits = cores >= community[0] and memory >= community[1]  # best fit for all of it, else the most room
        return (-kept, -peers, 0 if fits else 1, cores - community[0] if fits else -cores, host)


def _size(problem: Problem, vnode: str) -> float:
    """The vnode's largest fraction of the biggest pnode's cores or memory, or of the biggest link."""
    demand = problem.demands[vnode]
    fractions = [0.0]
    for need, caps in ((demand.cores, problem.cores.values()), (demand.memory, problem.memory.values()),
                       (demand.bandwidth, problem.capacity.values())):
        biggest = max((c for c in caps if c is not None), default=None)
        if biggest:
            fractions.append(need / biggest)
    return max(fractions)


# Orders tried within a community; the best result is kept: packing by cores, or the heaviest first, or
# names (which mixes heavy and light vnodes, so that no pnode gathers every heavy sender of a vnetwork).
Order = Callable[[Problem, str], tuple[float | str, ...]]
_ORDERS: dict[str, Order] = {
    "cores": lambda p, v: (-p.demands[v].cores, v),
    "size": lambda p, v: (-_size(p, v), v),
    "name": lambda p, v: (v,),
}


def _communities(problem: Problem, order: Order) -> list[list[str]]:
    """The free vnodes grouped by shared vnetworks (union-find), biggest group first, ``order`` within."""
    parent = {v: v for v in problem.demands}

    def root(v: str) -> str:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for members in problem.members.values():
        for other in members[1:]:
            a, b = root(members[0]), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for v in problem.free:
        groups.setdefault(root(v), []).append(v)
    sizes = {v: _size(problem, v) for v in problem.free}
    ordered = [sorted(g, key=lambda v: order(problem, v)) for g in groups.values()]
    return sorted(ordered, key=lambda g: (-sum(sizes[v] for v in g), min(g)))


def _one_pass(problem: Problem, order: Order) -> tuple[_State, dict[str, list[Refusal]]]:
    state = _State(problem)
    for vnode, host in problem.pinned.items():
        state.add(vnode, host)
    social = {v for members in problem.members.values() if len(members) > 1 for v in members}
    refused: dict[str, list[Refusal]] = {}
    for community in _communities(problem, order):
        left = [sum(problem.demands[v].cores for v in community), sum(problem.demands[v].memory for v in community)]
        for vnode in community:
            need = (left[0], left[1]) if vnode in social else None
            best = None
            refusals = []
            for host in sorted(problem.hosts, key=lambda h: state.preference(vnode, h, need)):
                refusal = state.refusal(vnode, host)
                if refusal is None:
                    best = host
                    break
                refusals.append(refusal)
            if best is None:
                refused[vnode] = refusals
            else:
                state.add(vnode, best)
            left[0] -= problem.demands[vnode].cores
            left[1] -= problem.demands[vnode].memory
    return state, refused


def greedy(problem: Problem) -> tuple[dict[str, str], dict[str, list[Refusal]]]:
    """A mapping of every vnode it could place, and for the others, each pnode's refusal: the best of one
    pass per order (fewest refused, then least traffic across pnodes, then fewest pnodes)."""
    best = None
    for name, order in _ORDERS.items():
        state, refused = _one_pass(problem, order)
        cross = sum(state.sent[n].get(a, 0) * c for n in state.sent for a in state.sent[n]
                    for b, c in state.count[n].items() if b != a)
        score = (len(refused), cross, len(state.used), name)
        if best is None or score < best[0]:
            best = (score, state.hosts, refused)
    assert best is not None
    return best[1], best[2]
