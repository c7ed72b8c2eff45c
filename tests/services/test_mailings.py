import datetime
import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from subscriptions.models import AuditEvent, Campaign, Mailing, Topic
from subscriptions.services import mailings
from subscriptions.tokens import LinkPurpose, TokenInvalid, subscriber_for_link_token
from tests.support.factories import CampaignFactory, StaffUserFactory, SubscriberFactory, TopicFactory
from tests.support.mailing_fixtures import BODY

pytestmark = pytest.mark.django_db

LINK = re.compile(r"/(u|manage)/([^/\s\"]+)/")
LINK_PURPOSES = {"u": LinkPurpose.UNSUBSCRIBE, "manage": LinkPurpose.MANAGE}


def draft(campaign, topics, **fields):
    values = {"kind": Mailing.Kind.ENTITY_ALERT, "subject": "Kent is recruiting", "body": BODY, "topics": topics}
    return mailings.mailing_create(campaign=campaign, **(values | fields))


def refusal(callable_, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        callable_(**kwargs)
    return " ".join(caught.value.messages)


def test_a_valid_alert_is_created_as_a_draft(campaign, topics):
    mailing = draft(campaign, topics[:2])
    assert mailing.status == Mailing.Status.DRAFT
    assert set(mailing.topics.all()) == set(topics[:2])


def test_a_mailing_without_an_audience_is_refused(campaign):
    assert "at least one topic" in refusal(draft, campaign=campaign, topics=[])


def test_a_subject_with_a_line_break_is_refused(campaign, topics):
    assert "line break" in refusal(draft, campaign=campaign, topics=topics, subject="Hi\r\nBcc: x@example.net")


def test_a_service_notice_needs_no_topics(campaign):
    assert draft(campaign, [], kind=Mailing.Kind.SERVICE_NOTICE).pk


def test_an_empty_body_is_refused(campaign, topics):
    assert "body is empty" in refusal(draft, campaign=campaign, topics=topics, body="  \n")


def test_a_topic_of_another_campaign_is_refused(campaign, topics):
    stranger = TopicFactory(campaign=CampaignFactory(), kind=Topic.Kind.ENTITY, name="Elsewhere")
    assert "“Elsewhere” belongs to another campaign" in refusal(draft, campaign=campaign, topics=[topics[0], stranger])


def test_an_entity_alert_to_a_general_topic_is_refused(campaign):
    general = TopicFactory(campaign=campaign, name="News")
    assert "general topic" in refusal(draft, campaign=campaign, topics=[general])


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("Hi <script>alert(1)</script>", "<script>"),
        ('<a href="javascript:alert(1)">x</a>', "javascript:alert(1)"),
        ("[click](javascript:alert(1))", "javascript:alert(1)"),
        ('<p onclick="x()">hi</p>', '"onclick"'),
        ("<iframe src=https://evil.test></iframe>", "<iframe>"),
    ],
)
def test_unsafe_html_in_the_markdown_is_refused_by_name(campaign, topics, body, named):
    message = refusal(draft, campaign=campaign, topics=topics, body=body)
    assert "HTML that is not allowed" in message
    assert named in message


def test_personalisation_other_than_first_name_is_refused(campaign, topics):
    assert "Only {{ first_name }}" in refusal(draft, campaign=campaign, topics=topics, body="Hi {{ email }}")


def test_a_send_on_an_ended_campaign_is_refused(campaign, topics):
    mailing = draft(campaign, topics)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ENDED)
    assert "has ended" in refusal(mailings.mailing_send_now, mailing_id=mailing.pk)


def test_a_campaign_past_its_end_date_cannot_send(campaign, topics):
    mailing = draft(campaign, topics)
    Campaign.objects.filter(pk=campaign.pk).update(ends_on=timezone.localdate() - datetime.timedelta(days=1))
    assert "has ended" in refusal(mailings.mailing_send_now, mailing_id=mailing.pk)


def test_a_schedule_in_the_past_is_refused(campaign, topics):
    mailing = draft(campaign, topics)
    past = timezone.now() - datetime.timedelta(hours=1)
    assert "in the past" in refusal(mailings.mailing_schedule, mailing_id=mailing.pk, send_at=past)


