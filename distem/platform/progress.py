"""A progress bar summed over pnodes, that leaves one line of text when done.

In a notebook it is a widget while the work runs, then replaced in place by a plain line
(``deploy: 24/24 op in 1.3 s``): a saved notebook then holds no widget, which reopened showed
"Error displaying widget: model not found". On a terminal it is tqdm's text bar, its last state
left on screen; elsewhere (logs, pipes) it is silent unless asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tqdm import tqdm


def in_notebook() -> bool:
    """True in a Jupyter kernel (tqdm.autonotebook's own test), False in a terminal or a plain interpreter."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


class Progress:
    """``label``: what is counted (empty: no bar); ``enabled``: None decides by where the output goes;
    ``total``: None while not known yet (a build learns how many packages it installs as it goes)."""

    def __init__(self, label: str, total: int | None, enabled: bool | None, unit: str = "op") -> None:
        self._label, self._total, self._unit = label, total, unit
        self._stage = ""
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._bar: Any = None
        self._widget: Any = None
        if enabled is False or not label:
            return
        if in_notebook():
            self._show_widget()
        else:  # disable=None: tqdm shows it only on a terminal
            self._bar = tqdm(total=total, desc=label, unit=unit, disable=None if enabled is None else not enabled,
                             leave=True)

    def _show_widget(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self._bar = widgets.IntProgress(value=0, min=0, max=max(self._total or 0, 1), bar_style="info")
        self._text = widgets.Label(self._line())
        self._widget = widgets.HBox([widgets.Label(self._label), self._bar, self._text])
        self._handle = display(self._widget, display_id=True)

    def _line(self) -> str:
        done = sum(self._done.values())
        count = f"{done}/{self._total}" if self._total is not None else str(done)
        stage = f" ({self._stage})" if self._stage else ""
        return f"{count} {self._unit}s in {time.monotonic() - self._started:.1f} s{stage}"

    def for_pnode(self, pnode: str) -> Callable[[int, int], None]:
        """The call-back one pnode's agent reports through (done, total)."""
        def report(done: int, _total: int) -> None:
            with self._lock:
                self._done[pnode] = done
                self.update()
        return report

    def count(self, done: int, total: int | None, stage: str = "") -> None:
        """One counter's state, its total once known, and the stage it is in (shown after the count)."""
        with self._lock:
            self._done = {"": done}
            self._total, self._stage = total, stage
            if self._widget is not None:
                self._bar.max = max(total or done, 1)
            elif self._bar is not None:
                self._bar.total = total
                self._bar.set_postfix_str(stage, refresh=False)
            self.update()

    def update(self) -> None:
        done = sum(self._done.values())
        if self._widget is not None:
            self._bar.value = done
            self._text.value = self._line()
        elif self._bar is not None:
            self._bar.n = done
            self._bar.refresh()

    def close(self) -> None:
        if self._widget is not None:
            from IPython.display import Pretty

            self._handle.update(Pretty(f"{self._label}: {self._line()}"))
            self._widget.close()
            self._widget = None
        elif self._bar is not None:
            self._bar.close()
        self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
