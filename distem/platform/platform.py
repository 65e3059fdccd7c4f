"""Layer 4, the platform: the desired model, the pnodes' sessions, and the parts that realise one on the other.

``Platform`` holds its parts; each owns its own state and is a module of this package:

    pool          PnodePool   the sessions: calls on one, some or all pnodes, undo everywhere
    image_cache   ImageCache  tarballs' content hashes, sending them where missing
    vnetworks     VNetworks   bridges, uplinks, VXLAN
    vnodes        VNodes      create (all or none), start / stop / freeze, remove, execute; the pending descriptions
    links         Links       link limits live, each vnode's tc trees and delay-line settings
    matrix        Matrix      the latency matrix; what each device holds of it
    resources     Resources   CPU, memory, disk IO limits, live
    routes        Routes      routes between vnetworks; what each namespace holds
    placement     Placement   topology, place(), the last mapping
    measure       Measures    fping, iperf3 from inside vnodes
    events        Events      the event schedule, run on the pnodes' timelines
    monitor       Monitor     samplers on the pnodes, their series, the fidelity watch

Every public call validates against the model first (raising ValidationError with nothing
changed), then sends plans to the agents of the pnodes concerned in parallel, and turns agent
failures into AgentError naming the pnode. Distem's calls keep Distem's names and dict shapes
(``info`` makes the dicts); most are answered by one part directly (``_by``).
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import functools
import time
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from ..errors import CommandError, ValidationError
from ..model import FROZEN, RUNNING, PlatformModel, PNode, parse_vnode
from ..model.names import vnode_cgroup
from ..plan import PnodePaths
from . import frames, html, info
from .builders import VNetworkHandle, VNodeHandle
from .events import Events
from .image_cache import ImageCache
from .links import Links
from .matrix import Matrix
from .measure import Measures
from .monitor import Monitor
from .placement import Placement
from .placement_view import PlacementView
from .pnodes import as_pnodes, read_nodefile
from .pool import PnodePool
from .resources import Resources
from .routes import Routes
from .session import PnodeSession
from .records import Records, default_records_dir, load_document
from .topology_files import load_vnodes_yaml
from .vnetworks import VNetworks
from .vnodes import Argv, VNodes
from .vplatform import VPlatform

log = logging.getLogger(__name__)
DEFAULT_STATE_DIR = "/var/lib/distem"


class _By:
    """A call of the platform answered by one of its parts: ``p.ping`` is ``p._measures.ping``, with
    that method's signature and docstring (``name``: the part's, when it differs)."""

    def __init__(self, part: str, name: str = "") -> None:
        self.part, self.name = part, name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def __get__(self, platform: Platform | None, owner: type | None = None) -> Any:
        if platform is None:  # on the class (help(), documentation): the part's own function
            return getattr(typing.get_type_hints(owner)[self.part], self.name)
        return getattr(getattr(platform, self.part), self.name)


class _Measured(_By):
    """A measurement answered by a part; its result is kept for the run's record (``p.record()``)."""

    def __get__(self, platform: Platform | None, owner: type | None = None) -> Any:
        method = super().__get__(platform, owner)
        if platform is None:
            return method

        @functools.wraps(method)
        def measured(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            platform._records.measured(self.name, args, kwargs, result)
            return result
        return measured


def _names(names: str | Sequence[str] | None, default: list[str]) -> list[str]:
    if names is None:
        return default
    if isinstance(names, str):
        return [names]
    return list(names)


class Platform:
    """An emulated platform: vnodes (LXC containers) on vnetworks, spread over pnodes.

    Example::

        with distem.Platform() as p:                    # this machine is the pnode
            p.vnetwork("vnet", "10.144.0.0/24")
            for i in range(3):
                p.vnode(f"n{i}").image(distem.images.busybox()).iface(
                    "if0", "vnet", output={"bandwidth": "100mbps", "latency": "10ms"})
            p.deploy()                                  # create and start, one batch per pnode
            p.measure_latencies()                       # a DataFrame of RTTs, measured with fping
        # leaving the block removes everything the platform created

    Distem's calls work too, with its names and dicts (``vnode_create``, ``viface_update``,
    ``set_peers_latencies``, ...): each one's help has an example.

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
        shared_data: a directory of every pnode that every vnode sees at /shared (an NFS mount shared by the
            pnodes, for one directory across them: see docs/names-ssh-data.md); default: one directory
            per pnode, made for the platform (``<state_dir>/platforms/<id>/shared``) and removed with it.
        progress: show progress bars (None: when attached to a terminal or notebook).

    Use it as a context manager, or call ``close()``: either removes
    everything the platform created on every pnode.

    Raises:
        ValidationError: a bad pnode (before any is contacted).
        AgentError: a pnode could not be reached (named, with ssh's reason); the
            sessions already opened are closed.
    """

    session_class = PnodeSession  # how a pnode is reached (distem.testing.fake swaps in one without a pnode)
    # the parts (see the module's docstring); _By finds a call's part here
    _images: ImageCache
    _measures: Measures
    _matrix: Matrix
    _placement: Placement
    _events: Events
    _monitor: Monitor
    _records: Records

    def __init__(
        self,
        pnodes: Iterable[PNode | str] | None = None,
        *,
        ssh_config: str | None = None,
        state_dir: str = DEFAULT_STATE_DIR,
        btrfs: str | None = None,
        shared_data: str | None = None,
        progress: bool | None = None,
    ) -> None:
        self.id = secrets.token_hex(3)
        nodes = as_pnodes(list(pnodes) if pnodes is not None else ["popen"], state_dir, btrfs, ssh_config)
        self.model = PlatformModel(self.id, nodes)
        self.pool = PnodePool(nodes, self.id, self.session_class, progress)
        self.pool.learn_facts(self.model)
        paths = {p.name: PnodePaths(p.state_dir, self.id, p.cgroup_parent, shared_data) for p in nodes}
        self._images = ImageCache(self.pool, paths)
        self._measures = Measures(self.model, self.pool)
        self._routes = Routes(self.model, self.pool)
        self._vnetworks = VNetworks(self.model, self.pool, self._routes)
        self._matrix = Matrix(self.model, self.pool, self._measures)
        self._links = Links(self.model, self.pool, self._matrix)
        self._resources = Resources(self.model, self.pool, paths, self._images, self._links)
        self._vnodes = VNodes(self.model, self.pool, paths, self._images, self._links, self._matrix,
                              self._resources, self._routes)
        self._placement = Placement(self.model, self.pool, self._vnodes)
        self._events = Events(self.model, self.pool, self._links, self._matrix, self._resources, self._vnodes,
                              self._routes)
        self._monitor = Monitor(self.model, self.pool, self._events)
        self._vplatform = VPlatform(self.model, self._vnetworks, self._vnodes, self._matrix, self._routes,
                                    self._links, self._events)
        self._records = Records(self.model, self.pool, self._images, self._events, self.backend)
        log.info("platform %s on %s", self.id, ", ".join(self.pool.sessions))

    @classmethod
    def from_nodefile(cls, path: str | None = None, **kwargs: Any) -> Platform:
        """A platform on the hosts of an OAR node file (``$OAR_NODEFILE`` by default), each reached
        as ``ssh=root@HOST``; duplicate lines (one per core) collapse, order kept. ``kwargs`` go
        to ``Platform``.

        Raises:
            ValidationError: no node file, or an empty one.
        """
        return cls(read_nodefile(path), **kwargs)

    @classmethod
    def from_record(cls, source: str | os.PathLike[str] | Mapping[str, Any], **kwargs: Any) -> Platform:
        """The platform a record directory, a platform file (YAML or JSON) or a document describes, made:
        on the pnodes it names (``pnodes=`` for others; none named: this machine), with its vnetworks,
        vnodes, addresses, limits, matrix, routes and schedule (not started). ``kwargs`` go to ``Platform``.

        Raises:
            ValidationError: a bad document (nothing made). AgentError: a pnode failed (nothing left).

        Example::

            p = distem.Platform.from_record("platform.yml")       # or a record: distem-records/3f2a1c
        """
        doc = load_document(os.path.expanduser(source) if isinstance(source, (str, os.PathLike)) else source)
        if "pnodes" not in kwargs and doc.get("pnodes"):
            kwargs["pnodes"] = [PNode(name=e.get("name") or e["spec"], spec=e.get("spec") or f"ssh=root@{e['name']}",
                                      state_dir=e.get("state_dir", kwargs.get("state_dir", DEFAULT_STATE_DIR)),
                                      cgroup_parent=e.get("cgroup_parent", ""))
                                for e in doc["pnodes"] if isinstance(e, Mapping)]
        platform = cls(**kwargs)
        try:
            platform.vplatform_create(doc)
        except BaseException:
            platform.close()
            raise
        return platform

    @property
    def sessions(self) -> dict[str, Any]:
        """The pnodes' agent sessions, by pnode name."""
        return self.pool.sessions

    @property
    def progress(self) -> bool | None:
        return self.pool.progress

    @progress.setter
    def progress(self, enabled: bool | None) -> None:
        self.pool.progress = enabled

    def backend(self, pnode: str) -> str:
        """How this pnode delays packets: its kernel's netem, or the userspace delay line."""
        return self.pool.backend(pnode)

    def _check_open(self, changes: bool = True) -> None:
        """``changes``: the call changes the platform, which a running event schedule forbids (its
        operations were prepared from the platform as it was)."""
        if self.pool.closed:
            raise ValidationError("platform", self.id, "the platform is closed; create a new Platform")
        if changes and self._events.running():
            raise ValidationError("platform", self.id, "an event schedule is running; wait for its end "
                                  "(p.events_wait()) or stop it (p.event_manager_stop()) before changing the platform")

    # -- the pythonic surface -------------------------------------------------------
    def vnetwork(self, name: str, cidr: str | None = None, *, network_type: str = "classical",
                 root_interface: str | None = None) -> VNetworkHandle:
        """The vnetwork ``name``, created now (with ``cidr``) if it does not exist yet."""
        if name not in self.model.vnetworks or cidr is not None:
            self._check_open()
            opts = {"network_type": network_type, **({"root_interface": root_interface} if root_interface else {})}
            self._vnetworks.create(name, cidr, opts)
        return VNetworkHandle(self, name)

    def vnode(self, name: str) -> VNodeHandle:
        """A handle on vnode ``name``; a new name starts a description that ``deploy()`` creates."""
        pending = self._vnodes.pending
        if name not in self.model.vnodes and name not in pending:
            pending[name] = VNodeHandle(self, name)
        return pending.get(name) or VNodeHandle(self, name)

    def deploy(self, start: bool = True) -> list[str]:
        """Create (and start) every vnode described with ``p.vnode(...)``, in one batch per pnode."""
        self._check_open()
        requests = [h.request() for h in self._vnodes.pending.values()]
        pending = dict(self._vnodes.pending)
        self._vnodes.pending.clear()
        try:
            vnodes = self._vnodes.create(requests)
        except Exception as exc:
            self._vnodes.pending.update(pending)
            exc.add_note(f"Nothing was created; the {len(pending)} description(s) stay pending: fix them (describing "
                         "a vnode's image or interface again replaces it) and deploy() again, or "
                         "p.vnode(name).discard() one.")
            raise
        names = [v.name for v in vnodes]
        if start and names:
            self._vnodes.lifecycle("start", names)
        return names

    def execute(self, command: Argv, vnodes: Iterable[str] | None = None,
                timeout: float | None = None) -> pd.DataFrame:
        """Run ``command`` in each vnode (all running ones by default); one row per vnode (status, stdout,
        stderr, timed_out: killed at ``timeout`` s), never raises on exit status."""
        self._check_open(changes=False)
        names = list(vnodes) if vnodes is not None else self._vnodes.running()
        results = self._vnodes.execute(names, command, timeout)
        return pd.DataFrame([{"vnode": n, "status": r[0], "stdout": r[1], "stderr": r[2], "timed_out": r[3]}
                             for n, r in results.items()],
                            columns=["vnode", "status", "stdout", "stderr", "timed_out"]).set_index("vnode")

    def check(self, name: str, command: Argv, timeout: float | None = None) -> str:
        """Run ``command`` in vnode ``name``; its stdout, or CommandError on a non-zero status (or killed at
        its ``timeout``, which the error says)."""
        self._check_open(changes=False)
        status, out, err, timed_out = self._vnodes.execute([name], command, timeout)[name]
        if status != 0:
            text = command if isinstance(command, str) else shlex.join(command)
            raise CommandError(name, text, status, out, err, timeout if timed_out else None)
        return out

    reachable = _By("_measures")
    ping = _Measured("_measures")
    measure_latencies = _Measured("_measures")
    host_execute = _By("_measures")
    measure_throughput = _Measured("_measures")
    install_images = _By("_images", "install")

    # -- vnetworks (Distem) ------------------------------------------------------------
    def vnetwork_create(self, name: str, cidr: str | None = "", opts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a vnetwork; an empty ``cidr`` picks a free /24 in 10.144.0.0/16.

        Example::

            p.vnetwork_create("vnet", "10.144.0.0/22")
            p.vnetwork_create("wan", "10.145.0.0/24", {"network_type": "vxlan"})
        """
        self._check_open()
        self._vnetworks.create(name, cidr, opts)
        return self.vnetwork_info(name)

    def vnetwork_remove(self, name: str) -> None:
        """Remove a vnetwork: its bridge or VXLAN on every pnode, and the routes to it.

        Example::

            p.vnetwork_remove("vnet")
        """
        self._check_open()
        self._vnetworks.remove(name)

    def vnetworks_remove(self, names: Sequence[str] | None = None) -> None:
        """Remove these vnetworks (default: all).

        Example::

            p.vnetworks_remove()
        """
        for name in _names(names, list(self.model.vnetworks)):
            self.vnetwork_remove(name)

    def vnetwork_info(self, name: str) -> dict[str, Any]:
        """The vnetwork as Distem describes it: name, address, vnodes, routes.

        Example::

            p.vnetwork_info("vnet")["address"]   # '10.144.0.0/22'
        """
        return info.vnetwork_info(self.model, name)

    def vnetworks_info(self) -> list[dict[str, Any]]:
        """Every vnetwork's ``vnetwork_info``.

        Example::

            [v["name"] for v in p.vnetworks_info()]
        """
        return [self.vnetwork_info(n) for n in self.model.vnetworks]

    # -- vnodes (Distem) ---------------------------------------------------------------
    def vnode_create(self, name: str, desc: dict[str, Any] | None = None,
                     ssh_key: dict[str, str] | None = None) -> dict[str, Any]:
        """Create a vnode (its filesystem and container; status READY). ``desc`` as in Distem.

        Example::

            p.vnode_create("node1", {"vfilesystem": {"image": "file:///srv/img.tar.gz", "shared": True},
                                     "vifaces": [{"name": "if0", "vnetwork": "vnet",
                                                  "output": {"bandwidth": {"rate": "100mbps"}}}]})
        """
        self._check_open()
        self._vnodes.create([parse_vnode(name, desc or {}, ssh_key)])
        return self.vnode_info(name)

    def vnodes_create(self, names: Sequence[str], desc: dict[str, Any] | None = None,
                      ssh_key: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Create several vnodes from one description, in one batch per pnode.

        Example::

            p.vnodes_create([f"node{i}" for i in range(10)],
                            {"vfilesystem": {"image": img}, "vifaces": [{"name": "if0", "vnetwork": "vnet"}]})
        """
        self._check_open()
        self._vnodes.create([parse_vnode(n, desc or {}, ssh_key) for n in names])
        return [self.vnode_info(n) for n in names]

    def _lifecycle(self, action: str, names: list[str]) -> None:
        self._check_open()
        self._vnodes.lifecycle(action, names)

    def vnode_start(self, name: str) -> dict[str, Any]:
        """Start a created vnode (status RUNNING); its limits, matrix and routes apply.

        Example::

            p.vnode_start("node1")["status"]   # 'RUNNING'
        """
        self._lifecycle("start", [name])
        return self.vnode_info(name)

    def vnodes_start(self, names: Sequence[str] | None = None) -> None:
        """Start vnodes (default: all that are not running), in parallel over pnodes.

        Example::

            p.vnodes_start()                     # every vnode not running
            p.vnodes_start(["node1", "node2"])
        """
        self._lifecycle("start", _names(names, [n for n, s in self.model.status.items() if s != RUNNING]))

    def vnode_stop(self, name: str) -> dict[str, Any]:
        """Stop a running vnode (status DOWN); its filesystem stays.

        Example::

            p.vnode_stop("node1")
        """
        self._lifecycle("stop", [name])
        return self.vnode_info(name)

    def vnodes_stop(self, names: Sequence[str] | None = None) -> None:
        """Stop vnodes (default: every running one), in parallel over pnodes.

        Example::

            p.vnodes_stop(["node1", "node2"])
        """
        self._lifecycle("stop", _names(names, self._vnodes.running()))

    def vnode_freeze(self, name: str) -> dict[str, Any]:
        """Freeze a vnode's processes where they are (cgroup freezer; status FROZEN).

        Example::

            p.vnode_freeze("node1")
        """
        self._lifecycle("freeze", [name])
        return self.vnode_info(name)

    def vnodes_freeze(self, names: Sequence[str] | None = None) -> None:
        """Freeze vnodes (default: every running one).

        Example::

            p.vnodes_freeze(["node1", "node2"])
        """
        self._lifecycle("freeze", _names(names, self._vnodes.running()))

    def vnode_unfreeze(self, name: str) -> dict[str, Any]:
        """Let a frozen vnode's processes go on (status RUNNING).

        Example::

            p.vnode_unfreeze("node1")
        """
        self._lifecycle("unfreeze", [name])
        return self.vnode_info(name)

    def vnodes_unfreeze(self, names: Sequence[str] | None = None) -> None:
        """Unfreeze vnodes (default: every frozen one).

        Example::

            p.vnodes_unfreeze()
        """
        self._lifecycle("unfreeze", _names(names, [n for n, s in self.model.status.items() if s == FROZEN]))

    def vnode_remove(self, name: str) -> None:
        """Stop and remove a vnode: its container, filesystem, interfaces, cgroups.

        Example::

            p.vnode_remove("node1")
        """
        self.vnodes_remove([name])

    def vnodes_remove(self, names: Sequence[str] | None = None) -> None:
        """Remove vnodes (default: all), in one batch per pnode.

        Example::

            p.vnodes_remove(["node1", "node2"])
        """
        self._check_open()
        self._vnodes.remove(_names(names, list(self.model.vnodes)))

    def vnode_info(self, name: str) -> dict[str, Any]:
        """The vnode as Distem describes it: name, host, status, vfilesystem, vifaces, vcpu, vmem.

        Example::

            p.vnode_info("node1")["vifaces"][0]["address"]   # '10.144.0.1/22'
        """
        return info.vnode_info(self.model, name)

    def vnodes_info(self) -> list[dict[str, Any]]:
        """Every vnode's ``vnode_info``.

        Example::

            {v["name"]: v["status"] for v in p.vnodes_info()}
        """
        return [self.vnode_info(n) for n in self.model.vnodes]

    def viface_create(self, vnode: str, name: str, desc: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Distem's: one more interface on a vnode that exists, running or not (``desc``: a viface's keys,
        ``vnetwork``, ``address``, ``macaddress``, ``input``, ``output``). A running vnode gets it at once,
        with its limits, the latency matrix's cells, routes and names; every vnode's /etc/hosts follows.

        Example::

            p.viface_create("node1", "if1", {"vnetwork": "backbone", "output": {"bandwidth": {"rate": "1gbps"}}})
        """
        self._check_open()
        self._vnodes.add_iface(vnode, name, desc)
        return self.viface_info(vnode, name)

    def viface_remove(self, vnode: str, name: str) -> None:
        """Distem's: take an interface away (live when the vnode runs); routes through it and names go too.

        Example::

            p.viface_remove("node1", "if1")
        """
        self._check_open()
        self._vnodes.remove_iface(vnode, name)

    def vfilesystem_image(self, vnode: str, target: str | os.PathLike[str]) -> str:
        """Distem's: the vnode's root filesystem as a gzipped tarball at ``target`` (on this machine), usable
        as an image for other vnodes; its path. An overlay vnode (the default) must run.

        Example::

            p.vnode_execute("node1", "apt-get install -y iperf3")     # (a Debian vnode)
            img = p.vfilesystem_image("node1", "node1-with-iperf3.tar.gz")
        """
        self._check_open(changes=False)
        self._vnodes.archive(vnode, target)
        return os.fspath(target)

    def viface_info(self, vnode: str, iface: str) -> dict[str, Any]:
        """One interface as Distem describes it: vnetwork, address, macaddress, input, output.

        Example::

            p.viface_info("node1", "if0")["output"]
        """
        return info.viface_info(self.model, vnode, iface)

    def vnode_execute(self, name: str, command: str | Sequence[str], timeout: float | None = None) -> str:
        """Run ``command`` in the vnode (through LXC: no sshd needed); its output.

        Raises:
            CommandError: the command exited non-zero (status, stdout and stderr attached).

        Example::

            print(p.vnode_execute("node1", "ip -4 addr show if0"))
            p.vnode_execute("node1", ["sh", "-c", "sleep 1; hostname"], timeout=5)
        """
        return self.check(name, command, timeout)

    def vnodes_execute(self, names: Sequence[str], command: str | Sequence[str],
                       timeout: float | None = None) -> dict[str, str]:
        """Run ``command`` in every vnode of ``names`` at once; output per vnode (CommandError on the first failure).

        Example::

            p.vnodes_execute(["node1", "node2"], "uname -n")   # {'node1': 'node1\\n', ...}
        """
        self._check_open(changes=False)
        results = self._vnodes.execute(list(names), command, timeout)
        for name, (status, out, err, timed_out) in results.items():
            if status != 0:
                raise CommandError(name, command if isinstance(command, str) else " ".join(command), status, out, err,
                                   timeout if timed_out else None)
        return {name: out for name, (_, out, _, _) in results.items()}

    def wait_vnodes(self, opts: dict[str, Any] | None = None) -> bool:
        """Wait until every vnode runs and (with ``port``) has a process listening on that TCP port.

        ``opts`` as in Distem: ``{'vnodes': [...], 'timeout': 600, 'port': 22}``; ``'port': None``
        waits for the vnodes to run only (images without sshd). True when all are ready in time.

        Example::

            p.wait_vnodes({"vnodes": ["node1"], "timeout": 60, "port": 22})
        """
        opts = dict(opts or {})
        unknown = set(opts) - {"vnodes", "timeout", "port"}
        if unknown:
            raise ValidationError("wait_vnodes", sorted(unknown)[0], "allowed keys are vnodes, timeout, port")
        names = _names(opts.get("vnodes"), list(self.model.vnodes))
        port = opts.get("port", 22)
        deadline = time.monotonic() + float(opts.get("timeout", 600))
        waiting = list(names)
        while waiting:
            running = [n for n in waiting if self.model.status.get(n) == RUNNING]
            if port is not None and running:
                ready = {}
                for pnode, group in self.pool.by_host(self.model, running).items():
                    ready.update(self.pool.call(pnode, "wait_listening", names=group, port=int(port)))
                running = [n for n in running if ready.get(n)]
            waiting = [n for n in waiting if n not in running]
            if not waiting:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def set_global_etchosts(self, data: Sequence[Sequence[str]] | None = None) -> None:
        """Distem's: what every vnode's /etc/hosts says. By default (``data`` None) localhost and every
        vnode's name on its first address (and NAME-IFACE on each), kept current as vnodes come and go;
        ``data`` ``[[host, ip], ...]`` writes those instead (None again: back to the default).

        Example::

            p.set_global_etchosts([["db", "10.144.0.5"], ["cache", "10.144.0.6"]])
        """
        self._check_open()
        self._vnodes.set_etc_hosts(data)

    def set_global_arptable(self, data: Sequence[Sequence[str]] | None = None, arp_file: str | None = None) -> int:
        """Distem's: fill every running vnode's ARP table for good (permanent entries) with its peers on
        each of its vnetworks, so that a large platform does not start with an ARP storm; or with ``data``
        ``[[ip, mac], ...]`` (or ``arp_file``: lines "ip mac") where the address is on one of its vnetworks.
        Vnodes started later are not filled: call it again. The number of entries written.

        Example::

            p.vnodes_start()
            p.set_global_arptable()          # then: ip neigh, in a vnode, lists every peer PERMANENT
        """
        self._check_open()
        return self._vnodes.set_arp_tables(data, arp_file)

    # -- link limits (Links) -----------------------------------------------------------
    def viface_update(self, vnode: str, iface: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Change an interface's limits, live: ``desc`` is ``{'output': {...}, 'input': {...}}`` (what leaves
        the vnode, what enters it), each with any of ``bandwidth: {'rate': '100mbps'}``, ``latency:
        {'delay': '10ms', 'jitter': '1ms'}``, ``loss``, ``corruption``, ``duplication``, ``reordering``
        (``{'percent': 1.5}``). Bare values work too (``'bandwidth': '100mbps'``, ``'latency': '10ms'``).
        Properties not given are kept; ``None`` (or a 0 delay or percent) removes one. Rates are bits
        per second ("100mbps" is 100 Mbit/s; "10MB/s" bytes), delays in s/ms/us.

        Example::

            p.viface_update("node1", "if0", {"output": {"bandwidth": {"rate": "20mbps"},
                                                       "latency": {"delay": "10ms", "jitter": "1ms"}},
                                            "input": {"loss": {"percent": 1}}})
            p.viface_update("node1", "if0", {"output": {"bandwidth": None}})   # the rate limit off
        """
        self._check_open()
        self._links.viface_update(vnode, iface, desc)
        return self.viface_info(vnode, iface)

    def vinput_update(self, vnode: str, iface: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Change what enters the interface (``viface_update``'s ``input``).

        Example::

            p.vinput_update("node1", "if0", {"bandwidth": {"rate": "5mbps"}})
        """
        return self.viface_update(vnode, iface, {"input": desc})

    def voutput_update(self, vnode: str, iface: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Change what leaves the interface (``viface_update``'s ``output``).

        Example::

            p.voutput_update("node1", "if0", {"latency": {"delay": "20ms"}})
        """
        return self.viface_update(vnode, iface, {"output": desc})

    def viface_link(self, vnode: str, iface: str, up: bool) -> dict[str, Any]:
        """The interface's link down (``up=False``: its cable out, the vnode sees no carrier) or up again."""
        self._check_open()
        self._links.link(vnode, iface, up)
        return self.viface_info(vnode, iface)

    def partition(self, *groups: Sequence[str]) -> None:
        self._check_open()
        self._links.partition(*groups)

    def heal(self) -> None:
        """No partition any more: every pair reaches the other again."""
        self._check_open()
        self._links.heal()

    partition.__doc__ = Links.partition.__doc__

    def vinput_info(self, vnode: str, iface: str) -> dict[str, Any]:
        """The interface's ``input`` limits in Distem's shape.

        Example::

            p.vinput_info("node1", "if0")   # {'bandwidth': {'rate': '5mbit'}}
        """
        return info.vinput_info(self.model, vnode, iface)

    def voutput_info(self, vnode: str, iface: str) -> dict[str, Any]:
        """The interface's ``output`` limits in Distem's shape.

        Example::

            p.voutput_info("node1", "if0")
        """
        return info.voutput_info(self.model, vnode, iface)

    # -- the latency matrix (Matrix) ---------------------------------------------------
    def set_peers_latencies(self, vnodes: Sequence[str], matrix: Sequence[Sequence[float]]) -> None:
        """``matrix[i][j]``: one-way delay in ms from ``vnodes[i]`` to ``vnodes[j]`` (0: none), so that
        RTT(i, j) = M[i][j] + M[j][i]. Other pairs keep theirs; only changed cells are sent.

        Raises:
            ValidationError: not N x N, unknown names, a value that is not a number >= 0.

        Example::

            p.set_peers_latencies(["a", "b", "c"], [[0, 10, 20],
                                                   [10, 0, 5],
                                                   [20, 5, 0]])   # RTT(a, c) = 40 ms
        """
        self._check_open()
        self._matrix.set_peers_latencies(vnodes, matrix)

    @property
    def latencies(self) -> pd.DataFrame:
        """The requested one-way delays (ms) between every pair of vnodes; set it with a DataFrame."""
        return self._matrix.frame

    @latencies.setter
    def latencies(self, frame: pd.DataFrame) -> None:
        self._check_open()
        self._matrix.set_frame(frame)

    compare_latencies = _Measured("_matrix")
    plot_latencies = _By("_matrix")

    # -- CPU, memory, disk IO (Resources) ------------------------------------------------
    def vnode_update(self, vnode: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Distem's vnode_update: change the 'vcpu', 'vmem', 'vfilesystem' (disk_throttling) and
        'vifaces' (input/output limits, by name) of a created vnode, live where it runs.
        Everything is checked before anything changes.

        Example::

            p.vnode_update("node1", {"vcpu": {"corenb": 1, "val": 0.5, "unit": "ratio"},
                                     "vmem": {"mem": 256}})
        """
        self._check_open()
        self._resources.vnode_update(vnode, desc)
        return self.vnode_info(vnode)

    def vnodes_update(self, names: Sequence[str], desc: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Distem's: ``vnode_update`` on each of ``names`` in turn (each checked before it changes).

        Example::

            p.vnodes_update(["node1", "node2"], {"vcpu": {"corenb": 1, "val": 0.5, "unit": "ratio"}})
        """
        for name in names:
            self.model.vnode(name)
        return [self.vnode_update(name, desc) for name in names]

    def vcpu_create(self, vnode: str, val: float, unit: str = "mhz", corenb: int = 1,
                    exclusive: bool = False) -> dict[str, Any]:
        """Pin ``vnode`` to ``corenb`` cores running at ``val`` ('ratio' of full speed, or 'mhz').

        Raises:
            ValidationError: bad values, MHz without cpufreq on the pnode, not enough free cores.

        Example::

            p.vcpu_create("node1", 0.5, "ratio", corenb=2)   # two cores at half speed
        """
        self._check_open()
        self._resources.vcpu_create(vnode, val, unit, corenb, exclusive)
        return self.vcpu_info(vnode)

    def vcpu_update(self, vnode: str, val: float, unit: str = "mhz") -> dict[str, Any]:
        """Change the speed of ``vnode``'s cores, live; the cores stay the same.

        Example::

            p.vcpu_update("node1", 0.25, "ratio")
        """
        self._check_open()
        self._resources.vcpu_update(vnode, val, unit)
        return self.vcpu_info(vnode)

    def vcpu_remove(self, vnode: str) -> None:
        """Back to every core of the pnode at full speed.

        Example::

            p.vcpu_remove("node1")
        """
        self._check_open()
        self._resources.vcpu_remove(vnode)

    def vcpu_info(self, vnode: str) -> dict[str, Any]:
        """The vnode's vcpu in Distem's shape (cores, speed), or {} without one.

        Example::

            p.vcpu_info("node1")
        """
        return info.vcpu_info(self.model, vnode)

    def vmem_create(self, vnode: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Limit ``vnode``'s memory: {'hierarchy': 'v1'|'v2', 'mem'|'hard_limit', 'soft_limit', 'swap'} (MB).

        Example::

            p.vmem_create("node1", {"hierarchy": "v1", "mem": 512, "swap": 0})
        """
        self._check_open()
        self._resources.vmem_create(vnode, desc)
        return self.vmem_info(vnode)

    def vmem_update(self, vnode: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Change some memory limits, live; keys left out keep their value, 'max' cancels a limit.

        Example::

            p.vmem_update("node1", {"soft_limit": 384})
        """
        self._check_open()
        self._resources.vmem_update(vnode, desc)
        return self.vmem_info(vnode)

    def vmem_remove(self, vnode: str) -> None:
        """No memory limit any more.

        Example::

            p.vmem_remove("node1")
        """
        self._check_open()
        self._resources.vmem_remove(vnode)

    def vmem_info(self, vnode: str) -> dict[str, Any]:
        """The vnode's memory limits in Distem's shape, or {} without any.

        Example::

            p.vmem_info("node1")
        """
        return info.vmem_info(self.model, vnode)

    def vfilesystem_update(self, vnode: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Change disk throttling, live: {'disk_throttling': {'limits': [{'device', 'read_limit', ...}]}}.

        Named devices change (keys left out keep their value, 'max' removes a limit), others stay.
        A device not throttled at the vnode's start becomes visible inside it at its next start.

        Example::

            p.vfilesystem_update("node1", {"disk_throttling": {"limits": [
                {"device": "/dev/sdb", "read_limit": "50MB", "write_limit": "20MB"}]}})
        """
        self._check_open()
        self._resources.vfilesystem_update(vnode, desc)
        return self.vfilesystem_info(vnode)

    def vfilesystem_info(self, vnode: str) -> dict[str, Any]:
        """The vnode's filesystem in Distem's shape: image, shared, cow, disk_throttling.

        Example::

            p.vfilesystem_info("node1")["shared"]
        """
        return info.vfilesystem_info(self.model, vnode)

    # -- routes between vnetworks (Routes) -----------------------------------------------
    def vnode_mode(self, name: str, gateway: bool = True) -> dict[str, Any]:
        """Gateway mode: IPv4 forwarding on (or off) in the vnode, live if it runs, and at every start.

        Turned off, the routes through the vnode go too (automatic ones are computed again).

        Raises:
            ValidationError: unknown vnode, or ``gateway`` not a bool.

        Example::

            p.vnode_mode("gw", gateway=True)
        """
        self._check_open()
        self._routes.vnode_mode(name, gateway)
        return self.vnode_info(name)

    def vroute_create(self, srcnet: str, dstnet: str, gateway: str) -> dict[str, Any]:
        self._check_open()
        return self._routes.vroute_create(srcnet, dstnet, gateway)

    def vroute_complete(self) -> list[dict[str, Any]]:
        self._check_open()
        return self._routes.vroute_complete()

    vroute_create.__doc__ = Routes.vroute_create.__doc__
    vroute_complete.__doc__ = Routes.vroute_complete.__doc__

    @property
    def vroutes(self) -> pd.DataFrame:
        """The routes between vnetworks: gateway and its address, the vnodes following each, where installed."""
        return self._routes.frame

    # -- placement (Placement) -------------------------------------------------------------
    def place(self, descriptions: Mapping[str, dict[str, Any]] | None = None, *, topology: Any = None,
              method: str = "auto", time_limit: float = 10.0) -> PlacementView:
        self._check_open()
        return self._placement.place(descriptions, topology=topology, method=method, time_limit=time_limit)

    place.__doc__ = Placement.place.__doc__

    def run_alevin(self) -> PlacementView:
        """Distem's ``run_alevin()``: ``place()`` on the loaded physical topology.

        Example::

            p.load_physical_topo("grid5000.dot")
            p.run_alevin()      # each vnode gets its pnode
            p.vnodes_start()
        """
        return self.place()

    @property
    def placement(self) -> PlacementView | None:
        """The last ``place()``'s result."""
        return self._placement.view

    @property
    def physical_topology(self) -> nx.Graph:
        """The topology ``place()`` uses: the one loaded, or the pnodes (their cores and memory) on one
        switch with 1 Gbit/s links."""
        return self._placement.physical_topology

    load_physical_topo = _By("_placement")
    vnodes_to_dot = _By("_placement")
    plot_physical_topology = _By("_placement")
    plot_virtual_topology = _By("_placement")
    plot_mapping = _By("_placement")

    def vnodes_from_yaml(self, path: str | os.PathLike[str], image: str | os.PathLike[str],
                         vnetwork: str = "testnet", iface: str = "if0", shared: bool = True) -> list[VNodeHandle]:
        """Describe (not create) the vnodes of the seed's ``vnodes_list.yml`` (see ``load_vnodes_yaml``);
        ``place()`` and ``deploy()`` follow."""
        descriptions = load_vnodes_yaml(path, image, vnetwork, iface, shared)
        self._placement.check_new(descriptions)
        handles = []
        for name, desc in descriptions.items():
            handle = self._vnodes.pending[name] = VNodeHandle(self, name)
            handle._desc = desc
            handles.append(handle)
        return handles

    # -- events over time (Events) ----------------------------------------------------------
    event_trace_add = _By("_events")
    event_trace_string_add = _By("_events")
    event_trace_file_add = _By("_events")
    event_random_add = _By("_events")
    at = _By("_events")
    churn = _By("_events")
    event_remove = _By("_events")
    plot_events = _By("_events")
    events_wait = _By("_events", "wait")
    events_preview = _By("_events", "preview")

    def event_manager_start(self, duration: float | None = None) -> None:
        self._check_open(changes=False)
        self._events.event_manager_start(duration)

    def event_manager_stop(self) -> None:
        self._check_open(changes=False)
        self._events.event_manager_stop()

    event_manager_start.__doc__ = Events.event_manager_start.__doc__
    event_manager_stop.__doc__ = Events.event_manager_stop.__doc__

    @property
    def events(self) -> pd.DataFrame:
        """Every event of the last run (planned, applied, skew, resource, type, value, outcome), or of
        the schedule before it starts; ``.attrs`` holds the start instant and the pnodes' clock offsets."""
        return self._events.frame

    # -- watching a run (Monitor) ----------------------------------------------------------
    def monitor_start(self, interval: float = 1.0, *, max_mb: float = 256.0,
                      rtt: Sequence[tuple[str, str]] = ()) -> None:
        self._check_open(changes=False)
        self._monitor.start(interval, max_mb=max_mb, rtt=rtt)

    monitor_start.__doc__ = Monitor.start.__doc__
    monitor_stop = _By("_monitor", "stop")
    monitor_frame = _By("_monitor", "frame")
    metric_series = _By("_monitor", "series_of")
    plot_metrics = _By("_monitor", "plot")
    fidelity = _By("_monitor", "fidelity")
    pnodes_launch_probes = _By("_monitor")
    pnodes_get_probes_data = _By("_monitor")
    pnodes_restart_probes = _By("_monitor")
    pnodes_stop_probes = _By("_monitor")
    pnodes_delete_probes = _By("_monitor")

    @property
    def monitor_events(self) -> pd.DataFrame:
        """``p.events`` with a ``time`` column on the monitor's clock (s from its start), where its series are."""
        return self._monitor.event_times()

    @property
    def metrics(self) -> pd.DataFrame:
        """What the monitor sampled (``monitor_start``), tidy: time, pnode, vnode, iface, peer, metric, value;
        counters as rates. ``p.monitor_frame(raw=True)``: the counters as read."""
        return self._monitor.frame()

    # -- the whole platform, and a record of the run (VPlatform, Records) ------------------
    def vplatform_info(self) -> dict[str, Any]:
        """Distem's: the whole platform as one document (JSON-able; ``distem.model.document`` says its
        shape): pnodes, vnetworks, vnodes with their filesystems, interfaces, limits, CPU, memory and IO,
        the latency matrix, routes, partition, links down, the schedule not started yet.

        Example::

            doc = p.vplatform_info()
            pathlib.Path("platform.json").write_text(json.dumps(doc, indent=1))
        """
        return self._records.document()

    def vplatform_create(self, data: Any, format: str = "JSON") -> dict[str, Any]:
        """Distem's: make a whole platform from a document (a dict, JSON or YAML text, or a file: see
        ``vplatform_info``), checked whole first; its vnodes started as their 'status' says.

        Raises:
            ValidationError: a bad document, named, before anything changes.

        Example::

            p.vplatform_create("platform.yml")           # a platform file (YAML or JSON), a dict, or text
        """
        self._check_open()
        self._vplatform.create(data, format)
        return self.vplatform_info()

    def record(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """Write this run's record (see ``distem.platform.records``): the platform document, versions,
        pnodes' kernels and backends, images' sha256, every change sent, the events as applied, the
        measurements taken. Default directory: ``default_records_dir()/<id>``. Its path.

        Example::

            p.compare_latencies()
            p.record("results/run-1")     # then: distem diff results/run-1 results/run-2
        """
        events = self._events.frame if self._events.run is not None else None
        metrics = self._monitor.frame() if self._monitor.series else None
        return self._records.write(directory or default_records_dir() / self.id, events, metrics)

    # -- state as DataFrames ----------------------------------------------------------
    @property
    def vnodes(self) -> pd.DataFrame:
        running = [n for n, s in self.model.status.items() if s in (RUNNING, FROZEN)] if not self.pool.closed else []
        calls = {pnode: ("usage", {"paths": {n: vnode_cgroup(self.id, n, self.model.pnodes[pnode].cgroup_parent)
                                             for n in group}})
                 for pnode, group in self.pool.by_host(self.model, running).items()}
        usage = {name: used for found in self.pool.on_all(calls).values() for name, used in found.items()}
        return frames.vnodes_frame(self.model, usage)

    @property
    def vifaces(self) -> pd.DataFrame:
        return frames.vifaces_frame(self.model, {p: self.backend(p) for p in self.sessions})

    @property
    def vnetworks(self) -> pd.DataFrame:
        return frames.vnetworks_frame(self.model)

    @property
    def pnodes(self) -> pd.DataFrame:
        return frames.pnodes_frame(self.model, {p: s.facts for p, s in self.sessions.items()}, self.pool.states(),
                                   {p: self.backend(p) for p in self.sessions})

    def __repr__(self) -> str:
        state = ("closed" if self.pool.closed
                 else f"{len(self.model.vnodes)} vnodes, {len(self.model.vnetworks)} vnetworks")
        return f"<distem.Platform {self.id} on {', '.join(self.model.pnodes)}: {state}>"

    def _repr_html_(self) -> str:
        return html.platform_html(self)

    # -- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Remove everything this platform created on every pnode, then disconnect. Safe twice.
        What the monitor sampled is fetched first, and stays in ``p.metrics``."""
        try:
            self._monitor.stop()
        finally:
            self.pool.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

