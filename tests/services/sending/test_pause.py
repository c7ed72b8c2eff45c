"""A send that fails on configuration pauses the mailing: nobody is failed or left unknown,
staff see why, and sending resumes by itself once the settings are fixed (issue 16, item 14)."""

import logging

import pytest
from anymail.exceptions import AnymailRequestsAPIError
from django.core.cache import cache
from django.urls import reverse

from subscriptions.mail.transports.base import (
    Misconfigured,
    Permanent,
    RateLimited,
    Transient,
    anymail_fault,
    smtp_fault,
)
from subscriptions.models import AuditEvent, Mailing
from subscriptions.services.sending import run
from subscriptions.services.sending.claims import mailing_complete_if_done
from subscriptions.services.sending.reconcile import mailing_progress
from subscriptions.services.sending.run import BULK_MAILER, ESP_DOWN_REST_SECONDS, mailing_send_batches
from subscriptions.services.sending.send_tasks import heartbeat_key
from subscriptions.services.sending.sweep import deliveries_sweep
from tests.support.admin_staff import reauthenticated
from tests.support.factories import StaffUserFactory
from tests.support.fake_esp import _response
from tests.support.fake_mailgun import Answer, mailgun_server
from tests.support.mailing_fixtures import delivery_statuses, make_mailing, sending_through
from tests.support.staff import staff_client

pytestmark = pytest.mark.django_db


def _paused(mailing: Mailing) -> str:
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENDING
    return mailing.start_error


def _audited(mailing: Mailing, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_type="mailing", target_id=mailing.pk))


def _rest_is_over(mailing: Mailing) -> dict[str, int]:
    """What the sweeper does once the mailing's rest (ESP_DOWN_REST_SECONDS) has passed."""
    cache.delete(heartbeat_key(mailing.pk))
    return deliveries_sweep()


def test_a_401_on_every_call_pauses_the_mailing_and_fails_no_one(mailing, fake_esp, audience, caplog):
    fake_esp.fail("401", times=99)
    with caplog.at_level(logging.INFO):
        assert mailing_send_batches(mailing_id=mailing.pk) == {"queued": 5}
    assert set(delivery_statuses(mailing).values()) == {"queued"}
    assert fake_esp.attempts == 1, "one refused call is enough: no retries, nobody else tried"
    shown = _paused(mailing)
    assert shown.startswith("Sending paused: the email provider refused our credentials (HTTP 401)")
    assert shown.endswith("sending resumes by itself.")
    [paused] = _audited(mailing, "mailing_paused")
    assert "HTTP 401" in paused.details["reason"]
    assert paused.campaign_id == mailing.campaign_id
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "paused" in r.getMessage()]
    assert errors, "an ERROR line says the mailing is paused"
    assert not any(person.email in caplog.text for person in audience)


def test_a_paused_mailing_rests_and_is_not_called_sent(mailing, fake_esp, redis_client):
    fake_esp.fail("401", times=99)
    mailing_send_batches(mailing_id=mailing.pk)
    rest = redis_client.ttl(cache.make_key(heartbeat_key(mailing.pk)))
    assert 0 < rest <= ESP_DOWN_REST_SECONDS, "the sweeper restarts it once the rest is over"
    assert deliveries_sweep() == {"expired": 0, "restarted": 0, "completed": 0}
    assert not mailing_complete_if_done(mailing_id=mailing.pk)
    assert mailing_progress(mailing_id=mailing.pk).status == "sending"


def test_a_mailing_still_refused_after_its_rest_stays_paused_and_is_audited_once(mailing, fake_esp):
    fake_esp.fail("403", times=99)
    mailing_send_batches(mailing_id=mailing.pk)
    assert _rest_is_over(mailing)["restarted"] == 1
    assert "HTTP 403" in _paused(mailing)
    assert set(delivery_statuses(mailing).values()) == {"queued"}
    assert len(_audited(mailing, "mailing_paused")) == 1


