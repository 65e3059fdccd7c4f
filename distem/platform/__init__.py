"""Layer 4, the platform (in the notebook kernel): model + one agent session per pnode.

``platform`` realises the model through ``session``s; ``distem_calls`` offers
Distem's names on top; ``builders`` the chainable handles; ``frames`` and
``html`` the DataFrames and notebook display.
"""

from .platform import Platform

__all__ = ["Platform"]
