import pytest

from distem.errors import ValidationError
from distem.model.units import (format_duration, format_rate, parse_duration, parse_percent, parse_rate,
                                parse_size)


@pytest.mark.parametrize("text, bits", [
    ("100mbps", 100_000_000), ("3000mbps", 3_000_000_000), ("1gbit", 10**9), ("10Mbit/s", 10**7),
    ("512kbit", 512_000), ("10MB/s", 80_000_000), ("1KiB/s", 8192), (1500, 1500), ("2.5gbps", 2_500_000_000),
])
def test_rates_are_bits_per_second(text, bits):
    assert parse_rate(text) == bits


def test_bare_rate_in_bytes_when_the_field_says_so():
    assert parse_rate(1024, "read_limit", bare="byte") == 8192


@pytest.mark.parametrize("text, us", [("10ms", 10_000), ("1.5ms", 1500), ("200us", 200), ("1s", 10**6), (20, 20_000)])
def test_durations_are_microseconds(text, us):
    assert parse_duration(text) == us


@pytest.mark.parametrize("text, size", [("4G", 4 * 2**30), ("512M", 512 * 2**20), (4096, 4096 * 2**20), ("64MiB", 64 * 2**20)])
def test_sizes_are_bytes_and_bare_numbers_megabytes(text, size):
    assert parse_size(text) == size


def test_percent_in_parts_per_million():
    assert parse_percent(10) == 100_000
    assert parse_percent("25%") == 250_000


@pytest.mark.parametrize("parser, value, words", [
    (parse_rate, "100 apples", "unknown rate unit"), (parse_rate, "-5mbps", "expected"), (parse_rate, "0mbit", "greater than zero"),
    (parse_rate, True, "expected"), (parse_duration, "10 parsecs", "unknown time unit"), (parse_duration, "ten ms", "expected"),
    (parse_size, "4 bananas", "unknown size unit"), (parse_percent, 101, "between 0 and 100"), (parse_percent, "nan", "expected"),
    (parse_rate, float("inf"), "finite"),
])
def test_garbage_names_field_value_and_what_is_allowed(parser, value, words):
    with pytest.raises(ValidationError) as err:
        parser(value, "if0.output.bandwidth")
    assert "if0.output.bandwidth" in str(err.value) and words in str(err.value)
    assert err.value.value == value or (value != value)  # NaN never equals itself


def test_formatting_round_trips():
    assert format_rate(100_000_000) == "100mbit" and parse_rate(format_rate(123_456)) == 123_456
    assert format_duration(10_000) == "10ms" and format_duration(1500) == "1500us"
