"""A run's record: what the platform was, where and with what it ran, every change sent, the events as
applied and the measurements taken; one directory, written, read back, compared, replayed.

    record.json        the platform's id, when, the notebook or test it ran from, software versions,
                       each pnode's kernel, capabilities and delay backend, the images' sha256, the seeds,
                       the measurements' files
    platform.json      ``vplatform_info()``: the platform document (``distem.model.document``)
    operations.jsonl   every change sent to a pnode: when, how long it took, the operation, its arguments
    events.csv         ``p.events`` of the last run of the event manager, when one ran
    metrics.csv.gz     ``p.metrics``, when the monitor sampled
    measurements/      each measurement taken (measure_latencies, compare_latencies, ping, measure_throughput)

``Platform.from_record(path)`` brings the same platform up again; ``diff(a, b)`` (``distem diff``) says
what differs between two records, the times and the platforms' ids apart.
"""

from __future__ import annotations

import json
import os
import platform as python_platform
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..errors import ValidationError
from ..model import PlatformModel
from ..model.document import document
from ..model.events import Target
from .events import Events
from .image_cache import ImageCache
from .pool import PnodePool

RECORD, DOCUMENT, OPERATIONS = "record.json", "platform.json", "operations.jsonl"
PACKAGES = ("distem", "pyroute2", "lxc", "execnet", "pandas", "numpy", "networkx", "ortools")
TIME_KEYS = frozenset({"t", "s", "opened", "written", "at_written", "took"})  # what differs between any two runs


def default_records_dir() -> Path:
    """Where the command line keeps records: ``$DISTEM_RECORDS``, else ~/.local/share/distem/records."""
    return Path(os.environ.get("DISTEM_RECORDS") or Path.home() / ".local" / "share" / "distem" / "records")


def run_source() -> str:
    """What this run is: the pytest test, the notebook, or the command."""
    test = os.environ.get("PYTEST_CURRENT_TEST")
    if test:
        return f"pytest {test.rsplit(' ', 1)[0]}"
    notebook = os.environ.get("JPY_SESSION_NAME")  # the notebook's path, set by Jupyter for its kernel
    if notebook:
        return f"notebook {notebook}"
    return " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": sys.version.split()[0], "os": python_platform.platform()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


@dataclass
class Measurement:
    t: float
    kind: str  # the call: measure_latencies, compare_latencies, ping, measure_throughput
    args: dict[str, Any]
    file: str


class Records:
    """Owns the measurements taken (the calls' results, kept for the record) and what the run is."""

    def __init__(self, model: PlatformModel, pool: PnodePool, images: ImageCache, events: Events,
                 backend: Any) -> None:
        self.model, self.pool, self.images, self.events, self.backend = model, pool, images, events, backend
        self.source = run_source()
        self.opened = time.time()
        self.extra: dict[str, Any] = {}  # more fields of record.json (the pytest plugin's test and outcome)
        self.taken: list[tuple[Measurement, pd.DataFrame | pd.Series]] = []

    def measured(self, kind: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                 result: pd.DataFrame | pd.Series) -> None:
        named = {**{f"arg{i}": _plain(a) for i, a in enumerate(args)}, **{k: _plain(v) for k, v in kwargs.items()}}
        file = f"measurements/{len(self.taken) + 1:03d}-{kind}.csv"
        self.taken.append((Measurement(time.time(), kind, named, file), result.copy()))

    def document(self) -> dict[str, Any]:
        random = [{"target": {k: v for k, v in asdict(s.target).items() if v not in ("", None)}, "type": s.type,
                   "generator": s.generator, "first_value": s.first_value, "seed": s.seed, "until": s.until}
                  for s in self.events.sources]
        return document(self.model, self.events.planned, random)

    def summary(self) -> dict[str, Any]:
        pnodes = {}
        for name, session in self.pool.sessions.items():
            facts = dict(session.facts)
            pnodes[name] = {"kernel": facts.get("kernel"), "cores": facts.get("cores"),
                            "memory": facts.get("memory"), "lxc": facts.get("lxc"),
                            "cgroups": facts.get("cgroups"), "capabilities": facts.get("capabilities"),
                            "backend": self.backend(name), "spec": self.model.pnodes[name].spec}
        images = sorted({v.filesystem.image for v in self.model.vnodes.values()})
        seeds = sorted({s.seed for s in self.events.sources}
                       | ({int(e.source.split("=")[1]) for e in self.events.run.events
                           if e.source.startswith("random seed=")} if self.events.run else set()))
        return {"platform": self.model.platform_id, "source": self.source, "opened": self.opened,
                "versions": versions(), "pnodes": pnodes, "images": {path: self.images.digest(path) for path in images},
                "seeds": seeds, "measurements": [asdict(m) for m, _ in self.taken]}

    def write(self, directory: str | os.PathLike[str], events: pd.DataFrame | None = None,
              metrics: pd.DataFrame | None = None) -> Path:
        """The record of the run so far, in ``directory`` (made; what it held of an earlier record is replaced)."""
        out = Path(directory)
        (out / "measurements").mkdir(parents=True, exist_ok=True)
        summary = {**self.summary(), **self.extra, "written": time.time()}
        _write_json(out / DOCUMENT, self.document())
        with open(out / OPERATIONS, "w") as f:
            for entry in self.pool.sent:
                f.write(json.dumps(entry, default=_plain) + "\n")
        for measurement, result in self.taken:
            result.to_csv(out / measurement.file)
        for name, frame in (("events.csv", events), ("metrics.csv.gz", metrics)):
            if frame is not None and len(frame):
                frame.to_csv(out / name)
        _write_json(out / RECORD, summary)
        return out


