"""Routes between vnetworks, live: Distem's vnode_mode, vroute_create and vroute_complete, and p.vroutes.

The model says what each vnode's routing should be (``model/routes.py``); the platform remembers
what each running vnode's network namespace holds and sends only the difference
(``plan/routes.py``), so a change takes effect at once with nothing restarted (Distem applies
routes only at boot), and a vnode that starts later gets its whole routing right after its start.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import AgentError
from ..model import FROZEN, RUNNING
from ..model.routes import VRoute, either, iface_on
from ..plan.routes import FRESH, routing_plan
from . import frames

if TYPE_CHECKING:
    from .platform import Platform

    _Base = Platform
else:
    _Base = object

log = logging.getLogger(__name__)
Wire = list[dict[str, Any]]


class RouteCalls(_Base):
    def vnode_mode(self, name: str, gateway: bool = True) -> dict[str, Any]:
        """Gateway mode: IPv4 forwarding on (or off) in the vnode, live if it runs, and at every start.

        Turned off, the routes through the vnode go too (automatic ones are computed again).

        Raises:
            ValidationError: unknown vnode, or ``gateway`` not a bool.
        """
        self._check_open()
        old, routes = self.model.vnode(name), dict(self.model.vroutes)
        self.model.set_gateway(name, gateway)

        def undo() -> None:
            self.model.update_vnode(old)
            self.model.vroutes = routes

        self._change_routing(undo)
        return self.vnode_info(name)

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
        """
        self._check_open()
        routes = dict(self.model.vroutes)
        route = self.model.add_vroute(srcnet, dstnet, gateway)
        self._change_routing(lambda: setattr(self.model, "vroutes", routes))
        return self._vroute_info(route)

    def vroute_complete(self) -> list[dict[str, Any]]:
        """Routes between every pair of vnetworks that gateway vnodes join, along shortest paths, live.

        Routes given with ``vroute_create`` stay; those a previous ``vroute_complete`` made are
        computed again. Only vnodes in gateway mode are gateways (Distem would pick any vnode on two
        vnetworks and turn its forwarding on).
        """
        self._check_open()
        routes = dict(self.model.vroutes)
        self.model.complete_vroutes()
        self._change_routing(lambda: setattr(self.model, "vroutes", routes))
        users = self.model.vroute_users()
        return [self._vroute_info(r, users) for r in self.model.vroutes.values()]

    @property
    def vroutes(self) -> pd.DataFrame:
        """The routes between vnetworks: gateway and its address, the vnodes following each, where installed."""
        return frames.vroutes_frame(self.model, self._routing)

    def _vroute_info(self, route: VRoute, users: Mapping[tuple[str, str], list[str]] | None = None) -> dict[str, Any]:
        """Distem's description of a vroute; ``users``: ``model.vroute_users()``, when describing many."""
        via = iface_on(self.model.vnode(route.gateway), route.srcnet)
        users = self.model.vroute_users() if users is None else users
        return {"networksrc": route.srcnet, "networkdst": route.dstnet, "gateway": str(via.address.ip) if via else None,
                "gatewaynode": route.gateway, "auto": route.auto, "vnodes": users.get((route.srcnet, route.dstnet), [])}

    # -- keeping the running vnodes' namespaces in step with the model --------------------------
    def _change_routing(self, undo: Callable[[], None]) -> None:
        """Apply the model's new routing live; if a pnode fails, put the model back and restore it there."""
        try:
            self._sync_routing()
        except AgentError:
            undo()
            try:
                self._sync_routing()
            except AgentError as again:
                log.warning("routing not restored: %s", again)
            raise

    def _sync_routing(self) -> None:
        """Send each running vnode the operations from what its namespace holds to what the model wants."""
        plans: dict[str, Wire] = defaultdict(list)
        changed = {}
        for name, state in self.model.routing_states().items():
            if self.model.status.get(name) in (RUNNING, FROZEN):
                ops = routing_plan(name, self._routing.get(name, FRESH), state)
                if ops:
                    plans[self.model.vnode(name).host] += [op.to_wire() for op in ops]
                    changed[name] = state
        try:
            self._on_pnodes({pnode: ("apply", {"ops": ops}) for pnode, ops in plans.items()})
        except AgentError:
            for name, state in changed.items():  # a pnode may have stopped anywhere in its batch
                self._routing[name] = either(self._routing.get(name, FRESH), state)
            raise
        self._routing.update(changed)

    def _with_routing(self, names: Iterable[str], after_start: dict[str, Wire]) -> dict[str, Wire]:
        """``after_start`` (operations per vnode, applied once it started) followed by its whole routing."""
        states = self.model.routing_states()
        out = dict(after_start)
        for name in names:
            ops = routing_plan(name, FRESH, states[name])
            if ops:
                out[name] = out.get(name, []) + [op.to_wire() for op in ops]
        return out

    def _routing_moved(self, action: str, names: list[str]) -> None:
        """What the namespaces of vnodes that just started hold (everything); stopped ones hold nothing."""
        if action == "start":
            states = self.model.routing_states()
            self._routing.update({name: states[name] for name in names})
        elif action == "stop":
            for name in names:
                self._routing.pop(name, None)
