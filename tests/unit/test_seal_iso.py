"""serialize.utc_isoformat (behind serialize.iso) writes what datetime.isoformat writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import serialize
from reqmgmt.serialize import iso, remembered, utc_isoformat

ZONES = st.sampled_from(
    [UTC, None, timezone(timedelta(0)), timezone(timedelta(hours=8)), ZoneInfo("UTC"),
     ZoneInfo("Asia/Hong_Kong")]
)  # fmt: skip


class Later(datetime):
    """A subclass: datetime.isoformat's own output, whatever it overrides."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "not this"


@given(st.datetimes(timezones=ZONES), st.booleans())
def test_utc_isoformat_is_datetime_isoformat(value: datetime, fold: bool) -> None:
    value = value.replace(fold=int(fold))
    assert utc_isoformat(value) == datetime.isoformat(value)
    # The text to the second is remembered: a second call (a hit) answers the same.
    assert utc_isoformat(value) == datetime.isoformat(value)
    # iso remembers by identity: an equal copy is formatted again, the same way.
    copy = value.replace()
    assert iso(copy) == datetime.isoformat(copy)


@given(st.datetimes(timezones=st.just(UTC)), st.integers(0, 999_999))
def test_same_second_other_microseconds(value: datetime, micro: int) -> None:
    """The remembered second is joined to any microseconds, zero written as isoformat does."""
    assert utc_isoformat(value) == value.isoformat()
    other = value.replace(microsecond=micro)
    assert utc_isoformat(other) == other.isoformat()


def test_subclasses_and_non_datetimes_go_to_datetime_isoformat() -> None:
    later = Later(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert utc_isoformat(later) == datetime.isoformat(later) == "2026-01-02T03:04:05.000006+00:00"
    try:
        utc_isoformat("2026-01-02")  # type: ignore[arg-type]
    except TypeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a str is no datetime")


def test_the_seconds_memory_is_bounded() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(5000):
        t = start + timedelta(seconds=i, microseconds=i)
        assert utc_isoformat(t) == t.isoformat()
    assert 0 < len(serialize._SECONDS) <= 4096


def test_iso_is_remembered_utc_isoformat() -> None:
    """iso keeps its memory by identity; on a miss it asks utc_isoformat."""
    calls: list[datetime] = []

    def counted(value: datetime) -> str:
        calls.append(value)
        return utc_isoformat(value)

    cached = remembered(counted)
    t = datetime(2026, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    assert cached(t) == cached(t) == iso(t) == t.isoformat()
    assert calls == [t]
