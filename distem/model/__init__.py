"""Layer 1, the model: pure Python values and rules, no I/O.

``entities`` holds the frozen values, ``descriptions`` turns Distem's dicts into
validated requests, ``platform_model`` keeps a platform consistent, ``units``
parses quantities, ``names`` checks and derives names.
"""

from .descriptions import VNodeRequest, parse_cidr, parse_filesystem, parse_iface, parse_vnetwork_opts, parse_vnode
from .entities import DOWN, FROZEN, INIT, READY, RUNNING, PNode, SSHKey, SSHKeys, VFilesystem, VIface, VNetwork, VNode
from .platform_model import PlatformModel

__all__ = [
    "PNode", "VNetwork", "VNode", "VIface", "VFilesystem", "SSHKey", "SSHKeys", "PlatformModel", "VNodeRequest",
    "parse_vnode", "parse_iface", "parse_filesystem", "parse_cidr", "parse_vnetwork_opts",
    "INIT", "READY", "RUNNING", "DOWN", "FROZEN",
]
