"""The latency matrix: validation, the tc layout and its differences (pure), and p.latencies.

The delays themselves are measured in tests/guest/test_matrix.py (netem in the guest kernel).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from distem.errors import ValidationError
from distem.model import PlatformModel, PNode, parse_cidr, parse_vnode
from distem.model.links import LinkLimits
from distem.model.matrix import cells_from_frame, parse_matrix
from distem.plan.matrix import DeviceMatrix, allocate, changed_tables, destinations, device_plan, vnode_matrix_ops
from distem.plan.ops import DelayLineCells, DelayLineSet

NAMES = ["a", "b", "c"]


@pytest.mark.parametrize("vnodes, matrix, words", [
    (["a", "b"], [[0, 1]], "expected 2 rows"),
    (["a", "b"], [[0, 1], [1]], r"matrix\[1\].*row of 2"),
    (["a", "zz"], [[0, 1], [1, 0]], "no such vnode"),
    (["a", "a"], [[0, 1], [1, 0]], "once"),
    (["a", "b"], [[0, -1], [1, 0]], r"matrix\[0\]\[1\] \(a -> b\).*negative.*0 to 60000"),
    (["a", "b"], [[0, math.nan], [1, 0]], "finite"),
    (["a", "b"], [[0, "10"], [1, 0]], "number"),
    (["a", "b"], "0 1; 1 0", "expected 2 rows"),
    ("a", [[0]], "list of vnode names"),
])
def test_bad_matrices(vnodes, matrix, words):
    with pytest.raises(ValidationError, match=words):
        parse_matrix(vnodes, matrix, NAMES)


def test_cells_in_microseconds_and_zeros_clear():
    cells = parse_matrix(["a", "b"], [[7, 10.5], [0, 0]], NAMES)  # the diagonal is ignored
    assert cells == {("a", "b"): 10_500, ("b", "a"): 0}
    model = PlatformModel("a1b2c3", [PNode(name="local")])
    model.latencies.update({("b", "a"): 3000, ("c", "a"): 1000})
    model.update_latencies(cells)
    assert model.latencies == {("a", "b"): 10_500, ("c", "a"): 1000}


def test_a_frame_in_any_order():
    frame = pd.DataFrame([[4, 0], [0, 2]], index=["b", "a"], columns=["a", "b"])  # b->a 4 ms, a->b 2 ms
    assert cells_from_frame(frame, NAMES) == {("b", "a"): 4000, ("a", "b"): 2000}
    with pytest.raises(ValidationError, match="same vnode names"):
        cells_from_frame(pd.DataFrame([[0]], index=["a"], columns=["b"]), NAMES)


def model_of(n: int):
    model = PlatformModel("a1b2c3", [PNode(name="local")])
    model.add_vnetwork("vnet", parse_cidr("vnet", "10.144.0.0/24"))
    model.add_vnetwork("other", parse_cidr("other", "10.145.0.0/24"))
    model.add_vnodes([parse_vnode(f"n{i}", {"vfilesystem": {"image": "/i.tgz"},
                                            "vifaces": [{"name": "if0", "vnetwork": "other" if i == 3 else "vnet"},
                                                        *([{"name": "if1", "vnetwork": "other"}] if i == 0 else [])]})
                      for i in range(n)])
    return model


def test_cells_go_to_the_interface_that_reaches_the_peer():
    model = model_of(4)
    tables = destinations(model.vnodes, {("n0", "n1"): 5000, ("n0", "n3"): 7000, ("n1", "n0"): 0})
    n1, n3 = (str(model.vnodes[n].ifaces[0].address.ip) for n in ("n1", "n3"))
    assert tables == {("n0", 0): {n1: 5000}, ("n0", 1): {n3: 7000}}


def test_a_change_starts_from_what_the_devices_hold_and_the_delay_line_gets_only_the_changed_cells():
    model = model_of(4)
    n1, n2, n3 = (str(model.vnodes[n].ifaces[0].address.ip) for n in ("n1", "n2", "n3"))
    held = {("n0", 0): DeviceMatrix(delays={n1: 5000, n2: 6000})}
    tables = changed_tables(model.vnodes, held, {("n0", "n2"): 0, ("n0", "n3"): 7000, ("n1", "n0"): 4000})
    n0 = str(model.vnodes["n0"].ifaces[0].address.ip)
    assert tables == {("n0", 0): {n1: 5000}, ("n0", 1): {n3: 7000}, ("n1", 0): {n0: 4000}}
    ops, _ = vnode_matrix_ops("a1b2c3", model.vnodes["n0"], "userspace", held, tables, fresh=False,
                              limits_changed=False)
    cells, first = ops
    assert isinstance(cells, DelayLineCells) and cells.destinations == {} and cells.drop == (n2,)
    assert isinstance(first, DelayLineSet) and first.destinations == {n3: 7000}  # n0's if1 held no table: all of it
    held[("n0", 0)] = DeviceMatrix(delays={n1: 5000})
    again, _ = vnode_matrix_ops("a1b2c3", model.vnodes["n0"], "userspace", held,
                                {("n0", 0): {n1: 8000}, ("n0", 1): {n3: 7000}}, fresh=False, limits_changed=False)
    assert [op.to_wire() for op in again[:1]] == [{"op": "delayline_cells", "owner": "vnode:n0",
                                                   "device": again[0].device, "destinations": {n1: 8000}, "drop": ()}]


def test_one_class_per_distinct_delay_and_only_changes_sent():
    old = allocate(DeviceMatrix(), {"10.144.0.2": 10_000, "10.144.0.3": 10_000, "10.144.0.4": 20_000})
    assert old.classes == {10_000: 0x100, 20_000: 0x101}
    first = device_plan("o", "ifb", LinkLimits(rate_bps=10**7), DeviceMatrix(), old, limits_changed=False)
    assert first.table and len(first.set_classes) == 2 and len(first.entries) == 3
    assert first.set_classes[0][2] == LinkLimits(rate_bps=10**7, delay_us=10_000)
    # .3 moves to a new delay, .4 goes: 20 ms's class is dropped, 30 ms takes the lowest free one
    new = allocate(old, {"10.144.0.2": 10_000, "10.144.0.3": 30_000})
    change = device_plan("o", "ifb", LinkLimits(rate_bps=10**7), old, new, limits_changed=False)
    assert not change.table
    assert [c[0] for c in change.set_classes] == [0x101] and change.drop_classes == ()
    assert [(a, m) for a, _, m in change.entries] == [("10.144.0.3", 0x101)]
    assert [a for a, _ in change.drop_entries] == ["10.144.0.4"]
    assert device_plan("o", "ifb", LinkLimits(), new, new, limits_changed=False) is None


def test_an_address_keeps_its_u32_node_while_held_even_when_the_one_it_clashed_with_goes():
    # same last byte (bucket 5) and same next 11 bits: the second takes the next node
    old = allocate(DeviceMatrix(), {"10.144.0.5": 10_000, "10.152.0.5": 20_000})
    first = device_plan("o", "ifb", LinkLimits(), DeviceMatrix(), old, limits_changed=False)
    assert [(a, node) for a, node, _ in first.entries] == [("10.144.0.5", 1), ("10.152.0.5", 2)]
    gone = allocate(old, {"10.152.0.5": 20_000, "10.144.0.7": 20_000})
    assert [(a, node) for a, node in device_plan("o", "ifb", LinkLimits(), old, gone, False).drop_entries] == [
        ("10.144.0.5", 1)]
    moved = allocate(gone, {"10.152.0.5": 30_000, "10.144.0.7": 20_000})  # 20 ms's class stays: a new entry
    change = device_plan("o", "ifb", LinkLimits(), gone, moved, limits_changed=False)
    assert [(a, node) for a, node, _ in change.entries] == [("10.152.0.5", 2)]


def test_a_one_cell_change_plans_one_entry_whatever_the_table():
    table = {f"10.144.{k // 250}.{k % 250 + 2}": 1000 * (1 + k % 40) for k in range(3000)}
    old = allocate(DeviceMatrix(), table)
    new = allocate(old, {**table, "10.144.0.2": 99_000})
    change = device_plan("o", "ifb", LinkLimits(), old, new, limits_changed=False)
    assert change.entries == (("10.144.0.2", old.slots["10.144.0.2"] & 0xFFF, new.classes[99_000]),)
    assert new.slots is old.slots  # the same addresses: nothing copied


@pytest.mark.root
@pytest.mark.guest
def test_p_latencies_round_trip_and_bad_input_changes_nothing(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    for name in NAMES:
        platform.vnode(name).image(busybox, shared=True).iface("if0", "vnet")  # not started: stored only
    platform.deploy(start=False)  # stored only: applied when the vnodes start
    platform.set_peers_latencies(["a", "b"], [[0, 10], [20, 0]])
    frame = platform.latencies
    assert frame.loc["a", "b"] == 10 and frame.loc["b", "a"] == 20 and frame.loc["a", "c"] == 0
    frame.loc["a", "c"] = 5
    platform.latencies = frame
    assert platform.latencies.loc["a", "c"] == 5
    for bad in ([[0, -5], [1, 0]], [[0, 1]], [[0, math.inf], [1, 0]]):
        with pytest.raises(ValidationError):
            platform.set_peers_latencies(["a", "b"], bad)
    assert platform.latencies.loc["a", "b"] == 10
