"""Helpers for testing distem platforms: ``local_cluster(n)`` (several pnodes on this machine, each
in its own namespaces with its own sshd), the guest kernels for what this kernel lacks (``guest``: user-mode Linux or QEMU), measurements
inside vnodes (``probes``)."""

from .cluster import ClusterError, LocalCluster, local_cluster

__all__ = ["ClusterError", "LocalCluster", "local_cluster"]
