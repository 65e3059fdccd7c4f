"""A researcher's notebook in JupyterLab, driven by headless chromium (Playwright): Run All on a notebook
that deploys four vnodes, shows p.vnodes, the virtual topology and the latency-matrix editor; then, in
the page, symmetric mode on, one cell typed, Apply, Measure, save.

Checked where the user would look and in the kernel: the messages between browser and kernel after one
symmetric edit are few and stop (a loop once sent 57 in 10 s), Apply's status stays "Applied", the grid
holds numbers, the Measure figure's heatmaps hold the measured data with the vnodes on their axes, and
the saved notebook holds no progress-bar widget. Screenshots go to tests/artifacts/ for a person.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from .browser import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, chromium_left, free_port, need_chromium,
                      remove_notebook_platform, screenshot_on_failure, served, type_in_cell, wait_for)

VNODES = ["n0", "n1", "n2", "n3"]

CELLS = ['''\
import json, pathlib
import ipywidgets as widgets
import distem
from distem.widgets import LatencyMatrixEditor

OUT = pathlib.Path({out!r})
p = distem.Platform(state_dir={state!r}, progress=True)
(OUT / "platform-id").write_text(p.id)
p.vnetwork("vnet", "10.144.0.0/24")
for name in {vnodes!r}:
    p.vnode(name).image({image!r}, shared=True).iface("if0", "vnet", output={{"bandwidth": "100mbps"}})
p.deploy()''',
         "p.vnodes",
         "p.plot_virtual_topology()",
         '''\
editor = LatencyMatrixEditor(p, count=5)

def after_apply(_):  # what the kernel holds once Apply ran (registered after the editor's own)
    cells = editor._typed().to_numpy().ravel()
    (OUT / "applied.json").write_text(json.dumps({{"types": sorted({{type(v).__name__ for v in cells}}),
                                                  "latencies": p.latencies.to_dict()}}))

def after_measure(_):  # the figure Measure drew, and what it measured
    axes = [ax for ax in editor.figure.axes if ax.images]
    (OUT / "measured.json").write_text(json.dumps({{
        "titles": [ax.get_title() for ax in axes],
        "xticks": [[t.get_text() for t in ax.get_xticklabels()] for ax in axes],
        "yticks": [[t.get_text() for t in ax.get_yticklabels()] for ax in axes],
        "images": [np.asarray(ax.images[0].get_array(), dtype=float).tolist() for ax in axes],
        "requested": p._matrix.requested_rtt().to_numpy().tolist()}}))

import numpy as np
editor.apply_button.on_click(after_apply)
editor.measure_button.on_click(after_measure)
editor''',
         '''\
def close(_):
    p.close()
    (OUT / "closed").touch()

close_button = widgets.Button(description="Close platform")
close_button.on_click(close)
(OUT / "ready").touch()
close_button''']


@contextlib.contextmanager
def jupyterlab(tmp_path: Path, notebook: nbformat.NotebookNode) -> Iterator[tuple[str, Path]]:
    """JupyterLab on 127.0.0.1 with ``notebook`` in a fresh directory: its URL and its file; stopped with
    its kernels after."""
    pytest.importorskip("jupyterlab", reason="needs jupyterlab (pip install -e '.[test]')")
    need_chromium()
    jupyter, home = tmp_path / "jupyter", tmp_path / "home"
    home.mkdir()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, home / "notebook.ipynb")
    settings = jupyter / "settings" / "@jupyterlab" / "apputils-extension"  # no news toast over the page
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                           "checkForUpdates": False}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(jupyter / "config"), "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(jupyter / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(jupyter / "ws"),
           "IPYTHONDIR": str(jupyter / "ipython")}
    port, token = free_port(), secrets.token_hex(16)
    with served([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
                 "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}"],
                b"is running at", tmp_path / "lab.log", env, tmp_path):
        yield f"http://127.0.0.1:{port}/lab/tree/notebook.ipynb?token={token}", home / "notebook.ipynb"


def run_all(page, url: str) -> None:
    """Open the notebook, wait for its kernel, and click Run > Run All Cells."""
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.click("li.lm-MenuBar-item:has-text('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")


@pytest.fixture
def lab(tmp_path, busybox):
    out, state = tmp_path / "out", tmp_path / "state"
    out.mkdir(), state.mkdir()
    cells = [new_code_cell(c.format(out=str(out), state=str(state), vnodes=VNODES, image=busybox)) for c in CELLS]
    try:
        with jupyterlab(tmp_path, new_notebook(cells=cells)) as (url, saved):
            yield url, out, saved
    finally:
        remove_notebook_platform(out, state)


@pytest.mark.root
def test_the_editor_in_jupyterlab(lab):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")
    url, out, saved = lab
    ARTIFACTS.mkdir(exist_ok=True)
    cell_messages: list[tuple[str, float]] = []  # ('sent' | 'received', when) for each cell-changed frame

    def watch(ws) -> None:
        def count(way: str, payload: str | bytes) -> None:
            if (b"cell-changed" if isinstance(payload, bytes) else "cell-changed") in payload:
                cell_messages.append((way, time.monotonic()))
        ws.on("framesent", lambda payload: count("sent", payload))
        ws.on("framereceived", lambda payload: count("received", payload))

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            with screenshot_on_failure(page, "lab"):
                page.on("websocket", watch)
                page.goto(url, timeout=120_000)
                page.wait_for_selector(".jp-Notebook", timeout=120_000)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
                page.click("li.lm-MenuBar-item:has-text('Run')")
                page.click("li.lm-Menu-item:has-text('Run All Cells')")
                wait_for(out / "ready", 240)
                viewport = page.wait_for_selector(".lm-DataGrid-viewport", timeout=60_000)
                page.wait_for_selector("text=double-click a cell", timeout=30_000)
                page.screenshot(path=str(ARTIFACTS / "lab-notebook.png"), full_page=True)

                page.locator(".widget-checkbox input[type=checkbox]").check()
                viewport.scroll_into_view_if_needed()
                box = viewport.bounding_box()
                before = len(cell_messages)
                type_in_cell(page, box, 0, 1, "12.5")  # n0 -> n1, and n1 -> n0 by symmetry
                page.wait_for_selector("text=n0 → n1 = 12.5 and back. Not applied yet", timeout=10_000)
                time.sleep(3)  # a loop would go on meanwhile
                exchanged = cell_messages[before:]
                assert 1 <= len(exchanged) <= 6, exchanged  # the edit, the kernel's two sets, their echoes
                assert len(cell_messages[before:]) == len(exchanged)

                page.click("button:has-text('Apply')")
                page.wait_for_selector("text=Applied: 2 cells changed", timeout=30_000)
                wait_for(out / "applied.json", 10)
                time.sleep(2)
                assert page.locator("text=Applied: 2 cells changed").is_visible()  # no late "Edited" over it
                applied = json.loads((out / "applied.json").read_text())
                assert set(applied["types"]) <= {"float", "int"}, applied["types"]
                assert applied["latencies"]["n1"]["n0"] == applied["latencies"]["n0"]["n1"] == 12.5

                page.click("button:has-text('Measure')")
                page.wait_for_selector("text=Measured 12 pairs", timeout=120_000)
                wait_for(out / "measured.json", 10)
                page.locator(".jp-OutputArea-output img").last.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "lab-editor-measure.png"))
                measured = json.loads((out / "measured.json").read_text())
                assert measured["titles"] == ["requested RTT (ms)", "measured RTT (ms)"]
                assert measured["xticks"] == measured["yticks"] == [VNODES, VNODES]
                requested, got = (np.array(m) for m in measured["images"])
                assert requested.tolist() == measured["requested"]
                off = ~np.eye(len(VNODES), dtype=bool)  # each pair's RTT is 25 ms (12.5 each way) or the bridge's
                assert np.allclose(got[off], requested[off], atol=1.0), got

                page.keyboard.press("Control+s")
                page.wait_for_timeout(1500)
                page.click("button:has-text('Close platform')")
                wait_for(out / "closed", 60)
        finally:
            browser.close()
    notebook = nbformat.read(saved, as_version=4)
    deploy_outputs = notebook.cells[0].outputs
    kinds = {kind for o in deploy_outputs for kind in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" not in kinds, deploy_outputs  # progress bars became text
    assert any("Creating vnodes: " in o.get("data", {}).get("text/plain", "") for o in deploy_outputs)
    assert not chromium_left()


@pytest.mark.root
def test_the_getting_started_notebook_in_jupyterlab(tmp_path):
    """notebooks/01 run in JupyterLab as a newcomer would (Run All, then save): no cell fails, the degraded
    link is measured and drawn, and the saved file holds text and pictures, no progress-bar widget."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")
    notebook = nbformat.read(Path(__file__).parent.parent / "notebooks" / "01-getting-started.ipynb", as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    with jupyterlab(tmp_path, notebook) as (url, saved), sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            with screenshot_on_failure(page, "lab-getting-started"):
                run_all(page, url)
                deadline = time.monotonic() + 300
                while True:  # saved every few seconds until every code cell has run
                    page.keyboard.press("Control+s")
                    page.wait_for_timeout(3000)
                    done = nbformat.read(saved, as_version=4)
                    ran = [c for c in done.cells if c.cell_type == "code" and c.get("execution_count")]
                    if len(ran) == len(code) or time.monotonic() > deadline:
                        break
                page.locator(".jp-OutputArea-output img").last.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "lab-getting-started.png"))
        finally:
            browser.close()
    outputs = [o for c in done.cells if c.cell_type == "code" for o in c.outputs]
    assert len(ran) == len(code), f"{len(ran)} of {len(code)} cells ran in 300 s"
    assert [o for o in outputs if o.output_type == "error"] == []
    kinds = {kind for o in outputs for kind in o.get("data", {})}
    assert "image/png" in kinds and "application/vnd.jupyter.widget-view+json" not in kinds
    assert any("RTT node0-node1 (ms)" in o.get("data", {}).get("text/plain", "") for o in outputs)
    assert not chromium_left()
