"""Malformed vnode descriptions, generated: each is refused with a ValidationError naming the field,
or accepted because the junk happens to be a valid value; never another exception, and a refused
one leaves nothing on the pnode. Through the whole controller (parsing, placement, resources, the
plan) on a fake pnode (distem.testing.fake), so without root."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distem.errors import ValidationError
from distem.testing.fake import fake_platform

JUNK = [None, -1, 0, "", [], {}, math.nan, math.inf, "10 parsecs", "../../etc", True, 10**12, "max", -0.5,
        {"x": 1}, [1, 2], "0", "1e400", "\x00", "a" * 300]


def valid(image: str) -> dict:
    limits = {"bandwidth": "10mbps", "latency": {"delay": "5ms", "jitter": "1ms"}, "loss": {"percent": 1}}
    return {"host": "a", "mode": "normal",
            "vfilesystem": {"image": image, "shared": True, "cow": False},
            "vifaces": [{"name": "if0", "vnetwork": "vnet", "address": "10.144.0.9/24",
                         "macaddress": "02:00:00:00:00:09", "default": True, "output": limits,
                         "input": {"bandwidth": "5mbps"}}],
            "vcpu": {"corenb": 1, "val": 0.5, "unit": "ratio"},
            "vmem": {"mem": 64, "swap": 16}}


def paths(desc, prefix=()):
    """Every place in ``desc`` a value sits (dict keys, list indexes)."""
    items = desc.items() if isinstance(desc, dict) else enumerate(desc) if isinstance(desc, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def replaced(desc, path, junk):
    out = copy.deepcopy(desc)
    where = out
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = copy.deepcopy(junk)
    return out


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    image = tmp_path_factory.mktemp("fuzz") / "image.tar"
    image.write_bytes(b"the fake agent does not extract it")
    p = fake_platform(["a"])
    p.vnetwork("vnet", "10.144.0.0/24")
    yield p, str(image)
    p.close()


NAMES = itertools.count()
PATHS = list(paths(valid("IMAGE")))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(JUNK)), min_size=1, max_size=2))
def test_a_malformed_description_is_refused_or_valid_never_another_error(platform, changes):
    p, image = platform
    desc = valid(image)
    for path, junk in changes:
        try:
            desc = replaced(desc, path, junk)
        except (KeyError, IndexError, TypeError):  # an earlier change replaced a parent of this path
            pass
    name = f"v{next(NAMES)}"
    held = {owner for owner, ops in p.sessions["a"].held.items() if ops}
    try:
        p.vnode_create(name, desc)
    except ValidationError as exc:
        assert exc.field and str(exc)
        assert {owner for owner, ops in p.sessions["a"].held.items() if ops} == held  # nothing was made
        assert name not in p.model.vnodes
    else:
        p.vnode_remove(name)


@pytest.mark.parametrize("field, junk, says", [
    (("vifaces",), 0, "expected a list of interface dicts"),
    (("vifaces",), "", "expected a list of interface dicts"),
    (("vifaces", 0, "output", "latency", "delay"), 10**12, "at most 60s"),
    (("vfilesystem", "image"), "/", "not a file"),
])
def test_the_junk_fuzzing_found_is_refused(platform, field, junk, says):
    p, image = platform
    with pytest.raises(ValidationError, match=says):
        p.vnode_create(f"v{next(NAMES)}", replaced(valid(image), field, junk))
