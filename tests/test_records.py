"""Platform documents (vplatform_info / vplatform_create, platform files) and run records (record, from_record,
diff), on fake pnodes: what would be sent is checked, nothing runs; no root."""

from __future__ import annotations

import json

import pytest
import yaml

import distem
from distem.errors import ValidationError
from distem.platform import records
from distem.testing.fake import FakePlatform, fake_platform


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "image.tar"
    path.write_bytes(b"not really a tarball: the fake agent does not extract")
    return str(path)


def build(p, image: str) -> None:
    """A platform with a bit of everything a document holds."""
    p.vnetwork("lan", "10.144.0.0/24")
    p.vnetwork("wan", "10.145.0.0/24", network_type="vxlan")
    p.vnode("x").image(image).host("a").iface("if0", "lan", output={"bandwidth": "20mbps", "latency": "10ms"},
                                              input={"loss": {"percent": 1.5}}).cpu(1, 0.5).memory(64, soft=48)
    p.vnode("y").image(image, shared=True).host("b").iface("if0", "lan").iface(
        "if1", "wan", address="10.145.0.9/24", macaddress="02:00:00:00:00:09").gateway()
    p.vnode("z").image(image, cow=True).iface("if0", "wan")  # no host on two pnodes: provisional
    p.deploy(start=False)
    p.vnodes_start(["x", "y"])
    p.set_peers_latencies(["x", "y"], [[0, 10], [5.5, 0]])
    p.vroute_complete()
    p.viface_link("y", "if1", False)
    p.at(2).latency("x", "if0", "20ms")
    p.at(3).partition(["x"], ["y", "z"])
    p.event_random_add({"type": "vnode", "vnodename": "y"}, "churn",
                       {"date": {"distribution": "uniform", "min": 1, "max": 5}}, seed=7, until=30)


def test_a_document_made_again_is_the_same_document(image):
    with fake_platform(["a", "b"]) as p, fake_platform(["a", "b"]) as q:
        build(p, image)
        doc = p.vplatform_info()
        assert json.loads(json.dumps(doc)) == doc and yaml.safe_load(yaml.safe_dump(doc)) == doc
        q.vplatform_create(json.dumps(doc))
        again = q.vplatform_info()
        assert again["id"] == q.id and {**again, "id": doc["id"]} == doc
        assert q.model.provisional == {"z"} and q.vnode_info("x")["status"] == "RUNNING"
        assert q.vifaces.loc[("x", "if0"), "output"] == "20mbit 10ms" and q.latencies.loc["y", "x"] == 5.5
        assert len(q._events.planned) == 2 and q._events.sources[0].seed == 7


@pytest.mark.parametrize("bad, words", [
    ({"vnetworks": [{"name": "lan", "address": "10.1.2.3/40"}]}, "lan"),
    ({"vnodes": {"x": {"vfilesystem": {"image": "/no/such.tar"}}}}, "no such file"),
    ({"vnodes": [{"name": "x", "status": "ASLEEP", "vfilesystem": {"image": "IMAGE"}}]}, "status"),
    ({"vnodez": []}, "did you mean 'vnodes'"),
    ({"latencies": {"x": {"nobody": 5}}}, "no such vnode"),
    ({"vnodes": {"x": {"host": "elsewhere", "vfilesystem": {"image": "IMAGE"}}}}, "not a pnode of this platform"),
])
def test_a_bad_document_is_named_and_changes_nothing(image, bad, words):
    bad = json.loads(json.dumps(bad).replace("IMAGE", image))
    with fake_platform(["a", "b"]) as p:
        with pytest.raises(ValidationError, match=words):
            p.vplatform_create(bad)
        assert p.pool.sent == [] and p.model.vnodes == {} and p.model.vnetworks == {}


def test_a_platform_file_written_by_hand(tmp_path, image):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "mine.tar").write_bytes(b"fake")
    path = tmp_path / "platform.yml"
    path.write_text("""\
vnetworks:
  - {name: lan, address: 10.144.0.0/24}
vnodes:
  a: {vfilesystem: {image: images/mine.tar}, vifaces: [{name: if0, vnetwork: lan}]}
  b: {vfilesystem: {image: images/mine.tar}, vifaces: [{name: if0, vnetwork: lan, output: {bandwidth: 10mbps}}]}
latencies: {a: {b: 25}, b: {a: 25}}
""")
    with fake_platform(["a"]) as p:
        p.vplatform_create(str(path))
        assert p.vnodes["status"].to_dict() == {"a": "RUNNING", "b": "RUNNING"}  # status: RUNNING by default
        assert p.vnode_info("a")["vfilesystem"]["image"] == str(tmp_path / "images" / "mine.tar")
        assert p.latencies.loc["a", "b"] == 25 and p.voutput_info("b", "if0") == {"bandwidth": {"rate": "10mbit"}}


def test_a_record_made_again_differs_only_in_times_and_ids(tmp_path, image):
    """Two platforms made from one document, as ``distem up`` then ``Platform.from_record`` make them: the
    same changes sent in the same order, the same document; only times and ids differ."""
    with fake_platform(["a", "b"]) as p:
        build(p, image)
        doc = p.vplatform_info()
    with fake_platform(["a", "b"]) as p:
        p.vplatform_create(doc)
        first = p.record(tmp_path / "one")
    record = records.read(first)
    assert record["platform"] == p.id and len(record["images"][image]) == 64 and record["seeds"] == [7]
    assert record["source"].startswith("pytest tests/test_records.py::")
    assert [op["operation"] for op in record["operations"]][:2] == ["apply", "apply"]  # the vnetworks
    with FakePlatform.from_record(first) as q:
        assert q.vplatform_info()["vnodes"] == record["document"]["vnodes"]
        second = q.record(tmp_path / "two")
    differences = records.diff(first, second)
    assert differences and {d.kind for d in differences} <= {"time", "id"}, [str(d) for d in differences
                                                                              if d.kind == "value"]
    (tmp_path / "two" / "platform.json").write_text(json.dumps({**doc, "latencies": {}}))
    assert [d.path for d in records.diff(first, second) if d.kind == "value"] == ["document.latencies.x.y",
                                                                                 "document.latencies.y.x"]


def test_load_platform_takes_a_file_or_a_record(tmp_path, image):
    doc = {"vnetworks": [{"name": "lan", "address": "10.144.0.0/24"}],
           "vnodes": {"a": {"vfilesystem": {"image": image}, "vifaces": [{"name": "if0", "vnetwork": "lan"}]}}}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(ValidationError, match="not valid JSON or YAML"):
        records.load_document("{not: [json")
    platform = distem.load_platform.__wrapped__ if hasattr(distem.load_platform, "__wrapped__") else None
    assert platform is None  # a plain function: Platform.from_record does the work
    with FakePlatform.from_record(tmp_path / "p.json", pnodes=["ssh=root@a"]) as p:
        assert list(p.vnodes.index) == ["a"]
