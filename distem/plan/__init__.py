"""Layer 2, the plan: the model turned into per-pnode operations (pure, golden-tested).

``ops`` defines the operations, ``paths`` where things live on a pnode, and
``deploy`` builds the plans for vnetworks, filesystems and containers.
"""

from .deploy import Underlay, lxc_config, vnetwork_plan, vnodes_plan
from .ops import Op, Plan
from .paths import PnodePaths

__all__ = ["Op", "Plan", "PnodePaths", "Underlay", "lxc_config", "vnetwork_plan", "vnodes_plan"]
