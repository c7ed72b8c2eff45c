"""How long an ESP's 429 makes the senders wait."""

import time

import pytest

from subscriptions.mail.transports.base import MAX_RATE_LIMIT_WAIT, rate_limit_wait


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({}, 1.0, 1.0),  # nothing said: the default
        ({"Retry-After": "7"}, 7.0, 7.0),
        ({"Retry-After": "0"}, 0.0, 0.0),  # the senders still wait their minimum second
        ({"Retry-After": "-3"}, 0.0, 0.0),
        ({"Retry-After": "soon"}, 1.0, 1.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0, 0.0),  # a date passed
        ({"X-RateLimit-Reset": "now+30"}, 28.0, 30.0),  # SendGrid
        ({"X-RateLimit-Reset": "now-30"}, 0.0, 0.0),
        ({"X-RateLimit-Reset": "later"}, 1.0, 1.0),
        ({"Retry-After": "5", "X-RateLimit-Reset": "now+30"}, 5.0, 5.0),  # Retry-After wins
    ],
)
def test_the_wait_a_429_asks_for(headers, low, high):
    headers = {name: _at(value) for name, value in headers.items()}
    assert low <= rate_limit_wait(headers) <= high


def _at(value: str) -> str:
    """ "now+30" as the Unix time 30 s from now, taken when the test runs."""
    if value.startswith("now"):
        return str(int(time.time()) + int(value[3:]))
    return value


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "86400000"},
        {"X-RateLimit-Reset": "1795000000000"},  # milliseconds, not seconds
    ],
)
def test_an_absurd_wait_is_capped_at_an_hour(headers):
    assert rate_limit_wait(headers) == MAX_RATE_LIMIT_WAIT


@pytest.mark.parametrize("headers", [{"Retry-After": "inf"}, {"Retry-After": "nan"}, {"X-RateLimit-Reset": "nan"}])
def test_a_wait_that_is_not_a_number_is_the_default(headers):
    assert rate_limit_wait(headers) == 1.0
