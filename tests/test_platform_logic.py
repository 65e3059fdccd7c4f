"""The platform's own logic on fake pnodes (distem.testing.fake): what it sends, all-or-nothing
across pnodes, a lost pnode. No root, no kernel: milliseconds."""

from __future__ import annotations

import os
import random
import shutil

import pandas as pd
import pytest

from distem.errors import AgentError, ValidationError
from distem.plan.matrix import destinations, vnode_matrix_ops
from distem.testing.fake import fake_platform


@pytest.fixture
def two(tmp_path):
    image = tmp_path / "image.tar"
    image.write_bytes(b"not really a tarball: the fake agent does not extract")
    p = fake_platform(["a", "b"])
    p.vnetwork("vnet", "10.144.0.0/24")
    yield p, str(image)
    p.close()


def test_a_closed_platform_shows_nothing_running(tmp_path):
    image = tmp_path / "image.tar"
    image.write_bytes(b"fake")
    p = fake_platform(["a"])
    p.vnetwork("vnet", "10.144.0.0/24")
    p.vnode("x").image(str(image)).iface("if0", "vnet")
    p.deploy()
    assert "RUNNING" in p._repr_html_()
    p.close()
    html = p._repr_html_()
    assert "closed" in html and "RUNNING" not in html and "10.144.0.1" not in html


def describe(p, image, names_hosts):
    for name, host in names_hosts:
        p.vnode(name).image(image).iface("if0", "vnet").host(host)


def test_a_batch_failing_on_one_pnode_is_undone_on_every_pnode(two):
    p, image = two
    describe(p, image, [("x", "a"), ("y", "b")])
    p.sessions["b"].fail_next("apply", at=2)
    with pytest.raises(AgentError) as failed:
        p.deploy()
    assert failed.value.pnode == "b" and failed.value.errno == 17
    assert not p.sessions["a"].held.get("vnode:x") and not p.sessions["b"].held.get("vnode:y")
    assert ("undo_owner", {"owners": ["vnode:x"]}) in p.sessions["a"].calls
    assert list(p.model.vnodes) == [] and p.sessions["a"].containers == {}
    p.sessions["b"].calls.clear()
    assert p.deploy() == ["x", "y"]  # the description was kept: deploying again works
    assert p.vnode_info("y")["status"] == "RUNNING"


def test_a_vnode_failing_to_start_names_its_pnode_and_the_others_run(two):
    p, image = two
    describe(p, image, [("x", "a"), ("y", "b"), ("z", "b")])
    p.sessions["b"].fail_next("start", vnode="z")
    with pytest.raises(AgentError, match=r"pnode b: start on 'z' failed: z: ContainerError") as failed:
        p.deploy()
    assert failed.value.target == "z"
    assert {n: p.model.status[n] for n in "xyz"} == {"x": "RUNNING", "y": "RUNNING", "z": "READY"}


def test_a_lost_pnode_fails_the_call_naming_it_and_shows_as_lost(two):
    p, image = two
    describe(p, image, [("x", "a"), ("y", "b")])
    p.deploy()
    p.sessions["b"].lose()
    with pytest.raises(AgentError, match="pnode b: stop failed: lost the agent"):
        p.vnodes_stop(["x", "y"])
    assert p.pnodes.loc["b", "state"] == "lost" and p.model.status["x"] == "DOWN"


def test_a_vnetwork_failing_on_one_pnode_is_removed_from_all(two):
    p, _ = two
    p.sessions["a"].fail_next("apply", at=1)
    with pytest.raises(AgentError, match="pnode a: vxlan_create"):
        p.vnetwork("other", "10.145.0.0/24", network_type="vxlan")
    assert "other" not in p.model.vnetworks
    assert ("undo_owner", {"owners": ["vnetwork:other"]}) in p.sessions["b"].calls
    assert not p.sessions["a"].held.get("vnetwork:other") and not p.sessions["b"].held.get("vnetwork:other")


