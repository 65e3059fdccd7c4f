"""Reading and writing the placement's files: physical topologies (DOT, YAML), the seed's vnodes list, DOT out.

The only I/O of placement: everything else is in ``distem.model.placement``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import networkx as nx
import yaml

from ..errors import ValidationError
from ..model.placement import physical_topology, topology_from_data, topology_from_dot, vnodes_from_list

__all__ = ["load_physical_topo", "load_vnodes_yaml", "write_text"]

Source: TypeAlias = "str | os.PathLike[str] | nx.Graph | Mapping[str, Any]"
_YAML = (".yml", ".yaml")


def _read(field: str, path: str | os.PathLike[str], what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ValidationError(field, str(path), f"cannot be read ({exc.strerror}); give {what}") from None


def _yaml(field: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(field, text[:60], f"not valid YAML ({exc})") from None


def load_physical_topo(source: Source) -> nx.Graph:
    """A physical topology from a DOT file (Distem's: pnodes with ``ip`` and ``cpu``, links with
    ``bandwidth``), a YAML file (``pnodes``/``switches``/``links``), DOT text, the YAML's data as a
    dict, or a networkx graph. See ``distem.model.placement.topology`` for the attributes.

    Raises:
        ValidationError: unreadable, not DOT/YAML, or a bad attribute (the node or link is named).
    """
    what = "a DOT (.dot/.gv) or YAML (.yml/.yaml) file, DOT text, or a networkx graph"
    if isinstance(source, nx.Graph):
        return physical_topology(source)
    if isinstance(source, Mapping):
        return topology_from_data(source)
    if isinstance(source, str) and "{" in source and source.lstrip().split(None, 1)[0].lower() in ("graph", "strict"):
        return topology_from_dot(source)
    if not isinstance(source, (str, os.PathLike)):
        raise ValidationError("physical topology", source, f"expected {what}")
    text = _read("physical topology", source, what)
    if str(source).lower().endswith(_YAML):
        return topology_from_data(_yaml(str(source), text), field=str(source))
    return topology_from_dot(text, field=str(source))


def load_vnodes_yaml(path: str | os.PathLike[str], image: str | os.PathLike[str] | None = None,
                     vnetwork: str = "testnet", iface: str = "if0", shared: bool = True) -> dict[str, dict[str, Any]]:
    """The seed's ``vnodes_list.yml`` (``[{name, bandwidth, cpu}, ...]``) as Distem descriptions
    ``{name: desc}``: each vnode gets ``image`` (placing needs none; creating does), one interface ``iface``
    on ``vnetwork`` whose output is limited to its ``bandwidth``, and, when ``cpu`` > 0, a vcpu of that
    many cores.

    Raises:
        ValidationError: unreadable, not YAML, or a bad entry (its index and key are named).
    """
    text = _read(str(path), path, "a YAML list of {name, bandwidth, cpu}")
    return vnodes_from_list(_yaml(str(path), text), None if image is None else str(image), vnetwork, iface, shared,
                            field=str(path))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise ValidationError("path", str(path), f"cannot be written ({exc.strerror})") from None