def load_document(source: str | os.PathLike[str] | Mapping[str, Any], fmt: str = "JSON") -> dict[str, Any]:
    """A platform document from a dict, JSON or YAML text (``fmt``: Distem's argument; YAML reads both),
    or a file (a record's directory: its platform.json). Relative image paths in a file are relative
    to the file."""
    if isinstance(source, Mapping):
        return dict(source)
    if str(fmt).upper() not in ("JSON", "YAML"):
        raise ValidationError("format", fmt, "expected 'JSON' or 'YAML'")
    text, base = str(source), None
    path = Path(text)
    if "\n" not in text and len(text) < 4096 and (path.is_file() or path.is_dir()):
        path = path / DOCUMENT if path.is_dir() else path
        text, base = path.read_text(), path.parent
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError("platform document", str(source)[:80], f"not valid JSON or YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ValidationError("platform document", str(source)[:80], "expected a mapping at its top")
    if base is not None:
        doc["_base"] = str(base)
    return doc


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A record directory: its record.json, with its platform document under 'document' and its
    operations under 'operations'."""
    root = Path(path)
    if not (root / RECORD).is_file():
        raise ValidationError("record", str(path), f"no {RECORD} there: not a record directory")
    record = json.loads((root / RECORD).read_text())
    record["document"] = json.loads((root / DOCUMENT).read_text())
    with open(root / OPERATIONS) as f:
        record["operations"] = [json.loads(line) for line in f if line.strip()]
    return record


@dataclass(frozen=True)
class Difference:
    path: str
    a: Any
    b: Any
    kind: str  # "time", "id" (the platform's id, and what is named after it), or "value"

    def __str__(self) -> str:
        return f"{self.path}: {self.a!r} -> {self.b!r}" + ("" if self.kind == "value" else f"  ({self.kind})")


def diff(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> list[Difference]:
    """What differs between two records: every field of the record and the platform document, the platform's
    id replaced by <id> where it is part of a name; and the changes sent, in order, each as its pnode, its
    operation and the operations of its batch (their arguments follow from the document and the pnodes)."""
    one, two = ({**r, "operations": [_sent(op) for op in r["operations"]]} for r in (read(a), read(b)))
    flat_a, flat_b = _flatten(one, one["platform"]), _flatten(two, two["platform"])
    out = []
    for key in sorted(set(flat_a) | set(flat_b), key=_natural):
        va, vb = flat_a.get(key, "(absent)"), flat_b.get(key, "(absent)")
        if va != vb:
            last = key.rsplit(".", 1)[-1]
            kind = "time" if last in TIME_KEYS else "id" if last in ("platform", "id") else "value"
            out.append(Difference(key, va, vb, kind))
    return out


def _sent(entry: Mapping[str, Any]) -> dict[str, Any]:
    args = entry.get("args", {})
    return {"t": entry.get("t"), "s": entry.get("s"), "pnode": entry.get("pnode"), "operation": entry.get("operation"),
            **({"ops": [op.get("op") for op in args["ops"]]} if isinstance(args, Mapping) and "ops" in args else {}),
            **({"names": args["names"]} if isinstance(args, Mapping) and "names" in args else {})}


def _flatten(value: Any, platform_id: str, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, platform_id, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, platform_id, f"{prefix}[{i}]"))
        return out
    if isinstance(value, str) and platform_id in value and prefix.rsplit(".", 1)[-1] not in ("platform", "id"):
        value = value.replace(platform_id, "<id>")
    return {prefix: value}


def _natural(key: str) -> list[Any]:
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _plain(value: Any) -> Any:
    """A JSON-able form of a call's argument or an operation's field."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Target):
        return asdict(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return f"({len(value)} bytes)"
    return str(value)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=_plain) + "\n")
