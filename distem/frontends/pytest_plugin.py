"""The pytest plugin (loaded with the package): experiments as tests.

    @pytest.mark.distem("platform.yml")          # a platform file, beside the test file
    def test_quorum_latency(distem_platform):
        assert_latencies_within(distem_platform, rel=0.05)

    @pytest.mark.distem(build=make_it)           # or a function that builds on a Platform
    def test_something(distem_platform): ...

``distem_platform`` is made from the closest ``distem`` marker (a test's, its class's, its module's
``pytestmark``) and removed after; its scope is the ``distem_scope`` ini option (function by default;
module or session to share one platform). ``--distem-record DIR`` writes each platform's record (see
``Platform.record``) under DIR, with the test and its outcome: a failed test's record keeps what was
measured. Fidelity assertions: ``distem.testing.assert_latencies_within`` and ``assert_throughput_within``.

Nothing of distem is imported until a test asks for the fixture: suites that do not use it pay nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCOPES = ("function", "class", "module", "package", "session")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("distem")
    group.addoption("--distem-record", metavar="DIR", help="write the record of each distem_platform under DIR")
    group.addoption("--distem-state-dir", metavar="DIR", help="the pnodes' state directory (default: distem's)")
    parser.addini("distem_scope", "scope of the distem_platform fixture: function (default), class, module, "
                                  "package or session", default="function")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "distem(file, **platform_kwargs) or distem(build=function): the platform "
                                       "distem_platform makes, from a platform file beside the test file or a function")


def _scope(fixture_name: str, config: pytest.Config) -> str:
    scope = str(config.getini("distem_scope"))
    if scope not in SCOPES:
        raise pytest.UsageError(f"distem_scope = {scope!r}: expected one of {', '.join(SCOPES)}")
    return scope


_OUTCOME = pytest.StashKey[str]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" or report.failed:  # the outcome, for the record the fixture writes after
        item.stash[_OUTCOME] = report.outcome


@pytest.fixture(scope=_scope)
def distem_platform(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A ``distem.Platform`` made as the ``distem`` marker says; removed after (its record written first
    with ``--distem-record``)."""
    import distem

    marker = request.node.get_closest_marker("distem")
    kwargs = dict(marker.kwargs) if marker else {}
    source = marker.args[0] if marker and marker.args else kwargs.pop("build", None)
    if source is None:
        raise pytest.UsageError(f"{request.node.nodeid}: distem_platform needs @pytest.mark.distem(\"platform.yml\") "
                                f"or @pytest.mark.distem(build=a_function_building_on_a_platform)")
    if request.config.getoption("distem_state_dir"):
        kwargs.setdefault("state_dir", request.config.getoption("distem_state_dir"))
    if callable(source):
        platform = distem.Platform(**kwargs)
        try:
            source(platform)
        except BaseException:
            platform.close()
            raise
    else:
        path = Path(source)
        if not path.is_absolute():
            path = Path(request.node.path).parent / path
        platform = distem.Platform.from_record(path, **kwargs)
    with platform:
        yield platform
        directory = request.config.getoption("distem_record")
        if directory:
            outcome = request.node.stash.get(_OUTCOME, None) if request.scope == "function" else None
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid).strip("_")
            platform._records.extra["test"] = {"nodeid": request.node.nodeid, "outcome": outcome}
            platform.record(Path(directory) / name)
