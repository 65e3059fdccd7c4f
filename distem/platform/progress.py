"""A progress bar summed over pnodes (tqdm: a widget in notebooks, text on a terminal, silent in logs)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tqdm.auto import tqdm


class Progress:
    def __init__(self, label: str, total: int, enabled: bool | None) -> None:
        # enabled=None lets tqdm decide (off when stderr is not a terminal or notebook)
        self._bar = tqdm(total=total, desc=label, unit="op", disable=None if enabled is None else not enabled,
                         leave=False)
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()

    def for_pnode(self, pnode: str) -> Callable[[int, int], None]:
        def report(done: int, _total: int) -> None:
            with self._lock:
                self._done[pnode] = done
                self._bar.n = sum(self._done.values())
                self._bar.refresh()
        return report

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
