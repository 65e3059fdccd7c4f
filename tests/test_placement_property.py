"""Properties of placement on random small instances: every mapping returned respects every capacity and
every pin; the exact solver's answer (a mapping, its objective, or "none exists") matches brute force."""

from __future__ import annotations

import itertools

import networkx as nx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from distem.errors import MappingError
from distem.model.placement import Demand, Problem, evaluate, physical_topology, place

M = 10**6
RATES = [0, 50 * M, 100 * M, 300 * M, 1000 * M]


@st.composite
def instances(draw):
    n_pnodes = draw(st.integers(1, 3))
    hosts = [f"p{i}" for i in range(n_pnodes)]
    graph = nx.Graph()
    for h in hosts:
        graph.add_node(h, type="host", cpu=draw(st.integers(1, 6)),
                       memory_bytes=draw(st.sampled_from([None, 2**30, 4 * 2**30])))
    shape = draw(st.sampled_from(["star", "line"]))
    capacity = st.sampled_from([None, 100 * M, 400 * M, 1000 * M])
    if shape == "star":
        for h in hosts:
            graph.add_edge(h, "sw", capacity_bps=draw(capacity))
    else:  # p0 - s0 - p1 - s1 - p2: traffic between the ends crosses the middle pnode's links
        for a, b in zip(hosts, hosts[1:]):
            graph.add_edge(a, f"s{a}", capacity_bps=draw(capacity))
            graph.add_edge(f"s{a}", b, capacity_bps=draw(capacity))
    demands = []
    for i in range(draw(st.integers(1, 6))):
        nets = draw(st.lists(st.sampled_from(["A", "B"]), max_size=2, unique=True))
        demands.append(Demand(name=f"v{i}", cores=draw(st.integers(0, 3)),
                              memory=draw(st.sampled_from([0, 2**29, 2**30])),
                              outputs=tuple((n, draw(st.sampled_from(RATES))) for n in sorted(nets))))
    pins = {d.name: draw(st.sampled_from(hosts)) for d in demands if draw(st.integers(0, 4)) == 0}
    return demands, physical_topology(graph), pins


def brute_force(problem: Problem):
    """The best (cross traffic, pnodes used) of every valid mapping, or None when there is none."""
    best = None
    for choice in itertools.product(problem.hosts, repeat=len(problem.free)):
        hosts = dict(problem.pinned) | dict(zip(problem.free, choice))
        usage = evaluate(problem, hosts)
        if not usage.violations(problem):
            score = (usage.cross_bps, len(set(hosts.values())))
            best = score if best is None or score < best else best
    return best


def check_valid(pl, demands, pins):
    assert set(pl.hosts) == {d.name for d in demands}
    assert all(pl.hosts[v] == h for v, h in pins.items())
    assert pl.usage.violations(pl.problem) == []
    assert evaluate(pl.problem, pl.hosts) == pl.usage


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_greedy_mappings_respect_every_capacity(instance):
    demands, topology, pins = instance
    try:
        pl = place(demands, topology, pins, method="greedy")
    except MappingError as err:
        assert err.vnodes and set(err.vnodes) <= {d.name for d in demands}
        return
    check_valid(pl, demands, pins)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_exact_is_valid_optimal_and_fails_only_when_nothing_fits(instance):
    demands, topology, pins = instance
    best = brute_force(Problem.build(demands, topology, pins))
    try:
        pl = place(demands, topology, pins, method="exact")
    except MappingError:
        event("no mapping")
        assert best is None
        return
    event(f"{pl.method}, {'optimal' if pl.optimal else 'not proven'}")
    check_valid(pl, demands, pins)
    if pl.optimal:
        assert (pl.cross_bps, pl.pnodes_used) == best
