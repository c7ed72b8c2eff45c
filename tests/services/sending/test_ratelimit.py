import threading
import time

import pytest

from subscriptions.services.sending.ratelimit import (
    RateLimitTimeout,
    ratelimit_pause,
    ratelimit_take,
    ratelimit_try_take,
)


def test_a_full_bucket_grants_up_to_its_burst_then_asks_to_wait():
    assert ratelimit_try_take(mailer="esp", count=8, rate=5, burst=10).granted == 8
    grant = ratelimit_try_take(mailer="esp", count=8, rate=5, burst=10)
    assert grant.granted == 2
    empty = ratelimit_try_take(mailer="esp", count=1, rate=5, burst=10)
    assert empty.granted == 0
    assert 0 < empty.wait_seconds <= 0.2


def test_it_refills_at_the_configured_rate():
    ratelimit_try_take(mailer="esp", count=10, rate=20, burst=10)
    time.sleep(0.25)
    assert ratelimit_try_take(mailer="esp", count=10, rate=20, burst=10).granted in (5, 6)


def test_each_mailer_has_its_own_bucket():
    ratelimit_try_take(mailer="ses", count=3, rate=1, burst=3)
    assert ratelimit_try_take(mailer="mailgun", count=3, rate=1, burst=3).granted == 3


def test_workers_in_parallel_never_take_more_than_the_bucket_allows():
    granted = []

    def worker():
        for _ in range(20):
            granted.append(ratelimit_try_take(mailer="esp", count=3, rate=0.1, burst=25).granted)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 25


def test_take_blocks_until_a_token_comes():
    ratelimit_try_take(mailer="esp", count=2, rate=10, burst=2)
    started = time.monotonic()
    assert ratelimit_take(mailer="esp", count=5, rate=10, burst=2) == 1
    assert 0.05 <= time.monotonic() - started < 1


def test_take_gives_up_at_its_deadline():
    ratelimit_pause(mailer="esp", seconds=10)
    with pytest.raises(RateLimitTimeout):
        ratelimit_take(mailer="esp", count=1, deadline_seconds=0.2)


def test_a_pause_stops_every_taker_and_is_never_shortened():
    ratelimit_pause(mailer="esp", seconds=5)
    ratelimit_pause(mailer="esp", seconds=1)
    grant = ratelimit_try_take(mailer="esp", count=1, rate=100, burst=100)
    assert grant.granted == 0
    assert grant.wait_seconds > 4