def test_once_the_credentials_are_fixed_everyone_gets_it_exactly_once_and_the_pause_is_cleared(mailing, fake_esp):
    fake_esp.fail("401", times=99)
    mailing_send_batches(mailing_id=mailing.pk)
    fake_esp.faults.clear()  # the operator puts the right key in
    assert _rest_is_over(mailing)["restarted"] == 1
    progress = mailing_progress(mailing_id=mailing.pk)
    assert (progress.status, progress.sent, progress.failed, progress.unknown) == ("sent", 5, 0, 0)
    assert len(fake_esp.sent) == len({s.to for s in fake_esp.sent}) == 5
    mailing.refresh_from_db()
    assert mailing.start_error == ""
    assert len(_audited(mailing, "mailing_resumed")) == 1


def test_a_value_error_from_the_mailer_pauses_the_mailing_and_fails_no_one(mailing, fake_esp, audience, caplog):
    """Issue 16: ANYMAIL_REQUESTS_TIMEOUT="3" made every call raise ValueError before it left."""
    fake_esp.fail("value_error", times=99)
    with caplog.at_level(logging.INFO):
        assert mailing_send_batches(mailing_id=mailing.pk) == {"queued": 5}
    assert "ValueError" in _paused(mailing)
    traces = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "Traceback" in r.getMessage()]
    assert traces, "logged with its traceback"
    assert "ValueError: Timeout value connect was 3" in traces[0]
    fake_esp.faults.clear()
    _rest_is_over(mailing)
    assert (mailing_progress(mailing_id=mailing.pk).status, len(fake_esp.sent)) == ("sent", 5)


def test_whoever_was_sent_before_an_unexpected_error_keeps_their_send_and_is_not_sent_again(
    mailing, fake_esp, audience
):
    fake_esp.fail("value_error", address=audience[1].email, times=99)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 1, "queued": 4}
    fake_esp.faults.clear()
    _rest_is_over(mailing)
    assert sorted(s.to for s in fake_esp.sent) == sorted(p.email for p in audience)


class _BrokenTransport:
    """A transport whose every call raises something that is no SendFault (a bug, a bad option)."""

    name = BULK_MAILER
    max_recipients = None

    def send_many(self, items):
        raise TypeError("send_messages() got an unexpected keyword argument 'timeout'")

    def close(self) -> None:
        pass


def test_an_exception_out_of_a_whole_call_pauses_the_mailing(mailing, fake_esp, monkeypatch):
    monkeypatch.setattr(run, "transport_for", lambda **kwargs: _BrokenTransport())
    assert mailing_send_batches(mailing_id=mailing.pk) == {"queued": 5}
    assert "TypeError" in _paused(mailing)
    assert len(_audited(mailing, "mailing_paused")) == 1


class _AddressQuotingTransport(_BrokenTransport):
    def send_many(self, items):
        raise KeyError(items[0].address)


def test_an_unexpected_error_quoting_an_address_is_shown_and_logged_without_it(
    mailing, fake_esp, audience, monkeypatch, caplog
):
    monkeypatch.setattr(run, "transport_for", lambda **kwargs: _AddressQuotingTransport())
    with caplog.at_level(logging.INFO):
        mailing_send_batches(mailing_id=mailing.pk)
    [paused] = _audited(mailing, "mailing_paused")
    assert "KeyError: '<address>'" in _paused(mailing)
    assert "Traceback" in caplog.text
    for person in audience:
        assert person.email not in caplog.text + mailing.start_error + str(paused.details)


@pytest.fixture
def mailgun(settings):
    def options(port: int) -> dict[str, str]:
        return {"api_key": "key-revoked", "api_url": f"http://127.0.0.1:{port}/v3"}

    with sending_through(settings, mailgun_server(), "anymail.backends.mailgun.EmailBackend", options) as fake:
        yield fake


def test_a_batch_call_refused_with_a_401_pauses_the_mailing_after_one_call(mailing, mailgun):
    mailgun.answer(*[Answer(status=401)] * 3)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"queued": 5}
    assert len(mailgun.received) == 1
    assert '(HTTP 401): {"message": "fake Mailgun says 401"}' in _paused(mailing)
    mailgun.answers.clear()
    _rest_is_over(mailing)
    assert sorted(a for call in mailgun.received[1:] for a in call.to) == sorted(delivery_statuses(mailing))
    assert mailing_progress(mailing_id=mailing.pk).sent == 5


