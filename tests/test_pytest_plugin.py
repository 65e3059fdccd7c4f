"""The pytest plugin as a user's suite meets it (pytester: a fresh pytest in a subprocess)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


def test_a_suite_without_distem_pays_nothing(pytester):
    pytester.makepyfile("""
        import sys

        def test_plain():
            assert "distem.platform.platform" not in sys.modules  # the plugin imported nothing of distem
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "plugins:" in "\n".join(result.outlines) and "distem" in "\n".join(result.outlines)


def test_the_fixture_asks_for_its_marker(pytester):
    pytester.makepyfile("def test_no_marker(distem_platform):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*distem_platform needs @pytest.mark.distem(*"])


@pytest.mark.root
def test_a_platform_per_test_and_a_record_that_keeps_a_failure(pytester, busybox, state_dir, tmp_path):
    pytester.makepyfile(f"""
        import pytest

        def build(p):
            p.vnetwork("vnet", "10.151.0.0/24")
            for name in ("a", "b"):
                p.vnode(name).image({busybox!r}).iface("if0", "vnet")
            p.deploy()

        pytestmark = pytest.mark.distem(build=build)

        def test_pings(distem_platform):
            assert distem_platform.ping("a", "b", count=3).notna().all()

        def test_fails_after_measuring(distem_platform):
            distem_platform.measure_latencies(count=2)
            assert False, "on purpose"
    """)
    records = tmp_path / "records"
    result = pytester.runpytest_subprocess("--distem-record", str(records), "--distem-state-dir", state_dir)
    result.assert_outcomes(passed=1, failed=1)
    kept = {d.name: json.loads((d / "record.json").read_text()) for d in records.iterdir()}
    failed = next(r for name, r in kept.items() if "fails_after" in name)
    assert failed["test"]["outcome"] == "failed"
    assert [m["kind"] for m in failed["measurements"]] == ["measure_latencies"]
    assert next(r for name, r in kept.items() if "pings" in name)["test"]["outcome"] == "passed"
