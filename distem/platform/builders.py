"""Chainable handles: ``p.vnode("n1").image(img).iface("if0", "vnet")`` and ``p.vnetwork(...)``.

A handle on a vnode that does not exist yet collects a description in
Distem's dict shape — so builders and ``vnode_create`` share one validator —
and ``p.deploy()`` creates every described vnode in one batch. Each call
validates its own piece at once, so a mistake is reported on its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ValidationError
from ..model import VNodeRequest, parse_filesystem, parse_iface, parse_vnode
from ..model.resources import parse_vcpu_desc, parse_vio, parse_vmem
from . import html

Argv = str | Sequence[str]
Platform = Any  # a distem.Platform: it makes the handles, so this module does not import it


class VNodeHandle:
    def __init__(self, platform: Platform, name: str) -> None:
        self.platform, self.name = platform, name
        self._desc: dict[str, Any] = {"vifaces": []}

    # -- describing (before deploy) ---------------------------------------------------
    def _describing(self, what: str) -> dict[str, Any]:
        if self.name in self.platform.model.vnodes:
            raise ValidationError(f"{self.name}.{what}", "(builder)", "the vnode exists already; "
                                  "change a running vnode with the update calls")
        return self._desc

    def image(self, image: str, *, shared: bool | None = None, cow: bool | str | None = None) -> VNodeHandle:
        """The root filesystem: a tarball; ``shared``/``cow`` as in Distem (default: overlay copy-on-write)."""
        fs: dict[str, Any] = {"image": image}
        if shared is not None:
            fs["shared"] = shared
        if cow is not None:
            fs["cow"] = cow
        parse_filesystem(f"{self.name}.vfilesystem", fs)
        desc = self._describing("image")
        if "disk_throttling" in desc.get("vfilesystem", {}):  # .disk() came first
            fs["disk_throttling"] = desc["vfilesystem"]["disk_throttling"]
        desc["vfilesystem"] = fs
        return self

    def iface(self, name: str, vnetwork: str | None = None, *, address: str | None = None,
              macaddress: str | None = None, default: bool = False, output: dict[str, Any] | None = None,
              input: dict[str, Any] | None = None) -> VNodeHandle:
        """An interface on ``vnetwork``; ``output``/``input``: limits in Distem's shape, e.g.
        ``output={"bandwidth": "100mbps", "latency": "20ms"}``. Describing an interface again (a cell
        run twice, a retry after a failed deploy) replaces it."""
        desc = {"name": name, "vnetwork": vnetwork, "address": address, "default": default,
                **({"macaddress": macaddress} if macaddress else {}),
                **({"output": output} if output else {}), **({"input": input} if input else {})}
        ifaces = self._describing("iface")["vifaces"]
        index = next((i for i, d in enumerate(ifaces) if d["name"] == name), len(ifaces))
        parse_iface(f"{self.name}.vifaces[{index}]", desc)
        ifaces[index:index + 1] = [desc]
        return self

    def cpu(self, cores: int = 1, ratio: float = 1.0, *, exclusive: bool = False) -> VNodeHandle:
        """Pin to ``cores`` cores of its pnode, each running at ``ratio`` of full speed."""
        vcpu = {"corenb": cores, "val": ratio, "unit": "ratio", "exclusive": exclusive}
        if self.name in self.platform.model.vnodes:  # live
            self.platform.vcpu_create(self.name, ratio, "ratio", cores, exclusive)
        else:
            parse_vcpu_desc(f"{self.name}.vcpu", vcpu)
            self._desc["vcpu"] = vcpu
        return self

    def memory(self, hard: int | str | None = None, *, soft: int | str | None = None,
               swap: int | str | None = None) -> VNodeHandle:
        """Memory limits (MB, or sizes such as "512M"): ``hard`` kills past it, ``soft`` reclaims past it,
        ``swap`` on top of ``hard``; through the cgroup hierarchy the pnode has memory on."""
        vmem = {k: v for k, v in (("hard_limit", hard), ("soft_limit", soft), ("swap", swap)) if v is not None}
        if self.name in self.platform.model.vnodes:  # live
            self.platform.vmem_update(self.name, vmem)
        else:
            parse_vmem(f"{self.name}.vmem", vmem)
            self._desc["vmem"] = vmem
        return self

    def disk(self, device: str, *, read: int | str | None = None, write: int | str | None = None,
             read_iops: int | None = None, write_iops: int | None = None) -> VNodeHandle:
        """Throttle IO to a whole disk of the pnode (bytes/s, or "10MB"); the device appears in the vnode.
        Describing a device again replaces its limits."""
        limit = {"device": device, **{k: v for k, v in (("read_limit", read), ("write_limit", write),
                                                         ("read_iops", read_iops), ("write_iops", write_iops))
                                       if v is not None}}
        if self.name in self.platform.model.vnodes:  # live
            self.platform.vfilesystem_update(self.name, {"disk_throttling": {"limits": [limit]}})
            return self
        vfs = self._desc.setdefault("vfilesystem", {})
        others = [old for old in vfs.get("disk_throttling", {}).get("limits", []) if old["device"] != device]
        vio = {"limits": [*others, limit]}
        parse_vio(f"{self.name}.vfilesystem.disk_throttling", vio)
        vfs["disk_throttling"] = vio
        return self

    def host(self, pnode: str) -> VNodeHandle:
        self._describing("host")["host"] = pnode
        return self

    def gateway(self, enabled: bool = True) -> VNodeHandle:
        """Gateway mode (IPv4 forwarding): at every start, and live on a vnode that exists."""
        if self.name in self.platform.model.vnodes:
            self.platform.vnode_mode(self.name, enabled)
        else:
            self._describing("mode")["mode"] = "gateway" if enabled else "normal"
        return self

    def ssh_key(self, public: str | None = None, private: str | None = None) -> VNodeHandle:
        self._describing("ssh_key")["ssh_key"] = {"public": public, "private": private}
        return self

    def request(self) -> VNodeRequest:
        return parse_vnode(self.name, self._desc)

    def discard(self) -> None:
        """Forget this description (before deploy)."""
        self.platform._vnodes.pending.pop(self.name, None)

    # -- acting (after deploy) --------------------------------------------------------
    def limit(self, iface: str, *, output: dict[str, Any] | None = None,
              input: dict[str, Any] | None = None) -> VNodeHandle:
        """Change an interface's limits live (only the properties given change)."""
        desc = {**({"output": output} if output is not None else {}), **({"input": input} if input is not None else {})}
        self.platform.viface_update(self.name, iface, desc)
        return self

    def start(self) -> VNodeHandle:
        self.platform.vnode_start(self.name)
        return self

    def stop(self) -> VNodeHandle:
        self.platform.vnode_stop(self.name)
        return self

    def execute(self, command: Argv, timeout: float | None = None) -> str:
        """Run a command in the vnode; its stdout, or CommandError on a non-zero status."""
        return self.platform.check(self.name, command, timeout)

    @property
    def status(self) -> str:
        return self.platform.model.status.get(self.name, "DESCRIBED")

    @property
    def info(self) -> dict[str, Any]:
        return self.platform.vnode_info(self.name)

    def __repr__(self) -> str:
        return f"<vnode {self.name} {self.status}>"

    def _repr_html_(self) -> str:
        if self.name not in self.platform.model.vnodes:
            return html.pre(f"vnode {self.name} (described, not deployed): {self._desc}")
        return html.dict_html(f"vnode {self.name}", self.info)


class VNetworkHandle:
    def __init__(self, platform: Platform, name: str) -> None:
        self.platform, self.name = platform, name

    @property
    def info(self) -> dict[str, Any]:
        return self.platform.vnetwork_info(self.name)

    def remove(self) -> None:
        self.platform.vnetwork_remove(self.name)

    def __repr__(self) -> str:
        vnet = self.platform.model.vnetworks.get(self.name)
        return f"<vnetwork {self.name} {vnet.cidr if vnet else '(removed)'}>"

    def _repr_html_(self) -> str:
        return html.dict_html(f"vnetwork {self.name}", self.info)
