"""Helpers for testing distem platforms: the user-mode Linux guest kernel (``uml``), measurements
inside vnodes (``probes``)."""