def test_a_changed_latency_cell_sends_only_that_change(two):
    p, image = two
    describe(p, image, [("x", "a"), ("y", "a"), ("z", "b")])
    p.deploy()
    p.set_peers_latencies(["x", "y", "z"], [[0, 10, 20], [10, 0, 30], [20, 30, 0]])
    for s in p.sessions.values():
        s.calls.clear()
    p.set_peers_latencies(["x", "y"], [[0, 15], [10, 0]])  # x->y only: 10 ms is x's no more, 15 takes its class
    sent = [op for name, s in p.sessions.items() for call, kw in s.calls if call == "apply" for op in kw["ops"]]
    assert [(op["op"], op["owner"]) for op in sent] == [("matrix_replace", "vnode:x")]
    ((minor, _, leaf),) = sent[0]["set_classes"]
    assert leaf["delay_us"] == 15_000 and sent[0]["entries"] == sent[0]["drop_entries"] == ()


def test_one_cell_of_100_vnodes_plans_its_source_only_and_a_refused_one_changes_nothing(two, monkeypatch):
    p, image = two
    names = [f"n{i}" for i in range(100)]
    describe(p, image, [(name, "ab"[i % 2]) for i, name in enumerate(names)])
    p.deploy()
    for s in p.sessions.values():
        s.calls.clear()
    rng = random.Random(0)
    p.set_peers_latencies(names, [[rng.randint(10, 59) for _ in names] for _ in names])
    assert [[c for c, _ in s.calls] for s in p.sessions.values()] == [["apply"], ["apply"]]  # a whole matrix: one batch
    model, applied = dict(p.model.latencies), dict(p._matrix.applied)
    wanted = {**model, ("n5", "n6"): 99_000}
    expected, _ = vnode_matrix_ops(p.id, p.model.vnode("n5"), "netem", applied, destinations(p.model.vnodes, wanted),
                                   fresh=False, limits_changed=False)  # what planning every source gave n5
    p.sessions["a"].calls.clear()
    p.sessions["b"].fail_next("apply")
    with pytest.raises(AgentError):
        p.set_peers_latencies(["n5", "n6"], [[0, 99], [model["n6", "n5"] / 1000, 0]])
    assert p.model.latencies == model and p._matrix.applied == applied
    p.sessions["b"].calls.clear()
    planned, plan = [], p._matrix._ops
    monkeypatch.setattr(p._matrix, "_ops", lambda vnode, *a, **kw: planned.append(vnode.name) or plan(vnode, *a, **kw))
    p.set_peers_latencies(["n5", "n6"], [[0, 99], [model["n6", "n5"] / 1000, 0]])  # n6 -> n5 is unchanged
    assert p.sessions["a"].calls == [] and [op for c, kw in p.sessions["b"].calls for op in kw["ops"]] == \
        [op.to_wire() for op in expected]
    assert planned == ["n5"] and p.model.latencies == wanted
    assert {k: v for k, v in p._matrix.applied.items() if k != ("n5", 0)} == \
        {k: v for k, v in applied.items() if k != ("n5", 0)}
    assert p._matrix.applied["n5", 0].delays[str(p.model.vnode("n6").ifaces[0].address.ip)] == 99_000


def test_bad_input_is_refused_before_any_pnode_is_called(two):
    p, image = two
    before = {name: len(s.calls) for name, s in p.sessions.items()}
    with pytest.raises(ValidationError):
        p.vnode_create("bad", {"vfilesystem": {"image": image}, "vifaces": [{"name": "if0", "vnetwork": "nowhere"}]})
    with pytest.raises(ValidationError):
        p.set_peers_latencies(["x"], [[0, 1]])
    assert {name: len(s.calls) for name, s in p.sessions.items()} == before


def test_a_speed_in_mhz_becomes_a_ratio_on_the_pnode_chosen(two):
    """Parsed once into a CpuSpec; the pnode's cpufreq maximum makes it a ratio (none: refused)."""
    p, image = two
    p.model.learn_pnode("a", {**p.sessions["a"].facts, "max_mhz": 2400})
    desc = {"host": "a", "vfilesystem": {"image": image}, "vcpu": {"corenb": 1, "val": 1200, "unit": "mhz"}}
    assert p.vnode_create("fast", desc)["vcpu"]["val"] == 0.5
    with pytest.raises(ValidationError, match="pnode b exposes no cpufreq maximum frequency"):
        p.vnode_create("slow", {**desc, "host": "b"})
    assert "slow" not in p.model.vnodes


