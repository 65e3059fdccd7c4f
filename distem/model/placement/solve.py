"""``place()``: a pnode for every vnode, within every capacity, or a MappingError saying why not."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from ...errors import MappingError, ValidationError
from ..entities import VNetwork
from .demand import Demand, demand_of_request, request_for_placement
from .exact import solve_exact
from .greedy import Refusal, greedy
from .problem import Problem, Usage, evaluate, format_rate, format_size
from .topology import physical_topology

__all__ = ["EXACT_LIMIT", "Placement", "place", "place_descriptions"]

log = logging.getLogger(__name__)
EXACT_LIMIT = 200  # "auto" solves exactly up to this many (free vnode, pnode) pairs: well under a second
_METHODS = ("auto", "exact", "greedy")


@dataclass(frozen=True, eq=False)
class Placement:
    """A valid mapping. ``method``: "exact", "greedy", or "pinned" (every vnode's pnode was given);
    ``optimal``: proven optimal (exact solver, or nothing to choose)."""

    hosts: Mapping[str, str]  # every vnode -> its pnode
    problem: Problem
    usage: Usage
    method: str
    optimal: bool

    @property
    def pnodes_used(self) -> int:
        return len(set(self.hosts.values()))

    @property
    def cross_bps(self) -> int:
        """The traffic between vnodes on different pnodes (the objective's first term), bit/s."""
        return self.usage.cross_bps

    def __repr__(self) -> str:
        return (f"<Placement of {len(self.hosts)} vnodes on {self.pnodes_used} pnode(s), "
                f"{format_rate(self.cross_bps)} across pnodes, {self.method}{' (optimal)' if self.optimal else ''}>")


def place(demands: Iterable[Demand], topology: nx.Graph[str], pinned: Mapping[str, str] | None = None, *,
          method: str = "auto", time_limit: float = 10.0) -> Placement:
    """A pnode of ``topology`` for every vnode, within every capacity (see ``problem`` for the traffic model).

    Objective: the least traffic between vnodes on different pnodes, then the fewest pnodes.

    Args:
        demands: what each vnode needs.
        topology: the physical topology (its attributes are checked again here).
        pinned: ``{vnode: pnode}`` for the vnodes whose pnode is already decided; they are kept there.
        method: "exact" (CP-SAT: optimal, for small instances), "greedy" (fast, deterministic, not
            optimal), or "auto": exact up to ``EXACT_LIMIT`` (free vnode, pnode) pairs, greedy beyond.
        time_limit: the exact solver's budget in (deterministic) seconds; past it, the best mapping found.

    Returns:
        The ``Placement``.

    Raises:
        ValidationError: a bad argument, or a pin to an unknown vnode or pnode.
        MappingError: some vnodes fit nowhere; names them and the binding constraint on each pnode.
    """
    if method not in _METHODS:
        raise ValidationError("method", method, f"expected one of {', '.join(_METHODS)}")
    problem = Problem.build(demands, physical_topology(topology), pinned)
    _check_pinned(problem)

    def result(hosts: Mapping[str, str], method: str, optimal: bool) -> Placement:
        return Placement(dict(hosts), problem, evaluate(problem, hosts), method, optimal)

    if not problem.free:
        return result(problem.pinned, "pinned", True)
    hosts, refused = greedy(problem)
    exact = method == "exact" or (method == "auto" and len(problem.free) * len(problem.hosts) <= EXACT_LIMIT)
    if not exact:
        if refused:
            raise _error(problem, refused, "the greedy heuristic found no pnode for them (try method='exact' "
                         "for a definite answer on a small instance)")
        return result(hosts, "greedy", False)
    found, status = solve_exact(problem, hint=None if refused else hosts, time_limit=time_limit)
    if found is not None:
        best = result(found, "exact", status == "optimal")
        if status == "feasible" and not refused:  # out of time: keep the greedy mapping if it is better
            best = min(best, result(hosts, "greedy", False), key=_objective)
        return best
    if refused:
        why = ("no mapping exists (proven by the exact solver)" if status == "infeasible"
               else f"no mapping found within {time_limit:g} s")
        raise _error(problem, refused, f"{why}; a greedy pass could not place these")
    log.warning("exact solver: %s; keeping the greedy mapping", status)
    return result(hosts, "greedy", False)


def _objective(placement: Placement) -> tuple[int, int]:
    return placement.cross_bps, placement.pnodes_used


def _check_pinned(problem: Problem) -> None:
    """The pinned vnodes alone must fit: otherwise no choice for the others can help."""
    violations = evaluate(problem, problem.pinned).violations(problem)
    if not violations:
        return
    blamed: dict[str, list[str]] = {}
    for violation in violations:
        if violation.kind == "bandwidth":
            culprits = [v for v in problem.pinned if any((v, n) in problem.shares for n in problem.members)]
        else:
            culprits = [v for v, h in problem.pinned.items() if h == violation.where]
        for vnode in culprits:
            blamed.setdefault(vnode, []).append(str(violation))
    raise MappingError("the pinned vnodes alone exceed a capacity (their 'host' is given):\n"
                       + "\n".join(f"  {v}" for v in violations), sorted(blamed), blamed)


def _describe(demand: Demand) -> str:
    parts = [f"{demand.cores} core{'s' if demand.cores != 1 else ''}"]
    if demand.memory:
        parts.append(format_size(demand.memory))
    if demand.bandwidth:
        parts.append(f"{format_rate(demand.bandwidth)} out")
    return ", ".join(parts)


_SHOWN = 4  # items per constraint, vnodes in the message: past these, a count (the attributes keep all)


def _listed(items: list[str], shown: int | None) -> str:
    more = len(items) - shown if shown is not None else 0
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


def _reasons(refusals: list[Refusal], shown: int | None = None) -> list[str]:
    """One line per constraint: "cores on pnodes p1 (needs 2, 1 left), p2 (...)", and for a link, the
    pnodes from which it binds: "bandwidth on link sw->p3 (with it on p1, p2: needs 2 Gbit/s, 1 Gbit/s left)".
    ``shown``: how many pnodes or links to list per line (all: None)."""
    lines = []
    for kind in ("cores", "memory"):
        items = [str(r) for r in sorted(refusals, key=lambda r: r.pnode) if r.kind == kind]
        if items:
            lines.append(f"{kind} on pnode{'s' if len(items) > 1 else ''} {_listed(items, shown)}")
    links = sorted({r.where for r in refusals if r.kind == "bandwidth"})
    items = []
    for link in links:
        group = sorted((r for r in refusals if r.kind == "bandwidth" and r.where == link), key=lambda r: r.need)
        fmt = format_rate
        items.append(f"{link} (with it on {_listed([r.pnode for r in group], shown)}: needs "
                     f"{fmt(group[0].need)}{'+' if group[-1].need > group[0].need else ''}, "
                     f"{fmt(max(group[0].free, 0))} left)")
    if items:
        lines.append(f"bandwidth on link{'s' if len(items) > 1 else ''} {_listed(items, shown)}")
    return lines


def _error(problem: Problem, refused: dict[str, list[Refusal]], why: str) -> MappingError:
    names = sorted(refused)
    reasons = {v: _reasons(refused[v]) for v in names}
    lines = [f"  {v} ({_describe(problem.demands[v])}): " + "; ".join(_reasons(refused[v], _SHOWN))
             for v in names[:_SHOWN]]
    if len(names) > _SHOWN:
        lines.append(f"  and {len(names) - _SHOWN} more: {', '.join(names[_SHOWN:_SHOWN + 20])}"
                     + (", ..." if len(names) > _SHOWN + 20 else "") + " (all in .vnodes and .reasons)")
    return MappingError(f"{len(names)} of {len(problem.demands)} vnodes cannot be placed: {why}.\n" + "\n".join(lines),
                        names, reasons)


def place_descriptions(descriptions: Mapping[str, dict[str, Any]], topology: nx.Graph[str], *,
                       fixed: Mapping[str, tuple[Demand, str]] | None = None,
                       movable: Mapping[str, Demand] | None = None,
                       vnetworks: Mapping[str, VNetwork] | None = None, method: str = "auto",
                       time_limit: float = 10.0) -> Placement:
    """Place described vnodes (Distem's dicts; a 'host' pins one) and ``movable`` ones ({name: demand}, e.g.
    vnodes created but not made on a pnode yet) beside ``fixed`` ones ({name: (demand, pnode)}, e.g. vnodes
    already made), then write each chosen pnode into its description's 'host' (the movable ones' are in
    the result's ``hosts``).

    Nothing is written unless every vnode is placed. Raises as ``place``, and ValidationError for a bad description.
    """
    requests = [request_for_placement(name, desc) for name, desc in descriptions.items()]
    fixed, movable = fixed or {}, movable or {}
    clash = sorted(r.name for r in requests if r.name in fixed or r.name in movable)
    if clash:
        raise ValidationError("vnode name", clash[0], "a vnode of this name exists already")
    demands = ([demand_of_request(r, vnetworks) for r in requests] + [d for d, _ in fixed.values()]
               + list(movable.values()))
    pinned = {r.name: r.host for r in requests if r.host is not None} | {n: h for n, (_, h) in fixed.items()}
    placement = place(demands, topology, pinned, method=method, time_limit=time_limit)
    for request in requests:
        descriptions[request.name]["host"] = placement.hosts[request.name]
    return placement
