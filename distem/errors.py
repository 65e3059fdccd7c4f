"""The exceptions distem raises.

    DistemError
     ├── ValidationError      (also a ValueError) bad input, raised before any pnode changes
     ├── NotFoundError        (also a KeyError)   no such vnode / vnetwork / viface
     ├── AlreadyExistsError   (also ValidationError) the name is taken
     ├── CommandError         a command run in a vnode exited non-zero
     ├── MappingError         vnodes cannot be placed on the pnodes
     └── AgentError           an operation failed on a pnode (pnode, operation, errno)

    FidelityWarning (a UserWarning)  accepted, but the emulation may not be what was asked
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DistemError",
    "ValidationError",
    "NotFoundError",
    "AlreadyExistsError",
    "CommandError",
    "MappingError",
    "AgentError",
    "FidelityWarning",
]


class DistemError(Exception):
    """Root of every error distem raises."""


class ValidationError(DistemError, ValueError):
    """Bad input: names the field, the value, and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: {value!r} is not valid; {allowed}")


def check_keys(field: str, given: Iterable[object], allowed: Iterable[str], what: str = "key") -> None:
    """Raise ValidationError naming the first unknown key, the closest allowed one, and all allowed ones."""
    allowed = list(allowed)
    unknown = sorted((str(k) for k in given if k not in allowed))
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValidationError(field, unknown[0], f"unknown {what}; {hint}allowed: {', '.join(allowed)}")


class AlreadyExistsError(ValidationError):
    """A vnode, vnetwork or viface name is already taken."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(kind, name, f"a {kind} with this name already exists")


class NotFoundError(DistemError, KeyError):
    """No vnode, vnetwork or viface of that name."""

    def __init__(self, kind: str, name: str, known: list[str] | None = None) -> None:
        self.kind, self.name = kind, name
        hint = f" (known: {', '.join(sorted(known)) or 'none'})" if known is not None else ""
        super().__init__(f"no {kind} named {name!r}{hint}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class CommandError(DistemError):
    """A command run in a vnode exited with a non-zero status."""

    def __init__(self, vnode: str, command: str, status: int, stdout: str, stderr: str,
                 timeout: float | None = None) -> None:
        """``timeout``: the seconds after which the command was killed (None: it exited by itself)."""
        self.vnode, self.command, self.status, self.timeout = vnode, command, status, timeout
        self.stdout, self.stderr = stdout, stderr
        tail = (stderr or stdout).strip().splitlines()[-3:]
        ended = (f"was killed at its timeout, after {timeout:g} s" if timeout is not None
                 else f"exited with status {status}")
        super().__init__(f"command {command!r} in vnode {vnode!r} {ended}"
                         + (("; it printed: " if timeout is not None else ": ") + " | ".join(tail) if tail
                            else "; it printed nothing" if timeout is not None else ""))


class MappingError(DistemError):
    """The vnodes cannot be placed on the pnodes under the given constraints.

    ``vnodes``: those that could not be placed; ``reasons``: for each, the binding constraint
    on each pnode, e.g. ``["cores on p1 (needs 2, 1 left)", "bandwidth on link p2->sw (...)"]``.
    """

    def __init__(self, message: str, vnodes: Sequence[str] = (),
                 reasons: Mapping[str, Sequence[str]] | None = None) -> None:
        self.vnodes = list(vnodes)
        self.reasons = {name: list(why) for name, why in (reasons or {}).items()}
        super().__init__(message)


class AgentError(DistemError):
    """An operation failed on a pnode."""

    def __init__(
        self,
        pnode: str,
        operation: str,
        message: str,
        errno: int | None = None,
        target: str | None = None,
    ) -> None:
        self.pnode, self.operation, self.errno, self.target = pnode, operation, errno, target
        self.message = message
        where = f" on {target!r}" if target else ""
        code = f" [errno {errno}]" if errno else ""
        super().__init__(f"pnode {pnode}: {operation}{where} failed{code}: {message}")

    @classmethod
    def from_failure(cls, pnode: str, failure: Mapping[str, object], operation: str = "") -> AgentError:
        """From what an agent says of a failure (distem/wire.py's FAILURE fields)."""
        errno, target = failure.get("errno"), failure.get("target")
        return cls(pnode, str(failure.get("operation") or operation), str(failure["message"]),
                   errno=errno if isinstance(errno, int) else None, target=None if target is None else str(target))


class FidelityWarning(UserWarning):
    """Accepted, but the pnode may not emulate it as asked (e.g. a rate beyond what the
    userspace delay line keeps up with); or measured while a pnode was too busy to hold its limits."""
