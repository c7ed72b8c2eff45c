"""Admin actions follow the member's permissions in the object's campaign: Django would offer
every action to anyone who may see the list, so a viewer must not be able to send, schedule,
approve or draft, and nobody can act on another campaign's rows."""

import datetime

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import AuditEvent, Campaign, Mailing, Permission, Topic
from tests.support.admin_staff import member, reauthenticated, signed_in
from tests.support.factories import CampaignFactory, StaffUserFactory, TopicFactory
from tests.support.mailing_fixtures import BODY

pytestmark = pytest.mark.django_db

MAILINGS = "admin:subscriptions_mailing_changelist"


@pytest.fixture
def mailing():
    campaign = CampaignFactory()
    mailing = Mailing.objects.create(
        campaign=campaign, kind=Mailing.Kind.NEWSLETTER, subject="Hi", body=BODY,
        scheduled_at=timezone.now() + datetime.timedelta(hours=1),
    )  # fmt: skip
    mailing.topics.set([TopicFactory(campaign=campaign)])
    return mailing


def audited() -> list[str]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))


@pytest.mark.parametrize("action", ["send_now", "schedule", "cancel", "approve", "send_test_to_me"])
def test_a_viewer_cannot_act_on_a_mailing(client, mailing, action, django_capture_on_commit_callbacks):
    viewer = member(mailing.campaign, Permission.DASHBOARD)
    signed_in(client, viewer)
    reauthenticated(client, viewer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse(MAILINGS), {"action": action, "_selected_action": [mailing.pk]})
    assert response.status_code == 404
    mailing.refresh_from_db()
    assert (mailing.status, mailing.approved_at) == (Mailing.Status.DRAFT, None)
    assert audited() == ["access_refused"]
    assert not mail.outbox


def test_a_viewer_is_not_offered_the_mailing_actions(client, mailing):
    signed_in(client, member(mailing.campaign, Permission.DASHBOARD))
    page = client.get(reverse(MAILINGS)).content.decode()
    assert 'value="send_now"' not in page
    assert 'value="send_test_to_me"' not in page


def test_a_drafter_is_offered_the_test_but_not_the_send(client, mailing):
    signed_in(client, member(mailing.campaign, Permission.DRAFT))
    page = client.get(reverse(MAILINGS)).content.decode()
    assert 'value="send_test_to_me"' in page
    assert 'value="send_now"' not in page
    assert 'value="approve"' not in page


def test_a_member_who_may_send_can_schedule_one(client, mailing):
    user = member(mailing.campaign, Permission.SEND)
    signed_in(client, user)
    reauthenticated(client, user)
    client.post(reverse(MAILINGS), {"action": "schedule", "_selected_action": [mailing.pk]})
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SCHEDULED


def test_scheduling_asks_for_a_recent_sign_in_first_as_sending_now_does(client, mailing):
    signed_in(client, member(mailing.campaign, Permission.SEND))
    response = client.post(reverse(MAILINGS), {"action": "schedule", "_selected_action": [mailing.pk]})
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"]
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT


def test_sending_now_asks_for_a_recent_sign_in_first(client, mailing):
    signed_in(client, member(mailing.campaign, Permission.SEND))
    response = client.post(reverse(MAILINGS), {"action": "send_now", "_selected_action": [mailing.pk]})
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"]
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT


def test_a_second_member_approves_and_it_is_shown_on_the_mailing(client, mailing):
    mailing.created_by = StaffUserFactory(is_superuser=False)
    mailing.save()
    approver = member(mailing.campaign, Permission.SEND, first_name="Ada", last_name="Byrne")
    signed_in(client, approver)
    client.post(reverse(MAILINGS), {"action": "approve", "_selected_action": [mailing.pk]})
    mailing.refresh_from_db()
    assert mailing.approved_by == approver
    page = client.get(reverse("admin:subscriptions_mailing_change", args=[mailing.pk])).content.decode()
    assert "Ada Byrne" in page


def test_changing_an_approved_draft_withdraws_the_approval(client, mailing):
    mailing.approved_at, mailing.approved_by_name = timezone.now(), "someone"
    mailing.save()
    signed_in(client, member(mailing.campaign, Permission.DRAFT))
    data = {"campaign": mailing.campaign_id, "kind": "newsletter", "topics": [t.pk for t in mailing.topics.all()],
            "subject": "A new subject", "body": BODY, "scheduled_at_0": "", "scheduled_at_1": ""}  # fmt: skip
    response = client.post(reverse("admin:subscriptions_mailing_change", args=[mailing.pk]), data)
    assert response.status_code == 302
    mailing.refresh_from_db()
    assert (mailing.subject, mailing.approved_at) == ("A new subject", None)


def test_a_topic_viewer_cannot_draft_an_alert(client):
    topic = TopicFactory(kind=Topic.Kind.ENTITY, public_status="Recruiting")
    signed_in(client, member(topic.campaign, Permission.DASHBOARD, Permission.MANAGE))
    client.post(
        reverse("admin:subscriptions_topic_changelist"), {"action": "draft_alert", "_selected_action": [topic.pk]}
    )
    assert not Mailing.objects.exists()


def test_drafting_an_alert_needs_the_draft_permission(client):
    topic = TopicFactory(kind=Topic.Kind.ENTITY, public_status="Recruiting")
    signed_in(client, member(topic.campaign, Permission.DRAFT))
    changelist = reverse("admin:subscriptions_topic_changelist")
    client.post(changelist, {"action": "draft_alert", "_selected_action": [topic.pk]})
    assert Mailing.objects.filter(kind=Mailing.Kind.ENTITY_ALERT).count() == 1


def test_a_campaign_manager_without_draft_cannot_draft_the_end_notice(client):
    campaign = CampaignFactory(ends_on=timezone.localdate() + datetime.timedelta(days=30))
    signed_in(client, member(campaign, Permission.MANAGE, Permission.SEND))
    client.post(
        reverse("admin:subscriptions_campaign_changelist"),
        {"action": "draft_end_notice", "_selected_action": [campaign.pk]},
    )
    assert not Mailing.objects.exists()


def test_rewriting_a_colleagues_draft_in_the_admin_bars_you_from_approving_it(client, mailing):
    Campaign.objects.filter(pk=mailing.campaign_id).update(approval_threshold=0)
    editor = member(mailing.campaign, Permission.DRAFT, Permission.SEND)
    signed_in(client, editor)
    change = reverse("admin:subscriptions_mailing_change", args=[mailing.pk])
    form = {
        "campaign": mailing.campaign_id, "kind": mailing.kind, "subject": "Rewritten", "body": mailing.body,
        "topics": list(mailing.topics.values_list("pk", flat=True)),
    }  # fmt: skip
    assert client.post(change, form).status_code == 302
    client.post(reverse(MAILINGS), {"action": "approve", "_selected_action": [mailing.pk]})
    mailing.refresh_from_db()
    assert mailing.subject == "Rewritten"
    assert mailing.approved_at is None
    edited = AuditEvent.objects.get(action="mailing_edited", target_id=mailing.pk)
    assert edited.actor_id == editor.pk
    assert "subject" in edited.details["fields"]
