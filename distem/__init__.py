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
"""

from . import images
from .errors import (AgentError, AlreadyExistsError, CommandError, DistemError, FidelityWarning, MappingError,
                     NotFoundError, ValidationError)
from .model import PNode
from .platform import Platform
from .platform.bootstrap import bootstrap
from .platform.placement import place, plot_physical_topology, plot_virtual_topology
from .platform.topology_files import load_physical_topo, load_vnodes_yaml

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # ``distem.widgets`` after a bare ``import distem``, without loading ipydatagrid for everyone
    if name == "widgets":
        import importlib

        return importlib.import_module(".widgets", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Platform", "PNode", "bootstrap", "images",
    "load_physical_topo", "load_vnodes_yaml", "place", "plot_physical_topology", "plot_virtual_topology",
    "DistemError", "ValidationError", "NotFoundError", "AlreadyExistsError", "CommandError", "MappingError",
    "AgentError", "FidelityWarning", "widgets",
]
