"""The seed's ``vnodes_list.yml`` (Distem's Alevin walkthrough) as Distem vnode descriptions.

    - name: node0            becomes    {'vfilesystem': {'image': IMAGE, 'shared': True},
      bandwidth: "3000mbps"               'vifaces': [{'name': 'if0', 'vnetwork': 'testnet',
      cpu: 1                                           'output': {'bandwidth': {'rate': '3000mbps'}}}],
                                          'vcpu': {'corenb': 1, 'val': 1, 'unit': 'ratio'}}

as the walkthrough's script does (``vcpu_create(name, 1, 'ratio', cpu)`` when
cpu > 0). Beyond the seed: ``memory`` (a hard limit, MB or "512M") and ``host``.
"""

from __future__ import annotations

from typing import Any

from ...errors import ValidationError
from .demand import request_for_placement

__all__ = ["vnodes_from_list"]

_KEYS = {"name", "bandwidth", "cpu", "memory", "host"}


def vnodes_from_list(entries: object, image: str | None = None, vnetwork: str = "testnet", iface: str = "if0",
                     shared: bool = True, field: str = "vnodes list") -> dict[str, dict[str, Any]]:
    """``{name: description}`` in the list's order, each checked as ``vnode_create`` would. Without an
    ``image``, the descriptions can be placed, and need one ('vfilesystem': {'image': ...}) to be created.

    Raises:
        ValidationError: not a list of ``{name, bandwidth, cpu}``, a duplicate name, or a bad value.
    """
    if not isinstance(entries, list):
        raise ValidationError(field, entries, "expected a list of {name: ..., bandwidth: ..., cpu: ...}")
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        where = f"{field}[{i}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise ValidationError(where, entry, "expected {name: ..., bandwidth: ..., cpu: ...}")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise ValidationError(where, unknown[0], f"unknown key; allowed: {', '.join(sorted(_KEYS))}")
        name = str(entry["name"])
        if name in out:
            raise ValidationError(f"{where}.name", name, "each vnode appears once in the list")
        cpu = entry.get("cpu", 0)
        if isinstance(cpu, bool) or not isinstance(cpu, int) or cpu < 0:
            raise ValidationError(f"{where}.cpu", cpu, "expected a whole number of cores (0: no vcpu)")
        viface: dict[str, Any] = {"name": iface, "vnetwork": vnetwork}
        if entry.get("bandwidth") is not None:
            viface["output"] = {"bandwidth": {"rate": entry["bandwidth"]}}
        fs = {"image": image, "shared": shared} if image is not None else {"shared": shared}
        desc: dict[str, Any] = {"vfilesystem": fs, "vifaces": [viface]}
        if cpu > 0:
            desc["vcpu"] = {"corenb": cpu, "val": 1, "unit": "ratio"}
        if entry.get("memory") is not None:
            desc["vmem"] = {"hard_limit": entry["memory"]}
        if entry.get("host") is not None:
            desc["host"] = entry["host"]
        request_for_placement(name, desc)  # vnode_create's checks, reported on this entry's name
        out[name] = desc
    return out