def test_every_call_a_part_answers_is_one_of_that_part(two):
    from distem.platform.platform import Platform, _By

    p, _ = two
    bound = {name: d for name, d in vars(Platform).items() if isinstance(d, _By)}
    assert len(bound) > 10
    for name, by in bound.items():
        call = getattr(p, name)
        assert callable(call), name
        assert getattr(call, "__wrapped__", call).__self__ is getattr(p, by.part), name  # measurements: recorded


def test_each_event_goes_to_its_vnodes_pnode_and_a_failure_is_that_events_alone(two):
    p, image = two
    describe(p, image, [("x", "a"), ("y", "b")])
    p.deploy()
    p.at(0.05).latency("x", "if0", "10ms")
    p.at(0.1).latency("y", "if0", "20ms")
    p.at(0.15).down("y")
    p.at(0.2).latency("x", "if0", "30ms")
    p.sessions["a"].fail_next("apply")  # the first event on a fails there
    p.event_manager_start()
    events = p.events_wait(timeout=5)
    assert list(events.pnodes) == ["a", "b", "b", "a"]
    assert list(events.outcome) == ["error", "ok", "ok", "ok"], events.message.tolist()
    assert events.message[0].startswith("a: ") and "File exists" in events.message[0]
    assert (events.late_ms < 100).all() and set(events.attrs["clock_offsets_ms"]) == {"a", "b"}
    # the model holds what was applied: y's change and stop, x's last change
    assert p.model.vnode("x").iface("if0").output.delay_us == 30_000
    assert p.model.status["y"] == "DOWN"
    loads = [kw for op, kw in p.sessions["b"].calls if op == "timeline_load"]
    assert [entry["at"] for entry in loads[0]["entries"]] == [0.1, 0.15]


def test_a_failed_deploy_keeps_its_descriptions_and_describing_again_replaces_them(two):
    """Re-running the describing cell after a failure (or twice) replaces the interfaces; it used to add a
    second if0 and fail with "interface names must be unique in a vnode"."""
    p, image = two
    p.vnetwork("tiny", "10.145.0.0/30")  # one address for vnodes
    for name in ("y1", "y2"):
        p.vnode(name).image(image).iface("if0", "tiny")
    with pytest.raises(ValidationError) as err:
        p.deploy()
    assert "stay pending" in " ".join(err.value.__notes__)
    for name in ("y1", "y2"):  # the same cell, corrected
        p.vnode(name).image(image).iface("if0", "vnet")
    assert p.deploy() == ["y1", "y2"]
    assert p.vifaces["vnetwork"].to_dict() == {("y1", "if0"): "vnet", ("y2", "if0"): "vnet"}


def test_the_vnodes_view_fits_a_notebook(two):
    """Columns empty in every row are not shown (and named), long text is shortened, not wrapped; the data
    stay whole."""
    from distem.platform.frames import VNODE_COLUMNS

    p, image = two
    long_name = image.replace("image.tar", "busybox-" + "f" * 32 + ".tar.gz")
    shutil.copy(image, long_name)
    describe(p, long_name, [("x", "a")])
    p.deploy()
    frame = p.vnodes
    assert list(frame.columns) == VNODE_COLUMNS and frame.loc["x", "image"] == os.path.basename(long_name)
    table, note = frame._repr_html_().rsplit("<p>", 1)
    assert "not shown: gateway, cores, memory_limit, io_limit" in note  # all False or empty
    assert "memory_\u200blimit" not in table and "cpu_\u200bratio" in table  # headers wrap at underscores
    assert "f" * 32 not in table and "busybox-fff" in table and "white-space: nowrap" in table
    assert "io_\u200bread_\u200bmib" in table  # 0.0 is a reading, not nothing
    assert type(frame[["host"]]) is pd.DataFrame  # what is computed from it is a plain frame
