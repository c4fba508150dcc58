"""Durations as people write them, and the refusals for everything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metaflow_hitl.durations import format_duration, parse_duration
from metaflow_hitl.errors import ConfigError

VALID = [
    pytest.param("30s", 30.0, id="seconds"),
    pytest.param("15m", 900.0, id="minutes"),
    pytest.param("4h", 14_400.0, id="hours"),
    pytest.param("2d", 172_800.0, id="days"),
    pytest.param("1h30m", 5_400.0, id="hours-and-minutes"),
    pytest.param("1d2h3m4s", 93_784.0, id="every-unit-in-order"),
    pytest.param("1.5h", 5_400.0, id="fractional-term"),
    pytest.param(" 4H ", 14_400.0, id="upper-case-and-padding"),
    pytest.param("90", 90.0, id="bare-number-string"),
    pytest.param(90, 90.0, id="int-seconds"),
    pytest.param(0.25, 0.25, id="float-seconds"),
]


@pytest.mark.parametrize(("text", "seconds"), VALID)
def test_valid_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds  # type: ignore[arg-type]


EXAMPLES = "'30s', '15m', '4h', '2d' or '1h30m'"

INVALID = [
    pytest.param("0s", id="zero-with-unit"),
    pytest.param(0, id="zero-int"),
    pytest.param(-1, id="negative-int"),
    pytest.param("-1", id="negative-string"),
    pytest.param("abc", id="word"),
    pytest.param("1m1h", id="units-misordered"),
    pytest.param("1h1h", id="unit-repeated"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param(True, id="bool-true"),
    pytest.param(False, id="bool-false"),
    pytest.param("inf", id="inf-string"),
    pytest.param(float("inf"), id="inf-float"),
    pytest.param(float("nan"), id="nan-float"),
    pytest.param("1e3s", id="exponent"),
    pytest.param("1h 30m", id="space-between-terms"),
    pytest.param("1w", id="weeks-unit"),
    pytest.param("h", id="unit-without-number"),
    pytest.param("1h\n30m", id="newline-inside"),
    pytest.param(10**400, id="int-too-large-for-float"),
]


@pytest.mark.parametrize("value", INVALID)
def test_invalid_durations_are_refused_with_the_valid_forms(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, what="timeout")  # type: ignore[arg-type]
    text = str(info.value)
    assert text.startswith("timeout")
    assert EXAMPLES in text


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        pytest.param("1m1h", "largest unit first", id="misordered-says-how"),
        pytest.param("abc", "'abc'", id="names-the-value"),
        pytest.param("0s", "longer than zero", id="zero-says-why"),
    ],
)
def test_refusal_explains_the_problem(value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.25, "0.25s", id="sub-second"),
        pytest.param(30, "30s", id="seconds"),
        pytest.param(5_400, "1h30m", id="hours-minutes"),
        pytest.param(93_784, "1d2h3m4s", id="every-unit"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**8))
def test_format_duration_reads_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans()))
def test_parse_duration_only_ever_raises_config_error(value: object) -> None:
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except ConfigError:
        return
    assert 0 < seconds < float("inf")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (10**12, "longer than 3650 days"),
        ("3651d", "longer than 3650 days"),
        (0.0005, "shorter than 1 ms"),
    ],
)
def test_durations_beyond_what_can_be_stored_are_refused_up_front(value, message):
    """Found by the hostile-input suite: 10**12 s passed here, then overflowed when the gate
    opened; under 1 ms stored expires_at == created_at."""
    with pytest.raises(ConfigError, match=message):
        parse_duration(value, what="timeout")
    assert parse_duration("3650d") == 3650 * 86400


def test_seconds_settings_from_the_environment(monkeypatch):
    from metaflow_hitl.durations import seconds_setting

    monkeypatch.delenv("HITL_TEST_TIMEOUT", raising=False)
    assert seconds_setting("HITL_TEST_TIMEOUT", 20) == 20
    monkeypatch.setenv("HITL_TEST_TIMEOUT", "2.5")
    assert seconds_setting("HITL_TEST_TIMEOUT", 20) == 2.5
    for bad in ("soon", "0", "-1", "7200"):
        monkeypatch.setenv("HITL_TEST_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="is not a number of seconds"):
            seconds_setting("HITL_TEST_TIMEOUT", 20)
