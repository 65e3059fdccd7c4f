"""The wire between plan and agent (distem/wire.py): the plan emits only its operations, with their
fields; the agent has a handler for each, taking exactly those fields; the wire form is golden."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os

import pytest

from distem import wire
from distem.agent.apply import Applier, OpFailed
from distem.plan import ops
from tests.test_plan import GOLDEN, all_modes_plan, shaping_plan


def plan_operations() -> dict[str, type[ops.Op]]:
    return {cls.kind: cls for cls in ops.Op.__subclasses__()}


def test_every_operation_of_the_plan_is_on_the_wire_with_its_fields():
    found = plan_operations()
    assert sorted(found) == sorted(wire.OPS)
    for name, cls in found.items():
        assert tuple(f.name for f in dataclasses.fields(cls) if f.name != "owner") == wire.OPS[name], name


def test_the_agent_has_a_handler_for_each_taking_exactly_its_fields():
    for name, fields in wire.OPS.items():
        handler = getattr(Applier, name)
        assert tuple(inspect.signature(handler).parameters) == ("self", "owner", *fields), name


def test_what_the_plan_sends_passes_the_wire_check():
    for op in all_modes_plan() + shaping_plan("netem") + shaping_plan("userspace"):
        assert wire.check(op.to_wire()) == "", op


def test_the_agent_refuses_a_batch_off_the_wire_before_changing_anything():
    applier = Applier.__new__(Applier)  # no journal, no netlink: refused before either is used
    batch = [{"op": "make_dir", "owner": "vnode:a", "path": "/nowhere/at/all"},
             {"op": "make_dir", "owner": "vnode:a", "path": "/x", "mode": 0o755}]
    with pytest.raises(OpFailed, match="make_dir: unknown mode") as failed:
        applier.apply(batch)
    assert failed.value.index == 1 and not os.path.exists("/nowhere")
    assert wire.check({"op": "bridge_make"}) == "unknown operation 'bridge_make'"
    assert wire.check({"op": "uplink", "owner": "o", "root": "eth0"}) == "uplink: missing bridge"


def render_wire() -> str:
    return json.dumps([op.to_wire() for op in all_modes_plan() + shaping_plan("netem")], indent=1,
                      sort_keys=True) + "\n"


def test_the_wire_form_matches_golden():
    """Beside plan_all_modes.txt (what the operations do, as shell): what crosses the channel."""
    golden = GOLDEN / "plan_all_modes.wire.json"
    if os.environ.get("DISTEM_REGOLD"):
        golden.write_text(render_wire())
    assert render_wire() == golden.read_text()


def test_a_matrix_with_too_many_distinct_delays_is_a_validation_error():
    from distem.errors import ValidationError
    from distem.plan.matrix import MAX_CLASSES, DeviceMatrix, check_size

    with pytest.raises(ValidationError, match=f"latencies from n0: '{MAX_CLASSES + 1} distinct delays'"):
        check_size("n0", DeviceMatrix(classes={d: d for d in range(MAX_CLASSES + 1)}))
