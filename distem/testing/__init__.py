"""Helpers for testing distem platforms: several pnodes on one machine (``local_cluster``), the
user-mode Linux guest kernel (``uml``), measurements inside vnodes (``probes``)."""

from .cluster import local_cluster

__all__ = ["local_cluster"]