def test_an_smtp_login_refused_pauses_the_mailing_until_it_is_accepted(mailing, smtp_sink, settings, audience):
    settings.MAILERS["default"]["OPTIONS"] |= {"username": "tidings", "password": "wrong"}
    smtp_sink.state.auth_reply = (535, "5.7.8 Authentication credentials invalid")
    assert mailing_send_batches(mailing_id=mailing.pk) == {"queued": 5}
    assert "535" in _paused(mailing)
    assert smtp_sink.state.rcpt_seen == []
    smtp_sink.state.auth_reply = (235, "2.7.0 Authentication successful")
    _rest_is_over(mailing)
    assert sorted(r for m in smtp_sink.state.received for r in m.recipients) == sorted(p.email for p in audience)
    assert mailing_progress(mailing_id=mailing.pk).status == "sent"
    mailing.refresh_from_db()
    assert mailing.start_error == ""


def test_a_one_person_refusal_or_a_429_does_not_pause_the_mailing(mailing, fake_esp, audience):
    fake_esp.fail("400", address=audience[2].email)
    fake_esp.fail("429", address=audience[3].email, retry_after="0")
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 4, "failed": 1}
    mailing.refresh_from_db()
    assert (mailing.status, mailing.start_error) == ("sent", "")
    assert not _audited(mailing, "mailing_paused")


def test_a_policy_refusal_of_one_address_over_smtp_does_not_pause_the_mailing(mailing, smtp_sink, audience):
    smtp_sink.state.rcpt_replies[audience[2].email] = (550, "5.7.1 Relay access denied")
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 4, "failed": 1}
    mailing.refresh_from_db()
    assert mailing.start_error == ""


@pytest.mark.parametrize(
    ("status", "fault"),
    [(401, Misconfigured), (403, Misconfigured), (400, Permanent), (429, RateLimited), (503, Transient)],
)
def test_which_esp_answers_are_about_our_configuration(status, fault):
    error = AnymailRequestsAPIError(response=_response(status, None))
    assert type(anymail_fault(error)) is fault


@pytest.mark.parametrize(
    ("code", "stage", "fault"),
    [
        (535, "AUTH", Misconfigured),
        (530, "MAIL", Misconfigured),  # "5.7.0 Authentication required"
        (550, "MAIL", Misconfigured),  # our sender refused: it is the same for everyone
        (451, "MAIL", Transient),
        (550, "RCPT", Permanent),
        (530, "RCPT", Misconfigured),
        (554, "end of DATA", Permanent),
    ],
)
def test_which_smtp_replies_are_about_our_configuration(code, stage, fault):
    assert type(smtp_fault(code, b"5.7.0 no", stage)) is fault


@pytest.mark.django_db(transaction=True)
def test_send_now_in_the_admin_says_the_mailing_is_paused_and_why(client, campaign, topics, audience, fake_esp):
    """As in the demo, where tasks run in-process: the mailing started, then paused."""
    fake_esp.fail("401", times=99)
    staff_client(client, StaffUserFactory())
    reauthenticated(client, client.session["_auth_user_id"])
    mailing = make_mailing(campaign, [topics[0]], status=Mailing.Status.DRAFT)
    changelist = reverse("admin:subscriptions_mailing_changelist")
    content = client.post(changelist, {"action": "send_now", "_selected_action": [mailing.pk]}, follow=True)
    text = content.content.decode()
    assert "Sending paused: the email provider refused our credentials (HTTP 401)" in text
    assert "draft again" not in text


def test_a_login_the_smtp_server_cannot_do_pauses_the_mailing(mailing, smtp_sink, settings):
    """A username and password for a server that offers no AUTH: a setting, not a person, is wrong."""
    settings.MAILERS["default"]["OPTIONS"] |= {"username": "tidings", "password": "secret"}
    assert mailing_send_batches(mailing_id=mailing.pk) == {"queued": 5}
    assert "cannot do what the settings ask" in _paused(mailing)
