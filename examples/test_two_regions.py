"""An experiment as a pytest file: the platform comes from two-regions.yml (the distem plugin's
``distem_platform`` fixture), the assertions measure it. Run: ``pytest examples/`` (as root), with
``--distem-record DIR`` to keep a record of each test's platform and measurements."""

import os

import pytest

from distem.testing import assert_latencies_within, assert_throughput_within

pytestmark = [pytest.mark.distem("two-regions.yml"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: real containers and links")]


def test_the_regions_are_25_ms_apart(distem_platform):
    compared = assert_latencies_within(distem_platform, rel=0.05)
    assert compared.loc[("eu-1", "us-1"), "requested_rtt_ms"] == 50


def test_eu_1_sends_at_50_mbit_s(distem_platform):
    assert_throughput_within(distem_platform, "eu-1", "eu-2", "50mbps", rel=0.05, seconds=4)
