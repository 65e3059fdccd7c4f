"""The exact solver, for small instances: a CP-SAT model (OR-Tools) of the traffic model in ``problem``.

Variables: x[v, h] = 1 when vnode v goes to pnode h. Per vnetwork N and pnode h,
R[N, h] (the shares its vnodes there send to each peer) and C[N, h] (how many
are there) are linear in x; the traffic from a to b is the product
R[N, a] * C[N, b], which CP-SAT handles exactly. Rates are divided by the
greatest common divisor of every share and capacity, so nothing is rounded.

Objective, lexicographic: the least traffic between vnodes on different
pnodes, then the fewest pnodes used (weight: pnodes + 1 per unit of traffic).

One search worker, a fixed seed and a deterministic time budget: the same
instance gives the same mapping on every run.
"""

from __future__ import annotations

import logging
from math import gcd
from typing import TYPE_CHECKING, Literal

from .problem import Problem

if TYPE_CHECKING:
    from ortools.sat.python.cp_model import CpModel, IntVar, LinearExprT

__all__ = ["solve_exact", "Status"]

log = logging.getLogger(__name__)
Status = Literal["optimal", "feasible", "infeasible", "unknown"]


def solve_exact(problem: Problem, hint: dict[str, str] | None = None,
                time_limit: float = 10.0) -> tuple[dict[str, str] | None, Status]:
    """The best mapping found within ``time_limit`` (deterministic) seconds, and whether it is proven optimal."""
    from ortools.sat.python import cp_model  # heavy: loaded only when an exact answer is asked for

    model = cp_model.CpModel()
    hosts, free = problem.hosts, problem.free
    x = {(v, h): model.new_bool_var(f"x[{v},{h}]") for v in free for h in hosts}
    for v in free:
        model.add_exactly_one(x[v, h] for h in hosts)

    def on(vnode: str, host: str) -> LinearExprT:  # 0/1: is vnode on host?
        return (1 if problem.pinned[vnode] == host else 0) if vnode in problem.pinned else x[vnode, host]

    for attr in ("cores", "memory"):
        for h in hosts:
            cap = getattr(problem, attr)[h]
            terms = [getattr(problem.demands[v], attr) * x[v, h] for v in free]
            if cap is not None and terms:
                pinned = sum(getattr(problem.demands[v], attr) for v, p in problem.pinned.items() if p == h)
                model.add(sum(terms) <= cap - pinned)

    used = {h: model.new_bool_var(f"used[{h}]") for h in hosts}
    for (v, h), var in x.items():
        model.add_implication(var, used[h])
    for h in set(problem.pinned.values()):
        model.add(used[h] == 1)

    classes = _interchangeable(problem)
    for same in classes:  # the i-th free vnode may only go to the first i pnodes of a class
        for i, v in enumerate(free):
            for h in same[i + 1:]:
                model.add(x[v, h] == 0)
    unit = 0
    for value in [*problem.shares.values(), *(c for c in problem.capacity.values() if c)]:
        unit = gcd(unit, value)
    loads: dict[tuple[str, str], list[IntVar]] = {arc: [] for arc in problem.capacity}
    cross: list[IntVar] = []
    arc_sides = _arc_sides(problem)
    for vnetwork, members in problem.members.items():
        shares = {v: problem.shares.get((v, vnetwork), 0) // unit if unit else 0 for v in members}
        if not any(shares.values()):
            continue
        traffic = _Traffic(model, {h: sum(shares[v] * on(v, h) for v in members) for h in hosts},
                           {h: sum(on(v, h) for v in members) for h in hosts}, sum(shares.values()), len(members))
        for a in hosts:
            cross.append(traffic(frozenset([a]), frozenset(hosts) - {a}))
        for arc, (senders, receivers) in arc_sides:
            loads[arc].append(traffic(senders, receivers))
    for arc, terms in loads.items():
        cap = problem.capacity[arc]
        if cap is not None and terms:
            model.add(sum(terms) <= cap // unit)
    model.minimize(sum(cross) * (len(hosts) + 1) + sum(used.values()))

    if hint:  # a complete hint (the greedy mapping) gives the search a first solution to improve on
        hint = _canonical(hint, classes, free)
        for (v, h), var in x.items():
            model.add_hint(var, hint[v] == h)
        for h, var in used.items():
            model.add_hint(var, h in hint.values())
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    solver.parameters.max_deterministic_time = time_limit
    solver.parameters.max_time_in_seconds = 3 * time_limit  # a wall-clock guard on slow machines
    status = solver.solve(model)
    log.debug("cp-sat: %s in %.2fs, objective %s", solver.status_name(status), solver.wall_time,
              solver.objective_value if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None)
    if status == cp_model.INFEASIBLE:
        return None, "infeasible"
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, "unknown"
    mapping = dict(problem.pinned)
    for (v, h), var in x.items():
        if solver.value(var):
            mapping[v] = h
    return mapping, "optimal" if status == cp_model.OPTIMAL else "feasible"


class _Traffic:
    """One vnetwork's traffic from a set of pnodes to another: R(senders) * C(receivers), the sum of the shares
    its vnodes on the one side send to each peer, times the number of its vnodes on the other. One product
    variable per pair of sides, shared by the arcs and the objective that need it."""

    def __init__(self, model: CpModel, sent: dict[str, LinearExprT], count: dict[str, LinearExprT],
                 max_sent: int, max_count: int) -> None:
        self.model, self.sent, self.count = model, sent, count
        self.max_sent, self.max_count = max_sent, max_count
        self.products: dict[tuple[frozenset[str], frozenset[str]], IntVar] = {}

    def __call__(self, senders: frozenset[str], receivers: frozenset[str]) -> IntVar:
        if (senders, receivers) not in self.products:
            r = self.model.new_int_var(0, self.max_sent, "R")
            c = self.model.new_int_var(0, self.max_count, "C")
            self.model.add(r == sum(self.sent[h] for h in sorted(senders)))
            self.model.add(c == sum(self.count[h] for h in sorted(receivers)))
            product = self.model.new_int_var(0, self.max_sent * self.max_count, "T")
            self.model.add_multiplication_equality(product, [r, c])
            self.products[senders, receivers] = product
        return self.products[senders, receivers]


Sides = tuple[frozenset[str], frozenset[str]]


def _arc_sides(problem: Problem) -> list[tuple[tuple[str, str], Sides]]:
    """For each arc, the pnode pairs whose path crosses it, as products of sets: senders x receivers.

    Sources whose paths use the arc towards the same receivers are grouped, so on a tree (a star,
    switches in a hierarchy) each arc is one product: all the pnodes on one side to all on the other.
    """
    out = []
    for arc in sorted(problem.capacity):
        groups: dict[frozenset[str], set[str]] = {}
        for a in problem.hosts:
            receivers = frozenset(b for b in problem.hosts if b != a and arc in problem.paths[a, b])
            if receivers:
                groups.setdefault(receivers, set()).add(a)
        out += [(arc, (frozenset(senders), receivers)) for receivers, senders in groups.items()]
    return out


def _interchangeable(problem: Problem) -> list[list[str]]:
    """Classes of pnodes any mapping may swap: same cores and memory, one link to the same node with the same
    capacity (a pnode with two links may carry others' traffic), no pinned vnode. Breaking the symmetry:
    any mapping can be renamed so that a class's pnodes appear sorted by the first vnode each hosts, so the
    i-th free vnode need only be tried on the first i of them."""
    classes: dict[tuple[int | None, int | None, str, int | None], list[str]] = {}
    pinned_on = set(problem.pinned.values())
    for h in problem.hosts:
        edges: list[tuple[str, str, int | None]] = list(problem.topology.edges(h, data="capacity_bps"))
        if h not in pinned_on and len(edges) == 1:
            (_, neighbour, capacity), = edges
            classes.setdefault((problem.cores[h], problem.memory[h], neighbour, capacity), []).append(h)
    return [same for same in classes.values() if len(same) > 1]


def _canonical(mapping: dict[str, str], classes: list[list[str]], free: list[str]) -> dict[str, str]:
    """The same mapping with each class's pnodes renamed in the order the symmetry breaking allows."""
    first = {}
    for i, v in reversed(list(enumerate(free))):
        first[mapping[v]] = i
    rename = {}
    for same in classes:
        for old, new in zip(sorted(same, key=lambda h: (first.get(h, len(free)), h)), same):
            rename[old] = new
    return {v: rename.get(h, h) for v, h in mapping.items()}
