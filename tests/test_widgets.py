"""LatencyMatrixEditor as Python objects: edits through the grid's API, buttons clicked, on a real platform.

The vnodes are created but not started (cells are stored and p.latencies reflects them), so that
editing needs no way to delay packets; test_measure_on_running_vnodes starts them where the pnode
can. Outside a kernel ipywidgets only logs an exception raised in a callback, so every test fails
on such a log.
"""

from __future__ import annotations

import logging
from datetime import datetime
import math
import time

import numpy as np
import pandas as pd
import pytest

from distem.errors import ValidationError
from distem.model import RUNNING
from distem.frontends import matrix_edit

NAMES = ["a", "b", "c", "d"]


@pytest.fixture(autouse=True)
def callbacks_must_not_raise(caplog):
    with caplog.at_level(logging.WARNING, logger="traitlets"):
        yield
    raised = [r.getMessage() for r in caplog.records if "Exception in callback" in r.getMessage()]
    assert raised == []


@pytest.fixture
def editor(platform, busybox):
    from distem.widgets import LatencyMatrixEditor

    platform.vnetwork("vnet", "10.144.0.0/24")
    for name in NAMES:
        platform.vnode(name).image(busybox, shared=True).iface("if0", "vnet")
    platform.deploy(start=False)  # cells are stored; on a pnode with sch_netem they would apply on start
    return LatencyMatrixEditor(platform)


# -- pure helpers ---------------------------------------------------------------------
@pytest.mark.parametrize("value, reason", [(-5, "negative"), ("-5", "negative"), ("abc", "not a number"),
                                           (math.nan, "NaN"), ("nan", "NaN"), ("", "empty"), (None, "empty"),
                                           (math.inf, "infinite"), (True, "not a number")])
def test_bad_cells_are_named(value, reason):
    assert matrix_edit.cell_problem(("a", "b"), value) == f"a → b: {value!r} is {reason}"
    assert matrix_edit.cell_problem(("a", "a"), value) is None  # the diagonal is ignored


def test_delays_frame_and_its_error():
    typed = pd.DataFrame([[0, "12.5"], [-1, 0]], index=["a", "b"], columns=["a", "b"], dtype=object)
    with pytest.raises(ValidationError, match=r"cell b -> a: -1 .*negative"):
        matrix_edit.delays(typed)
    typed.loc["b", "a"] = 3
    assert matrix_edit.delays(typed).to_numpy().tolist() == [[0.0, 12.5], [3.0, 0.0]]


def test_random_is_seeded_and_in_range():
    one = matrix_edit.random_delays(NAMES, 5, 10, seed=7, symmetric=True)
    assert one.equals(matrix_edit.random_delays(NAMES, 5, 10, seed=7, symmetric=True))
    off = one.to_numpy()[~np.eye(len(NAMES), dtype=bool)]
    assert ((off >= 5) & (off <= 10)).all() and (one.to_numpy() == one.to_numpy().T).all()
    with pytest.raises(ValidationError, match="low <= high"):
        matrix_edit.random_delays(NAMES, 10, 5)


