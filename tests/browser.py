"""What the browser tests share: a notebook server run for one test and stopped with its kernels, the
platform its notebook made removed whatever happened in the browser, headless Debian chromium."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distem.frontends.widgets import COLUMN_PX, HEADER_PX, ROW_HEADER_PX, ROW_PX

from .conftest import platform_leftovers

CHROMIUM = Path("/usr/lib/chromium/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"  # git-ignored: screenshots for a person to look at
# No call home: this machine's network is closed, and the refused connections slow chromium down.
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"needs chromium at {CHROMIUM} (apt-get install chromium; scripts/install-system-packages)")


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


def chromium_left() -> list[int]:
    return [p for p in descendants(os.getpid()) if b"chromium" in _cmdline(p)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def type_in_cell(page, viewport_box: dict[str, float], row: int, column: int, text: str) -> None:
    """Type ``text`` into a cell of the editor's grid (a canvas: by coordinates, from the editor's geometry)."""
    page.mouse.dblclick(viewport_box["x"] + ROW_HEADER_PX + (column + 0.5) * COLUMN_PX,
                        viewport_box["y"] + HEADER_PX + (row + 0.5) * ROW_PX)
    page.wait_for_selector(".lm-DataGrid-cellEditorInput", timeout=10_000)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


@contextlib.contextmanager
def screenshot_on_failure(page, name: str) -> Iterator[None]:
    """What the page showed when a step failed, in tests/artifacts/NAME-failed.png."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"{name}-failed.png"), full_page=True)
        raise


def wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} was not written within {timeout} s"
        time.sleep(0.1)


@contextlib.contextmanager
def served(argv: list[str], ready: bytes, log: Path, env: dict[str, str], cwd: Path) -> Iterator[None]:
    """Run a notebook server until ``ready`` appears in its log; stop it, its kernels and what they run after."""
    with open(log, "wb") as sink:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while ready not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, f"the server did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield
    finally:
        started = descendants(proc.pid)  # the kernels (their own sessions) and what they run
        proc.send_signal(signal.SIGTERM)  # both servers shut their kernels down on SIGTERM
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid in started:  # only ours, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def remove_notebook_platform(out: Path, state: Path) -> None:
    """The platform the notebook wrote its id for must be closed; if not, remove it (as ``distem clean``
    does) so that a failed test leaves nothing, and fail."""
    if not (out / "platform-id").exists():
        return
    from distem.agent import undo

    platform_id = (out / "platform-id").read_text()
    left = platform_leftovers(platform_id, str(state))
    if left:
        undo.clean(str(state), platform_id)
    assert left == [], f"the notebook's platform was not closed: {left}"
