"""Notebook widgets (``distem.widgets.LatencyMatrixEditor``); they live in ``distem.frontends.widgets``.

Imported on first use (``distem.widgets``), so that ``import distem`` does not load ipydatagrid.
"""

from .frontends.widgets import LatencyMatrixEditor

__all__ = ["LatencyMatrixEditor"]
