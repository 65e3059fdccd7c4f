"""Notebook widgets: ``LatencyMatrixEditor(p)``, an editable heatmap of ``p.latencies``.

The grid is an ipydatagrid ``DataGrid``: it draws on a canvas and stays responsive at 100 x 100
cells, where a grid of ipywidgets text boxes does not render at all. Edits stay in the grid until
Apply sends the whole matrix with ``p.latencies = frame`` (the platform sends only what changed).
"""

from __future__ import annotations

import html
import logging
import time
from os import PathLike
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd
from IPython.display import Image, display
from ipydatagrid import DataGrid, TextRenderer, VegaExpr

from ..errors import DistemError, ValidationError
from ..model import RUNNING
from ..platform.drawing import png
from . import matrix_edit
from .matrix_edit import Cell

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..platform import Platform

log = logging.getLogger(__name__)

CORNER = "from \\ to"  # the grid's index name, shown in its corner; never a vnode name (no spaces there)
SHOWN_PROBLEMS = 5
# The grid's geometry in pixels (a browser test double-clicks cells by coordinates).
ROW_HEADER_PX, COLUMN_PX, HEADER_PX, ROW_PX = 80, 56, 20, 20
_COLOURS = {"info": "#444", "ok": "#1a7f37", "error": "#c62828"}


