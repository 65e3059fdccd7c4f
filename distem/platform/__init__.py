"""Layer 4, the platform (in the notebook kernel): the model, one agent session per pnode, and the
parts that realise one on the other (see ``platform``'s docstring for which part owns what);
``builders`` the chainable handles, ``info`` Distem's dicts, ``frames`` and ``html`` the
DataFrames and notebook display.
"""

from .platform import Platform

__all__ = ["Platform"]
