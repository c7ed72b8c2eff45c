"""Admin actions that change things need change permission: Django offers every action to
anyone who may see the list, so a viewer must not be able to send, schedule or draft."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import AuditEvent, Mailing, Topic
from tests.factories import CampaignFactory, StaffUserFactory, TopicFactory
from tests.mailing_fixtures import BODY

pytestmark = pytest.mark.django_db

MAILINGS = "admin:subscriptions_mailing_changelist"


def staff_who_may(client, *codenames: str) -> None:
    user = StaffUserFactory.create(is_superuser=False)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)


@pytest.fixture
def mailing():
    campaign = CampaignFactory()
    mailing = Mailing.objects.create(
        campaign=campaign, kind=Mailing.Kind.NEWSLETTER, subject="Hi", body=BODY,
        scheduled_at=timezone.now() + datetime.timedelta(hours=1),
    )  # fmt: skip
    mailing.topics.set([TopicFactory(campaign=campaign)])
    return mailing


@pytest.mark.parametrize("action", ["send_now", "schedule", "cancel", "send_test_to_me"])
def test_a_viewer_cannot_act_on_a_mailing(client, mailing, action, django_capture_on_commit_callbacks):
    staff_who_may(client, "view_mailing")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse(MAILINGS), {"action": action, "_selected_action": [mailing.pk]})
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT
    assert not AuditEvent.objects.exists()
    assert not mail.outbox


def test_a_viewer_is_not_offered_the_mailing_actions(client, mailing):
    staff_who_may(client, "view_mailing")
    page = client.get(reverse(MAILINGS)).content.decode()
    assert 'value="send_now"' not in page


def test_staff_who_may_change_mailings_can_schedule_one(client, mailing):
    staff_who_may(client, "view_mailing", "change_mailing")
    client.post(reverse(MAILINGS), {"action": "schedule", "_selected_action": [mailing.pk]})
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SCHEDULED


def test_a_topic_viewer_cannot_draft_an_alert(client):
    topic = TopicFactory(kind=Topic.Kind.ENTITY, public_status="Recruiting")
    staff_who_may(client, "view_topic", "view_mailing")
    client.post(
        reverse("admin:subscriptions_topic_changelist"), {"action": "draft_alert", "_selected_action": [topic.pk]}
    )
    assert not Mailing.objects.exists()


def test_drafting_an_alert_needs_leave_to_add_mailings_too(client):
    topic = TopicFactory(kind=Topic.Kind.ENTITY, public_status="Recruiting")
    staff_who_may(client, "view_topic", "change_topic")
    changelist = reverse("admin:subscriptions_topic_changelist")
    client.post(changelist, {"action": "draft_alert", "_selected_action": [topic.pk]})
    assert not Mailing.objects.exists()
    staff_who_may(client, "view_topic", "change_topic", "add_mailing")
    client.post(changelist, {"action": "draft_alert", "_selected_action": [topic.pk]})
    assert Mailing.objects.filter(kind=Mailing.Kind.ENTITY_ALERT).count() == 1


def test_a_campaign_viewer_cannot_draft_the_end_notice(client):
    campaign = CampaignFactory(ends_on=timezone.localdate() + datetime.timedelta(days=30))
    staff_who_may(client, "view_campaign", "view_mailing", "add_mailing")
    client.post(
        reverse("admin:subscriptions_campaign_changelist"),
        {"action": "draft_end_notice", "_selected_action": [campaign.pk]},
    )
    assert not Mailing.objects.exists()
