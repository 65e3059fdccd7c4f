"""LatencyMatrixEditor at 100 vnodes in a real browser: Voilà serves a notebook that builds a platform of
100 vnodes (created, not started) and shows the editor; headless chromium, driven by Playwright, edits a
cell, clicks Apply, and the kernel's p.latencies (written to a file by the notebook) must have changed.
(tests/test_lab_browser.py drives the editor in JupyterLab on running vnodes.)

Voilà runs the notebook on page load, so nothing has to be typed into cells. It keeps a kernel per page
visit: the server lives only for this test. The grid draws on a canvas: cells are double-clicked by
coordinates, from the editor's own geometry.
"""

from __future__ import annotations

import json
import os
import sys
import time

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from .browser import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, chromium_left, free_port, need_chromium,
                      remove_notebook_platform, screenshot_on_failure, served, type_in_cell, wait_for)

VNODES = 100

NOTEBOOK = '''\
import pathlib, time
import ipywidgets as widgets
import distem
from distem.widgets import LatencyMatrixEditor

OUT = pathlib.Path({out!r})
p = distem.Platform(state_dir={state!r}, progress=False)
(OUT / "platform-id").write_text(p.id)
p.vnetwork("vnet", "10.144.0.0/24")
for i in range({vnodes}):
    p.vnode(f"n{{i}}").image({image!r}, shared=True).iface("if0", "vnet")
p.deploy(start=False)
editor = LatencyMatrixEditor(p)
# what the kernel's platform holds after each Apply, for the test to read
editor.apply_button.on_click(lambda _: (OUT / "latencies.csv").write_text(p.latencies.to_csv()))

def close(_):
    p.close()
    (OUT / "closed").touch()

close_button = widgets.Button(description="Close platform")
close_button.on_click(close)
(OUT / "built").write_text(str(time.time()))
widgets.VBox([editor, close_button])
'''


@pytest.fixture
def server(tmp_path, busybox):
    """Voilà on 127.0.0.1 serving a fresh copy of the editor notebook; stopped with its kernels after."""
    pytest.importorskip("voila", reason="needs voila (pip install -e '.[test]')")
    need_chromium()
    out, state, jupyter = tmp_path / "out", tmp_path / "state", tmp_path / "jupyter"
    for d in (out, state, jupyter):
        d.mkdir()
    path = tmp_path / "editor.ipynb"
    notebook = new_notebook(cells=[new_code_cell(NOTEBOOK.format(out=str(out), state=str(state), vnodes=VNODES,
                                                                 image=busybox))])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(jupyter / "config"), "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
           "IPYTHONDIR": str(jupyter / "ipython"), "MPLBACKEND": "Agg"}
    port = free_port()
    try:
        with served([sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
                     str(path)], b"running at", tmp_path / "voila.log", env, tmp_path):
            yield f"http://127.0.0.1:{port}/", out
    finally:
        remove_notebook_platform(out, state)


@pytest.mark.root
def test_edit_apply_in_a_browser(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")
    url, out = server
    timings = {}
    start = time.monotonic()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            with screenshot_on_failure(page, "widget-browser"):
                page.goto(url, timeout=120_000)
                viewport = page.wait_for_selector(".lm-DataGrid-viewport", timeout=120_000)
                page.wait_for_selector("text=double-click a cell", timeout=30_000)
                timings["page_and_kernel_s"] = time.monotonic() - start
                timings["render_after_kernel_built_s"] = time.time() - float((out / "built").read_text())
                box = viewport.bounding_box()

                def edit(row: int, column: int, text: str) -> None:
                    type_in_cell(page, box, row, column, text)

                edit(0, 1, "12.5")  # n0 -> n1
                page.wait_for_selector("text=Not applied yet", timeout=10_000)
                t = time.monotonic()
                page.click("button:has-text('Apply')")
                page.wait_for_selector("text=Applied: 1 cell changed", timeout=30_000)
                timings["apply_s"] = time.monotonic() - t
                wait_for(out / "latencies.csv", 10)
                latencies = pd.read_csv(out / "latencies.csv", index_col=0)
                assert latencies.loc["n0", "n1"] == 12.5
                assert latencies.to_numpy().sum() == 12.5  # nothing else changed

                edit(1, 0, "-3")  # n1 -> n0: named inline, Apply disabled, the platform untouched
                page.wait_for_selector("text=n1 → n0: -3.0 is negative", timeout=10_000)
                assert page.is_disabled("button:has-text('Apply')")
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "widget-browser.png"))

                page.click("button:has-text('Close platform')")
                wait_for(out / "closed", 60)
        finally:
            browser.close()
    timings["total_s"] = time.monotonic() - start
    (ARTIFACTS / "widget-browser-timings.json").write_text(json.dumps(timings, indent=1))
    assert not chromium_left()
