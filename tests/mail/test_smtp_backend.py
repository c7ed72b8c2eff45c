"""One person's mail over SMTP (SmtpMailer): a refused recipient is retried only if the refusal is temporary,
and never named."""

import json
import os
import subprocess
import sys
import traceback

import pytest

from subscriptions.services.signup.emails import welcome_send
from subscriptions.tasks import send_welcome
from tests.support.factories import SubscriberFactory
from tests.support.smtp_sink import SmtpSink


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
