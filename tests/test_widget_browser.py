"""LatencyMatrixEditor in a real browser: Voilà serves a notebook that builds a platform of 100 vnodes
(created, not started) and shows the editor; headless chromium, driven by Playwright, edits a cell,
clicks Apply, and the kernel's p.latencies (written to a file by the notebook) must have changed.

Voilà rather than JupyterLab: it runs the notebook on page load, so nothing has to be typed into
cells. It keeps a kernel per page visit: the server lives only for this test. The grid draws on a
canvas: cells are double-clicked by coordinates, from the editor's own geometry.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from distem.frontends.widgets import COLUMN_PX, HEADER_PX, ROW_HEADER_PX, ROW_PX

from .conftest import platform_leftovers

CHROMIUM = Path("/usr/lib/chromium/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"  # git-ignored
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every live process under ``pid`` (children first found through /proc/*/stat's ppid)."""
    parents: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} was not written within {timeout} s"
        time.sleep(0.1)


@pytest.fixture
def server(tmp_path, busybox):
    """Voilà on 127.0.0.1 serving a fresh copy of the editor notebook; stopped with its kernels after."""
    pytest.importorskip("voila", reason="needs voila (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip(f"needs chromium at {CHROMIUM} (apt-get install chromium; scripts/install-system-packages)")
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
    log = tmp_path / "voila.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "voila", "--no-browser", f"--port={port}",
                                 "--Voila.ip=127.0.0.1", str(path)], cwd=tmp_path, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)
    started = []
    try:
        deadline = time.monotonic() + 60
        while b"running at" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, f"voila did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/", out
    finally:
        started = descendants(proc.pid)  # the kernels (their own sessions) and what they run
        proc.send_signal(signal.SIGTERM)  # Voilà shuts its kernels down on SIGTERM
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid in started:  # only ours, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        left = []
        if (out / "platform-id").exists():  # the notebook's platform, whatever happened in the browser
            from distem.agent import undo

            pid = (out / "platform-id").read_text()
            left = platform_leftovers(pid, str(state))
            if left:
                undo.clean(str(state), pid)  # what `distem clean` does, so that a failed test leaves nothing
        assert left == [], f"the notebook's platform was not closed: {left}"


@pytest.mark.root
def test_edit_apply_in_a_browser(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")
    url, out = server
    timings = {}
    start = time.monotonic()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url, timeout=120_000)
            viewport = page.wait_for_selector(".lm-DataGrid-viewport", timeout=120_000)
            page.wait_for_selector("text=double-click a cell", timeout=30_000)
            timings["page_and_kernel_s"] = time.monotonic() - start
            timings["render_after_kernel_built_s"] = time.time() - float((out / "built").read_text())
            box = viewport.bounding_box()

            def edit(row: int, column: int, text: str) -> None:
                page.mouse.dblclick(box["x"] + ROW_HEADER_PX + (column + 0.5) * COLUMN_PX,
                                    box["y"] + HEADER_PX + (row + 0.5) * ROW_PX)
                page.wait_for_selector(".lm-DataGrid-cellEditorInput", timeout=10_000)
                page.keyboard.press("Control+A")
                page.keyboard.type(text)
                page.keyboard.press("Enter")

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
            page.wait_for_selector("text=n1 → n0: '-3' is negative", timeout=10_000)
            assert page.is_disabled("button:has-text('Apply')")
            shot = tmp_path / "widget-browser.png"
            page.screenshot(path=str(shot))
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(shot, ARTIFACTS / shot.name)

            page.click("button:has-text('Close platform')")
            wait_for(out / "closed", 60)
        finally:
            browser.close()
    timings["total_s"] = time.monotonic() - start
    (ARTIFACTS / "widget-browser-timings.json").write_text(json.dumps(timings, indent=1))
    assert not [p for p in descendants(os.getpid()) if b"chromium" in Path(f"/proc/{p}/cmdline").read_bytes()]
