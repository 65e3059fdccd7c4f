"""Distem's ``vplatform_info`` / ``vplatform_create``: the whole platform as one document, out and in.

The document's shape is ``distem.model.document``'s. ``create`` checks the whole document first
(nothing changes on a bad one), then makes it in one pass: vnetworks, every vnode in one batch per
pnode, the matrix, routes, partition and links, the starts, the schedule (not started). A failure
half-way removes what it made.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import images
from ..errors import AgentError, ValidationError
from ..model import FROZEN, PlatformModel
from ..model.document import parse_document
from .events import Events, RandomSource
from .links import Links
from .matrix import Matrix
from .records import load_document
from .routes import Routes
from .vnetworks import VNetworks
from .vnodes import VNodes

log = logging.getLogger(__name__)
BUILTIN = "builtin:"  # an image a platform file names instead of a path: builtin:busybox, builtin:debian:RELEASE


def resolve_images(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with each vnode's image a path: ``builtin:...`` built (cached), a relative path taken
    from the directory of the file it came from."""
    base = doc.pop("_base", None)
    vnodes = doc.get("vnodes")
    entries = vnodes.values() if isinstance(vnodes, Mapping) else (vnodes or [])
    for entry in entries:
        fs = entry.get("vfilesystem") if isinstance(entry, Mapping) else None
        image = fs.get("image") if isinstance(fs, Mapping) else None
        if isinstance(image, str) and image.startswith(BUILTIN):
            fs["image"] = str(_builtin(image[len(BUILTIN):]))
        elif isinstance(image, str) and base and "://" not in image and not os.path.isabs(image):
            fs["image"] = str(Path(base) / image)
    return doc


def _builtin(name: str) -> Path:
    if name == "busybox":
        return images.busybox()
    if name.startswith("debian"):
        return images.debian(name.split(":", 1)[1] if ":" in name else "bookworm")
    raise ValidationError("vfilesystem.image", BUILTIN + name, "builtin images: builtin:busybox, builtin:debian:RELEASE")


class VPlatform:
    """No state of its own: it reads and drives the other parts."""

    def __init__(self, model: PlatformModel, vnetworks: VNetworks, vnodes: VNodes, matrix: Matrix, routes: Routes,
                 links: Links, events: Events) -> None:
        self.model, self.vnetworks, self.vnodes, self.matrix = model, vnetworks, vnodes, matrix
        self.routes, self.links, self.events = routes, links, events

    def create(self, source: Any, fmt: str = "JSON") -> None:
        """Make the document's platform here (this platform's pnodes: a vnode's 'host' must be one of them).

        Raises:
            ValidationError: a bad document, named, before anything changes.
            AgentError: a pnode failed; what was made is removed.
        """
        doc = parse_document(resolve_images(load_document(source, fmt)))
        pnodes = set(self.model.pnodes)
        for request in doc.vnodes:
            if request.host is not None and request.host not in pnodes:
                raise ValidationError(f"{request.name}.host", request.host, f"not a pnode of this platform (its "
                                      f"pnodes: {', '.join(sorted(pnodes))}); leave 'host' out to let it choose")
        clash = sorted({r.name for r in doc.vnodes} & set(self.model.vnodes)
                       | {v.name for v in doc.vnetworks} & set(self.model.vnetworks))
        if clash:
            raise ValidationError("platform document", clash[0], "a vnode or vnetwork of this name exists already")
        made_networks: list[str] = []
        made_vnodes: list[str] = []
        try:
            for net in doc.vnetworks:
                self.vnetworks.create(net.name, str(net.cidr) if net.cidr else "",
                                      {"network_type": net.network_type,
                                       **({"root_interface": net.root_interface} if net.root_interface else {})})
                made_networks.append(net.name)
            made_vnodes = [v.name for v in self.vnodes.create(list(doc.vnodes))]
            if doc.latencies:
                self.matrix.set_cells(dict(doc.latencies))
            for src, dst, gateway in doc.vroutes:
                self.routes.vroute_create(src, dst, gateway)
            if doc.complete_routes:
                self.routes.vroute_complete()
            if doc.partition:
                self.links.partition(*doc.partition)
            for vnode, iface in doc.links_down:
                self.links.link(vnode, iface, False)
            status = doc.status or {}
            started = [n for n in made_vnodes if status.get(n) != "READY"]
            if started:
                self.vnodes.lifecycle("start", started)
            for action, wanted in (("freeze", FROZEN), ("stop", "DOWN")):
                names = [n for n in started if status.get(n) == wanted]
                if names:
                    self.vnodes.lifecycle(action, names)
        except (ValidationError, AgentError):
            self._remove(made_vnodes, made_networks)
            raise
        self.events.planned += list(doc.planned)
        self.events.sources += [RandomSource(r["target"], r["type"], r["generator"], r.get("first_value"), r["seed"],
                                        r.get("until")) for r in doc.random]

    def _remove(self, vnodes: list[str], vnetworks: list[str]) -> None:
        try:
            if vnodes:
                self.vnodes.remove(vnodes)
            for name in reversed(vnetworks):
                self.vnetworks.remove(name)
        except AgentError as exc:
            log.warning("removing what vplatform_create made: %s", exc)
