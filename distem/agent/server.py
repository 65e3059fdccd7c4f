"""The agent's side of the channel.

Protocol (builtin types only):
    controller -> agent   {"protocol": 1, "platform_id", "state_dir", "pnode", "cgroup_root"}   handshake
                          (or with "clean_only": True, and no cgroup_root: clean platform_id, or every
                          platform if it is None, answer ("ok", None, summary or [summaries]) and end)
    agent -> controller   ("hello", {"protocol": 1, "pid", "facts"})
    controller -> agent   (request_id, operation, kwargs)
    agent -> controller   ("progress", request_id, done, total)
                          ("ok", request_id, result)
                          ("error", request_id, {"operation", "target", "errno", "message", "index"})
Operations come from the fixed table ``Agent.handlers``; nothing is evaluated.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyroute2 import IPRoute

from . import cgroups, containers, facts, measure, monitor, shaping, timeline, undo, userspace, wire
from .apply import Applier, OpFailed, images_missing, receive_image
from .journal import Journal
from .system import process_start_time

PROTOCOL = 1
log = logging.getLogger("distem.agent")
Progress = Callable[[int, int], None]
START_WORKERS = 4  # containers started at once on a pnode
# What changes the pnode (timeline.CHANGES) runs one at a time, whether from the channel or the timeline.
# The channel's reads (fping, execute, ...) take no lock, so a measurement runs while the timeline changes links.


class Agent:
    def __init__(self, platform_id: str, state_dir: str, cgroup_root: str) -> None:
        """``cgroup_root``: the platform's cgroup directory on this pnode (the controller names it)."""
        self.platform_id, self.state_dir, self.cgroup_root = platform_id, state_dir, cgroup_root
        self.root = os.path.join(state_dir, "platforms", platform_id)
        self.lxcpath = os.path.join(self.root, "lxc")
        os.makedirs(self.lxcpath, exist_ok=True)
        os.makedirs(os.path.join(self.root, "shared"), exist_ok=True)  # /shared in the vnodes (plan/paths.py)
        self.journal = Journal(os.path.join(self.root, undo.JOURNAL))
        self.journal.add("dir", self.root, "platform")
        self.journal.add("cgroup", cgroup_root, "platform")
        self.journal.add("process", str(os.getpid()), "platform", pid=os.getpid(),
                         start=process_start_time(os.getpid()), role="agent")
        self.journal.sync()
        self.home = cgroups.current()
        self.ipr = IPRoute()
        self.delay_lines = userspace.DelayLines(self.journal, self.root, platform_id,
                                                lambda: cgroups.enter(self.home))
        self.applier = Applier(self.journal, self.ipr, self.delay_lines,
                               lambda name: containers.init_pid(name, self.lxcpath))
        self.spawned: dict[int, subprocess.Popen[str]] = {}
        self.lock = threading.Lock()
        self.timeline = timeline.Timeline(self._timeline_run, self.lock, self._timeline_rehearse)
        self.samplers: dict[str, monitor.Sampler] = {}
        self.handlers: dict[str, Callable[..., Any]] = {
            "apply": self.apply, "undo_owner": self.undo_owner, "start": self.start, "stop": self.stop,
            "freeze": self.freeze, "unfreeze": self.unfreeze, "state": self.state,
            "execute": self.execute, "wait_listening": self.wait_listening, "fping": self.fping,
            "netns_run": self.netns_run, "netns_spawn": self.netns_spawn, "process_end": self.process_end,
            "block_devices": self.block_devices, "usage": self.usage, "rootfs_archive": self.rootfs_archive,
            "file_read": self.file_read, "file_remove": self.file_remove,
            "images_missing": lambda progress, images: images_missing(images),
            "image_receive": lambda progress, target, data: receive_image(target, data),
            "clock": lambda progress: time.time(),
            "timeline_load": self.timeline_load,
            "timeline_start": lambda progress, epoch: self.timeline.start(epoch),
            "timeline_status": lambda progress: self.timeline.status(),
            "timeline_stop": lambda progress: self.timeline.stop(),
            "cpu_times": lambda progress: monitor.cpu_times(),
            "monitor_start": self.monitor_start,
            "monitor_fetch": lambda progress, name, known_keys: self.samplers[name].fetch(known_keys),
            "monitor_status": lambda progress, name: self.samplers[name].status(),
            "monitor_stop": self.monitor_stop,
            "monitor_resume": lambda progress, name: self.samplers[name].start(),
        }

    def _timeline_run(self, operation: str, kwargs: dict[str, Any]) -> Any:
        result = self.handlers[operation](lambda done, total: None, **kwargs)
        cgroups.enter(self.home)  # LXC moved us into a container's monitor cgroup
        return result

    def _timeline_rehearse(self, operation: str, kwargs: dict[str, Any]) -> None:
        if operation == "apply":
            self.applier.rehearse(kwargs["ops"])

    def timeline_load(self, progress: Progress, entries: list[dict[str, Any]]) -> int:
        """The platform's events on this pnode (see timeline.py); only changes, checked before any runs."""
        timeline.check(entries, wire.check)
        ops = [op for entry in entries for _, kwargs in entry["requests"] for op in kwargs.get("ops", ())]
        for op in ops:
            shaping.prepare(op)
        with self.lock:  # first-time costs now, not at the first instant
            shaping.warm_up()
            if any(op["op"] == "delayline_set" for op in ops):
                self.delay_lines.ready()
                cgroups.enter(self.home)
        return self.timeline.load(entries)

    def monitor_start(self, progress: Progress, name: str, interval: float, epoch: float, max_mb: float,
                      devices: list[str], queues: list[str], platform: bool, system: bool, host: str = "",
                      loadavg: bool = False, pings: list[list[str]] | None = None) -> None:
        """Sampler ``name`` (a previous one of that name is replaced): ``devices`` and ``queues``, name
        prefixes of interfaces (see monitor.Sampler); ``platform``: the vnodes' cgroups and the delay
        line; ``system``: the pnode's CPU, load, memory; ``pings``: ``[label, vnode, address]``, an RTT
        series each (fping every tenth of the interval, at most 100 ms); Distem's probes: ``host``,
        ``loadavg``."""
        self.monitor_stop(progress, name, forget=True)
        period = max(10, min(100, int(interval * 100)))
        pingers = [monitor.Pinger(label, vnode, address, period, self._spawn_pinger, self._reap)
                   for label, vnode, address in pings or []]
        sampler = monitor.Sampler(interval, epoch, max_mb, devices, queues, self.cgroup_root if platform else "",
                                  system, self.delay_lines.stats if platform else None, host, loadavg, pingers)
        self.samplers[name] = sampler
        sampler.start()

    def monitor_stop(self, progress: Progress, name: str, forget: bool = False) -> None:
        """Stop sampler ``name`` (its rows stay to fetch, unless ``forget``)."""
        sampler = self.samplers.get(name)
        if sampler is not None:
            sampler.stop()
            if forget:
                del self.samplers[name]

    # -- handlers ----------------------------------------------------------------------
    def apply(self, progress: Progress, ops: list[dict[str, Any]]) -> int:
        return self.applier.apply(ops, lambda done: progress(done, len(ops)))

    def undo_owner(self, progress: Progress, owners: list[str]) -> list[str]:
        wanted = set(owners)
        return undo.undo(self.journal, [e for e in self.journal.entries() if e["owner"] in wanted])

    def block_devices(self, progress: Progress, paths: list[str]) -> dict[str, dict[str, Any]]:
        return {path: cgroups.block_device(path) for path in paths}

    def usage(self, progress: Progress, paths: dict[str, str]) -> dict[str, dict[str, int]]:
        """What each vnode's cgroup (``{vnode: relative cgroup path}``) has used: CPU time, memory,
        bytes read and written."""
        h = cgroups.hierarchies()
        return {name: cgroups.usage(path, h) for name, path in paths.items()}

    def _each(self, progress: Progress, operation: str, names: list[str], action: Callable[[str], Any],
              workers: int = 1) -> dict[str, Any]:
        """Run ``action`` on each vnode; a failure (wire.FAILURE) is that vnode's result, not the batch's end."""
        results: dict[str, Any] = {}

        def one(name: str) -> None:
            try:
                results[name] = {"ok": True, "value": action(name)}
            except Exception as exc:
                results[name] = {"ok": False, "failure": {**failure(exc, operation), "target": name}}
            progress(len(results), len(names))

        if workers > 1 and len(names) > 1:
            with ThreadPoolExecutor(min(workers, len(names))) as pool:
                list(pool.map(one, names))
        else:
            for name in names:
                one(name)
        return results

    def start(self, progress: Progress, names: list[str],
              shaping: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
        """Start containers, START_WORKERS at a time (an lxc-start mostly waits for its container: at 3,000
        vnodes the machine was 45 % idle starting one after another); then shape their interfaces one after
        another (the host-side veths exist only now, and the Applier is not thread-safe)."""
        total = 2 * len(names)
        started = self._each(lambda done, _: progress(done, total), "start", names,
                             lambda n: containers.start(n, self.lxcpath), workers=START_WORKERS)

        def shape(name: str) -> str:
            if shaping and shaping.get(name):
                self.applier.apply(shaping[name])
            return str(started[name]["value"])
        ready = [n for n in names if started[n]["ok"]]
        shaped = self._each(lambda done, _: progress(total - len(ready) + done, total), "start", ready, shape)
        return {**started, **shaped}

    def stop(self, progress: Progress, names: list[str]) -> dict[str, Any]:
        if len(names) > 1:  # together: their namespaces go in one batch (containers.stop_many)
            containers.stop_many(names, self.lxcpath)
        return self._each(progress, "stop", names, lambda n: containers.stop(n, self.lxcpath))

    def freeze(self, progress: Progress, names: list[str]) -> dict[str, Any]:
        return self._each(progress, "freeze", names, lambda n: containers.freeze(n, self.lxcpath))

    def unfreeze(self, progress: Progress, names: list[str]) -> dict[str, Any]:
        return self._each(progress, "unfreeze", names, lambda n: containers.unfreeze(n, self.lxcpath))

    def state(self, progress: Progress, names: list[str]) -> dict[str, Any]:
        return {n: containers.state(n, self.lxcpath) for n in names}

    def execute(self, progress: Progress, names: list[str], argv: list[str],
                timeout: float | None = None) -> dict[str, Any]:
        return self._each(progress, "execute", names,
                          lambda n: containers.execute(n, self.lxcpath, argv, timeout), workers=16)

    def wait_listening(self, progress: Progress, names: list[str], port: int) -> dict[str, bool]:
        out = {}
        for name in names:
            pid = containers.state(name, self.lxcpath)["pid"]
            out[name] = bool(pid) and containers.listening(int(pid), port)
        return out

    def fping(self, progress: Progress, names: list[str], targets: list[str], count: int,
              interval_ms: int, own: dict[str, str], timeout_ms: int = 2000,
              parallel: int | None = None) -> dict[str, Any]:
        """``parallel``: sources probing at once (default: 16 per core, so that busy cores do not
        delay the replies' timestamps)."""
        pids = {n: containers.state(n, self.lxcpath)["pid"] for n in names}
        stopped = [n for n, pid in pids.items() if not pid]
        if stopped:
            raise containers.ContainerError(stopped[0], "vnode is not running")
        wave = parallel or 16 * len(os.sched_getaffinity(0))
        results: dict[str, Any] = {}
        for start in range(0, len(names), wave):
            group = {n: pids[n] for n in names[start:start + wave]}
            results.update(measure.fping_many(group, targets, count, interval_ms, own, timeout_ms))
            progress(len(results), len(names))
        return results

    def _netns_argv(self, name: str, argv: list[str], pid: int | None = None) -> list[str]:
        return measure.in_netns(pid or containers.init_pid(name, self.lxcpath), argv)

    def netns_run(self, progress: Progress, name: str, argv: list[str], timeout: float = 60) -> tuple[int, str, str]:
        """Run a program of this pnode inside vnode ``name``'s network namespace (tools the image lacks)."""
        proc = subprocess.run(self._netns_argv(name, argv), capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout, proc.stderr

    def netns_spawn(self, progress: Progress, name: str, argv: list[str]) -> int:
        """Start such a program in the background (journalled: clean stops it); its pid."""
        proc = self._spawn(name, argv, text=True)
        self.spawned[proc.pid] = proc
        return proc.pid

    def _spawn(self, name: str, argv: list[str], text: bool = False, pid: int | None = None) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(self._netns_argv(name, argv, pid), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL if not text else subprocess.PIPE, text=text)
        self.journal.add("process", str(proc.pid), wire.vnode_owner(name), pid=proc.pid,
                         start=process_start_time(proc.pid))
        return proc

    def _spawn_pinger(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[Any], int] | None:
        """From the sampler's thread: under the lock, from the agent's own cgroups (a container's
        start moves the agent into its monitor cgroup meanwhile, and a child would stay there).
        None while the vnode is not running."""
        with self.lock:
            cgroups.enter(self.home)
            try:
                init = containers.init_pid(name, self.lxcpath)
            except containers.ContainerError:
                return None
            return self._spawn(name, argv, pid=init), init

    def _reap(self, proc: subprocess.Popen[Any]) -> None:
        """The end of a process _spawn started (killed already): waited for, out of the journal."""
        proc.wait()
        self.journal.remove({"kind": "process", "id": str(proc.pid)})

    def process_end(self, progress: Progress, pid: int, timeout: float = 10,
                    kill: bool = True) -> tuple[int, str, str] | None:
        """Wait up to ``timeout`` for a spawned program; its status and output. Past the timeout it is
        killed, or (``kill=False``) None is returned and it keeps running: the controller polls, so
        the channel stays free for other calls (a live change during a measurement)."""
        proc = self.spawned[pid]
        if not kill:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        del self.spawned[pid]
        self.journal.remove({"kind": "process", "id": str(pid)})
        return proc.returncode, out, err

    def rootfs_archive(self, progress: Progress, name: str, root: str) -> dict[str, Any]:
        """A gzipped tarball of vnode ``name``'s root filesystem, as the vnode sees it when it runs (else
        ``root``, its tree on this pnode), in the platform's directory: its path and size."""
        pid = containers.state(name, self.lxcpath)["pid"]
        path = os.path.join(self.root, f"rootfs-{name}-{os.getpid()}-{time.monotonic_ns()}.tar.gz")
        proc = subprocess.run(["tar", "czf", path, "--one-file-system", "--numeric-owner", "-C",
                               f"/proc/{pid}/root" if pid else root, "."], capture_output=True, text=True)
        if proc.returncode not in (0, 1):  # 1: a file changed while it was read (a running vnode)
            raise OSError(errno.EIO, f"tar of {name}'s filesystem failed: {proc.stderr.strip()[-300:]}")
        return {"path": path, "size": os.path.getsize(path)}

    def file_read(self, progress: Progress, path: str, offset: int, size: int) -> bytes:
        """Part of a file this agent made in the platform's directory (a tarball on its way to the controller)."""
        if os.path.dirname(os.path.abspath(path)) != self.root:
            raise PermissionError(f"{path} is not in this platform's directory")
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def file_remove(self, progress: Progress, path: str) -> None:
        if os.path.dirname(os.path.abspath(path)) != self.root:
            raise PermissionError(f"{path} is not in this platform's directory")
        os.unlink(path)

    def close(self) -> dict[str, object]:
        self.timeline.stop()  # nothing fires once the platform is being removed
        for sampler in self.samplers.values():
            sampler.stop()
        cgroups.enter(self.home)
        self.delay_lines.stop()  # our child: reaped here, so undo does not wait on a zombie
        self.ipr.close()
        self.journal.close()
        return undo.clean(self.state_dir, self.platform_id)


def failure(exc: BaseException, operation: str) -> dict[str, Any]:
    """What the controller is told of a failure: the fields of wire.FAILURE (an AgentError there)."""
    if isinstance(exc, OpFailed):
        return {"operation": exc.op["op"], "target": exc.target, "errno": exc.errno, "index": exc.index,
                "message": str(exc) + (f" (rollback left: {'; '.join(exc.rollback_failures)})"
                                       if exc.rollback_failures else "")}
    return {"operation": operation, "target": getattr(exc, "target", None),
            "errno": getattr(exc, "errno", None) or getattr(exc, "code", None), "index": None,
            "message": f"{type(exc).__name__}: {exc}"}


def serve(channel: Any) -> None:
    hello = channel.receive()
    if hello.get("protocol") != PROTOCOL:
        channel.send(("error", None, {"operation": "handshake", "target": None, "errno": None, "index": None,
                                      "message": f"agent speaks protocol {PROTOCOL}, controller {hello.get('protocol')}"}))
        return
    if hello.get("clean_only"):  # the controller lost its agent, or `distem clean`: clean from the journal, go
        try:
            platform_id = hello["platform_id"]  # None: every platform recorded under the state directory
            channel.send(("ok", None, undo.clean(hello["state_dir"], platform_id) if platform_id
                          else undo.clean_all(hello["state_dir"])))
        except Exception as exc:
            channel.send(("error", None, failure(exc, "clean")))
        return
    try:
        agent = Agent(hello["platform_id"], hello["state_dir"], hello["cgroup_root"])
    except Exception as exc:
        channel.send(("error", None, failure(exc, "handshake")))
        return
    channel.send(("hello", {"protocol": PROTOCOL, "pid": os.getpid(), "facts": facts.facts()}))
    for request_id, operation, kwargs in channel:
        if operation == "close":
            try:
                channel.send(("ok", request_id, agent.close()))
            except Exception as exc:
                channel.send(("error", request_id, failure(exc, operation)))
            return

        def progress(done: int, total: int, request_id: int = request_id) -> None:
            channel.send(("progress", request_id, done, total))

        try:
            handler = agent.handlers[operation]
        except KeyError:
            channel.send(("error", request_id, failure(KeyError(f"unknown operation {operation!r}"), operation)))
            continue
        try:
            if operation in timeline.CHANGES:
                with agent.lock:
                    reply = ("ok", request_id, handler(progress, **kwargs))
                    cgroups.enter(agent.home)
            else:
                reply = ("ok", request_id, handler(progress, **kwargs))
        except Exception as exc:
            log.debug("operation %s failed", operation, exc_info=True)
            reply = ("error", request_id, failure(exc, operation))
        cgroups.enter(agent.home)
        channel.send(reply)
