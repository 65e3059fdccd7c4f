"""distem: emulate distributed platforms — LXC vnodes on degraded virtual networks — from Jupyter and pytest.

    import distem
    with distem.Platform() as p:
        p.vnetwork("vnet", "10.144.0.0/24")
        for i in range(3):
            p.vnode(f"n{i}").image(distem.images.busybox()).iface("if0", "vnet")
        p.deploy()
        p.execute("hostname")

Layers (data flows one way): ``model`` -> ``plan`` -> ``agent`` (on each pnode)
-> ``platform`` -> ``frontends``.

The names below load on first use (``distem.Platform`` brings pandas and pyroute2): the pytest plugin,
loaded in every pytest session where distem is installed, costs nothing to suites that do not use it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (AgentError, AlreadyExistsError, CommandError, DistemError, FidelityWarning, MappingError,
                     NotFoundError, ValidationError)

__version__ = "0.1.0"

_LAZY = {  # name -> the module that defines it
    "Platform": ".platform", "PNode": ".model", "bootstrap": ".platform.bootstrap", "images": ".images",
    "place": ".platform.placement", "plot_physical_topology": ".platform.placement",
    "plot_virtual_topology": ".platform.placement", "load_physical_topo": ".platform.topology_files",
    "load_vnodes_yaml": ".platform.topology_files", "widgets": ".widgets",
}

if TYPE_CHECKING:
    from . import images, widgets
    from .model import PNode
    from .platform import Platform
    from .platform.bootstrap import bootstrap
    from .platform.placement import place, plot_physical_topology, plot_virtual_topology
    from .platform.topology_files import load_physical_topo, load_vnodes_yaml


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if name in ("images", "widgets") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_platform(source: Any, **kwargs: Any) -> Platform:
    """A platform made from a platform file (YAML or JSON), a record directory or a document dict
    (``Platform.from_record``); ``kwargs`` go to ``Platform``."""
    from .platform import Platform

    return Platform.from_record(source, **kwargs)


__all__ = [
    "Platform", "PNode", "bootstrap", "images", "load_platform",
    "load_physical_topo", "load_vnodes_yaml", "place", "plot_physical_topology", "plot_virtual_topology",
    "DistemError", "ValidationError", "NotFoundError", "AlreadyExistsError", "CommandError", "MappingError",
    "AgentError", "FidelityWarning", "widgets",
]
