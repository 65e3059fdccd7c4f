"""The events model (pure): Distem's resources and traces, seeded generators, values, contradictions."""

from __future__ import annotations

import pytest

from distem.errors import ValidationError
from distem.model.events import (
    Event, Target, check_contradictions, churn_action, link_change, parse_resource, parse_trace, parse_trace_string,
    random_schedule,
)
from distem.model.links import LinkLimits

VIFACE = {"type": "viface", "vnodename": "a", "vifacename": "if0", "viface_direction": "output"}


def test_resources_as_distem_names_them():
    assert parse_resource(VIFACE, "latency") == Target("viface", "a", "if0", "output")
    assert parse_resource({"type": "viface", "vnodename": "a", "vifacename": "if0"}, "loss").direction is None
    assert parse_resource({"type": "vnode", "vnodename": "a"}, "churn") == Target("vnode", "a")
    assert parse_resource({"type": "soft_limit", "vnodename": "a"}, "memory_limit").detail == "soft_limit"
    disk = parse_resource({"type": "read_limit", "vnodename": "a", "device": "/dev/sda"}, "disk_throttling")
    assert (disk.kind, disk.device) == ("disk", "/dev/sda")


@pytest.mark.parametrize("resource, event_type, field", [
    ({"type": "vnode", "vnodename": "a"}, "latency", "event_type"),
    ({"type": "router", "vnodename": "a"}, "churn", "resource.type"),
    ({"type": "viface", "vnodename": "a"}, "latency", "resource.vifacename"),
    ({**VIFACE, "viface_direction": "sideways"}, "latency", "resource.viface_direction"),
    ({"type": "vnode"}, "churn", "resource.vnodename"),
    ({"type": "vnode", "vnodename": "a", "colour": "red"}, "churn", "resource.colour"),
    ({"type": "read_limit", "vnodename": "a"}, "disk_throttling", "resource.device"),
])
def test_bad_resources_name_the_field(resource, event_type, field):
    with pytest.raises(ValidationError) as info:
        parse_resource(resource, event_type)
    assert info.value.field == field


def test_traces_from_dicts_strings_and_pairs_come_sorted():
    assert parse_trace({2.5: 10, 1: 40, 0: 10}) == [(0.0, 10), (1.0, 40), (2.5, 10)]
    assert parse_trace_string("# t v\n0 10\n\n1.5 down  # comment\n") == [(0.0, "10"), (1.5, "down")]
    assert parse_trace([(3, "up"), (1, "down")]) == [(1.0, "down"), (3.0, "up")]
    with pytest.raises(ValidationError, match="trace line 2"):
        parse_trace_string("0 10\n1 2 3\n")
    with pytest.raises(ValidationError):
        parse_trace({-1: 10})


def test_a_seed_gives_the_same_schedule_and_another_seed_another():
    target = Target("viface", "a", "if0", "output")
    generator = {"date": {"distribution": "exponential", "rate": 2}, "value": {"distribution": "uniform", "min": 1, "max": 50}}
    one = random_schedule(target, "latency", generator, None, 7, 60)
    assert one == random_schedule(target, "latency", generator, None, 7, 60)
    assert one != random_schedule(target, "latency", generator, None, 8, 60)
    assert 60 < len(one) < 200 and all(0 < e.at <= 60 for e in one)
    assert all(isinstance(e.value, int) and 1 <= e.value <= 50 for e in one)  # Distem rounds to integers >= 1
    assert [e.at for e in one] == sorted(e.at for e in one)
    assert one[0].source == "random seed=7"


def test_churn_alternates_from_its_first_value_with_both_distributions():
    target = Target("vnode", "a")
    generator = {"availability": {"distribution": "uniform", "min": 10, "max": 10},
                 "unavailability": {"distribution": "uniform", "min": 2, "max": 2}}
    events = random_schedule(target, "churn", generator, None, 1, 40)
    assert [(e.at, e.value) for e in events] == [(10, "down"), (12, "up"), (22, "down"), (24, "up"), (34, "down"),
                                                 (36, "up")]
    weibull = {"date": {"distribution": "weibull", "scale": 5, "shape": 1.5}}
    assert random_schedule(target, "churn", weibull, "freeze", 3, 30)[1].value == "unfreeze"


