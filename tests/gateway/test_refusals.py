"""The upstream's Retry-After as GoAPI (or a proxy in front of it) may send it: delay-seconds
or an HTTP-date (RFC 9110, 10.2.3), bounded to 1 s - 1 h; anything else is the default."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from gateway.tasks.refusals import retry_after
from gateway.upstream import UpstreamAnswer

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def answer(value: str | None) -> UpstreamAnswer:
    headers = httpx.Headers({} if value is None else {"retry-after": value})
    return UpstreamAnswer(status=429, body=None, raw=b"", headers=headers, seconds=0.1)


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + seconds_from_now, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 30 ", 30.0),
        ("0", 1.0),  # at least a second
        ("86400", 3600.0),  # at most an hour
        (http_date(45), 45.0),
        ("Tue, 01 Dec 2026 12:02:00 GMT", 120.0),
        (http_date(-60), 1.0),  # a date past: retry at once (after a second)
        (http_date(86400), 3600.0),
        (None, 10.0),
        ("", 10.0),
        ("soon", 10.0),
        ("nan", 10.0),
        ("Mon, 99 Foo 2026 99:99:99 GMT", 10.0),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, expected: float) -> None:
    assert retry_after(answer(value), 10.0, NOW) == expected
