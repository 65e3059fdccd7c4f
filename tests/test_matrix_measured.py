"""The latency matrix, measured: every pair's RTT from the vnodes' own namespaces against
M[i][j] + M[j][i] — through the userspace delay line on this host, through netem in the
guest kernel of ``make test``."""

from __future__ import annotations

import os
import random

import pytest

import distem

pytestmark = [pytest.mark.root, pytest.mark.guest]

N = 50
# Fewer sources at once than the default (16 per core): the probes' timestamps are taken by fping
# processes that share the cores with the delay line (host) or one slow CPU (the guest).
PARALLEL = 1 if os.environ.get("DISTEM_IN_GUEST") else 4
# Under QEMU without KVM a delayed packet leaves late (tests/guest/test_netem.py) and the emulated
# path is slow, more so for some sources at 50 vnodes: pairs were 1.2-1.4 ms over (two runs), then
# up to 3.5 ms over on six pairs, three of them from one source, measured twice (a third run).
SLACK_MS = 4.0 if os.environ.get("DISTEM_IN_GUEST") == "qemu" else 0.0
# A few vnodes' RTT against what is asked: the unshaped path's own RTT is not subtracted; under QEMU TCG
# it reaches 1.01 ms (c -> b, 4 ms asked, 5.01 measured twice; 4.755 in an earlier run), as in
# tests/guest/test_netem.py.
PAIR_SLACK_MS = 1.3 if os.environ.get("DISTEM_IN_GUEST") == "qemu" else 0.5


def platform_of(state_dir, busybox, n):
    p = distem.Platform(state_dir=state_dir, progress=False)
    p.vnetwork("vnet", "10.144.0.0/24")
    for i in range(n):
        p.vnode(f"n{i}").image(busybox, shared=True).iface("if0", "vnet")
    p.deploy()
    return p


@pytest.fixture(scope="module")
def fifty(state_dir, busybox):
    p = platform_of(state_dir, busybox, N)
    try:
        yield p
    finally:
        p.close()


def off(compared, rel=0.05):
    return compared[compared["error_ms"].abs() > (rel * compared["requested_rtt_ms"]).clip(lower=SLACK_MS)]


def within(p, compared, rel=0.05):
    """Every pair within ``rel`` (and ``SLACK_MS``). The guest is a process of the host: when the host is busy it can
    stall for a second, which shows as one pair's RTT; such pairs are measured once more."""
    bad = off(compared, rel)
    if not bad.empty:
        again = p.compare_latencies(sorted({n for pair in bad.index for n in pair}), count=5, interval_ms=50,
                                    parallel=PARALLEL)
        bad = off(again.loc[again.index.intersection(bad.index)], rel)
    assert bad.empty, bad.head(20).to_string()


def test_every_pair_of_fifty_vnodes_gets_its_rtt(fifty):
    p = fifty
    rng = random.Random(5)
    names = [f"n{i}" for i in range(N)]
    matrix = [[0 if i == j else rng.randint(10, 59) for j in range(N)] for i in range(N)]
    p.set_peers_latencies(names, matrix)
    assert p.latencies.loc["n3", "n7"] == matrix[3][7]
    compared = p.compare_latencies(count=5, interval_ms=50, parallel=PARALLEL)
    assert len(compared) == N * (N - 1)
    within(p, compared)
    # a second matrix changes only some cells, and they take effect
    matrix[3][7], matrix[7][3] = 30, 30
    p.set_peers_latencies(names, matrix)
    changed = p.compare_latencies(["n3", "n7"], count=5)
    assert changed.loc[("n3", "n7"), "requested_rtt_ms"] == 60
    within(p, changed)  # the guest once gave 69.7 ms on 60, neither the old 64 nor the new


def test_a_matrix_and_a_rate_on_one_interface_both_hold(state_dir, busybox):
    p = distem.Platform(state_dir=state_dir, progress=False)
    try:
        p.vnetwork("vnet", "10.144.0.0/24")
        p.vnode("a").image(busybox, shared=True).iface("if0", "vnet", output={"bandwidth": "10mbps"})
        p.vnode("b").image(busybox, shared=True).iface("if0", "vnet")
        p.vnode("c").image(busybox, shared=True).iface("if0", "vnet")
        p.deploy()
        p.set_peers_latencies(["a", "b", "c"], [[0, 20, 5], [20, 0, 0], [5, 0, 0]])
        compared = p.compare_latencies(count=10, interval_ms=50).loc[[("a", "b"), ("a", "c")]]
        assert compared["requested_rtt_ms"].tolist() == [40, 10]
        within(p, compared)  # b and c have no delay between them: nothing to hold within 5% there
        got = p.measure_throughput("a", "b", seconds=6)
        steady = sorted(got["intervals_bps"][2:])[len(got["intervals_bps"][2:]) // 2]
        assert 0.9 * 10e6 * 1448 / 1514 <= steady <= 10e6 * 1.02, got["intervals_bps"]
        # the interfaces' own delays add to the matrix's, live, and compare_latencies counts them
        p.voutput_update("a", "if0", {"latency": "10ms"})
        p.vinput_update("b", "if0", {"latency": "4ms"})
        assert p.measure_latencies(["a", "b"], count=10).loc["a", "b"] == pytest.approx(54, rel=0.05)
        compared = p.compare_latencies(count=10, interval_ms=50, slack_ms=PAIR_SLACK_MS)
        assert compared.loc[[("a", "b"), ("a", "c"), ("b", "c"), ("c", "b")], "requested_rtt_ms"].tolist() == \
            [54, 20, 4, 4]
        assert compared.ok.all(), compared[~compared.ok].to_string()
        # no tolerance: a pair off by even 0.01 ms is measured a second time (some land exactly here)
        strict = p.compare_latencies(count=5, interval_ms=20, rel=0, slack_ms=0)
        assert strict[~strict.measured_twice].ok.all() and (strict.error_ms[strict.ok] == 0).all()
        assert strict.requested_rtt_ms.equals(compared.requested_rtt_ms) and strict.measured_rtt_ms.notna().all()
    finally:
        p.close()
