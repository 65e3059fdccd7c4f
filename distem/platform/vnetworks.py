"""Vnetworks: a bridge on every pnode, joined across pnodes by an uplink (classical) or VXLAN."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import AgentError
from ..model import PlatformModel, parse_cidr, parse_vnetwork_opts
from ..plan import vnetwork_plan
from ..plan.deploy import VXLAN_OVERHEAD, choose_underlay
from ..wire import vnetwork_owner
from .pool import PnodePool
from .routes import Routes

log = logging.getLogger(__name__)


class VNetworks:
    """No state of its own: the vnetworks are the model's."""

    def __init__(self, model: PlatformModel, pool: PnodePool, routes: Routes) -> None:
        self.model, self.pool, self.routes = model, pool, routes

    def create(self, name: str, cidr: Any, opts: Any) -> None:
        """On every pnode, all or none.

        Raises:
            ValidationError: a bad name, range or option (nothing changed).
            AgentError: a pnode failed; what the others made is removed."""
        kind, root = parse_vnetwork_opts(name, opts)
        if len(self.pool.sessions) == 1:
            underlays = {}  # one pnode: a bridge is the whole vnetwork, whatever its type
            if kind == "vxlan":
                log.info("vnetwork %s: vxlan on a single pnode behaves as classical", name)
        else:
            underlays = {p: choose_underlay(p, self.pool.facts(p)["interfaces"], root, kind) for p in self.pool.sessions}
        mtu = min(u.mtu for u in underlays.values()) - VXLAN_OVERHEAD if underlays and kind == "vxlan" else None
        vnet = self.model.add_vnetwork(name, parse_cidr(name, cidr), kind, root, mtu)
        try:
            self.pool.apply({p: [op.to_wire() for op in vnetwork_plan(self.model.platform_id, vnet, p, underlays)]
                             for p in self.pool.sessions})
        except AgentError:
            self.pool.undo([vnetwork_owner(name)])
            self.model.remove_vnetwork(name)
            raise

    def remove(self, name: str) -> None:
        self.model.remove_vnetwork(name)
        self.pool.undo([vnetwork_owner(name)])
        self.routes.sync()  # routes to it from other vnetworks went with it
