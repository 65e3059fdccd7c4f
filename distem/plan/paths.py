"""Where a platform's files live on a pnode (pure path arithmetic).

    <state_dir>/images/<sha>/rootfs          pristine extracted images, shared by platforms (a cache)
    <state_dir>/platforms/<id>/journal.jsonl what the platform created (see agent.journal)
    <state_dir>/platforms/<id>/lxc/<vnode>/  LXC's per-container directory (config)
    <state_dir>/platforms/<id>/fs/...        root filesystems: shared copies, distinct copies, overlay deltas
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

    @property
    def platform(self) -> str:
        return join(self.state_dir, "platforms", self.platform_id)

    @property
    def lxcpath(self) -> str:
        return join(self.platform, "lxc")

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
