"""One pnode's session: an execnet gateway, the agent sent through it, and calls to it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

import execnet

from .. import agent
from ..agent import bootstrap, server
from ..errors import AgentError
from ..model.entities import PNode
from ..model.names import cgroup_root

log = logging.getLogger(__name__)
AGENT_PACKAGE = "distem_agent"
STANDALONE = ("bootstrap.py", "prepare.py")  # sent alone through remote_exec, not part of the package
Progress = Callable[[int, int], None]


def agent_sources() -> dict[str, str]:
    """The agent package's modules as ``{distem_agent.name: source}`` (the standalone ones excluded)."""
    sources = {}
    for item in resources.files(agent).iterdir():
        if item.name.endswith(".py") and item.name not in STANDALONE:
            stem = item.name[:-3]
            name = AGENT_PACKAGE if stem == "__init__" else f"{AGENT_PACKAGE}.{stem}"
            sources[name] = item.read_text()
    return sources


def gateway_spec(pnode: PNode) -> str:
    """The execnet spec; this machine's pnode runs our own interpreter, as root (sudo -n if needed).

    Raises:
        AgentError: not root, and passwordless sudo is not available.
    """
    if pnode.spec != "popen":
        return pnode.spec
    if os.geteuid() == 0:
        return f"popen//python={sys.executable}"
    probe = subprocess.run(["sudo", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise AgentError(pnode.name, "connect", "the agent must run as root: run Python as root, or allow "
                         f"passwordless sudo for {sys.executable} (sudo -n said: {probe.stderr.strip() or probe.returncode})")
    return f"popen//python=sudo -n {sys.executable}"


def _why_unreachable(spec: execnet.XSpec, timeout: float = 15) -> str:
    """What ssh says when run as the gateway runs it: execnet only raises HostNotFound, and ssh's own
    message went to our stderr. One more attempt, in batch mode (it must not prompt)."""
    argv = ["ssh", "-o", "BatchMode=yes", *(["-F", spec.ssh_config] if spec.ssh_config else []), spec.ssh,
            spec.python or "python3", "-c", "pass"]
    try:
        probe = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"ssh {spec.ssh} did not answer within {timeout:g} s"
    except OSError as exc:
        return f"cannot run ssh: {exc}"
    said = " | ".join(probe.stderr.strip().splitlines()[-3:])
    if probe.returncode == 0:
        return f"ssh {spec.ssh} works, but the gateway failed to start {spec.python or 'python3'} there"
    return f"ssh {spec.ssh} exited with status {probe.returncode}" + (f": {said}" if said else "")


def open_gateway(pnode: PNode) -> execnet.Gateway:
    """The execnet gateway to ``pnode``.

    Raises:
        AgentError: naming the pnode and why (for ssh, ssh's own message).
    """
    spec = gateway_spec(pnode)
    try:
        return execnet.makegateway(spec)
    except Exception as exc:
        xspec = execnet.XSpec(spec)
        why = _why_unreachable(xspec) if xspec.ssh else f"{type(exc).__name__}: {exc}"
        raise AgentError(pnode.name, "connect", f"cannot open gateway {pnode.spec!r}: {why}") from exc


def clean_remotely(pnode: PNode, platform_id: str | None, timeout: float = 120) -> Any:
    """Run ``distem clean`` on ``pnode`` through a new, short-lived gateway: for one platform (its
    summary ``{platform, removed, failures}``), or for every one recorded there (``platform_id``
    None: a list of summaries).

    Raises:
        AgentError: the pnode cannot be reached, or its clean failed.
    """
    gateway = open_gateway(pnode)
    try:
        channel = gateway.remote_exec(bootstrap)
        channel.send((AGENT_PACKAGE, agent_sources()))
        channel.send({"protocol": server.PROTOCOL, "platform_id": platform_id, "state_dir": pnode.state_dir,
                      "pnode": pnode.name, "clean_only": True})
        kind, _, summary = channel.receive(timeout)
        if kind != "ok":
            raise AgentError(pnode.name, "clean", summary["message"])
        return summary
    finally:
        gateway.exit()


class PnodeSession:
    """A context manager; ``close()`` is safe to call twice."""

    def __init__(self, pnode: PNode, platform_id: str, timeout: float = 60) -> None:
        self.pnode, self.platform_id = pnode, platform_id
        self._lock = threading.Lock()
        self._next_id = 0
        self._closed = False
        self.lost = False  # the agent or its channel went away: calls fail, close cleans through a new gateway
        self.gateway = open_gateway(pnode)
        try:
            self.channel = self.gateway.remote_exec(bootstrap)
            self.channel.send((AGENT_PACKAGE, agent_sources()))
            self.channel.send({"protocol": server.PROTOCOL, "platform_id": platform_id,
                               "state_dir": pnode.state_dir, "pnode": pnode.name,
                               "cgroup_root": cgroup_root(platform_id, pnode.cgroup_parent)})
            reply = self.channel.receive(timeout)
        except Exception as exc:
            self.gateway.exit()
            raise AgentError(pnode.name, "handshake", str(exc)) from exc
        if reply[0] != "hello":
            self.gateway.exit()
            self._raise("handshake", reply[2])
        self.agent_pid: int = reply[1]["pid"]
        self.facts: dict[str, Any] = reply[1]["facts"]

    def _raise(self, operation: str, info: dict[str, Any]) -> None:
        raise AgentError.from_failure(self.pnode.name, info, operation)

    def call(self, operation: str, progress: Progress | None = None, reply_timeout: float | None = None,
             **kwargs: Any) -> Any:
        """Run one agent operation and return its result; raises AgentError naming the pnode.

        ``reply_timeout`` bounds the wait for each message from the agent; ``kwargs`` go to the agent.
        """
        with self._lock:
            if self._closed:
                raise AgentError(self.pnode.name, operation, "the session is closed")
            self._next_id += 1
            request_id = self._next_id
            try:
                self.channel.send((request_id, operation, kwargs))
                while True:
                    message = self.channel.receive(reply_timeout)
                    if message[1] != request_id:
                        continue  # the late reply of a call that timed out
                    if message[0] == "progress":
                        if progress:
                            progress(message[2], message[3])
                        continue
                    break
            except (EOFError, OSError, execnet.RemoteError, execnet.TimeoutError) as exc:
                self.lost = not isinstance(exc, execnet.TimeoutError)
                raise AgentError(self.pnode.name, operation, f"lost the agent: {exc}") from exc
        if message[0] == "error":
            self._raise(operation, message[2])
        return message[2]

    def close(self, clean: bool = True) -> dict[str, Any] | None:
        """Clean what the platform made on this pnode (unless ``clean`` is False), then disconnect.

        If the agent is gone or its channel broken, a fresh gateway runs the clean from the journal.
        """
        if self._closed:
            return None
        summary = None
        try:
            if clean:
                try:
                    summary = self.call("close")
                except AgentError as exc:
                    log.warning("%s; cleaning through a new gateway", exc)
                    self.lost = True
                    summary = clean_remotely(self.pnode, self.platform_id)
        finally:
            self._closed = True
            try:
                self.channel.close()
            except Exception:
                pass
            self.gateway.exit()
        return summary

    def __enter__(self) -> PnodeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