@pytest.mark.parametrize("generator, field", [
    ({"date": {"distribution": "normal", "mu": 1}}, "generator.date.distribution"),
    ({"date": {"distribution": "uniform", "min": 5, "max": 1}}, "generator.date.max"),
    ({"date": {"distribution": "exponential", "lambda": 1}}, "generator.date.lambda"),
    ({"date": {"distribution": "exponential", "rate": 0}}, "generator.date"),
    ({"value": {"distribution": "exponential", "rate": 1}}, "generator"),
])
def test_bad_generators_name_the_field(generator, field):
    with pytest.raises(ValidationError) as info:
        random_schedule(Target("viface", "a", "if0"), "latency", generator, None, 1, 10)
    assert info.value.field == field


def test_a_generator_too_dense_for_its_horizon_is_refused():
    dense = {"date": {"distribution": "uniform", "min": 0, "max": 0.0001}, "value": {"distribution": "uniform", "min": 1, "max": 2}}
    with pytest.raises(ValidationError, match="too close"):
        random_schedule(Target("viface", "a", "if0"), "latency", dense, None, 1, 1000)


def test_link_values_bare_as_distem_reads_them_and_relative():
    now = LinkLimits(rate_bps=100_000_000, delay_us=10_000, jitter_us=1000, loss_ppm=20_000)
    assert link_change("f", "bandwidth", 10, now) == {"bandwidth": {"rate": "10000000bit"}}  # bare: Mbit/s
    assert link_change("f", "bandwidth", "50%", now) == {"bandwidth": {"rate": "50000000bit"}}
    assert link_change("f", "bandwidth", "max", now) == {"bandwidth": None}
    assert link_change("f", "latency", 40, now) == {"latency": {"delay": "40000us", "jitter": "1000us"}}  # bare: ms
    assert link_change("f", "latency", "+20ms", now)["latency"]["delay"] == "30000us"
    assert link_change("f", "latency", "-5ms", now)["latency"]["delay"] == "5000us"
    assert link_change("f", "latency", "200%", now)["latency"]["delay"] == "20000us"
    assert link_change("f", "jitter", "3ms", now) == {"latency": {"delay": "10000us", "jitter": "3000us"}}
    assert link_change("f", "loss", 5, now) == {"loss": {"percent": 5.0}}  # bare: percent
    assert link_change("f", "loss", "+3", now) == {"loss": {"percent": 5.0}}
    with pytest.raises(ValidationError, match="below zero"):
        link_change("f", "latency", "-20ms", now)
    with pytest.raises(ValidationError, match="rate to start from"):
        link_change("f", "bandwidth", "+10mbit", None)
    with pytest.raises(ValidationError):
        link_change("f", "latency", "soon", now)


def test_churn_values_follow_the_vnode_status():
    assert churn_action("churn", "down", "RUNNING") == "stop"
    assert churn_action("churn", "up", "DOWN") == "start"
    with pytest.raises(ValidationError, match="is DOWN then"):
        churn_action("churn", "down", "DOWN")
    with pytest.raises(ValidationError, match="churn takes"):
        churn_action("churn", "sideways", "RUNNING")


def test_contradicting_events_at_one_instant_are_named():
    target = Target("viface", "a", "if0", "output")
    check_contradictions([Event(1, target, "latency", 10), Event(1, target, "latency", 10),
                          Event(1, target, "loss", 5)])
    with pytest.raises(ValidationError, match="contradicts t=1 s a.if0 output latency 10"):
        check_contradictions([Event(1, target, "latency", 10), Event(1, target, "latency", 20)])
