"""Routes between vnetworks, live: Distem's vnode_mode, vroute_create and vroute_complete, and p.vroutes.

The model says what each vnode's routing should be (``model/routes.py``); this part remembers
what each running vnode's network namespace holds and sends only the difference
(``plan/routes.py``), so a change takes effect at once with nothing restarted (Distem applies
routes only at boot), and a vnode that starts later gets its whole routing right after its start.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from ..errors import AgentError
from ..model import FROZEN, RUNNING, PlatformModel
from ..model.routes import RoutingState, VRoute, either, iface_on
from ..plan.routes import FRESH, routing_plan
from . import frames
from .pool import PnodePool

log = logging.getLogger(__name__)
Wire = list[dict[str, Any]]


class Routes:
    """Owns ``installed``: what each running vnode's namespace holds of its routing."""

    def __init__(self, model: PlatformModel, pool: PnodePool) -> None:
        self.model, self.pool = model, pool
        self.installed: dict[str, RoutingState] = {}

    def vnode_mode(self, name: str, gateway: bool = True) -> None:
        """Gateway mode: IPv4 forwarding on (or off) in the vnode, live if it runs, and at every start.

        Turned off, the routes through the vnode go too (automatic ones are computed again).

        Raises:
            ValidationError: unknown vnode, or ``gateway`` not a bool.
        """
        old, routes = self.model.vnode(name), dict(self.model.vroutes)
        self.model.set_gateway(name, gateway)

        def undo() -> None:
            self.model.update_vnode(old)
            self.model.restore_vroutes(routes)

        self._change(undo)

    def vroute_create(self, srcnet: str, dstnet: str, gateway: str) -> dict[str, Any]:
        """Reach ``dstnet`` from ``srcnet`` through ``gateway``, live: every vnode of ``srcnet`` (but the
        gateway) sends ``dstnet``'s traffic to the gateway's address on ``srcnet``.

        Args:
            gateway: a vnode in gateway mode with an interface on ``srcnet``, by name or by address.

        Returns:
            Distem's vroute description: networksrc, networkdst, gateway (the address), and ours:
            gatewaynode, auto, vnodes (those that follow it).

        Raises:
            ValidationError: unknown vnetwork, a gateway that is unknown, not on ``srcnet`` or not
                in gateway mode; nothing changes.

        Example::

            p.vroute_create("lan1", "lan2", "gw")   # lan1 reaches lan2 through vnode gw
        """
        routes = dict(self.model.vroutes)
        route = self.model.add_vroute(srcnet, dstnet, gateway)
        self._change(lambda: self.model.restore_vroutes(routes))
        return self.vroute_info(route)

    def vroute_complete(self) -> list[dict[str, Any]]:
        """Routes between every pair of vnetworks that gateway vnodes join, along shortest paths, live.

        Routes given with ``vroute_create`` stay; those a previous ``vroute_complete`` made are
        computed again. Only vnodes in gateway mode are gateways (Distem would pick any vnode on two
        vnetworks and turn its forwarding on).

        Example::

            p.vroute_complete()
        """
        routes = dict(self.model.vroutes)
        self.model.complete_vroutes()
        self._change(lambda: self.model.restore_vroutes(routes))
        users = self.model.vroute_users()
        return [self.vroute_info(r, users) for r in self.model.vroutes.values()]

    @property
    def frame(self) -> pd.DataFrame:
        """The routes between vnetworks: gateway and its address, the vnodes following each, where installed."""
        return frames.vroutes_frame(self.model, self.installed)

    def vroute_info(self, route: VRoute, users: Mapping[tuple[str, str], list[str]] | None = None) -> dict[str, Any]:
        """Distem's description of a vroute; ``users``: ``model.vroute_users()``, when describing many."""
        via = iface_on(self.model.vnode(route.gateway), route.srcnet)
        users = self.model.vroute_users() if users is None else users
        return {"networksrc": route.srcnet, "networkdst": route.dstnet, "gateway": str(via.address.ip) if via else None,
                "gatewaynode": route.gateway, "auto": route.auto, "vnodes": users.get((route.srcnet, route.dstnet), [])}

    # -- keeping the running vnodes' namespaces in step with the model --------------------------
    def _change(self, undo: Callable[[], None]) -> None:
        """Apply the model's new routing live; if a pnode fails, put the model back and restore it there."""
        try:
            self.sync()
        except AgentError:
            undo()
            try:
                self.sync()
            except AgentError as again:
                log.warning("routing not restored: %s", again)
            raise

    def sync(self) -> None:
        """Send each running vnode the operations from what its namespace holds to what the model wants."""
        plans: dict[str, Wire] = defaultdict(list)
        changed = {}
        for name, state in self.model.routing_states().items():
            if self.model.status.get(name) in (RUNNING, FROZEN):
                ops = routing_plan(name, self.installed.get(name, FRESH), state)
                if ops:
                    plans[self.model.vnode(name).host] += [op.to_wire() for op in ops]
                    changed[name] = state
        try:
            self.pool.apply(plans)
        except AgentError:
            for name, state in changed.items():  # a pnode may have stopped anywhere in its batch
                self.installed[name] = either(self.installed.get(name, FRESH), state)
            raise
        self.installed.update(changed)

    def at_start(self, names: Iterable[str], after_start: dict[str, Wire]) -> dict[str, Wire]:
        """``after_start`` (operations per vnode, applied once it started) followed by its whole routing."""
        states = self.model.routing_states()
        out = dict(after_start)
        for name in names:
            ops = routing_plan(name, FRESH, states[name])
            if ops:
                out[name] = out.get(name, []) + [op.to_wire() for op in ops]
        return out

    def moved(self, action: str, names: list[str]) -> None:
        """What the namespaces of vnodes that just started hold (everything); stopped ones hold nothing."""
        if action == "start":
            states = self.model.routing_states()
            self.installed.update({name: states[name] for name in names})
        elif action == "stop":
            self.forget(names)

    def forget(self, names: Iterable[str]) -> None:
        for name in names:
            self.installed.pop(name, None)
