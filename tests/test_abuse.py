"""The form stamp (minimum fill time), the keyed hashes, and the sign-up's Redis script runner."""

import hashlib
import hmac as stdlib_hmac
import threading
import time

import pytest
from django.core import signing
from django.utils.crypto import salted_hmac

from subscriptions import abuse
from subscriptions.addresses import email_hmac
from subscriptions.redis_client import HotScript


class TestFormStamp:
    def test_a_fresh_stamp_is_too_soon(self):
        assert abuse.looks_automated(honeypot="", stamp=abuse.form_stamp())

    def test_a_stamp_issued_long_enough_ago_passes(self):
        stamp = abuse.form_stamp(issued=int(time.time()) - 30)
        assert not abuse.looks_automated(honeypot="", stamp=stamp)

    def test_a_page_left_open_for_days_still_passes(self):
        stamp = abuse.form_stamp(issued=int(time.time()) - 3 * 86400)
        assert not abuse.looks_automated(honeypot="", stamp=stamp)

    @pytest.mark.parametrize(
        "stamp",
        ["", "1700000000", "1700000000.", "1700000000.0123456789abcdef0123456789abcdef", "x.y", "-5.abc", "1e9.abc"],
    )
    def test_a_forged_or_malformed_stamp_looks_automated(self, stamp):
        assert abuse.looks_automated(honeypot="", stamp=stamp)

    @pytest.mark.parametrize(
        "spelling",
        [
            lambda issued: f"0{issued}",  # a leading zero
            lambda issued: "".join(chr(0x0660 + int(d)) for d in issued),  # Arabic-Indic digits
            lambda issued: "".join(chr(0xFF10 + int(d)) for d in issued),  # fullwidth digits
            lambda issued: f" {issued}",
        ],
    )
    def test_a_stamp_is_one_string_any_other_spelling_of_its_time_is_refused(self, spelling):
        issued, _, mac = abuse.form_stamp(issued=int(time.time()) - 30).partition(".")
        assert not abuse.looks_automated(honeypot="", stamp=f"{issued}.{mac}")
        assert abuse.looks_automated(honeypot="", stamp=f"{spelling(issued)}.{mac}")

    @pytest.mark.parametrize("digits", ["²", "①", "²³⁴⁵⁶⁷⁸⁹¹⁰"])
    def test_digits_int_cannot_read_are_refused_not_a_crash(self, digits):
        assert abuse.looks_automated(honeypot="", stamp=f"{digits}.{'0' * 32}")

    def test_a_stamp_with_its_time_changed_looks_automated(self):
        issued, _, mac = abuse.form_stamp(issued=int(time.time()) - 30).partition(".")
        assert abuse.looks_automated(honeypot="", stamp=f"{int(issued) - 1}.{mac}")

    def test_a_stamp_made_under_another_key_looks_automated(self, settings):
        stamp = abuse.form_stamp(issued=int(time.time()) - 30)
        settings.SECRET_KEY = "a-different-secret-key-for-this-test"
        assert abuse.looks_automated(honeypot="", stamp=stamp)

    def test_a_stamp_made_under_the_previous_key_still_counts(self, settings):
        stamp = abuse.form_stamp(issued=int(time.time()) - 30)
        settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
        settings.SECRET_KEY = "a-different-secret-key-for-this-test"
        assert not abuse.looks_automated(honeypot="", stamp=stamp)

    def test_the_keyed_hash_is_djangos_salted_hmac(self):
        """Stamps in pages already served stay valid if the code goes back to salted_hmac."""
        issued, _, mac = abuse.form_stamp(issued=1_800_000_000).partition(".")
        assert mac == salted_hmac(abuse.FORM_STAMP_SALT, issued, algorithm="sha256").hexdigest()[:32]

    def test_a_page_served_before_the_format_changed_still_counts(self):
        legacy = signing.dumps(int(time.time()) - 30, salt=abuse.FORM_STAMP_SALT)
        assert not abuse.looks_automated(honeypot="", stamp=legacy)
        assert abuse.looks_automated(honeypot="", stamp=legacy[:-2] + "xx")

    def test_a_filled_honeypot_looks_automated_whatever_the_stamp(self):
        assert abuse.looks_automated(honeypot="http://spam.example", stamp=None)


COUNTER = HotScript("return redis.call('INCR', KEYS[1])")


@pytest.fixture
def redis_only(settings, redis_client):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    return redis_client


class TestHotScript:
    def test_it_runs_the_script_and_answers(self, redis_only):
        assert COUNTER(keys=["hot:a"], args=[]) == 1
        assert COUNTER(keys=["hot:a"], args=[]) == 2
        assert int(redis_only.get("hot:a")) == 2

    def test_it_loads_the_script_when_the_server_has_forgotten_it(self, redis_only):
        COUNTER(keys=["hot:b"], args=[])
        redis_only.script_flush()
        assert COUNTER(keys=["hot:b"], args=[]) == 2

    def test_a_connection_the_server_closed_is_replaced_before_sending(self, redis_only):
        COUNTER(keys=["hot:c"], args=[])
        host, port = COUNTER._local.connection._sock.getsockname()[:2]
        killed = redis_only.client_kill_filter(_type="normal", addr=f"{host}:{port}")  # that one connection only
        assert killed == 1
        time.sleep(0.05)  # the close reaches our socket
        assert COUNTER(keys=["hot:c"], args=[]) == 2  # counted once more, not twice, not lost

    def test_each_thread_has_its_own_connection(self, redis_only):
        answers = []

        def count() -> None:
            for _ in range(50):
                answers.append(COUNTER(keys=["hot:d"], args=[]))

        threads = [threading.Thread(target=count) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == list(range(1, 201))


def test_keyed_hashes_stay_hmac_sha256_under_the_suppression_key(settings):
    # Suppression entries and rate-limit keys already stored were made this way; a
    # different spelling of the hash would forget them.
    settings.SUPPRESSION_KEY = "a-key"
    expected = stdlib_hmac.new(b"a-key", b"sam@example.com", hashlib.sha256).hexdigest()
    assert email_hmac("  Sam@Example.COM ") == expected
    assert abuse._hashed("1:abc") == stdlib_hmac.new(b"a-key", b"1:abc", hashlib.sha256).hexdigest()[:32]
