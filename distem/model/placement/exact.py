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
from typing import Literal

from .problem import Problem

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

    def on(vnode: str, host: str):  # 0/1 expression: is vnode on host?
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

    unit = 0
    for value in [*problem.shares.values(), *(c for c in problem.capacity.values() if c)]:
        unit = gcd(unit, value)
    loads: dict[tuple[str, str], list] = {arc: [] for arc in problem.capacity}
    cross = []
    for vnetwork, members in problem.members.items():
        shares = {v: problem.shares.get((v, vnetwork), 0) // unit if unit else 0 for v in members}
        if not any(shares.values()):
            continue
        sent, count = {}, {}
        for h in hosts:
            sent[h] = model.new_int_var(0, sum(shares.values()), f"R[{vnetwork},{h}]")
            model.add(sent[h] == sum(shares[v] * on(v, h) for v in members))
            count[h] = model.new_int_var(0, len(members), f"C[{vnetwork},{h}]")
            model.add(count[h] == sum(on(v, h) for v in members))
        for a in hosts:
            for b in hosts:
                if a != b:
                    traffic = model.new_int_var(0, sum(shares.values()) * len(members), f"T[{vnetwork},{a},{b}]")
                    model.add_multiplication_equality(traffic, [sent[a], count[b]])
                    cross.append(traffic)
                    for arc in problem.paths[a, b]:
                        loads[arc].append(traffic)
    for arc, terms in loads.items():
        cap = problem.capacity[arc]
        if cap is not None and terms:
            model.add(sum(terms) <= cap // unit)
    model.minimize(sum(cross) * (len(hosts) + 1) + sum(used.values()))

    for (v, h), var in x.items():
        if hint and v in hint:
            model.add_hint(var, hint[v] == h)
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
