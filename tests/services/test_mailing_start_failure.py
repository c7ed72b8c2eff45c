"""A mailing that cannot start says so where staff look, and leaves nobody `unknown`."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from subscriptions.models import AuditEvent, Delivery, Mailing
from subscriptions.services import mailings
from tests.support.admin_staff import reauthenticated
from tests.support.factories import StaffUserFactory
from tests.support.mailing_fixtures import make_mailing
from tests.support.staff import staff_client

pytestmark = pytest.mark.django_db(transaction=True)


def _send_now(mailing: Mailing) -> Mailing:
    mailings.mailing_send_now(mailing_id=mailing.pk)  # dispatched on commit, in-process here
    mailing.refresh_from_db()
    return mailing


def _start_failures(mailing: Mailing) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="mailing_start_failed", target_type="mailing", target_id=mailing.pk))


def test_a_mailer_that_cannot_be_built_stops_the_start_with_its_reason(campaign, topics, audience, settings):
    # Mailgun without its API key: anymail refuses to build the backend.
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.mailgun.EmailBackend"}}
    settings.ANYMAIL = {}
    mailing = _send_now(make_mailing(campaign, [topics[0]], status=Mailing.Status.DRAFT))
    assert mailing.status == Mailing.Status.DRAFT, "back to draft, to be sent again once the mailer is fixed"
    assert mailing.scheduled_at is None
    assert not Delivery.objects.of_mailing(mailing.pk).exists(), "nobody is left queued, sending or unknown"
    (failure,) = _start_failures(mailing)
    assert failure.campaign_id == campaign.pk
    assert "api_key" in failure.details["reason"].lower()
    assert mailing.start_error == failure.details["reason"], "shown on the mailing itself"


def test_sending_again_clears_the_reason(campaign, topics, audience, settings, mailoutbox):
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.mailgun.EmailBackend"}}
    settings.ANYMAIL = {}
    mailing = _send_now(make_mailing(campaign, [topics[0]], status=Mailing.Status.DRAFT))
    assert mailing.start_error
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    mailing = _send_now(mailing)
    assert mailing.status == Mailing.Status.SENT
    assert mailing.start_error == ""


def test_a_mailing_that_starts_records_no_failure(campaign, topics, audience, mailoutbox):
    mailing = _send_now(make_mailing(campaign, [topics[0]], status=Mailing.Status.DRAFT))
    assert mailing.status == Mailing.Status.SENT
    assert mailing.sent_count == len(audience)
    assert _start_failures(mailing) == []


def test_a_start_that_fails_after_the_mailing_started_does_not_undo_it(campaign, topics, audience, settings):
    """Sending is under way (and counted) before a send task's fault: that is not a start failure."""
    mailing = make_mailing(campaign, [topics[0]], status=Mailing.Status.SENDING)
    mailings.mailing_start_failed(mailing_id=mailing.pk, error=RuntimeError("late"))
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENDING
    assert _start_failures(mailing) == []


def test_send_now_in_the_admin_says_the_mailing_could_not_start_and_shows_why(
    client, campaign, topics, audience, settings
):
    """As in the demo, where tasks run in-process: the action's answer tells the truth."""
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.mailgun.EmailBackend"}}
    settings.ANYMAIL = {}
    staff_client(client, StaffUserFactory())
    reauthenticated(client, client.session["_auth_user_id"])
    mailing = make_mailing(campaign, [topics[0]], status=Mailing.Status.DRAFT)
    changelist = reverse("admin:subscriptions_mailing_changelist")
    page = client.post(changelist, {"action": "send_now", "_selected_action": [mailing.pk]}, follow=True)
    content = page.content.decode()
    assert "could not start and is a draft again" in content
    assert "sending has started" not in content
    mailing.refresh_from_db()
    assert mailing.start_error
    detail = client.get(reverse("admin:subscriptions_mailing_change", args=[mailing.pk])).content.decode()
    assert escape(mailing.start_error) in detail


def test_send_now_in_the_admin_says_how_many_it_reached(client, campaign, topics, audience, mailoutbox):
    staff_client(client, StaffUserFactory())
    reauthenticated(client, client.session["_auth_user_id"])
    mailing = make_mailing(campaign, [topics[0]], status=Mailing.Status.DRAFT)
    changelist = reverse("admin:subscriptions_mailing_changelist")
    page = client.post(changelist, {"action": "send_now", "_selected_action": [mailing.pk]}, follow=True)
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENT
    assert f"sent to {mailing.sent_count} of {mailing.recipients_count}" in page.content.decode()
