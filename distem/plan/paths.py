"""Where a platform's files live on a pnode (pure path arithmetic).

    <state_dir>/images/<sha>/rootfs          pristine extracted images, shared by platforms (a cache)
    <state_dir>/platforms/<id>/journal.jsonl what the platform created (see agent.journal)
    <state_dir>/platforms/<id>/lxc/<vnode>/  LXC's per-container directory (config)
    <state_dir>/platforms/<id>/fs/...        root filesystems: shared copies, distinct copies, overlay deltas
    <state_dir>/platforms/<id>/etc/          hosts, resolv.conf, hostname-<vnode>: bound over each vnode's
    <state_dir>/platforms/<id>/shared/       /shared in every vnode (or the directory the user names)
    <btrfs_dir>/[<cgroup_parent>/]distem-<id>/...  btrfs subvolumes when copy-on-write uses btrfs
"""

from __future__ import annotations

from dataclasses import dataclass
from posixpath import join

from ..model.names import cgroup_root


@dataclass(frozen=True, slots=True)
class PnodePaths:
    state_dir: str
    platform_id: str
    cgroup_parent: str = ""  # the pnode's (PNode.cgroup_parent): pnodes sharing a btrfs directory stay apart
    shared_data: str | None = None  # the directory the vnodes share at /shared, when the user names one (NFS...)

    @property
    def platform(self) -> str:
        return join(self.state_dir, "platforms", self.platform_id)

    @property
    def lxcpath(self) -> str:
        return join(self.platform, "lxc")

    @property
    def etc(self) -> str:
        """The files bound read-only over every vnode's /etc/hosts, /etc/resolv.conf and /etc/hostname."""
        return join(self.platform, "etc")

    @property
    def shared_data_dir(self) -> str:
        """Bound at /shared in every vnode of the platform on this pnode."""
        return self.shared_data or join(self.platform, "shared")

    @property
    def filesystems(self) -> str:
        return join(self.platform, "fs")

    @property
    def loop_btrfs(self) -> str:
        """Mount point of a loop-backed btrfs the platform makes for itself."""
        return join(self.platform, "btrfs")

    def image(self, sha: str) -> str:
        return join(self.state_dir, "images", sha, "rootfs")

    def shared_dir(self, sha: str) -> str:
        """Holds root/ (an overlay mount over the image), delta/ and work/."""
        return join(self.filesystems, f"shared-{sha}")

    def shared_rootfs(self, sha: str) -> str:
        return join(self.shared_dir(sha), "root")

    def vnode_dir(self, vnode: str) -> str:
        return join(self.filesystems, f"vnode-{vnode}")

    def btrfs_dir(self, btrfs_root: str) -> str:
        return join(btrfs_root, cgroup_root(self.platform_id, self.cgroup_parent))