def test_scheduling_sets_the_time_and_audits_it(campaign, topics):
    mailing = draft(campaign, topics)
    later = timezone.now() + datetime.timedelta(days=1)
    mailing = mailings.mailing_schedule(mailing_id=mailing.pk, send_at=later, actor=StaffUserFactory())
    assert (mailing.status, mailing.scheduled_at) == (Mailing.Status.SCHEDULED, later)
    assert AuditEvent.objects.filter(action="mailing_scheduled", target_id=mailing.pk).exists()


def test_send_now_sends_once_however_often_it_is_clicked(
    campaign, topics, audience, fake_esp, django_capture_on_commit_callbacks
):
    mailing = draft(campaign, topics[:1])
    with django_capture_on_commit_callbacks(execute=True):
        mailings.mailing_send_now(mailing_id=mailing.pk)
    assert "not sent again" in refusal(mailings.mailing_send_now, mailing_id=mailing.pk)
    mailing.refresh_from_db()
    assert (mailing.status, mailing.sent_count) == (Mailing.Status.SENT, 5)
    assert len(fake_esp.sent) == 5


def test_cancelling_a_scheduled_mailing_means_nothing_goes(campaign, topics, audience, fake_esp):
    mailing = draft(campaign, topics)
    mailings.mailing_schedule(mailing_id=mailing.pk, send_at=timezone.now() + datetime.timedelta(minutes=5))
    mailing = mailings.mailing_cancel(mailing_id=mailing.pk)
    assert mailing.status == Mailing.Status.CANCELLED
    assert "already cancelled" in refusal(mailings.mailing_cancel, mailing_id=mailing.pk)


def test_the_preview_is_what_the_chosen_subscriber_would_get(campaign, topics):
    mailing = draft(campaign, topics)
    person = SubscriberFactory(campaign=campaign, first_name="Priya")
    preview = mailings.mailing_preview(mailing=mailing, subscriber=person)
    assert preview.subject == "Kent is recruiting"
    assert "Hello Priya," in preview.text
    assert "<strong>Kent</strong>" in preview.html
    assert 'href="https://example.org/jobs"' in preview.html
    assert "You get this email because you subscribed to" in preview.text


def test_the_preview_holds_no_link_that_works_for_the_person(campaign, topics):
    mailing = draft(campaign, topics)
    person = SubscriberFactory(campaign=campaign, first_name="Priya")
    preview = mailings.mailing_preview(mailing=mailing, subscriber=person)
    links = LINK.findall(preview.text + preview.html)
    assert {purpose for purpose, _ in links} == {"u", "manage"}
    for purpose, token in links:
        with pytest.raises(TokenInvalid):
            subscriber_for_link_token(purpose=LINK_PURPOSES[purpose], token=token)


def test_a_test_send_goes_to_the_staff_address_with_links_that_belong_to_nobody(campaign, topics, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    mailing = draft(campaign, topics)
    mailings.mailing_send_test(mailing=mailing, to="staff@example.org", first_name="Sam")
    (message,) = mail.outbox
    assert message.to == ["staff@example.org"]
    assert message.subject == "[Test] Kent is recruiting"
    assert "Hello Sam," in message.body
    assert "/u/preview/" in message.body


def test_a_new_public_status_offers_a_prefilled_alert(campaign, topics):
    topic = topics[0]
    topic.public_status = "Recruiting now"
    assert mailings.topic_status_changed(topic=topic, previous_status="") is True
    assert mailings.topic_status_changed(topic=topic, previous_status="Recruiting now") is False
    mailing = mailings.alert_draft_create(topic=topic)
    assert (mailing.kind, mailing.status, list(mailing.topics.all())) == ("entity_alert", "draft", [topic])
    assert mailing.subject == f"{topic.name}: Recruiting now"
    assert f"{topic.name} has a new status: **Recruiting now**." in mailing.body
    assert "is now" not in mailing.body, "no sentence that reads wrongly for some statuses"
