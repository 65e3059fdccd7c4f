"""Layer 4, the platform: the desired model, one agent session per pnode, and realising one on the other.

Every public call validates against the model first (raising ValidationError
with nothing changed), then sends plans to the agents of the pnodes concerned
in parallel, and turns agent failures into AgentError naming the pnode.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shlex
import stat
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import networkx as nx
import pandas as pd

from ..errors import AgentError, CommandError, FidelityWarning, ValidationError
from ..model import DOWN, FROZEN, READY, RUNNING, PlatformModel, PNode, VNode, VNodeRequest
from ..model.names import vnode_cgroup
from ..model.routes import RoutingState
from ..plan import PnodePaths, vnetwork_plan, vnodes_plan
from ..plan.deploy import VXLAN_OVERHEAD, choose_underlay
from ..wire import vnetwork_owner, vnode_owner
from ..plan.matrix import DeviceMatrix, destinations
from ..plan.shaping import Backend, check_limits, vnode_shaping
from . import frames, html
from .builders import VNetworkHandle, VNodeHandle
from .distem_calls import DistemCalls
from .link_calls import LinkCalls
from .matrix_calls import MatrixCalls
from .placement_calls import PlacementCalls
from .placement_view import PlacementView
from .resource_calls import ResourceCalls
from .route_calls import RouteCalls
from .progress import Progress
from .pnodes import as_pnodes, read_nodefile
from .session import PnodeSession

log = logging.getLogger(__name__)
DEFAULT_STATE_DIR = "/var/lib/distem"
Argv = str | Sequence[str]


def _as_argv(command: Argv) -> list[str]:
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return [str(a) for a in command]


class Platform(DistemCalls, LinkCalls, MatrixCalls, ResourceCalls, PlacementCalls, RouteCalls):
    """An emulated platform: vnodes (LXC containers) on vnetworks, spread over pnodes.

    Args:
        pnodes: the physical machines; default: this machine alone. Each is a
            ``PNode``, an execnet spec string ("popen", "ssh=root@host") or a
            bare host name ("node-1": ``ssh=root@node-1``); see ``from_nodefile``.
        ssh_config: an ssh config file for every ssh pnode that names none.
        state_dir: where the agents keep images and the journal, on every pnode
            (a ``PNode`` carries its own).
        btrfs: for copy-on-write with btrfs: a directory on a btrfs filesystem
            present on every pnode, or "loop:SIZE" (e.g. "loop:4G") for a
            loop-backed btrfs the platform makes and removes itself.
        progress: show progress bars (None: when attached to a terminal or notebook).

    Use it as a context manager, or call ``close()``: either removes
    everything the platform created on every pnode.

    Raises:
        ValidationError: a bad pnode (before any is contacted).
        AgentError: a pnode could not be reached (named, with ssh's reason); the
            sessions already opened are closed.
    """

    session_class = PnodeSession  # how a pnode is reached (distem.testing.fake swaps in one without a pnode)

    def __init__(
        self,
        pnodes: Iterable[PNode | str] | None = None,
        *,
        ssh_config: str | None = None,
        state_dir: str = DEFAULT_STATE_DIR,
        btrfs: str | None = None,
        progress: bool | None = None,
    ) -> None:
        self.id = secrets.token_hex(3)
        nodes = as_pnodes(list(pnodes) if pnodes is not None else ["popen"], state_dir, btrfs, ssh_config)
        self.model = PlatformModel(self.id, nodes)
        self.progress = progress
        self._images: dict[tuple[str, int, int], str] = {}
        self._pending: dict[str, VNodeHandle] = {}
        self._topology: nx.Graph | None = None  # load_physical_topo's; None: from the pnodes' facts
        self._placed: dict[str, str] = {}  # the pnodes place() chose, so that it may choose again
        self.placement: PlacementView | None = None  # the last place()'s result
        self.sessions: dict[str, PnodeSession] = {}
        self._closed = False
        self._matrix_applied: dict[tuple[str, int], DeviceMatrix] = {}  # what each ifb holds of the matrix
        self._routing: dict[str, RoutingState] = {}  # what each running vnode's namespace holds of routing
        with ThreadPoolExecutor(len(nodes)) as pool:
            futures = {p.name: pool.submit(self.session_class, p, self.id) for p in nodes}
        errors = []
        for name, future in futures.items():
            try:
                self.sessions[name] = future.result()
            except AgentError as exc:
                errors.append(exc)
        if errors:
            self._fail_to_open(errors)
        for name, session in self.sessions.items():  # what placement needs to know of each pnode
            self.model.pnodes[name] = replace(self.model.pnodes[name], cores=session.facts["cores"],
                                              memory=session.facts["memory"], max_mhz=session.facts["max_mhz"],
                                              cgroups=session.facts["cgroups"])
        log.info("platform %s on %s", self.id, ", ".join(self.sessions))

    @classmethod
    def from_nodefile(cls, path: str | None = None, **kwargs: Any) -> Platform:
        """A platform on the hosts of an OAR node file (``$OAR_NODEFILE`` by default), each reached
        as ``ssh=root@HOST``; duplicate lines (one per core) collapse, order kept. ``kwargs`` go
        to ``Platform``.

        Raises:
            ValidationError: no node file, or an empty one.
        """
        return cls(read_nodefile(path), **kwargs)

    def _fail_to_open(self, errors: list[AgentError]) -> None:
        """Close the sessions that did open, then raise the first failure (naming the others)."""
        try:
            self.close()
        except AgentError as exc:
            log.warning("closing after a failed start: %s", exc)
        first = errors[0]
        if len(errors) == 1:
            raise first
        others = "; ".join(str(e) for e in errors[1:])
        raise AgentError(first.pnode, first.operation, f"{first.message} (also: {others})",
                         errno=first.errno, target=first.target) from first

    # -- plumbing --------------------------------------------------------------------
    def _paths(self, pnode: str) -> PnodePaths:
        return PnodePaths(self.model.pnodes[pnode].state_dir, self.id, self.model.pnodes[pnode].cgroup_parent)

    def _on_pnodes(self, calls: dict[str, tuple[str, dict[str, Any]]], label: str | None = None,
                   total: int = 0) -> dict[str, Any]:
        """Run one operation per pnode, in parallel; raise the first failure after all have finished."""
        results, errors = self._on_each_pnode(calls, label, total)
        if errors:
            raise errors[0]
        return results

    def _on_each_pnode(self, calls: dict[str, tuple[str, dict[str, Any]]], label: str | None = None,
                       total: int = 0) -> tuple[dict[str, Any], list[AgentError]]:
        """Run one operation per pnode, in parallel: the results of those that answered, the failures of the others."""
        if not calls:
            return {}, []
        with Progress(label or "", total, self.progress if label else False) as bar:
            def run(pnode: str) -> Any:
                operation, kwargs = calls[pnode]
                return self.sessions[pnode].call(operation, progress=bar.for_pnode(pnode), **kwargs)

            with ThreadPoolExecutor(len(calls)) as pool:
                futures = {p: pool.submit(run, p) for p in calls}
        results, errors = {}, []
        for pnode, future in futures.items():
            try:
                results[pnode] = future.result()
            except AgentError as exc:
                errors.append(exc)
        return results, errors

    def _by_host(self, names: Iterable[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for name in names:
            groups[self.model.vnode(name).host].append(name)
        return dict(groups)

    def _image_sha(self, path: str) -> str:
        """Content hash of an image tarball, cached by (path, size, mtime)."""
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise ValidationError("vfilesystem.image", path, f"{'no such file' if st is None else 'not a file'}; give "
                                  "an existing tarball (distem.images.busybox() builds one)")
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
        if key not in self._images:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            self._images[key] = digest.hexdigest()[:16]
        return self._images[key]

    def backend(self, pnode: str) -> Backend:
        """How this pnode delays packets: its kernel's netem, or the userspace delay line."""
        return "netem" if "netem" in self.sessions[pnode].facts.get("qdiscs", ()) else "userspace"

    def _shaping(self, names: Iterable[str], fresh: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Each vnode's tc trees, delay-line settings and latency-matrix cells (``fresh``: just started)."""
        tables = destinations(self.model.vnodes, self.model.latencies)
        out = {}
        for name in names:
            vnode = self.model.vnode(name)
            backend = self.backend(vnode.host)
            carrying = frozenset(i for (source, i), table in tables.items() if source == name and table)
            if carrying:
                self._check_matrix_backend(name, True)
            ops = list(vnode_shaping(self.id, vnode, backend, fresh, carrying, tables))
            if backend == "netem" and (carrying or any(key[0] == name for key in self._matrix_applied)):
                changes, states = self._matrix_ops(vnode, tables, fresh, limits_changed=not fresh, shaped=True)
                ops += changes
                self._matrix_applied.update(states)
            elif backend == "userspace":  # the delay line got the whole table with the interface's settings
                self._matrix_applied.update({(name, i): DeviceMatrix(delays=dict(tables.get((name, i), {})))
                                             for i in range(len(vnode.ifaces))})
            if ops:
                out[name] = [op.to_wire() for op in ops]
        return out

    def _check_limits(self, vnode: VNode) -> None:
        """Refuse, before any change, what this vnode's pnode cannot emulate; warn (FidelityWarning)
        where the userspace delay line may not keep up with the asked rate."""
        for warning in check_limits(vnode, self.backend(vnode.host), self.sessions[vnode.host].facts):
            warnings.warn(warning, FidelityWarning, stacklevel=4)

    def _check_open(self) -> None:
        if self._closed:
            raise ValidationError("platform", self.id, "the platform is closed; create a new Platform")

    # -- vnetworks -------------------------------------------------------------------
    def _create_vnetwork(self, name: str, cidr: Any, opts: Any) -> VNetworkHandle:
        from ..model import parse_cidr, parse_vnetwork_opts

        self._check_open()
        kind, root = parse_vnetwork_opts(name, opts)
        if len(self.sessions) == 1:
            underlays = {}  # one pnode: a bridge is the whole vnetwork, whatever its type
            if kind == "vxlan":
                log.info("vnetwork %s: vxlan on a single pnode behaves as classical", name)
        else:
            underlays = {p: choose_underlay(p, s.facts["interfaces"], root, kind) for p, s in self.sessions.items()}
        mtu = min(u.mtu for u in underlays.values()) - VXLAN_OVERHEAD if underlays and kind == "vxlan" else None
        vnet = self.model.add_vnetwork(name, parse_cidr(name, cidr), kind, root, mtu)
        calls = {p: ("apply", {"ops": [op.to_wire() for op in vnetwork_plan(self.id, vnet, p, underlays)]})
                 for p in self.sessions}
        try:
            self._on_pnodes(calls)
        except AgentError:
            self._undo_everywhere([vnetwork_owner(name)])
            self.model.remove_vnetwork(name)
            raise
        return VNetworkHandle(self, name)

    def _remove_vnetwork(self, name: str) -> None:
        self._check_open()
        self.model.remove_vnetwork(name)
        self._undo_everywhere([vnetwork_owner(name)])
        self._sync_routing()  # routes to it from other vnetworks went with it

    def _undo_everywhere(self, owners: list[str], pnodes: Iterable[str] | None = None) -> None:
        results = self._on_pnodes({p: ("undo_owner", {"owners": owners}) for p in (pnodes or self.sessions)})
        for pnode, failures in results.items():
            if failures:
                raise AgentError(pnode, "remove", "; ".join(failures))

    # -- vnodes ----------------------------------------------------------------------
    def _create_vnodes(self, requests: list[VNodeRequest]) -> list[VNode]:
        """Validate, then create filesystems and containers on every pnode concerned: all or none."""
        self._check_open()
        shas = {r.filesystem.image: self._image_sha(r.filesystem.image) for r in requests}
        for r in requests:
            if r.name in self._pending:
                raise ValidationError("vnode name", r.name, "a vnode of this name is being described "
                                      "with p.vnode(...); deploy or discard it first")
            if r.filesystem.mode == "btrfs":
                self._check_btrfs(r)
        vnodes = self.model.add_vnodes(requests)
        try:
            for i, vnode in enumerate(vnodes):
                self._check_limits(vnode)
                vnodes[i] = replace(vnode, vio=self._resolve_devices(
                    vnode.host, vnode.vio, f"{vnode.name}.vfilesystem.disk_throttling"))
                self.model.update_vnode(vnodes[i])
        except ValidationError:
            for vnode in vnodes:
                self.model.remove_vnode(vnode.name)
            raise
        groups: dict[str, list[VNode]] = defaultdict(list)
        for vnode in vnodes:
            groups[vnode.host].append(vnode)
        try:
            self.install_images({v.filesystem.image for v in vnodes}, list(groups))
        except AgentError:
            for vnode in vnodes:
                self.model.remove_vnode(vnode.name)
            raise
        calls = {}
        for pnode, group in groups.items():
            plan = vnodes_plan(self._paths(pnode), group, self.model.vnetworks, shas, self.model.pnodes[pnode])
            calls[pnode] = ("apply", {"ops": [op.to_wire() for op in plan]})
        total = sum(len(c[1]["ops"]) for c in calls.values())
        try:
            self._on_pnodes(calls, "Creating vnodes", total)
        except AgentError:
            # Each pnode rolled its own batch back; the pnodes that succeeded undo theirs.
            for pnode, group in groups.items():
                try:
                    self._undo_everywhere([vnode_owner(v.name) for v in group], [pnode])
                except AgentError as exc:
                    log.warning("rollback on %s: %s", pnode, exc)
            for vnode in vnodes:
                self.model.remove_vnode(vnode.name)
            raise
        for vnode in vnodes:
            self.model.status[vnode.name] = READY
        return vnodes

    def install_images(self, images: Iterable[str], pnodes: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Put image tarballs (paths on this machine) into the pnodes' image caches, sending each to
        the pnodes that have it neither cached nor at the same path (remote pnodes, the first time).

        Returns:
            For each pnode, the tarballs sent to it.
        """
        self._check_open()
        shas = {self._image_sha(path): path for path in images}
        pnodes = list(pnodes if pnodes is not None else self.sessions)
        wanted = {p: {sha: [self._paths(p).image(sha), path] for sha, path in shas.items()} for p in pnodes}
        missing = self._on_pnodes({p: ("images_missing", {"images": wanted[p]}) for p in pnodes})
        for sha in {sha for found in missing.values() for sha in found}:
            with open(shas[sha], "rb") as f:
                data = f.read()
            self._on_pnodes({p: ("image_receive", {"target": wanted[p][sha][0], "data": data})
                             for p, found in missing.items() if sha in found}, f"Sending image {sha}", len(missing))
        return {p: [shas[sha] for sha in found] for p, found in missing.items()}

    def _check_btrfs(self, request: VNodeRequest) -> None:
        pnode = request.host or next(iter(self.model.pnodes))
        where = self.model.pnodes.get(pnode)
        if where is not None and where.btrfs is None:
            raise ValidationError(f"{request.name}.vfilesystem.cow", "btrfs",
                                  "this platform has no btrfs location; create it with "
                                  "Platform(btrfs='loop:4G') or Platform(btrfs='/a/dir/on/btrfs')")
        if where is not None and not where.btrfs.startswith("loop:") and not os.path.isdir(where.btrfs):
            raise ValidationError("btrfs", where.btrfs, "expected an existing directory on a btrfs filesystem")

    def _remove_vnodes(self, names: list[str]) -> None:
        self._check_open()
        groups = self._by_host(names)
        results = self._on_pnodes({p: ("undo_owner", {"owners": [vnode_owner(n) for n in group]})
                                   for p, group in groups.items()}, "Removing vnodes", len(names))
        for name in names:
            self.model.remove_vnode(name)
            self._routing.pop(name, None)
        for key in [k for k in self._matrix_applied if k[0] in names]:
            del self._matrix_applied[key]
        self._sync_routing()  # the others drop their routes through removed gateways
        for pnode, failures in results.items():
            if failures:
                raise AgentError(pnode, "remove", "; ".join(failures))
        if any(src in names or dst in names for src, dst in self.model.latencies):  # others stop delaying them
            self._apply_cells({pair: us for pair, us in self.model.latencies.items()
                               if pair[0] not in names and pair[1] not in names})

    _AFTER = {"start": RUNNING, "stop": DOWN, "freeze": FROZEN, "unfreeze": RUNNING}
    _LABEL = {"start": "Starting vnodes", "stop": "Stopping vnodes", "freeze": "Freezing vnodes",
              "unfreeze": "Unfreezing vnodes"}

    def _lifecycle(self, action: str, names: list[str]) -> None:
        self._check_open()
        for name in names:
            self.model.vnode(name)
        groups = self._by_host(names)
        calls = {}
        for pnode, group in groups.items():  # at start: each vnode's shaping and routing, once it runs
            after = {"shaping": self._with_routing(group, self._shaping(group, fresh=True))} if action == "start" else {}
            calls[pnode] = (action, {"names": group, **after})
        # What the pnodes that answered did is recorded, even when another pnode failed or was lost.
        results, failed = self._on_each_pnode(calls, self._LABEL[action], len(names))
        done = []
        for pnode, per_pnode in results.items():
            for name, result in per_pnode.items():
                if result["ok"]:
                    self.model.status[name] = self._AFTER[action]
                    done.append(name)
                else:
                    failed.append(AgentError.from_failure(pnode, result["failure"], action))
        self._routing_moved(action, done)
        if failed:
            first = failed[0]
            raise AgentError(first.pnode, action, "; ".join(f"{f.target}: {f.message}" if f.target else f.message
                                                          for f in failed),
                             errno=first.errno, target=first.target)

    def _execute(self, names: list[str], command: Argv, timeout: float | None = None) -> dict[str, tuple[int, str, str]]:
        self._check_open()
        for name in names:
            if self.model.vnode(name) and self.model.status[name] != RUNNING:
                raise ValidationError("vnode", name, f"it is {self.model.status[name]}; start it first")
        argv = _as_argv(command)
        groups = self._by_host(names)
        results = self._on_pnodes({p: ("execute", {"names": g, "argv": argv, "timeout": timeout})
                                   for p, g in groups.items()})
        out = {}
        for per_pnode in results.values():
            for name, result in per_pnode.items():
                if not result["ok"]:
                    raise AgentError.from_failure(self.model.vnode(name).host, result["failure"], "execute")
                out[name] = tuple(result["value"])
        return {n: out[n] for n in names}

    # -- the pythonic surface -------------------------------------------------------
    def vnetwork(self, name: str, cidr: str | None = None, *, network_type: str = "classical",
                 root_interface: str | None = None) -> VNetworkHandle:
        """The vnetwork ``name``, created now (with ``cidr``) if it does not exist yet."""
        if name in self.model.vnetworks and cidr is None:
            return VNetworkHandle(self, name)
        opts = {"network_type": network_type, **({"root_interface": root_interface} if root_interface else {})}
        return self._create_vnetwork(name, cidr, opts)

    def vnode(self, name: str) -> VNodeHandle:
        """A handle on vnode ``name``; a new name starts a description that ``deploy()`` creates."""
        if name not in self.model.vnodes and name not in self._pending:
            self._pending[name] = VNodeHandle(self, name)
        return self._pending.get(name) or VNodeHandle(self, name)

    def deploy(self, start: bool = True) -> list[str]:
        """Create (and start) every vnode described with ``p.vnode(...)``, in one batch per pnode."""
        requests = [h.request() for h in self._pending.values()]
        pending = self._pending
        self._pending = {}
        try:
            vnodes = self._create_vnodes(requests)
        except Exception:
            self._pending = pending
            raise
        names = [v.name for v in vnodes]
        if start and names:
            self._lifecycle("start", names)
        return names

    def execute(self, command: Argv, vnodes: Iterable[str] | None = None,
                timeout: float | None = None) -> pd.DataFrame:
        """Run ``command`` in each vnode (all running ones by default); one row per vnode, never raises on exit status."""
        names = list(vnodes) if vnodes is not None else [n for n, s in self.model.status.items() if s == RUNNING]
        results = self._execute(names, command, timeout)
        return pd.DataFrame([{"vnode": n, "status": r[0], "stdout": r[1], "stderr": r[2]} for n, r in results.items()],
                            columns=["vnode", "status", "stdout", "stderr"]).set_index("vnode")

    def check(self, name: str, command: Argv, timeout: float | None = None) -> str:
        """Run ``command`` in vnode ``name``; its stdout, or CommandError on a non-zero status."""
        status, out, err = self._execute([name], command, timeout)[name]
        if status != 0:
            text = command if isinstance(command, str) else shlex.join(command)
            raise CommandError(name, text, status, out, err)
        return out

    def reachable(self, source: str, vnodes: Sequence[str] | None = None, timeout_ms: int = 500) -> dict[str, bool]:
        """Which vnodes answer one ping from ``source`` (run in ``source``'s network namespace)."""
        names = [n for n in (vnodes if vnodes is not None else self.model.vnodes) if n != source]
        addresses = {str(self.model.vnode(n).ifaces[0].address.ip): n for n in names if self.model.vnode(n).ifaces}
        host = self.model.vnode(source).host
        own = str(self.model.vnode(source).ifaces[0].address.ip)
        result = self.sessions[host].call("fping", names=[source], targets=list(addresses), count=1,
                                          interval_ms=1, own={source: own},
                                          timeout_ms=timeout_ms)[source]
        return {addresses[a]: bool(s and s[0] is not None) for a, s in result.items()}

    def ping(self, source: str, destination: str, count: int = 100, interval_ms: int = 10,
             timeout_ms: int = 2000) -> pd.Series:
        """RTTs in ms of ``count`` probes from ``source``'s namespace to ``destination`` (NaN: lost)."""
        host = self.model.vnode(source).host
        address = str(self.model.vnode(destination).ifaces[0].address.ip)
        samples = self.sessions[host].call("fping", names=[source], targets=[address], count=count,
                                           interval_ms=interval_ms, own={}, timeout_ms=timeout_ms)[source][address]
        return pd.Series([float("nan") if s is None else s for s in samples], name=f"{source}->{destination}",
                         dtype=float)

    def measure_latencies(self, vnodes: Sequence[str] | None = None, count: int = 5,
                          interval_ms: int = 20, parallel: int | None = None) -> pd.DataFrame:
        """Median RTT in ms from each vnode (rows) to each other (columns), measured with fping
        run in each source vnode's own network namespace, ``parallel`` sources at once per pnode
        (default: 16 per core of the pnode)."""
        names = list(vnodes) if vnodes is not None else [n for n, s in self.model.status.items() if s == RUNNING]
        targets = {n: str(self.model.vnode(n).ifaces[0].address.ip) for n in names if self.model.vnode(n).ifaces}
        groups = self._by_host(targets)
        results = self._on_pnodes({p: ("fping", {"names": g, "targets": list(targets.values()), "count": count,
                                                  "interval_ms": interval_ms, "own": {n: targets[n] for n in g},
                                                  "parallel": parallel}) for p, g in groups.items()},
                                  "Measuring latencies", len(targets))
        by_address = {a: n for n, a in targets.items()}
        frame = pd.DataFrame(index=pd.Index(list(targets), name="from"), columns=pd.Index(list(targets), name="to"),
                             dtype=float)
        for per_pnode in results.values():
            for source, rtts in per_pnode.items():
                for address, samples in rtts.items():
                    got = [s for s in samples if s is not None]
                    if by_address[address] != source:
                        frame.loc[source, by_address[address]] = float(pd.Series(got).median()) if got else float("nan")
        return frame

    # -- state as DataFrames ----------------------------------------------------------
    @property
    def vnodes(self) -> pd.DataFrame:
        running = [n for n, s in self.model.status.items() if s in (RUNNING, FROZEN)] if not self._closed else []
        calls = {pnode: ("usage", {"paths": {n: vnode_cgroup(self.id, n, self.model.pnodes[pnode].cgroup_parent)
                                             for n in group}}) for pnode, group in self._by_host(running).items()}
        usage = {name: used for found in self._on_pnodes(calls).values() for name, used in found.items()}
        return frames.vnodes_frame(self.model, usage)

    @property
    def vifaces(self) -> pd.DataFrame:
        return frames.vifaces_frame(self.model, {p: self.backend(p) for p in self.sessions})

    @property
    def vnetworks(self) -> pd.DataFrame:
        return frames.vnetworks_frame(self.model)

    @property
    def pnodes(self) -> pd.DataFrame:
        return frames.pnodes_frame(self.model, {p: s.facts for p, s in self.sessions.items()},
                                   {p: "closed" if self._closed else "lost" if s.lost else "connected"
                                    for p, s in self.sessions.items()},
                                   {p: self.backend(p) for p in self.sessions})

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.model.vnodes)} vnodes, {len(self.model.vnetworks)} vnetworks"
        return f"<distem.Platform {self.id} on {', '.join(self.model.pnodes)}: {state}>"

    def _repr_html_(self) -> str:
        return html.platform_html(self)

    # -- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Remove everything this platform created on every pnode, then disconnect. Safe twice."""
        if self._closed:
            return
        self._closed = True
        errors = []
        with ThreadPoolExecutor(max(1, len(self.sessions))) as pool:
            futures = {p: pool.submit(s.close) for p, s in self.sessions.items()}
        for pnode, future in futures.items():
            try:
                summary = future.result()
                if summary and summary["failures"]:
                    errors.append(AgentError(pnode, "clean", "; ".join(summary["failures"])))
            except AgentError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