class LatencyMatrixEditor(widgets.VBox):
    """An editable N x N grid of the one-way delays (ms) between every pair of vnodes of ``platform``.

    Rows are sources, columns destinations; RTT(i, j) = M[i][j] + M[j][i]. Type in a cell
    (double-click), or use the helpers: fill, random, CSV. Bad cells turn red and are named
    below the grid; Apply is disabled until they are fixed. Apply pushes the grid to the platform
    (``p.latencies = frame``); Measure compares requested and measured RTTs of the running vnodes.

    Args:
        platform: the platform whose matrix to edit.
        count: probes per pair when measuring.
    """

    def __init__(self, platform: Platform, count: int = 5, **kwargs: Any) -> None:
        self.platform, self.count = platform, count
        current = platform.latencies
        self._names = [str(n) for n in current.index]
        self._problems: dict[Cell, str] = {}
        self._cells: dict[Cell, object] = {}  # what the kernel holds in each cell, to recognise echoes
        self._top = 0.0
        self._text = ""
        self.figure: Figure | None = None  # the heatmaps the last Measure drew
        self.grid = DataGrid(self._grid_frame(current), editable=True, selection_mode="cell",
                             base_row_header_size=ROW_HEADER_PX, base_column_size=COLUMN_PX,
                             base_column_header_size=HEADER_PX, base_row_size=ROW_PX,
                             default_renderer=TextRenderer(horizontal_alignment="right"),
                             layout=widgets.Layout(height=f"{min(420, 24 + ROW_PX * (len(self._names) + 1))}px"))
        self.grid.on_cell_change(self._on_cell_change)
        self.symmetric = widgets.Checkbox(value=False, description="symmetric (editing i→j also sets j→i)",
                                          indent=False, layout=_width("auto"))
        label = {"style": {"description_width": "initial"}}
        delay = {"min": 0, "max": 1e6, **label}  # the helpers' own fields can't go negative
        self.fill_value = widgets.BoundedFloatText(value=10.0, description="fill (ms)", layout=_width(150), **delay)
        self.fill_button = widgets.Button(description="Fill", tooltip="every off-diagonal cell at this value")
        self.random_low = widgets.BoundedFloatText(value=5.0, description="random from", layout=_width(170), **delay)
        self.random_high = widgets.BoundedFloatText(value=50.0, description="to", layout=_width(100), **delay)
        self.random_seed = widgets.IntText(value=1, description="seed", layout=_width(110), **label)
        self.random_button = widgets.Button(description="Random", tooltip="uniform delays in the range (ms)")
        self.csv_upload = widgets.FileUpload(accept=".csv", multiple=False, description="Upload CSV")
        self.csv_path = widgets.Text(placeholder="or a path on the kernel's machine", layout=_width(280))
        self.csv_button = widgets.Button(description="Load CSV", tooltip="written by p.latencies.to_csv()")
        self.apply_button = widgets.Button(description="Apply", button_style="primary", tooltip="p.latencies = grid")
        self.reload_button = widgets.Button(description="Reload", tooltip="discard edits: show p.latencies")
        self.measure_button = widgets.Button(description="Measure", tooltip="requested vs measured RTT")
        self.progress = widgets.IntProgress(value=0, min=0, max=3, layout=_width(160))
        self.message = widgets.HTML()
        self.output = widgets.Output()
        self.fill_button.on_click(lambda _: self._guarded(lambda: self.fill(self.fill_value.value)))
        self.random_button.on_click(lambda _: self._guarded(lambda: self.randomize(
            self.random_low.value, self.random_high.value, self.random_seed.value)))
        self.csv_button.on_click(lambda _: self._guarded(lambda: self.load_csv(self.csv_path.value.strip())))
        self.csv_upload.observe(self._on_upload, names="value")
        self.apply_button.on_click(lambda _: self.apply())
        self.reload_button.on_click(lambda _: self.reload())
        self.measure_button.on_click(lambda _: self.measure())
        super().__init__([
            self.grid,
            widgets.HBox([self.symmetric]),
            widgets.HBox([self.fill_value, self.fill_button, self.random_low, self.random_high, self.random_seed,
                          self.random_button]),
            widgets.HBox([self.csv_upload, self.csv_path, self.csv_button]),
            widgets.HBox([self.apply_button, self.reload_button, self.measure_button, self.progress]),
            self.message, self.output], **kwargs)
        self._recheck()
        self._say(f"{len(self._names)} vnodes; double-click a cell to edit it (ms, one way, row → column).")

    # -- the grid's content ------------------------------------------------------------
    @property
    def problems(self) -> dict[Cell, str]:
        """The cells that are not valid delays, with their messages."""
        return dict(self._problems)

    @property
    def message_text(self) -> str:
        """The message under the grid (validation, Apply's and Measure's results), as plain text."""
        return self._text

    def frame(self) -> pd.DataFrame:
        """The grid as the float frame ``p.latencies`` takes. Raises ValidationError naming a bad cell."""
        return matrix_edit.delays(self._typed())

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Show ``frame``'s cells (some or all vnodes) in the grid; other cells keep theirs (not applied yet).

        Raises:
            ValidationError: a row or column is not a vnode of the grid.
        """
        typed = self._typed()
        rows, cols = [str(n) for n in frame.index], [str(n) for n in frame.columns]
        unknown = sorted(set(rows + cols) - set(self._names))
        if unknown:
            raise ValidationError("latencies", ", ".join(unknown[:5]), "no such vnode in the grid")
        typed.loc[rows, cols] = frame.to_numpy(dtype=object)
        self._show(typed)

    def fill(self, value: float) -> None:
        """Every off-diagonal cell at ``value`` ms (not applied yet)."""
        self.set_frame(matrix_edit.filled(self._names, value))
        self._say_edited(f"filled with {value:g} ms")

    def randomize(self, low: float, high: float, seed: int | None = None) -> None:
        """Uniform random delays in [low, high] ms (symmetric if the toggle is on); not applied yet."""
        self.set_frame(matrix_edit.random_delays(self._names, low, high, seed, self.symmetric.value))
        self._say_edited(f"random delays in [{low:g}, {high:g}] ms, seed {seed}")

    def load_csv(self, source: str | PathLike[str] | bytes) -> None:
        """Cells from a CSV written like ``p.latencies.to_csv()`` (a path, or the file's bytes)."""
        frame = matrix_edit.read_csv(source, self._names)
        self.set_frame(frame)
        self._say_edited(f"{len(frame)} x {len(frame)} cells loaded")

    def reload(self) -> None:
        """Discard edits: show what the platform holds."""
        self._show(self.platform.latencies)
        self._say("Showing p.latencies.")

    # -- apply and measure -------------------------------------------------------------
    def apply(self) -> bool:
        """Push the grid to the platform (``p.latencies = frame``); report inline. True when applied."""
        self.progress.bar_style, self.progress.value = "", 0
        if self._problems:
            self._say_problems("Not applied: ")
            self.progress.bar_style = "danger"
            return False
        start = time.monotonic()
        before = self.platform.latencies
        try:
            frame = self.frame()
            self.progress.value = 1
            with self.output:  # the platform's own progress bars show there
                self.platform.latencies = frame
            self.progress.value = 2
            after = self.platform.latencies
        except DistemError as exc:
            self.progress.bar_style = "danger"
            self._say(f"Not applied: {exc}", "error")
            return False
        changed = int((after.reindex_like(before) != before).to_numpy().sum())
        if list(after.index) != self._names or not after.equals(frame):  # rounded to µs, or vnodes were added
            self._show(after)  # (re-sending 10,000 cells costs the browser a second: only when they differ)
        self.progress.value, self.progress.bar_style = 3, "success"
        self._say(f"Applied: {_cells(changed)} changed in {time.monotonic() - start:.2f} s.", "ok")
        return True

    def measure(self) -> pd.DataFrame | None:
        """Requested vs measured RTT between the running vnodes, with heatmaps of both in the output.

        Returns ``p.compare_latencies``'s frame, or None (and a message) when it cannot measure.
        """
        running = [n for n in self._names if self.platform.model.status.get(n) == RUNNING]
        if len(running) < 2:
            self._say(f"Cannot measure: {len(running)} of {len(self._names)} vnodes are running and measuring needs "
                      "two. Start them (p.vnodes_start()); the delays need sch_netem (or the userspace delay line) "
                      "on their pnodes.", "error")
            return None
        self._say(f"Measuring {len(running) * (len(running) - 1)} pairs…")
        try:
            with self.output:
                compared = self.platform.compare_latencies(running, count=self.count)
        except DistemError as exc:
            self._say(f"Cannot measure: {exc}", "error")
            return None
        measured = compared["measured_rtt_ms"].unstack().reindex(index=running, columns=running)
        figure = self.figure = self.platform.plot_latencies(measured)
        errors = compared["error_ms"].abs()
        with self.output:  # a PNG made here, not by the front end's figure formatter (it drew the axes offset)
            self.output.clear_output(wait=True)
            display(Image(data=png(figure)))
        self._say(f"Measured {len(compared)} pairs: |measured - requested| RTT median {errors.median():.2f} ms, "
                  f"worst {errors.max():.2f} ms.", "ok")
        return compared

    # -- events --------------------------------------------------------------------------
    def _on_cell_change(self, event: dict[str, Any]) -> None:
        """A cell typed in the browser, or the browser's echo of a cell the kernel set.

        Every view of the grid sends back each cell the kernel sets: an echo carries the value the
        kernel already holds and is ignored, so that a mirrored edit is not mirrored back forever.
        A number typed as text is stored as a number (the grid then holds numbers only)."""
        cell = (self._names[event["row"]], str(event["column"]))
        value = matrix_edit.typed_number(event["value"])
        if _same(self._cells.get(cell), value):
            return
        edited = [cell] + ([cell[::-1]] if self.symmetric.value and cell[0] != cell[1] else [])
        for target in edited:
            self._cells[target] = value  # first: the grid's own call-back below then sees an echo
            if target != cell or value is not event["value"]:
                self.grid.set_cell_value(target[1], target[0], value)
            self._check(target, value)
        self._say_edited(f"{cell[0]} → {cell[1]} = {value!r}" + (" and back" if len(edited) == 2 else ""))

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if files:
            self._guarded(lambda: self.load_csv(bytes(files[0]["content"])))
            self.csv_upload.value = ()  # so that uploading the same file again loads it again

    def _guarded(self, action: Any) -> None:
        """Run a helper from a button; its ValidationError (bad parameter or CSV) is shown, not raised."""
        try:
            action()
        except DistemError as exc:
            self._say(str(exc), "error")

    # -- validation and display ----------------------------------------------------------------
    def _typed(self) -> pd.DataFrame:
        frame = self.grid.data
        frame.index = [str(n) for n in frame.index]
        frame.columns = [str(n) for n in frame.columns]
        return frame.loc[self._names, self._names]

    def _show(self, frame: pd.DataFrame) -> None:
        self._names = [str(n) for n in frame.index]
        self.grid.data = self._grid_frame(frame)
        self._recheck()

    def _remember(self, frame: pd.DataFrame) -> None:
        self._cells = {(str(s), str(d)): v for (s, d), v in frame.stack().items()}

    def _grid_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.astype(object)
        out.index, out.columns = pd.Index(frame.index, name=CORNER), list(frame.columns)
        return out

    def _check(self, cell: Cell, value: object) -> None:
        message = matrix_edit.cell_problem(cell, value)
        if message:
            self._problems[cell] = message
        else:
            self._problems.pop(cell, None)
            if cell[0] != cell[1] and matrix_edit.cell_value(value) > self._top:
                self._colour(matrix_edit.cell_value(value))
        self.apply_button.disabled = bool(self._problems)

    def _recheck(self) -> None:
        typed = self._typed()
        self._remember(typed)
        self._problems = matrix_edit.problems(typed)
        numbers = [matrix_edit.cell_value(v) for (s, d), v in typed.stack().items()
                   if s != d and (s, d) not in self._problems]
        self._colour(max(numbers, default=0.0))
        self.apply_button.disabled = bool(self._problems)

    def _colour(self, top: float) -> None:
        self._top = top
        self.grid.default_renderer.background_color = VegaExpr(matrix_edit.heat_expression(top))

    def _say_edited(self, what: str) -> None:
        self.progress.bar_style, self.progress.value = "", 0  # the last Apply's result no longer holds
        if self._problems:
            self._say_problems(f"Edited: {what}. ")
        else:
            self._say(f"Edited: {what}. Not applied yet: click Apply.")

    def _say_problems(self, prefix: str) -> None:
        shown = [self._problems[c] for c in sorted(self._problems)[:SHOWN_PROBLEMS]]
        more = len(self._problems) - len(shown)
        self._say(f"{prefix}Not a delay (a finite number of ms ≥ 0) in {_cells(len(self._problems))}; Apply is "
                  f"disabled until fixed: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else ""), "error")

    def _say(self, text: str, kind: str = "info") -> None:
        self._text = text
        self.message.value = f'<span style="color:{_COLOURS[kind]}">{html.escape(text)}</span>'
        log.debug("%s", text)


def _same(held: object, value: object) -> bool:
    return type(held) is type(value) and held == value  # 1 == 1.0 == True, but "1" was typed as text


def _width(px: int | str) -> widgets.Layout:
    return widgets.Layout(width=f"{px}px" if isinstance(px, int) else px)


def _cells(n: int) -> str:
    return "1 cell" if n == 1 else f"{n} cells"
