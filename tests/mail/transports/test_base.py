"""How long an ESP's 429 makes the senders wait, and what a refused recipient costs."""

import json
import os
import subprocess
import sys
import time
import traceback

import pytest

from subscriptions.mail.transports.base import MAX_RATE_LIMIT_WAIT, rate_limit_wait
from subscriptions.services.signup.emails import welcome_send
from subscriptions.tasks import send_welcome
from tests.support.factories import SubscriberFactory
from tests.support.smtp_sink import SmtpSink


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


def _smtp_mailer_as_configured(port: int) -> dict:
    """MAILERS["default"] as config/settings.py builds it for MAILER=smtp, in a fresh interpreter."""
    show = "import django, json; django.setup(); from django.conf import settings; print(json.dumps(settings.MAILERS))"
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "MAILER": "smtp", "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port), "SMTP_USE_TLS": "false", "SMTP_TIMEOUT": "5",
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", show], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["default"]


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "retried"), [(550, False), (553, False), (450, True)])
def test_one_persons_email_refused_at_rcpt_is_retried_only_if_temporary_and_never_names_the_address(
    settings, code, retried
):
    """What the sending task sees: it retries what is in its autoretry_for (OSError
    among them), and a failed task logs the exception with its traceback."""
    person = SubscriberFactory()
    with SmtpSink() as sink:
        sink.state.rcpt_replies[person.email] = (code, f"{code // 100}.1.1 <{person.email}>: mailbox unavailable")
        settings.MAILERS = {"default": _smtp_mailer_as_configured(sink.port)}
        with pytest.raises(Exception, match=str(code)) as raised:
            welcome_send(subscriber_id=person.pk, topic_ids=[])
    assert sink.state.rcpt_seen == [person.email]
    assert isinstance(raised.value, send_welcome.autoretry_for) is retried
    logged = "".join(traceback.format_exception(raised.value))
    assert person.email not in logged
    assert f"SMTP {code} at RCPT" in logged
