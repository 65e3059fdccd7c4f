"""Helpers for testing distem platforms: ``local_cluster(n)`` (several pnodes on this machine, each
in its own namespaces with its own sshd), the guest kernels for what this kernel lacks (``guest``: user-mode Linux or QEMU), measurements
inside vnodes (``probes``), fidelity assertions (``assert_latencies_within``, ``assert_throughput_within``;
the pytest plugin, ``distem.frontends.pytest_plugin``, makes platforms for tests)."""

from .cluster import ClusterError, LocalCluster, local_cluster
from .fidelity import assert_latencies_within, assert_throughput_within

__all__ = ["ClusterError", "LocalCluster", "local_cluster", "assert_latencies_within", "assert_throughput_within"]