def test_csv_must_name_known_vnodes(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(",a,zz\na,0,1\nzz,1,0\n")
    with pytest.raises(ValidationError, match="unknown vnodes: zz"):
        matrix_edit.read_csv(path, NAMES)
    path.write_text(",a,b\na,0,1\n")
    with pytest.raises(ValidationError, match="same vnode names"):
        matrix_edit.read_csv(path, NAMES)


# -- on a platform ----------------------------------------------------------------------
@pytest.mark.root
def test_edit_a_cell_and_apply(editor, platform):
    assert editor.grid.set_cell_value("b", "a", 12.5)  # column "b" (to), row "a" (from): a -> b
    assert platform.latencies.loc["a", "b"] == 0  # nothing sent before Apply
    assert "a → b" in editor.message_text and "Not applied" in editor.message_text
    shown = editor.grid._data
    editor.apply_button.click()
    assert platform.latencies.loc["a", "b"] == 12.5 and platform.latencies.loc["b", "a"] == 0
    assert "Applied: 1 cell changed" in editor.message_text and editor.progress.bar_style == "success"
    assert editor.grid._data is shown  # the grid already showed what the platform holds: not re-sent
    editor.grid.set_cell_value("c", "a", "3.0004")
    editor.apply_button.click()
    assert editor.grid.get_cell_value("c", "a") == [3.0]  # the platform keeps microseconds: the grid shows it


@pytest.mark.root
@pytest.mark.parametrize(("bad", "shown"), [(-5, "-5.0"), ("-5", "-5.0"), ("abc", "'abc'"), (math.nan, "nan")])
def test_bad_values_are_named_and_change_nothing(editor, platform, bad, shown):
    platform.latencies = matrix_edit.filled(NAMES, 3.0)
    editor.reload()
    editor.grid.set_cell_value("c", "a", 7)
    editor.grid.set_cell_value("d", "b", bad)
    assert editor.apply_button.disabled
    assert f"b → d: {shown} is" in editor.message_text  # the message names the cell, a number as one
    assert not editor.apply()  # refused even when called directly
    assert platform.latencies.equals(matrix_edit.filled(NAMES, 3.0))
    editor.grid.set_cell_value("d", "b", "4")  # fixed: a numeric string is a delay
    assert not editor.apply_button.disabled and editor.problems == {}
    editor.apply_button.click()
    assert platform.latencies.loc["a", "c"] == 7 and platform.latencies.loc["b", "d"] == 4


@pytest.mark.root
def test_symmetric_toggle(editor, platform):
    editor.symmetric.value = True
    editor.grid.set_cell_value("c", "a", 20)
    assert editor.frame().loc["c", "a"] == 20 and editor.frame().loc["a", "c"] == 20
    editor.symmetric.value = False
    editor.grid.set_cell_value("a", "b", 5)
    assert editor.frame().loc["b", "a"] == 5 and editor.frame().loc["a", "b"] == 0
    editor.apply_button.click()
    got = platform.latencies
    assert (got.loc["a", "c"], got.loc["c", "a"], got.loc["b", "a"]) == (20, 20, 5)


class Browser:
    """The grid's front end as ipydatagrid's JavaScript behaves: a typed cell is sent as text, and every
    cell the kernel sets is set in the browser's model, which sends it back as an edit (an echo)."""

    def __init__(self, grid):
        self.grid, self.from_kernel, self.to_kernel = grid, [], 0
        send = grid.comm.send
        grid.comm.send = lambda data=None, **kw: (self.from_kernel.append(data), send(data, **kw))[1]

    def type(self, row: str, column: str, text: str, limit: int = 50) -> None:
        frame = self.grid.data
        queue = [(list(frame.index).index(row), list(frame.columns).index(column), text)]
        while queue:
            self.to_kernel += 1
            assert self.to_kernel <= limit, "the kernel and the browser keep sending cells to each other"
            row_index, column_index, value = queue.pop(0)
            self.grid._DataGrid__handle_custom_msg(None, {"event_type": "cell-changed", "row": row_index,
                                                         "column_index": column_index, "value": value}, None)
            while self.from_kernel:
                content = self.from_kernel.pop(0).get("content", {})
                if content.get("event_type") == "cell-changed":
                    queue.append((content["row"], content["column_index"], content["value"]))


@pytest.mark.root
def test_a_symmetric_edit_in_the_browser_ends(editor, platform):
    """One typed cell in symmetric mode: the kernel sets the mirror (and the typed cell, as a number); each
    comes back once from the browser and stops there. The grid holds numbers; Apply's status stays."""
    browser = Browser(editor.grid)
    editor.symmetric.value = True
    browser.type("a", "b", "12.5")
    assert browser.to_kernel <= 3  # the edit, then the echoes of the mirror and of the number
    assert "a → b = 12.5 and back. Not applied yet" in editor.message_text
    typed = editor._typed()
    assert (typed.loc["a", "b"], typed.loc["b", "a"]) == (12.5, 12.5)
    assert all(isinstance(v, float | int) for v in typed.to_numpy().ravel()), typed
    editor.apply_button.click()
    assert editor.message_text.startswith("Applied: 2 cells changed")
    assert (platform.latencies.loc["a", "b"], platform.latencies.loc["b", "a"]) == (12.5, 12.5)

    browser.type("c", "d", "-3")  # red, named, and so is its mirror; then fixed, both clear
    assert set(editor.problems) == {("c", "d"), ("d", "c")} and editor.apply_button.disabled
    browser.type("d", "c", "4")
    assert editor.problems == {} and not editor.apply_button.disabled
    assert (editor.frame().loc["c", "d"], editor.frame().loc["d", "c"]) == (4, 4)


@pytest.mark.root
def test_fill_random_and_csv(editor, platform, tmp_path):
    editor.fill_value.value = 8
    editor.fill_button.click()
    assert platform.latencies.to_numpy().sum() == 0  # not applied yet
    editor.apply_button.click()
    assert platform.latencies.equals(matrix_edit.filled(NAMES, 8.0))

    editor.random_low.value, editor.random_high.value, editor.random_seed.value = 10, 20, 3
    editor.symmetric.value = True
    editor.random_button.click()
    editor.apply_button.click()
    randomized = matrix_edit.random_delays(NAMES, 10, 20, seed=3, symmetric=True)
    assert platform.latencies.equals(randomized)

    path = tmp_path / "part.csv"
    path.write_text("from,b,c\nb,0,2.5\nc,4,0\n")  # some vnodes only: the others keep theirs
    editor.csv_path.value = str(path)
    editor.csv_button.click()
    editor.apply_button.click()
    assert (platform.latencies.loc["b", "c"], platform.latencies.loc["c", "b"]) == (2.5, 4)
    assert platform.latencies.loc["a", "b"] == randomized.loc["a", "b"]  # not in the CSV: kept

    path.write_text("from,a,zz\na,0,1\nzz,1,0\n")
    editor.csv_button.click()
    assert "unknown vnodes: zz" in editor.message_text

    upload = b"from,a,d\na,0,-1\nd,6,0\n"  # as the browser sends a file: a bad cell stays, named
    editor.csv_upload.value = ({"name": "m.csv", "type": "text/csv", "size": len(upload), "content": memoryview(upload),
                                "last_modified": datetime.now()},)
    assert editor.problems == {("a", "d"): "a → d: -1 is negative"} and editor.apply_button.disabled
    assert editor.csv_upload.value == ()


@pytest.mark.root
def test_measure_without_running_vnodes_says_so(editor):
    assert editor.measure() is None
    editor.measure_button.click()
    assert "Cannot measure: 0 of 4 vnodes are running" in editor.message_text


@pytest.mark.root
def test_an_apply_the_platform_refuses_is_reported(editor, platform, monkeypatch):
    def refuse(self, cells):
        raise ValidationError("latencies from a", "(matrix)", "pnode local's kernel has no sch_netem")

    monkeypatch.setattr(type(platform._matrix), "set_cells", refuse)
    editor.grid.set_cell_value("b", "a", 1)
    assert not editor.apply()
    assert "Not applied" in editor.message_text and "sch_netem" in editor.message_text
    assert editor.progress.bar_style == "danger"


@pytest.mark.root
def test_a_hundred_vnodes(platform, busybox):
    from distem.widgets import LatencyMatrixEditor

    platform.vnetwork("vnet", "10.144.0.0/24")
    names = [f"n{i}" for i in range(100)]
    for name in names:
        platform.vnode(name).image(busybox, shared=True).iface("if0", "vnet")
    platform.deploy(start=False)
    start = time.monotonic()
    editor = LatencyMatrixEditor(platform)
    editor.randomize(1, 100, seed=5)
    editor.grid.set_cell_value("n99", "n0", 42)
    assert editor.apply()
    assert platform.latencies.loc["n0", "n99"] == 42 and platform.latencies.loc["n1", "n0"] > 0
    assert time.monotonic() - start < 5, "the editor must stay responsive at N = 100"


@pytest.mark.root
def test_measure_shows_requested_and_measured(editor, platform, monkeypatch):
    """The display path, with a made-up measurement (quick, exact numbers);
    test_measure_on_running_vnodes measures for real."""
    platform.latencies = matrix_edit.filled(NAMES, 5.0)
    for name in NAMES:
        monkeypatch.setitem(platform.model.status, name, RUNNING)

    def compare(vnodes, count):
        rows = [{"from": s, "to": d, "requested_rtt_ms": 10.0, "measured_rtt_ms": 10.4, "error_ms": 0.4}
                for s in vnodes for d in vnodes if s != d]
        return pd.DataFrame(rows).set_index(["from", "to"])

    plotted = []
    plot = platform.plot_latencies
    monkeypatch.setattr(platform, "compare_latencies", compare)
    monkeypatch.setattr(platform, "plot_latencies", lambda measured: plotted.append(measured) or plot(measured))
    compared = editor.measure()
    assert len(compared) == 12
    assert "Measured 12 pairs" in editor.message_text and "median 0.40 ms" in editor.message_text
    (measured,) = plotted  # the heatmaps got the measured matrix, vnodes in order, diagonal empty
    assert list(measured.index) == NAMES == list(measured.columns)
    assert measured.loc["a", "b"] == 10.4 and np.isnan(measured.loc["a", "a"])


@pytest.mark.root
def test_measure_on_running_vnodes(editor, platform):
    platform.latencies = matrix_edit.filled(NAMES, 5.0)
    try:
        platform.vnodes_start()
    except ValidationError as exc:
        pytest.skip(f"this pnode can't delay packets per destination: {exc}")
    compared = editor.measure()
    assert compared is not None, editor.message_text
    assert compared["measured_rtt_ms"].median() == pytest.approx(10, abs=1.5)
